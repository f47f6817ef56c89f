// TextEncoder and TextDecoder (UTF-8, as the Encoding Standard's default; `utf8`/`utf-8`
// labels), on the host's UTF-8 codec. `stream: true` decoding keeps an incomplete trailing
// sequence for the next call. Owns: those two globals. Must not touch: Buffer's encodings.
(function (native, g) {
  'use strict';
  class TextEncoder {
    get encoding() { return 'utf-8'; }
    encode(input) { return native.utf8Encode(input === undefined ? '' : String(input)); }
    encodeInto(src, dest) {
      const bytes = native.utf8Encode(String(src));
      let n = Math.min(bytes.length, dest.length);
      // Never split a character: back off to the start of the last whole sequence.
      if (n < bytes.length) while (n > 0 && (bytes[n] & 0xc0) === 0x80) n--;
      dest.set(bytes.subarray(0, n));
      const read = native.utf8Decode(bytes.subarray(0, n), false).length;
      return { read, written: n };
    }
  }
  class TextDecoder {
    constructor(label, options) {
      const l = label === undefined ? 'utf-8' : String(label).trim().toLowerCase();
      if (l !== 'utf-8' && l !== 'utf8' && l !== 'unicode-1-1-utf-8') {
        throw new RangeError('The "' + label + '" encoding is not supported');
      }
      options = options || {};
      this._fatal = !!options.fatal;
      this._ignoreBOM = !!options.ignoreBOM;
      this._pending = null;
      this._started = false;
    }
    get encoding() { return 'utf-8'; }
    get fatal() { return this._fatal; }
    get ignoreBOM() { return this._ignoreBOM; }
    decode(input, options) {
      const stream = !!(options && options.stream);
      let bytes;
      if (input === undefined) bytes = new Uint8Array(0);
      else if (input instanceof ArrayBuffer) bytes = new Uint8Array(input);
      else if (ArrayBuffer.isView(input)) bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
      else throw new TypeError('The "input" argument must be an instance of ArrayBuffer or ArrayBufferView');
      if (this._pending) {
        const joined = new Uint8Array(this._pending.length + bytes.length);
        joined.set(this._pending); joined.set(bytes, this._pending.length);
        bytes = joined; this._pending = null;
      }
      if (stream) {
        let cut = bytes.length, back = 0;
        while (cut > 0 && back < 4 && (bytes[cut - 1] & 0xc0) === 0x80) { cut--; back++; }
        if (cut > 0) {
          const lead = bytes[cut - 1];
          const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
          if (need > back + 1) { this._pending = bytes.slice(cut - 1); bytes = bytes.subarray(0, cut - 1); }
        }
      }
      let s = native.utf8Decode(bytes, this._fatal);
      if (!this._started && !this._ignoreBOM && s.charCodeAt(0) === 0xfeff) s = s.slice(1);
      this._started = stream;
      return s;
    }
  }
  Object.defineProperty(g, 'TextEncoder', { value: TextEncoder, writable: true, configurable: true });
  Object.defineProperty(g, 'TextDecoder', { value: TextDecoder, writable: true, configurable: true });
  return {};
})
