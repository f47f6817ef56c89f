// Node's `zlib` for what HTTP clients need: gunzip/inflate/unzip (and the reverse) as Transform
// streams (createGunzip, ...), callback functions (gunzip(buf, cb)) and sync functions
// (gunzipSync). A stream collects its input and converts it whole when it ends: response
// bodies arrive whole anyway (see `http.js`), and the host's codec is one call.
// Owns: those functions and zlib's constants. Must not touch: brotli (not offered, so packages
// do not ask servers for it — node-fetch and axios check for createBrotliDecompress first).
'use strict';
const native = require.native;
const { Buffer } = require('buffer');
const { Transform } = require('stream');

const constants = {
  Z_NO_FLUSH: 0, Z_PARTIAL_FLUSH: 1, Z_SYNC_FLUSH: 2, Z_FULL_FLUSH: 3, Z_FINISH: 4, Z_BLOCK: 5, Z_TREES: 6,
  Z_OK: 0, Z_STREAM_END: 1, Z_NEED_DICT: 2, Z_ERRNO: -1, Z_STREAM_ERROR: -2, Z_DATA_ERROR: -3,
  Z_MEM_ERROR: -4, Z_BUF_ERROR: -5, Z_VERSION_ERROR: -6,
  Z_NO_COMPRESSION: 0, Z_BEST_SPEED: 1, Z_BEST_COMPRESSION: 9, Z_DEFAULT_COMPRESSION: -1,
  Z_FILTERED: 1, Z_HUFFMAN_ONLY: 2, Z_RLE: 3, Z_FIXED: 4, Z_DEFAULT_STRATEGY: 0, ZLIB_VERNUM: 4865,
  DEFLATE: 1, INFLATE: 2, GZIP: 3, GUNZIP: 4, DEFLATERAW: 5, INFLATERAW: 6, UNZIP: 7,
  Z_MIN_WINDOWBITS: 8, Z_MAX_WINDOWBITS: 15, Z_DEFAULT_WINDOWBITS: 15,
  Z_MIN_CHUNK: 64, Z_MAX_CHUNK: Infinity, Z_DEFAULT_CHUNK: 16384,
  Z_MIN_MEMLEVEL: 1, Z_MAX_MEMLEVEL: 9, Z_DEFAULT_MEMLEVEL: 8,
  Z_MIN_LEVEL: -1, Z_MAX_LEVEL: 9, Z_DEFAULT_LEVEL: -1,
};

function toBuffer(data) {
  if (typeof data === 'string') return Buffer.from(data);
  if (Buffer.isBuffer(data)) return data;
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  const e = new TypeError('The "buffer" argument must be of type string or an instance of Buffer, TypedArray, DataView, or ArrayBuffer.');
  e.code = 'ERR_INVALID_ARG_TYPE';
  throw e;
}
function run(op, data) {
  const bytes = native.zlib(op, toBuffer(data));
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

class Zlib extends Transform {
  constructor(op, options) {
    super(options);
    this._op = op;
    this._chunks = [];
    this.bytesWritten = 0;
  }
  _transform(chunk, encoding, cb) {
    const b = toBuffer(typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk);
    this.bytesWritten += b.length;
    this._chunks.push(b);
    cb();
  }
  _flush(cb) {
    // An empty body (a HEAD or 204 answer that still says gzip) ends quietly.
    if (this.bytesWritten === 0) { cb(); return; }
    let result;
    try {
      result = run(this._op, Buffer.concat(this._chunks));
    } catch (e) {
      cb(e);
      return;
    }
    this._chunks = [];
    cb(null, result);
  }
  close(cb) { if (cb) process.nextTick(cb); this.destroy(); }
  flush(kind, cb) { if (typeof kind === 'function') cb = kind; if (cb) process.nextTick(cb); }
  params(level, strategy, cb) { if (cb) process.nextTick(cb); }
  reset() { this._chunks = []; }
}

const OPS = { Gzip: 'gzip', Gunzip: 'gunzip', Deflate: 'deflate', Inflate: 'inflate', DeflateRaw: 'deflateRaw', InflateRaw: 'inflateRaw', Unzip: 'unzip' };
const zlib = { constants, codes: { Z_OK: 0, Z_STREAM_END: 1, Z_NEED_DICT: 2, Z_ERRNO: -1, Z_STREAM_ERROR: -2, Z_DATA_ERROR: -3, Z_MEM_ERROR: -4, Z_BUF_ERROR: -5, Z_VERSION_ERROR: -6 } };
for (const name of Object.keys(OPS)) {
  const op = OPS[name];
  const lower = op;
  const cls = { [name]: class extends Zlib { constructor(options) { super(op, options); } } }[name];
  zlib[name] = cls;
  zlib['create' + name] = function (options) { return new cls(options); };
  zlib[lower + 'Sync'] = function (data) { return run(op, data); };
  zlib[lower] = function (data, options, cb) {
    if (typeof options === 'function') cb = options;
    let result, error = null;
    try { result = run(op, data); } catch (e) { error = e; }
    process.nextTick(cb, error, result);
  };
}
// Legacy top-level constants (zlib.Z_SYNC_FLUSH), which request and node-fetch read.
for (const k of Object.keys(constants)) if (k.startsWith('Z_')) zlib[k] = constants[k];
module.exports = zlib;
