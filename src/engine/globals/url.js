// The WHATWG URL and URLSearchParams globals. Parsing and the setters are the host's (the `url`
// crate implements the URL Standard); URLSearchParams is the standard's
// application/x-www-form-urlencoded parser and serializer, kept in step with its URL.
// Owns: those two globals. Must not touch: Node's legacy `url.parse` (the `url` built-in).
(function (native, g) {
  'use strict';
  const FIELDS = ['href', 'origin', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'search', 'hash'];
  const HEX = '0123456789ABCDEF';

  function percentDecode(s) {
    const bytes = native.utf8Encode(s.replace(/\+/g, ' '));
    const out = new Uint8Array(bytes.length);
    let n = 0;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if (b === 0x25 && i + 2 < bytes.length && isHex(bytes[i + 1]) && isHex(bytes[i + 2])) {
        out[n++] = parseInt(String.fromCharCode(bytes[i + 1], bytes[i + 2]), 16);
        i += 2;
      } else {
        out[n++] = b;
      }
    }
    return native.utf8Decode(out.subarray(0, n), false);
  }
  function isHex(b) { return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66); }
  function formEncode(s) {
    const bytes = native.utf8Encode(s);
    let out = '';
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if (b === 0x20) out += '+';
      else if ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2a || b === 0x2d || b === 0x2e || b === 0x5f) out += String.fromCharCode(b);
      else out += '%' + HEX[b >> 4] + HEX[b & 15];
    }
    return out;
  }
  function parseForm(s) {
    const list = [];
    for (const part of s.split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const name = eq < 0 ? part : part.slice(0, eq);
      const value = eq < 0 ? '' : part.slice(eq + 1);
      list.push([percentDecode(name), percentDecode(value)]);
    }
    return list;
  }

  class URLSearchParams {
    constructor(init) {
      this._list = [];
      this._url = null;
      if (init == null) return;
      if (typeof init === 'object' || typeof init === 'function') {
        if (typeof init[Symbol.iterator] === 'function') {
          for (const pair of init) {
            const p = Array.from(pair);
            if (p.length !== 2) throw new TypeError('Each query pair must be an iterable [name, value] tuple');
            this._list.push([String(p[0]), String(p[1])]);
          }
        } else {
          for (const k of Object.keys(init)) this._list.push([k, String(init[k])]);
        }
      } else {
        const s = String(init);
        this._list = parseForm(s.charAt(0) === '?' ? s.slice(1) : s);
      }
    }
    _update() {
      if (!this._url) return;
      const q = this.toString();
      this._url._set('search', q === '' ? '' : '?' + q, true);
    }
    get size() { return this._list.length; }
    append(name, value) { this._list.push([String(name), String(value)]); this._update(); }
    delete(name, value) {
      name = String(name);
      this._list = this._list.filter(([k, v]) => !(k === name && (value === undefined || v === String(value))));
      this._update();
    }
    get(name) { name = String(name); const e = this._list.find(([k]) => k === name); return e ? e[1] : null; }
    getAll(name) { name = String(name); return this._list.filter(([k]) => k === name).map(([, v]) => v); }
    has(name, value) { name = String(name); return this._list.some(([k, v]) => k === name && (value === undefined || v === String(value))); }
    set(name, value) {
      name = String(name); value = String(value);
      const i = this._list.findIndex(([k]) => k === name);
      if (i < 0) this._list.push([name, value]);
      else { this._list[i][1] = value; this._list = this._list.filter(([k], j) => j <= i || k !== name); }
      this._update();
    }
    sort() {
      // Stable, by UTF-16 code units, as the standard says.
      this._list = this._list.map((e, i) => [e, i]).sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[1] - b[1])).map((x) => x[0]);
      this._update();
    }
    forEach(f, thisArg) { for (const [k, v] of this._list.slice()) f.call(thisArg, v, k, this); }
    keys() { return this._list.map(([k]) => k)[Symbol.iterator](); }
    values() { return this._list.map(([, v]) => v)[Symbol.iterator](); }
    entries() { return this._list.map(([k, v]) => [k, v])[Symbol.iterator](); }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return this._list.map(([k, v]) => formEncode(k) + '=' + formEncode(v)).join('&'); }
    get [Symbol.toStringTag]() { return 'URLSearchParams'; }
  }

  class URL {
    constructor(url, base) {
      if (arguments.length === 0) throw new TypeError('The "url" argument must be specified');
      const parts = native.urlParse(String(url), base === undefined ? undefined : String(base));
      if (!parts) {
        const e = new TypeError('Invalid URL');
        e.code = 'ERR_INVALID_URL';
        e.input = String(url);
        throw e;
      }
      this._parts = parts;
      this._params = null;
    }
    static canParse(url, base) { return !!native.urlParse(String(url), base === undefined ? undefined : String(base)); }
    _set(field, value, fromParams) {
      const parts = native.urlSet(this._parts[0], field, String(value));
      if (!parts) {
        const e = new TypeError('Invalid URL');
        e.code = 'ERR_INVALID_URL';
        throw e;
      }
      this._parts = parts;
      if (this._params && !fromParams && (field === 'href' || field === 'search')) {
        const s = parts[9];
        this._params._list = parseForm(s.charAt(0) === '?' ? s.slice(1) : s);
      }
    }
    get searchParams() {
      if (!this._params) {
        const s = this._parts[9];
        this._params = new URLSearchParams(s.charAt(0) === '?' ? s.slice(1) : s);
        this._params._url = this;
      }
      return this._params;
    }
    toString() { return this._parts[0]; }
    toJSON() { return this._parts[0]; }
    get [Symbol.toStringTag]() { return 'URL'; }
  }
  FIELDS.forEach(function (name, i) {
    const desc = { get() { return this._parts[i]; }, enumerable: true, configurable: true };
    if (name !== 'origin') desc.set = function (v) { this._set(name, v, false); };
    Object.defineProperty(URL.prototype, name, desc);
  });
  Object.defineProperty(g, 'URL', { value: URL, writable: true, configurable: true });
  Object.defineProperty(g, 'URLSearchParams', { value: URLSearchParams, writable: true, configurable: true });
  return {};
})
