// Node's `dns` for hooks, over the host's resolver (getaddrinfo on the engine's runtime):
// `lookup` (family, all), `resolve4`/`resolve6`/`resolve(name, 'A'|'AAAA')` and a `Resolver`
// with those, callback and promise forms (`dns.promises`, `dns/promises`). `[hooks.egress]`
// applies: a name not in allow_hosts is refused (ERR_HOOKGATE_EGRESS: the query itself would
// carry data out), a name in the redirection map resolves to an address of its own that sockets
// connect to its target, and addresses of allowed names may be connected to. resolve4/resolve6
// read the system's resolver as `lookup` does (so /etc/hosts counts); TTLs are reported as 0.
// Other record types (MX, TXT, SRV, ...), reverse lookups and lookupService are not available.
// Owns: the argument and answer shapes. Must not touch: policy (the host's).
'use strict';
const native = require.native;
const { unsupported, unsupportedError } = require('_hookgate/unsupported');

const codes = {};
for (const c of ['NODATA', 'FORMERR', 'SERVFAIL', 'NOTFOUND', 'NOTIMP', 'REFUSED', 'BADQUERY', 'BADNAME', 'BADFAMILY', 'BADRESP', 'CONNREFUSED', 'TIMEOUT', 'EOF', 'FILE', 'NOMEM', 'DESTRUCTION', 'BADSTR', 'BADFLAGS', 'NONAME', 'BADHINTS', 'NOTINITIALIZED', 'LOADIPHLPAPI', 'ADDRGETNETWORKPARAMS', 'CANCELLED']) codes[c] = 'E' + c;

const WHY = 'hookgate resolves A and AAAA records (lookup, resolve4, resolve6) only';

function typeError(message) {
  const e = new TypeError(message);
  e.code = 'ERR_INVALID_ARG_TYPE';
  return e;
}

// One query to the host; `done(err, [{address, family}])`. Returns a cancel function.
function query(hostname, kind, family, done) {
  let live = true;
  const id = native.socketOpen((event, arg) => {
    native.socketForget(id);
    if (!live) return;
    live = false;
    if (event === 'resolved') done(null, arg);
    else if (event === 'error') done(arg);
    else done(Object.assign(new Error(`queryA ECANCELLED ${hostname}`), { code: 'ECANCELLED', hostname }));
  });
  native.dnsLookup(id, hostname, kind, family);
  return () => {
    if (!live) return;
    live = false;
    native.sockOp(id, 'destroy');
    native.socketForget(id);
    done(Object.assign(new Error(`queryA ECANCELLED ${hostname}`), { code: 'ECANCELLED', syscall: 'queryA', hostname }));
  };
}

function familyOf(f) {
  if (f === 'IPv4') return 4;
  if (f === 'IPv6') return 6;
  return f === 4 || f === 6 ? f : 0;
}

function lookup(hostname, options, cb) {
  if (typeof options === 'function') { cb = options; options = {}; }
  if (typeof cb !== 'function') throw typeError('The "callback" argument must be of type function');
  if (hostname && typeof hostname !== 'string') throw typeError('The "hostname" argument must be of type string');
  let family = 0;
  let all = false;
  if (typeof options === 'number' || typeof options === 'string') family = familyOf(options);
  else if (options) { family = familyOf(options.family); all = !!options.all; }
  if (!hostname) {
    process.nextTick(() => (all ? cb(null, []) : cb(null, null, family === 6 ? 6 : 4)));
    return {};
  }
  query(hostname, 'lookup', family, (err, list) => {
    if (err) return cb(err);
    if (all) return cb(null, list);
    return cb(null, list[0].address, list[0].family);
  });
  return {};
}

function resolveFamily(kind) {
  return function (hostname, options, cb) {
    if (typeof options === 'function') { cb = options; options = {}; }
    if (typeof cb !== 'function') throw typeError('The "callback" argument must be of type function');
    if (typeof hostname !== 'string') throw typeError('The "hostname" argument must be of type string');
    const ttl = !!(options && options.ttl);
    const cancel = query(hostname, kind, 0, (err, list) => {
      if (err) return cb(err);
      cb(null, list.map((a) => (ttl ? { address: a.address, ttl: 0 } : a.address)));
    });
    if (this && this._pending) this._pending.add(cancel);
    return {};
  };
}

const resolve4 = resolveFamily('resolve4');
const resolve6 = resolveFamily('resolve6');

function resolve(hostname, rrtype, cb) {
  if (typeof rrtype === 'function') { cb = rrtype; rrtype = 'A'; }
  if (rrtype === 'A') return resolve4.call(this, hostname, cb);
  if (rrtype === 'AAAA') return resolve6.call(this, hostname, cb);
  throw unsupportedError(`dns.resolve(name, '${rrtype}')`, WHY);
}

const OTHER = ['resolveAny', 'resolveCaa', 'resolveCname', 'resolveMx', 'resolveNaptr', 'resolveNs', 'resolvePtr', 'resolveSoa', 'resolveSrv', 'resolveTxt', 'reverse', 'lookupService'];

class Resolver {
  constructor() { this._pending = new Set(); }
  cancel() { const p = this._pending; this._pending = new Set(); for (const c of p) c(); }
  getServers() { return []; }
  setServers() {}
  setLocalAddress() {}
}
Resolver.prototype.resolve4 = resolve4;
Resolver.prototype.resolve6 = resolve6;
Resolver.prototype.resolve = resolve;
for (const n of OTHER) Resolver.prototype[n] = unsupported(`dns.Resolver.${n}`, WHY);

function promisify(f) {
  return function (...args) {
    return new Promise((resolve, reject) => {
      f.call(this, ...args, (err, a, b) => {
        if (err) return reject(err);
        if (f === lookup && !Array.isArray(a)) return resolve({ address: a, family: b });
        resolve(a);
      });
    });
  };
}

class PromiseResolver extends Resolver {}
PromiseResolver.prototype.resolve4 = promisify(resolve4);
PromiseResolver.prototype.resolve6 = promisify(resolve6);
PromiseResolver.prototype.resolve = promisify(resolve);

const promises = {
  lookup: promisify(lookup),
  resolve4: promisify(resolve4),
  resolve6: promisify(resolve6),
  resolve: promisify(resolve),
  Resolver: PromiseResolver,
  getServers() { return []; },
  setServers() {},
  setDefaultResultOrder() {},
  getDefaultResultOrder() { return 'verbatim'; },
};
for (const n of OTHER) {
  promises[n] = { [n]: () => Promise.reject(unsupportedError(`dns.promises.${n}`, WHY)) }[n];
}
Object.assign(promises, codes);

const out = {
  lookup, resolve, resolve4, resolve6, Resolver, promises,
  getServers() { return []; },
  setServers() {},
  setDefaultResultOrder() {},
  getDefaultResultOrder() { return 'verbatim'; },
  ADDRCONFIG: 1024, ALL: 256, V4MAPPED: 2048,
};
for (const n of OTHER) out[n] = unsupported(`dns.${n}`, WHY);
module.exports = Object.assign(out, codes);
