// Node's `tls` client for hooks: `tls.connect` over the host's rustls (the platform's roots, as
// the https client; `ca` replaces them, `rejectUnauthorized: false` connects anyway with
// `authorized` false and the reason in `authorizationError`), SNI from `servername` or the host,
// ALPN, and upgrading a connected `net.Socket` (`tls.connect({ socket })`, SMTP's STARTTLS).
// Events: 'connect', then 'secureConnect' (and 'secure') once the handshake is done.
// Owns: TLSSocket and the option forms. Must not touch: net.js's stream semantics, policy.
'use strict';
const native = require.native;
const net = require('net');
const { Buffer } = require('buffer');
const { unsupported } = require('_hookgate/unsupported');

const NO_SERVERS = 'hookgate hooks open outbound connections only';

function pemList(ca) {
  if (ca === undefined || ca === null) return [];
  return [].concat(ca).map((c) => (Buffer.isBuffer(c) || c instanceof Uint8Array ? Buffer.from(c).toString('latin1') : String(c)));
}

function alpnList(p) {
  if (!p) return [];
  if (Buffer.isBuffer(p) || p instanceof Uint8Array) {
    // The wire form: length-prefixed names.
    const out = [];
    const b = Buffer.from(p);
    for (let i = 0; i < b.length;) { const n = b[i]; out.push(b.slice(i + 1, i + 1 + n).toString()); i += 1 + n; }
    return out;
  }
  return [].concat(p).map((x) => (Buffer.isBuffer(x) ? x.toString() : String(x)));
}

class TLSSocket extends net.Socket {
  constructor(socket, options) {
    options = options || {};
    super(options);
    this.encrypted = true;
    this.authorized = false;
    this.authorizationError = null;
    this.alpnProtocol = false;
    this.servername = options.servername || undefined;
    this._tlsOpts = options;
    this._secure = null;
    this._wrapsSocket = socket || null;
  }

  _connectEvent() { return 'secureConnect'; }

  // What the host needs for the handshake.
  _tlsOptions(host) {
    const o = this._tlsOpts;
    const ctx = o.secureContext && o.secureContext.context ? o.secureContext.context : {};
    let servername = o.servername;
    if (servername === undefined && host && !net.isIP(host)) servername = host;
    this.servername = servername || undefined;
    return {
      servername: servername || null,
      rejectUnauthorized: o.rejectUnauthorized !== false,
      ca: pemList(o.ca !== undefined ? o.ca : ctx.ca),
      ALPNProtocols: alpnList(o.ALPNProtocols),
    };
  }

  // Upgrading a plain socket: bytes that arrive once the upgrade is asked for and before the
  // handshake is done were read in plaintext (the host read them before it saw the upgrade), and
  // would reach the client as if TLS protected them — a man in the middle appending `250 ...`
  // after `220 Ready to start TLS` (CVE-2011-0411). Refused: the socket is destroyed with an error.
  _onHost(kind, arg) {
    if (kind === 'data' && this._wrapsSocket && !this._secure) {
      const e = new Error('plaintext data received after the STARTTLS upgrade was requested and before the TLS handshake (a man in the middle may be injecting it); the connection is closed');
      e.code = 'ERR_HOOKGATE_TLS_PLAINTEXT';
      this.destroy(e);
      return;
    }
    super._onHost(kind, arg);
  }

  // 'connect' comes first; writes wait in the host until the handshake is done.
  _onConnect() {
    this._touch();
    this.emit('connect');
  }

  _onSecure(info) {
    this.connecting = false;
    this._secure = info;
    this.authorized = !!info.authorized;
    this.authorizationError = info.authorizationError || null;
    this.alpnProtocol = info.alpnProtocol || false;
    // A package's own identity check, as Node calls it: an Error it returns fails the connection
    // (or, with rejectUnauthorized: false, leaves it unauthorized with that reason). The host has
    // checked the name already; the certificate it is given has `raw` and `fingerprint256` only.
    const check = this._tlsOpts.checkServerIdentity;
    if (typeof check === 'function') {
      let err;
      try { err = check(info.servername || this.servername, this.getPeerCertificate()); } catch (e) { err = e; }
      if (err instanceof Error) {
        if (this._tlsOpts.rejectUnauthorized !== false) { this.destroy(err); return; }
        this.authorized = false;
        this.authorizationError = err.code || err.message;
      }
    }
    this._touch();
    this.emit('secure');
    this.emit('secureConnect');
  }

  getPeerCertificate() {
    const c = this._secure && this._secure.cert;
    if (!c) return {};
    return { raw: Buffer.from(c.raw, 'base64'), fingerprint256: c.fingerprint256, subject: {}, issuer: {} };
  }
  getProtocol() { return this._secure ? this._secure.protocol : null; }
  getCipher() { return this._secure ? { name: 'unknown', standardName: 'unknown', version: this._secure.protocol } : null; }
  getSession() { return undefined; }
  isSessionReused() { return false; }
  getEphemeralKeyInfo() { return {}; }
  getFinished() { return undefined; }
  getPeerFinished() { return undefined; }
  exportKeyingMaterial() { throw unsupported('tls.TLSSocket.exportKeyingMaterial', 'not provided by hookgate')(); }
  setServername(name) { this.servername = name; }
  setMaxSendFragment() { return true; }
  renegotiate(opts, cb) { if (cb) process.nextTick(cb, new Error('renegotiation is not supported')); return false; }
}

// (options[, cb]), (port[, host][, options][, cb])
function connect(...args) {
  let options = {};
  let cb = null;
  if (typeof args[args.length - 1] === 'function') cb = args.pop();
  if (args[0] !== null && typeof args[0] === 'object') {
    options = Object.assign({}, args[0]);
  } else {
    options.port = args[0];
    let i = 1;
    if (typeof args[1] === 'string') { options.host = args[1]; i = 2; }
    if (args[i] && typeof args[i] === 'object') options = Object.assign({}, args[i], options);
  }
  const plain = options.socket;
  const tls = new TLSSocket(plain || null, options);
  if (cb) tls.once('secureConnect', cb);
  if (!plain) {
    const host = options.host || options.servername || 'localhost';
    return tls.connect(Object.assign({}, options, { host }));
  }
  // Upgrade: the TLS socket takes over the plain one's connection and events.
  const hg = plain._hg;
  if (!hg || hg.id === null) {
    process.nextTick(() => tls.destroy(Object.assign(new Error('the socket to upgrade is not connected'), { code: 'ERR_SOCKET_CLOSED' })));
    return tls;
  }
  const id = hg.id;
  hg.wrapped = true;
  tls.connecting = true;
  tls._host = options.host || plain._host;
  tls._addresses({ remoteAddress: plain.remoteAddress, remotePort: plain.remotePort, remoteFamily: plain.remoteFamily, localAddress: plain.localAddress, localPort: plain.localPort, localFamily: plain._localFamily });
  tls._hg.id = id;
  tls._hg.refd = hg.refd;
  native.socketRebind(id, (kind, arg) => tls._onHost(kind, arg));
  native.sockOp(id, 'upgrade', JSON.stringify(tls._tlsOptions(tls._host)));
  return tls;
}

function createSecureContext(options) {
  return { context: Object.assign({}, options || {}) };
}

function checkServerIdentity() { return undefined; }

module.exports = {
  connect, TLSSocket, createSecureContext, checkServerIdentity,
  SecureContext: function SecureContext(options) { return createSecureContext(options); },
  getCiphers() { return ['tls_aes_128_gcm_sha256', 'tls_aes_256_gcm_sha384', 'tls_chacha20_poly1305_sha256', 'ecdhe-ecdsa-aes128-gcm-sha256', 'ecdhe-rsa-aes128-gcm-sha256', 'ecdhe-ecdsa-aes256-gcm-sha384', 'ecdhe-rsa-aes256-gcm-sha384']; },
  convertALPNProtocols(protocols, out) {
    const list = alpnList(protocols);
    out.ALPNProtocols = Buffer.concat(list.map((p) => Buffer.concat([Buffer.from([Buffer.byteLength(p)]), Buffer.from(p)])));
  },
  createServer: unsupported('tls.createServer', NO_SERVERS),
  Server: unsupported('tls.Server', NO_SERVERS),
  createSecurePair: unsupported('tls.createSecurePair', 'removed from Node'),
  CLIENT_RENEG_LIMIT: 3, CLIENT_RENEG_WINDOW: 600, DEFAULT_ECDH_CURVE: 'auto', DEFAULT_MIN_VERSION: 'TLSv1.2', DEFAULT_MAX_VERSION: 'TLSv1.3', DEFAULT_CIPHERS: 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256', rootCertificates: [],
};
