// A WHATWG-shaped fetch on the host's HTTP client: method, headers, body; Response with status,
// ok, statusText, url, headers.get(), json(), text(). Bodies are text (UTF-8).
(function (native, g) {
  'use strict';
  class Headers {
    constructor(init) {
      this._m = new Map();
      if (init == null) return;
      if (init instanceof Headers) init.forEach((v, k) => this.append(k, v));
      else if (Array.isArray(init)) for (const [k, v] of init) this.append(k, v);
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
  class Response {
    constructor(body, init) {
      init = init || {};
      this._body = body == null ? '' : String(body);
      this.status = init.status === undefined ? 200 : init.status;
      this.statusText = init.statusText || '';
      this.headers = new Headers(init.headers);
      this.url = init.url || '';
      this.ok = this.status >= 200 && this.status < 300;
      this.redirected = false;
      this.type = 'basic';
      this.bodyUsed = false;
    }
    _take() {
      if (this.bodyUsed) return Promise.reject(new TypeError('Body has already been consumed'));
      this.bodyUsed = true;
      return Promise.resolve(this._body);
    }
    text() { return this._take(); }
    json() { return this._take().then(JSON.parse); }
    clone() { return new Response(this._body, this); }
  }
  const pending = new Map();
  let nextId = 1;
  function fetch(input, init) {
    return new Promise(function (resolve, reject) {
      init = init || {};
      const url = typeof input === 'string' ? input : (input && input.url) ? input.url : String(input);
      const method = String(init.method || (input && input.method) || 'GET').toUpperCase();
      const headers = new Headers(init.headers || (input && input.headers));
      let body = init.body;
      if (body != null && typeof body !== 'string') body = String(body);
      const id = nextId++;
      pending.set(id, { resolve, reject });
      native.fetchStart(id, url, method, JSON.stringify(Array.from(headers)), body == null ? undefined : body);
    });
  }
  Object.defineProperty(g, 'fetch', { value: fetch, writable: true, configurable: true });
  Object.defineProperty(g, 'Headers', { value: Headers, writable: true, configurable: true });
  Object.defineProperty(g, 'Response', { value: Response, writable: true, configurable: true });
  return {
    done(id, error, status, statusText, url, headersJson, body) {
      const p = pending.get(id);
      if (!p) return;
      pending.delete(id);
      if (error !== undefined && error !== null) p.reject(new TypeError('fetch failed: ' + error));
      else p.resolve(new Response(body, { status, statusText, url, headers: JSON.parse(headersJson) }));
    },
    reset() { pending.clear(); },
  };
})
