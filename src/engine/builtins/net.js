// Node's `net` client for hooks: `net.connect`/`createConnection`/`new Socket().connect()` over
// TCP connections the host opens (src/engine/sockets.rs), as a Duplex stream with Node's events
// ('connect', 'ready', 'data', 'end', 'close' with hadError, 'error', 'timeout', 'drain'). The
// host applies `[hooks.egress]` (allow-list, redirection map, slots) to every connect; a socket
// is closed when the call that opened it ends, and a client kept in module scope sees 'close'
// when the next call starts (and reconnects as that call). No servers, no IPC paths.
// isIP/isIPv4/isIPv6 are Node's patterns (lib/internal/net.js).
// Owns: Socket's stream semantics and the connect argument forms.
// Must not touch: policy (the host's), TLS (tls.js builds on Socket).
'use strict';
const native = require.native;
const { Duplex } = require('stream');
const { Buffer } = require('buffer');
const { unsupported, unsupportedError } = require('_hookgate/unsupported');

const v4Seg = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
const v4Str = `(?:${v4Seg}\\.){3}${v4Seg}`;
const IPv4Reg = new RegExp(`^${v4Str}$`);
const v6Seg = '(?:[0-9a-fA-F]{1,4})';
const IPv6Reg = new RegExp('^(?:' +
  `(?:${v6Seg}:){7}(?:${v6Seg}|:)|` +
  `(?:${v6Seg}:){6}(?:${v4Str}|:${v6Seg}|:)|` +
  `(?:${v6Seg}:){5}(?::${v4Str}|(?::${v6Seg}){1,2}|:)|` +
  `(?:${v6Seg}:){4}(?:(?::${v6Seg}){0,1}:${v4Str}|(?::${v6Seg}){1,3}|:)|` +
  `(?:${v6Seg}:){3}(?:(?::${v6Seg}){0,2}:${v4Str}|(?::${v6Seg}){1,4}|:)|` +
  `(?:${v6Seg}:){2}(?:(?::${v6Seg}){0,3}:${v4Str}|(?::${v6Seg}){1,5}|:)|` +
  `(?:${v6Seg}:){1}(?:(?::${v6Seg}){0,4}:${v4Str}|(?::${v6Seg}){1,6}|:)|` +
  `(?::(?:(?::${v6Seg}){0,5}:${v4Str}|(?::${v6Seg}){1,7}|:))` +
')(?:%[0-9a-zA-Z-.:]{1,})?$');
const isIPv4 = (s) => IPv4Reg.test(`${s}`);
const isIPv6 = (s) => IPv6Reg.test(`${s}`);
const isIP = (s) => (isIPv4(s) ? 4 : isIPv6(s) ? 6 : 0);

const NO_SERVERS = 'hookgate hooks open outbound connections only';

function codedError(Ctor, message, code) {
  const e = new Ctor(message);
  e.code = code;
  return e;
}

// (options[, cb]), (port[, host][, cb]), (path[, cb]) -> [options, cb], as Node's normalizeArgs.
// Hand one chunk to the host. Not a method: hook code reaches a socket's methods, and this one
// bypasses the stream's one-write-at-a-time (the host also caps what a socket has queued:
// ENOBUFS past 4 MiB).
function send(sock, chunk, cb) {
  const hg = sock._hg;
  const wid = hg.nextWrite++;
  hg.writes.set(wid, () => { hg.bytesWritten += chunk.length; cb(); });
  native.sockOp(hg.id, 'write', wid, chunk);
}

function normalizeArgs(args) {
  let options = {};
  let cb = null;
  const a0 = args[0];
  if (a0 !== null && typeof a0 === 'object') {
    options = a0;
  } else if (typeof a0 === 'string' && Number(a0) !== Number(a0)) {
    options.path = a0;
  } else {
    options.port = a0;
    if (args.length > 1 && typeof args[1] === 'string') options.host = args[1];
  }
  const last = args[args.length - 1];
  if (typeof last === 'function') cb = last;
  return [options, cb];
}

function validPort(port) {
  const n = typeof port === 'string' && port.trim() !== '' ? Number(port) : port;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw codedError(RangeError, `Port should be >= 0 and < 65536. Received ${typeof port === 'string' ? `type string ('${port}')` : port}.`, 'ERR_SOCKET_BAD_PORT');
  }
  return n;
}

class Socket extends Duplex {
  constructor(options) {
    options = options || {};
    super({ allowHalfOpen: !!options.allowHalfOpen, autoDestroy: true, emitClose: true, decodeStrings: true });
    this.connecting = false;
    this.bytesRead = 0;
    this.remoteAddress = undefined;
    this.remotePort = undefined;
    this.remoteFamily = undefined;
    this.localAddress = undefined;
    this.localPort = undefined;
    this.timeout = 0;
    this._host = null;
    // The host side: id (null until connect), pending write callbacks, writes made before the
    // socket had an id, the idle timer, flags to send once it has one.
    this._hg = {
      id: null, writes: new Map(), nextWrite: 1, queued: [], ended: false, timer: null,
      refd: true, noDelay: false, paused: false, hadError: false, wrapped: false, bytesWritten: 0,
    };
    if (options.timeout) this.setTimeout(options.timeout);
  }

  get bytesWritten() { return this._hg.bytesWritten; }
  get pending() { return this._hg.id === null || this.connecting; }
  get bufferSize() { return this.writableLength; }
  // Node 15's; the bundled stream predates it (node-redis reads it to wait for 'drain').
  get writableNeedDrain() { return !!(this._writableState && this._writableState.needDrain); }
  get readyState() {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable && !this.writable) return 'readOnly';
    if (!this.readable && this.writable) return 'writeOnly';
    return 'closed';
  }

  connect(...args) {
    let [options, cb] = Array.isArray(args[0]) ? args[0] : normalizeArgs(args);
    if (options.path !== undefined) {
      throw unsupportedError('net.Socket.connect with a path (IPC)', NO_SERVERS + ' over TCP, no Unix sockets');
    }
    if (this.destroyed) {
      // Reconnecting a destroyed socket: Node resets it; clients make a new socket instead.
      throw codedError(Error, 'Socket is closed; create a new one to reconnect', 'ERR_SOCKET_CLOSED');
    }
    const port = validPort(options.port);
    const host = options.host ? String(options.host) : 'localhost';
    if (options.timeout) this.setTimeout(options.timeout);
    if (options.noDelay) this._hg.noDelay = true;
    if (cb) this.once(this._connectEvent(), cb);
    this.connecting = true;
    this._host = host;
    const go = (address) => this._open(address, port, this._tlsOptions ? this._tlsOptions(host) : null);
    if (typeof options.lookup === 'function' && !isIP(host)) {
      // A package's own resolver (nodemailer passes the addresses it resolved).
      options.lookup(host, { family: options.family || 0, all: false }, (err, address) => {
        if (this.destroyed) return;
        if (err) { this.destroy(err); return; }
        go(Array.isArray(address) ? address[0].address : address);
      });
    } else {
      go(host);
    }
    return this;
  }

  _connectEvent() { return 'connect'; }

  _open(host, port, tls) {
    const hg = this._hg;
    hg.id = native.socketOpen((kind, arg) => this._onHost(kind, arg));
    native.sockConnect(hg.id, host, port, tls ? JSON.stringify(tls) : undefined);
    if (!hg.refd) native.sockOp(hg.id, 'ref', false);
    if (hg.noDelay) native.sockOp(hg.id, 'nodelay', true);
    this._flushQueued();
  }

  _flushQueued() {
    const q = this._hg.queued;
    this._hg.queued = [];
    for (const [chunk, cb] of q) {
      if (chunk === null) this._endNow(); else send(this, chunk, cb);
    }
  }

  _addresses(a) {
    this.remoteAddress = a.remoteAddress;
    this.remotePort = a.remotePort;
    this.remoteFamily = a.remoteFamily;
    this.localAddress = a.localAddress;
    this.localPort = a.localPort;
    this._localFamily = a.localFamily;
  }

  // Events from the host, in the order it reports them.
  _onHost(kind, arg) {
    const hg = this._hg;
    switch (kind) {
      case 'connect':
        this._addresses(arg);
        this._onConnect();
        break;
      case 'secure':
        this._onSecure(arg);
        break;
      case 'data': {
        this.bytesRead += arg.byteLength;
        this._touch();
        const buf = Buffer.from(arg.buffer, arg.byteOffset, arg.byteLength);
        if (!this.push(buf) && !hg.paused && hg.id !== null) {
          hg.paused = true;
          native.sockOp(hg.id, 'pause');
        }
        break;
      }
      case 'written': {
        const cb = hg.writes.get(arg);
        hg.writes.delete(arg);
        this._touch();
        if (cb) cb();
        break;
      }
      case 'end':
        this.push(null);
        break;
      case 'error':
        hg.hadError = true;
        this.destroy(arg);
        break;
      case 'close':
        hg.id = null;
        if (!this.destroyed) this.destroy();
        break;
      case 'orphan':
        // The call that opened the socket ended, and the host closed it with the call.
        hg.id = null;
        if (!this.destroyed) this.destroy();
        break;
    }
  }

  _onConnect() {
    this.connecting = false;
    this._touch();
    this.emit('connect');
    this.emit('ready');
  }

  _onSecure() {}

  _write(chunk, encoding, cb) {
    if (this._hg.id === null) this._hg.queued.push([chunk, cb]);
    else send(this, chunk, cb);
  }

  _writev(chunks, cb) {
    const all = Buffer.concat(chunks.map((c) => (Buffer.isBuffer(c.chunk) ? c.chunk : Buffer.from(c.chunk, c.encoding))));
    this._write(all, 'buffer', cb);
  }

  _endNow() {
    if (this._hg.ended || this._hg.id === null) return;
    this._hg.ended = true;
    native.sockOp(this._hg.id, 'end');
  }

  _final(cb) {
    if (this._hg.id === null) this._hg.queued.push([null, null]);
    else this._endNow();
    cb();
  }

  _read() {
    const hg = this._hg;
    if (hg.paused && hg.id !== null) {
      hg.paused = false;
      native.sockOp(hg.id, 'resume');
    }
  }

  _destroy(err, cb) {
    const hg = this._hg;
    this.connecting = false;
    if (hg.timer) { clearTimeout(hg.timer); hg.timer = null; }
    if (hg.id !== null && !hg.wrapped) {
      // Clean: both sides ended, no error (for the host's log line).
      const clean = !err && !!this._readableState.endEmitted;
      native.sockOp(hg.id, 'destroy', clean);
      native.socketForget(hg.id);
    }
    hg.id = null;
    hg.writes.clear();
    if (err) hg.hadError = true;
    cb(err);
  }

  // Node's 'close' carries hadError; the stream's own has no argument.
  emit(event, ...args) {
    if (event === 'close' && args.length === 0) return super.emit('close', this._hg.hadError);
    return super.emit(event, ...args);
  }

  // The idle timeout: 'timeout' after `ms` without reads or writes (the socket stays open).
  setTimeout(ms, cb) {
    ms = Number(ms) || 0;
    this.timeout = ms;
    if (cb) {
      if (ms === 0) this.removeListener('timeout', cb); else this.once('timeout', cb);
    }
    this._touch();
    return this;
  }

  _touch() {
    const hg = this._hg;
    if (hg.timer) { clearTimeout(hg.timer); hg.timer = null; }
    if (this.timeout > 0 && !this.destroyed) {
      hg.timer = setTimeout(() => { hg.timer = null; this.emit('timeout'); }, this.timeout);
      // As Node's: a socket's timeout alone does not keep the event loop alive.
      if (hg.timer && hg.timer.unref) hg.timer.unref();
    }
  }

  setNoDelay(noDelay) {
    const on = noDelay === undefined ? true : !!noDelay;
    this._hg.noDelay = on;
    if (this._hg.id !== null) native.sockOp(this._hg.id, 'nodelay', on);
    return this;
  }

  // Accepted; the host's sockets use the system's keep-alive settings.
  setKeepAlive() { return this; }

  ref() {
    this._hg.refd = true;
    if (this._hg.id !== null) native.sockOp(this._hg.id, 'ref', true);
    return this;
  }

  unref() {
    this._hg.refd = false;
    if (this._hg.id !== null) native.sockOp(this._hg.id, 'ref', false);
    return this;
  }

  address() {
    if (this.localAddress === undefined) return {};
    return { address: this.localAddress, family: this._localFamily, port: this.localPort };
  }

  resetAndDestroy() { return this.destroy(codedError(Error, 'socket hang up', 'ECONNRESET')); }
}

function connect(...args) {
  const [options, cb] = normalizeArgs(args);
  const socket = new Socket(options);
  return socket.connect(options, cb);
}

module.exports = {
  isIP, isIPv4, isIPv6,
  Socket, Stream: Socket,
  connect, createConnection: connect,
  createServer: unsupported('net.createServer', NO_SERVERS),
  Server: unsupported('net.Server', NO_SERVERS),
  BlockList: unsupported('net.BlockList', 'hookgate applies [hooks.egress] itself'),
  SocketAddress: unsupported('net.SocketAddress', 'not provided by hookgate'),
  getDefaultAutoSelectFamily() { return false; },
  setDefaultAutoSelectFamily() {},
  getDefaultAutoSelectFamilyAttemptTimeout() { return 250; },
  setDefaultAutoSelectFamilyAttemptTimeout() {},
};
