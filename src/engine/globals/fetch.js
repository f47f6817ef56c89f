// A WHATWG-shaped fetch on the host's HTTP client (through io.js): method, headers, body (string,
// Buffer/typed array, ArrayBuffer or URLSearchParams); Response with status, ok, statusText, url,
// redirected, headers, text(), json(), arrayBuffer(). Redirects are followed, as fetch does, or
// not (`redirect: 'manual'` / `'error'`).
// Owns: the fetch/Headers/Response globals. Must not touch: Node's http (built-in `http`).
(function (native, g) {
  'use strict';
  class Headers {
    constructor(init) {
      this._m = new Map();
      if (init == null) return;
      if (init instanceof Headers) init.forEach((v, k) => this.append(k, v));
      else if (Array.isArray(init) || typeof init[Symbol.iterator] === 'function') for (const [k, v] of init) this.append(k, v);
      else for (const k of Object.keys(init)) this.append(k, init[k]);
    }
    append(k, v) { k = String(k).toLowerCase(); const o = this._m.get(k); this._m.set(k, o === undefined ? String(v) : o + ', ' + v); }
    set(k, v) { this._m.set(String(k).toLowerCase(), String(v)); }
    get(k) { const v = this._m.get(String(k).toLowerCase()); return v === undefined ? null : v; }
    has(k) { return this._m.has(String(k).toLowerCase()); }
    delete(k) { this._m.delete(String(k).toLowerCase()); }
    forEach(f, thisArg) { for (const [k, v] of this._m) f.call(thisArg, v, k, this); }
    entries() { return this._m.entries(); }
    keys() { return this._m.keys(); }
    values() { return this._m.values(); }
    [Symbol.iterator]() { return this._m.entries(); }
  }
  function toBytes(body) {
    if (body == null) return new Uint8Array(0);
    if (typeof body === 'string') return native.utf8Encode(body);
    if (body instanceof ArrayBuffer) return new Uint8Array(body);
    if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    return native.utf8Encode(String(body));
  }
  class Response {
    constructor(body, init) {
      init = init || {};
      this._bytes = toBytes(body);
      this.status = init.status === undefined ? 200 : init.status;
      this.statusText = init.statusText || '';
      this.headers = new Headers(init.headers);
      this.url = init.url || '';
      this.ok = this.status >= 200 && this.status < 300;
      this.redirected = !!init.redirected;
      this.type = 'basic';
      this.bodyUsed = false;
    }
    _take() {
      if (this.bodyUsed) return Promise.reject(new TypeError('Body is unusable: Body has already been read'));
      this.bodyUsed = true;
      return Promise.resolve(this._bytes);
    }
    text() { return this._take().then((b) => native.utf8Decode(b, false)); }
    json() { return this.text().then(JSON.parse); }
    arrayBuffer() { return this._take().then((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)); }
    clone() {
      if (this.bodyUsed) throw new TypeError('Response.clone: Body has already been consumed.');
      return new Response(this._bytes.slice(), this);
    }
  }
  function fetch(input, init) {
    return new Promise(function (resolve, reject) {
      init = init || {};
      const url = typeof input === 'string' ? input : (input && input.url) ? input.url : String(input);
      const method = String(init.method || (input && input.method) || 'GET').toUpperCase();
      const headers = new Headers(init.headers || (input && input.headers));
      let body = init.body;
      if (body != null && g.URLSearchParams && body instanceof g.URLSearchParams) {
        if (!headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
        body = String(body);
      } else if (typeof body === 'string' && !headers.has('content-type')) {
        headers.set('content-type', 'text/plain;charset=UTF-8');
      }
      if (body != null && typeof body !== 'string') body = toBytes(body);
      // undici's default; the client under `manual`/`error` adds none of its own.
      if (!headers.has('accept')) headers.set('accept', '*/*');
      // `follow` (the default): the host follows, checking each hop. `manual`: the 3xx answer
      // is the response. `error`: a 3xx answer rejects, as undici does ("unexpected redirect").
      const redirect = String(init.redirect || (input && typeof input === 'object' && input.redirect) || 'follow');
      if (redirect !== 'follow' && redirect !== 'manual' && redirect !== 'error') {
        reject(new TypeError("Failed to construct 'Request': The provided value '" + redirect + "' is not a valid enum value of type RequestRedirect."));
        return;
      }
      native.request({ url, method, headers: Array.from(headers), body, follow: redirect === 'follow' }, function (err, res) {
        if (!err && redirect === 'error' && [301, 302, 303, 307, 308].indexOf(res.status) >= 0) {
          err = new Error('unexpected redirect');
        }
        if (err) {
          // Node's (undici's) shape: `TypeError: fetch failed`, the socket's error as `cause`.
          // A refusal of hookgate's own (allow-list, limits) has no Node counterpart and says
          // why in the message too.
          const e = new TypeError(/^ERR_HOOKGATE_/.test(err.code || '') ? 'fetch failed: ' + err.message : 'fetch failed');
          // Not enumerable, as `new TypeError(msg, { cause })` makes it.
          Object.defineProperty(e, 'cause', { value: err, writable: true, configurable: true, enumerable: false });
          reject(e);
          return;
        }
        resolve(new Response(res.body, {
          status: res.status, statusText: res.statusText, url: res.url,
          headers: res.headers, redirected: redirect === 'follow' && res.url !== url,
        }));
      });
    });
  }
  Object.defineProperty(g, 'fetch', { value: fetch, writable: true, configurable: true });
  Object.defineProperty(g, 'Headers', { value: Headers, writable: true, configurable: true });
  Object.defineProperty(g, 'Response', { value: Response, writable: true, configurable: true });
  return {};
})
