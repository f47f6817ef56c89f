// Node's `http` client (and, through `https.js`, `https`) over hookgate's Rust HTTP client: the
// request is sent when it ends, with its whole body; the answer arrives whole and is streamed to
// the IncomingMessage. Connections are pooled (keep-alive) by the host, so `Agent` only carries
// options. Event order follows Node 20: 'socket', 'finish', 'response', res 'data'/'end', 'close';
// abort before the answer: 'abort', 'error' (ECONNRESET, "socket hang up"), 'close'.
// Owns: ClientRequest, IncomingMessage, Agent and the module's constants.
// Must not touch: redirects (packages follow them themselves, as with Node), decompression (the
// body arrives as sent), egress policy (the host applies allow-list and redirection).
'use strict';
const native = require.native;
const EventEmitter = require('events');
const { Readable, Writable } = require('stream');
const { Buffer } = require('buffer');
const { unsupported } = require('_hookgate/unsupported');

const METHODS = ['ACL', 'BIND', 'CHECKOUT', 'CONNECT', 'COPY', 'DELETE', 'GET', 'HEAD', 'LINK', 'LOCK', 'M-SEARCH', 'MERGE', 'MKACTIVITY', 'MKCALENDAR', 'MKCOL', 'MOVE', 'NOTIFY', 'OPTIONS', 'PATCH', 'POST', 'PROPFIND', 'PROPPATCH', 'PURGE', 'PUT', 'QUERY', 'REBIND', 'REPORT', 'SEARCH', 'SOURCE', 'SUBSCRIBE', 'TRACE', 'UNBIND', 'UNLINK', 'UNLOCK', 'UNSUBSCRIBE'];
const STATUS_CODES = {
  100: 'Continue', 101: 'Switching Protocols', 102: 'Processing', 103: 'Early Hints',
  200: 'OK', 201: 'Created', 202: 'Accepted', 203: 'Non-Authoritative Information', 204: 'No Content', 205: 'Reset Content', 206: 'Partial Content', 207: 'Multi-Status', 208: 'Already Reported', 226: 'IM Used',
  300: 'Multiple Choices', 301: 'Moved Permanently', 302: 'Found', 303: 'See Other', 304: 'Not Modified', 305: 'Use Proxy', 307: 'Temporary Redirect', 308: 'Permanent Redirect',
  400: 'Bad Request', 401: 'Unauthorized', 402: 'Payment Required', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 406: 'Not Acceptable', 407: 'Proxy Authentication Required', 408: 'Request Timeout', 409: 'Conflict', 410: 'Gone', 411: 'Length Required', 412: 'Precondition Failed', 413: 'Payload Too Large', 414: 'URI Too Long', 415: 'Unsupported Media Type', 416: 'Range Not Satisfiable', 417: 'Expectation Failed', 418: "I'm a Teapot", 421: 'Misdirected Request', 422: 'Unprocessable Entity', 423: 'Locked', 424: 'Failed Dependency', 425: 'Too Early', 426: 'Upgrade Required', 428: 'Precondition Required', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large', 451: 'Unavailable For Legal Reasons',
  500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout', 505: 'HTTP Version Not Supported', 506: 'Variant Also Negotiates', 507: 'Insufficient Storage', 508: 'Loop Detected', 509: 'Bandwidth Limit Exceeded', 510: 'Not Extended', 511: 'Network Authentication Required',
};
// Headers Node keeps only once in IncomingMessage.headers (the first wins).
const SINGLE = new Set(['age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent']);
// Methods Node sends without `Content-Length: 0` when they have no body.
const NO_DEFAULT_BODY = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);
// Hop-by-hop headers belong to the host's connection, not to the hook's request.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'content-length']);

function codedError(message, code) {
  const e = new Error(message);
  e.code = code;
  return e;
}

// The socket a request reports. There is no socket a hook could touch: the host owns the
// connection. Packages read flags and attach listeners; both are harmless here.
class Socket extends EventEmitter {
  constructor(secure, host, port) {
    super();
    this.connecting = false;
    this._connecting = false;
    this.encrypted = secure;
    this.authorized = secure;
    this.remoteAddress = host;
    this.remotePort = port;
    this.localAddress = '127.0.0.1';
    this.readable = true;
    this.writable = true;
    this.destroyed = false;
    this.bytesRead = 0;
    this.bytesWritten = 0;
  }
  setTimeout(ms, cb) { if (cb) this.once('timeout', cb); return this; }
  setNoDelay() { return this; }
  setKeepAlive() { return this; }
  ref() { return this; }
  unref() { return this; }
  address() { return { address: this.localAddress, family: 'IPv4', port: 0 }; }
  getPeerCertificate() { return {}; }
  write() { return true; }
  end() { return this; }
  destroy() { this.destroyed = true; return this; }
}

class HttpAgent extends EventEmitter {
  constructor(options) {
    super();
    this.options = Object.assign({ path: null }, options);
    this.defaultPort = this.options.defaultPort || 80;
    this.protocol = this.options.protocol || 'http:';
    this.keepAlive = !!this.options.keepAlive;
    this.keepAliveMsecs = this.options.keepAliveMsecs || 1000;
    this.maxSockets = this.options.maxSockets || Infinity;
    this.maxFreeSockets = this.options.maxFreeSockets || 256;
    this.maxTotalSockets = this.options.maxTotalSockets || Infinity;
    this.requests = Object.create(null);
    this.sockets = Object.create(null);
    this.freeSockets = Object.create(null);
  }
  getName(o) {
    o = o || {};
    return (o.host || 'localhost') + ':' + (o.port || '') + ':' + (o.localAddress || '') + (o.family ? ':' + o.family : '');
  }
  destroy() {}
}

class IncomingMessage extends Readable {
  constructor(res, req, socket) {
    super();
    this.socket = socket;
    this.connection = socket;
    this.req = req;
    this.httpVersion = '1.1';
    this.httpVersionMajor = 1;
    this.httpVersionMinor = 1;
    this.statusCode = res.status;
    this.statusMessage = res.statusText || STATUS_CODES[res.status] || '';
    this.url = '';
    this.method = null;
    this.complete = false;
    this.aborted = false;
    this.rawHeaders = [];
    this.headers = {};
    this.trailers = {};
    this.rawTrailers = [];
    for (const [name, value] of res.headers) {
      this.rawHeaders.push(name, value);
      const k = name.toLowerCase();
      const prev = this.headers[k];
      if (k === 'set-cookie') (prev ? prev : (this.headers[k] = [])).push(value);
      else if (prev === undefined) this.headers[k] = value;
      else if (!SINGLE.has(k)) this.headers[k] = prev + (k === 'cookie' ? '; ' : ', ') + value;
    }
    this.headersDistinct = {};
    for (let i = 0; i < this.rawHeaders.length; i += 2) {
      const k = this.rawHeaders[i].toLowerCase();
      (this.headersDistinct[k] || (this.headersDistinct[k] = [])).push(this.rawHeaders[i + 1]);
    }
    this._body = res.body;
    this.once('end', () => { this.complete = true; });
  }
  _read() {
    const body = this._body;
    if (body === null) return;
    this._body = null;
    if (body.length) this.push(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    this.push(null);
  }
  setTimeout(ms, cb) { if (cb) this.once('timeout', cb); return this; }
}

function toOptions(input) {
  const u = input instanceof URL ? input : new URL(String(input));
  const o = {
    protocol: u.protocol,
    hostname: u.hostname.charAt(0) === '[' ? u.hostname.slice(1, -1) : u.hostname,
    hash: u.hash,
    search: u.search,
    pathname: u.pathname,
    path: u.pathname + u.search,
    href: u.href,
  };
  if (u.port !== '') o.port = Number(u.port);
  if (u.username || u.password) o.auth = decodeURIComponent(u.username) + ':' + decodeURIComponent(u.password);
  return o;
}

function makeModule(defaultProtocol) {
  const secure = defaultProtocol === 'https:';
  // https.Agent is an http.Agent that defaults to port 443, as in Node.
  const ModuleAgent = secure
    ? class Agent extends HttpAgent { constructor(options) { super(Object.assign({ defaultPort: 443, protocol: 'https:' }, options)); } }
    : HttpAgent;
  const globalAgent = new ModuleAgent({ keepAlive: true, defaultPort: secure ? 443 : 80, protocol: defaultProtocol });

  class ClientRequest extends Writable {
    constructor(input, options, cb) {
      super();
      if (typeof input === 'string' || input instanceof URL) {
        const fromUrl = toOptions(input);
        if (typeof options === 'function') { cb = options; options = null; }
        options = Object.assign(fromUrl, options || {});
      } else {
        if (typeof options === 'function') cb = options;
        options = Object.assign({}, input || {});
      }
      const agent = options.agent === false || options.agent == null ? globalAgent : options.agent;
      const protocol = options.protocol || (agent && agent.protocol) || defaultProtocol;
      if (protocol !== defaultProtocol) {
        const e = new TypeError('Protocol "' + protocol + '" not supported. Expected "' + defaultProtocol + '"');
        e.code = 'ERR_INVALID_PROTOCOL';
        throw e;
      }
      const defaultPort = options.defaultPort || (agent && agent.defaultPort) || (secure ? 443 : 80);
      let host = options.hostname || options.host || 'localhost';
      if (options.host && !options.hostname && /^[^[]*:\d+$/.test(options.host)) host = options.host.replace(/:\d+$/, '');
      const port = options.port ? Number(options.port) : defaultPort;
      this.method = String(options.method || 'GET').toUpperCase();
      this.path = options.path || '/';
      if (/[\u0000-\u0020]/.test(this.path)) {
        const e = new TypeError('Request path contains unescaped characters');
        e.code = 'ERR_UNESCAPED_CHARACTERS';
        throw e;
      }
      this.host = host;
      this.protocol = protocol;
      this.agent = agent;
      this.aborted = false;
      this.reusedSocket = false;
      this.maxHeadersCount = null;
      this.timeout = options.timeout;
      this.res = null;
      this._headers = new Map();
      this._chunks = [];
      this._id = null;
      this._timer = null;
      this._done = false;
      const hostPart = host.indexOf(':') >= 0 ? '[' + host + ']' : host;
      // Node sends any path as the request target, even one without a leading `/` (a
      // placeholder URL through `url.parse` gives `path: '%7B%7BAPI_URL%7D%7D/users'` and no
      // host): the request still goes to the host and port above, so the path must not be read
      // as part of the authority.
      const target = this.path.charAt(0) === '/' ? this.path : '/' + this.path;
      this._url = protocol + '//' + hostPart + (port === (secure ? 443 : 80) ? '' : ':' + port) + target;
      const headers = options.headers || {};
      if (Array.isArray(headers)) {
        for (let i = 0; i < headers.length; i += 2) this.setHeader(headers[i], headers[i + 1]);
      } else {
        for (const k of Object.keys(headers)) if (headers[k] !== undefined) this.setHeader(k, headers[k]);
      }
      if (options.auth && !this.hasHeader('authorization')) {
        this.setHeader('Authorization', 'Basic ' + Buffer.from(String(options.auth)).toString('base64'));
      }
      this.socket = this.connection = new Socket(secure, host, port);
      if (cb) this.once('response', cb);
      if (options.timeout) this.setTimeout(options.timeout);
      if (options.signal) {
        const signal = options.signal;
        if (signal.aborted) process.nextTick(() => this.destroy(abortError()));
        else signal.addEventListener('abort', () => this.destroy(abortError()), { once: true });
      }
      process.nextTick(() => { if (!this.destroyed) this.emit('socket', this.socket); });
    }
    get headersSent() { return this._id !== null; }
    get finished() { return this.writableEnded; }
    setHeader(name, value) {
      if (this.headersSent) throw codedError('Cannot set headers after they are sent to the client', 'ERR_HTTP_HEADERS_SENT');
      if (value === undefined) {
        const e = new TypeError('Invalid value "undefined" for header "' + name + '"');
        e.code = 'ERR_HTTP_INVALID_HEADER_VALUE';
        throw e;
      }
      this._headers.set(String(name).toLowerCase(), [String(name), value]);
      return this;
    }
    getHeader(name) { const h = this._headers.get(String(name).toLowerCase()); return h ? h[1] : undefined; }
    getHeaders() { const o = Object.create(null); for (const [k, [, v]] of this._headers) o[k] = v; return o; }
    getHeaderNames() { return Array.from(this._headers.keys()); }
    getRawHeaderNames() { return Array.from(this._headers.values()).map((h) => h[0]); }
    hasHeader(name) { return this._headers.has(String(name).toLowerCase()); }
    removeHeader(name) {
      if (this.headersSent) throw codedError('Cannot remove headers after they are sent to the client', 'ERR_HTTP_HEADERS_SENT');
      this._headers.delete(String(name).toLowerCase());
    }
    flushHeaders() {}
    setNoDelay() {}
    setSocketKeepAlive() {}
    setTimeout(ms, cb) {
      if (cb) this.once('timeout', cb);
      if (this._timer) clearTimeout(this._timer);
      this._timer = null;
      if (ms > 0 && !this._done) {
        // Unref'd, as a socket timeout is in Node: only the request itself keeps the loop alive.
        this._timer = setTimeout(() => { this._timer = null; if (!this._done) { this.emit('timeout'); this.socket.emit('timeout'); } }, ms);
        if (this._timer.unref) this._timer.unref();
      }
      return this;
    }
    _write(chunk, encoding, cb) {
      this._chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, encoding));
      cb();
    }
    _final(cb) {
      this._send();
      cb();
    }
    _send() {
      if (this._id !== null || this.destroyed) return;
      const headers = [];
      for (const [, [name, value]] of this._headers) {
        if (HOP.has(name.toLowerCase())) continue;
        if (Array.isArray(value)) for (const v of value) headers.push([name, String(v)]);
        else headers.push([name, String(value)]);
      }
      const body = this._chunks.length || (this.method !== 'GET' && this.method !== 'HEAD') ? Buffer.concat(this._chunks) : undefined;
      // What Node adds on its own, and nothing else: `Connection: keep-alive` (the global agent
      // keeps connections) and, for a method that may carry a body (not GET, HEAD, DELETE,
      // OPTIONS, TRACE, CONNECT), `Content-Length: 0` when it has none. `Host` and a body's
      // length come from the host's client.
      headers.unshift(['Connection', 'keep-alive']);
      if ((!body || !body.length) && !NO_DEFAULT_BODY.has(this.method)) headers.push(['Content-Length', '0']);
      this._chunks = [];
      this._id = native.request({ url: this._url, method: this.method, headers, body, follow: false }, (err, res) => this._answer(err, res));
    }
    _answer(err, res) {
      this._done = true;
      if (this._timer) { clearTimeout(this._timer); this._timer = null; }
      if (this.destroyed && !this.res) return;
      if (err) {
        this.destroy(err);
        return;
      }
      const msg = new IncomingMessage(res, this, this.socket);
      this.res = msg;
      msg.once('end', () => { process.nextTick(() => { msg.emit('close'); this.emit('close'); }); });
      if (!this.emit('response', msg)) msg.resume();
    }
    abort() {
      if (this.aborted) return;
      this.aborted = true;
      process.nextTick(() => this.emit('abort'));
      this.destroy();
    }
    destroy(err) {
      if (this.destroyed) return this;
      if (this._id !== null && !this._done) native.requestAbort(this._id);
      this._done = true;
      if (this._timer) { clearTimeout(this._timer); this._timer = null; }
      if (!this.res && !err) err = codedError('socket hang up', 'ECONNRESET');
      if (this.res && !this.res.complete) { this.res.aborted = true; this.res.destroy(err); }
      return super.destroy(this.res ? undefined : err);
    }
  }

  function request(input, options, cb) { return new ClientRequest(input, options, cb); }
  function get(input, options, cb) { const req = request(input, options, cb); req.end(); return req; }
  return {
    METHODS, STATUS_CODES, Agent: ModuleAgent, globalAgent, ClientRequest, IncomingMessage,
    OutgoingMessage: Writable,
    request, get,
    createServer: unsupported('http.createServer', 'hookgate hooks make outbound requests only'),
    Server: unsupported('http.Server', 'hookgate hooks make outbound requests only'),
    maxHeaderSize: 16384,
    validateHeaderName(name) { if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(String(name))) { const e = new TypeError('Header name must be a valid HTTP token ["' + name + '"]'); e.code = 'ERR_INVALID_HTTP_TOKEN'; throw e; } },
    validateHeaderValue(name, value) { if (value === undefined) { const e = new TypeError('Invalid value "undefined" for header "' + name + '"'); e.code = 'ERR_HTTP_INVALID_HEADER_VALUE'; throw e; } },
  };
}

function abortError() {
  const e = new Error('The operation was aborted');
  e.name = 'AbortError';
  e.code = 'ABORT_ERR';
  return e;
}

module.exports = makeModule('http:');
// `https.js` builds its module from the same code.
Object.defineProperty(module.exports, Symbol.for('hookgate.http.makeModule'), { value: makeModule });
