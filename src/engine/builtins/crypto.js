// Node's `crypto`, the part hooks and their packages use: createHash, createHmac (md5, sha1,
// sha224, sha256, sha384, sha512), randomBytes/randomFillSync/randomInt/randomUUID,
// timingSafeEqual, getHashes. Digests and randomness are the host's; Hash and Hmac are also
// Transform streams, as in Node.
// Owns: those functions. Must not touch: key objects, signing and ciphers — they throw
// ERR_HOOKGATE_UNSUPPORTED, so a hook learns at once instead of getting wrong bytes.
'use strict';
const native = require.native;
const { Buffer } = require('buffer');
const { Transform } = require('stream');
const { stub } = require('_hookgate/unsupported');

const HASHES = ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512'];

function toBuffer(data, encoding, what) {
  if (typeof data === 'string') return Buffer.from(data, encoding || 'utf8');
  if (Buffer.isBuffer(data)) return data;
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  const e = new TypeError('The "' + what + '" argument must be of type string or an instance of Buffer, TypedArray, or DataView.');
  e.code = 'ERR_INVALID_ARG_TYPE';
  throw e;
}
function out(bytes, encoding) {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return encoding && encoding !== 'buffer' ? b.toString(encoding) : b;
}
function checkAlgorithm(alg) {
  const name = String(alg).toLowerCase().replace(/^rsa-/, '');
  if (HASHES.indexOf(name.replace('sha-', 'sha')) < 0) {
    const e = new Error('Digest method not supported');
    e.code = 'ERR_OSSL_EVP_UNSUPPORTED';
    throw e;
  }
  return name;
}

class Hash extends Transform {
  constructor(algorithm, key) {
    super();
    this._alg = checkAlgorithm(algorithm);
    this._key = key;
    this._chunks = [];
    this._finalized = false;
  }
  update(data, encoding) {
    if (this._finalized) { const e = new Error('Digest already called'); e.code = 'ERR_CRYPTO_HASH_FINALIZED'; throw e; }
    this._chunks.push(toBuffer(data, encoding, 'data'));
    return this;
  }
  digest(encoding) {
    if (this._finalized) { const e = new Error('Digest already called'); e.code = 'ERR_CRYPTO_HASH_FINALIZED'; throw e; }
    this._finalized = true;
    const data = Buffer.concat(this._chunks);
    this._chunks = [];
    const bytes = this._key === undefined ? native.digest(this._alg, data) : native.hmac(this._alg, this._key, data);
    return out(bytes, encoding);
  }
  copy() {
    if (this._key !== undefined) throw new TypeError('Hmac has no copy()');
    const h = new Hash(this._alg);
    h._chunks = this._chunks.slice();
    return h;
  }
  _transform(chunk, encoding, cb) { this.update(chunk, encoding); cb(); }
  _flush(cb) { this.push(this.digest()); cb(); }
}

function createHash(algorithm) { return new Hash(algorithm); }
function createHmac(algorithm, key) {
  if (key && typeof key === 'object' && key.type === 'secret' && key._bytes) key = key._bytes;
  return new Hash(algorithm, toBuffer(key, 'utf8', 'key'));
}
function randomBytes(size, cb) {
  if (typeof size !== 'number' || !(size >= 0) || size > 2147483647) {
    const e = new RangeError('The value of "size" is out of range. It must be >= 0 && <= 2147483647. Received ' + size);
    e.code = 'ERR_OUT_OF_RANGE';
    throw e;
  }
  const b = out(native.randomBytes(size));
  if (typeof cb === 'function') { process.nextTick(cb, null, b); return; }
  return b;
}
function randomFillSync(buf, offset, size) {
  offset = offset || 0;
  const view = new Uint8Array(buf.buffer || buf, buf.byteOffset || 0, buf.byteLength);
  const n = size === undefined ? view.length - offset : size;
  view.set(native.randomBytes(n), offset);
  return buf;
}
function randomFill(buf, offset, size, cb) {
  if (typeof offset === 'function') { cb = offset; offset = 0; size = undefined; } else if (typeof size === 'function') { cb = size; size = undefined; }
  randomFillSync(buf, offset, size);
  process.nextTick(cb, null, buf);
}
function randomInt(min, max, cb) {
  if (max === undefined || typeof max === 'function') { cb = max; max = min; min = 0; }
  const range = max - min;
  if (!(range > 0) || range > 281474976710655) {
    const e = new RangeError('The value of "max" is out of range. It must be greater than the value of "min" (' + min + ').');
    e.code = 'ERR_OUT_OF_RANGE';
    throw e;
  }
  // Rejection sampling over 48 random bits, as Node does, so every value is equally likely.
  const limit = 281474976710656 - (281474976710656 % range);
  let x;
  do { const b = native.randomBytes(6); x = b[0] * 1099511627776 + b[1] * 4294967296 + b[2] * 16777216 + b[3] * 65536 + b[4] * 256 + b[5]; } while (x >= limit);
  const v = min + (x % range);
  if (typeof cb === 'function') { process.nextTick(cb, null, v); return; }
  return v;
}
function randomUUID() {
  const b = native.randomBytes(16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = out(b, 'hex');
  return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
}
function timingSafeEqual(a, b) {
  a = toBuffer(a, undefined, 'buf1'); b = toBuffer(b, undefined, 'buf2');
  if (a.length !== b.length) { const e = new RangeError('Input buffers must have the same byte length'); e.code = 'ERR_CRYPTO_TIMING_SAFE_EQUAL_LENGTH'; throw e; }
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}
module.exports = stub('crypto', 'hookgate offers hashes, HMAC and random values, not keys, signatures or ciphers',
  ['createSign', 'createVerify', 'sign', 'verify', 'createCipheriv', 'createDecipheriv', 'createPrivateKey',
    'createPublicKey', 'createSecretKey', 'createECDH', 'createDiffieHellman', 'pbkdf2', 'pbkdf2Sync', 'scrypt',
    'scryptSync', 'publicEncrypt', 'privateDecrypt', 'generateKeyPair', 'generateKeyPairSync'],
  {
    createHash, createHmac, Hash, Hmac: Hash,
    randomBytes, pseudoRandomBytes: randomBytes, randomFillSync, randomFill, randomInt, randomUUID,
    timingSafeEqual,
    getHashes() { return HASHES.slice(); },
    getCiphers() { return []; },
    getCurves() { return []; },
    constants: {},
  });
