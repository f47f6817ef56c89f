// Node's `crypto`, the part hooks and their packages use: createHash, createHmac (md5, sha1,
// sha224, sha256, sha384, sha512), randomBytes/randomFillSync/randomInt/randomUUID,
// timingSafeEqual, getHashes; KeyObject with createPrivateKey/createPublicKey/createSecretKey
// (PEM, DER, JWK; RSA, EC P-256/P-384/P-521/secp256k1, Ed25519), sign/verify and
// createSign/createVerify (RSA PKCS#1 v1.5 and PSS, ECDSA in DER or IEEE P1363, Ed25519),
// createCipheriv/createDecipheriv (AES-CBC, AES-CTR, AES-ECB, AES-GCM with 12-byte IVs),
// pbkdf2/pbkdf2Sync. Digests, randomness, key parsing, signatures and AES blocks are the host's
// (natives.rs and natives/crypto.rs); this file keeps Node's shapes: streams, encodings, cipher
// state (IV chaining, PKCS#7, the GCM counter) and Node's errors.
// Owns: those functions. Must not touch: key generation, Diffie-Hellman, RSA encryption, scrypt,
// webcrypto — they throw ERR_HOOKGATE_UNSUPPORTED, so a hook learns at once instead of getting
// wrong bytes.
'use strict';
const native = require.native;
const nc = native.crypto;
const { Buffer } = require('buffer');
const { Transform, Writable } = require('stream');
const { StringDecoder } = require('string_decoder');
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
  if (key instanceof KeyObject) {
    if (key.type !== 'secret') throw invalidArgType('key', 'string or an instance of ArrayBuffer, Buffer, TypedArray, DataView, KeyObject, or CryptoKey', key);
    key = key._bytes;
  }
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
// --- Errors in Node's shapes.

function describe(value) {
  if (value == null) return ' Received ' + value;
  if (typeof value === 'function') return ' Received function ' + (value.name || '<anonymous>');
  if (typeof value === 'object') {
    if (value.constructor && value.constructor.name) return ' Received an instance of ' + value.constructor.name;
    return ' Received ' + String(value);
  }
  let shown = String(value);
  if (shown.length > 28) shown = shown.slice(0, 25) + '...';
  if (typeof value === 'string') shown = "'" + shown + "'";
  return ' Received type ' + typeof value + ' (' + shown + ')';
}
function invalidArgType(name, expected, value) {
  const e = new TypeError('The "' + name + '" argument must be of type ' + expected + '.' + describe(value));
  e.code = 'ERR_INVALID_ARG_TYPE';
  return e;
}
function coded(Ctor, message, code) {
  const e = new Ctor(message);
  if (code) e.code = code;
  return e;
}

// --- KeyObject: a key in canonical form (PKCS#8 or SPKI DER for asymmetric keys, the bytes for
// a secret), read and written by the natives.

const kInternal = Symbol('hookgate.keyObject');

class KeyObject {
  constructor(type, handle) {
    // Node's constructor takes a native handle hooks cannot make; refuse as Node refuses a
    // missing one.
    if (handle !== kInternal) {
      if (type !== 'secret' && type !== 'public' && type !== 'private') {
        throw coded(TypeError, "The argument 'type' is invalid." + describe(type).replace(/ Received type \w+ \((.*)\)$/, ' Received $1'), 'ERR_INVALID_ARG_VALUE');
      }
      throw invalidArgType('handle', 'object', handle);
    }
    this._type = type;
  }
  get type() { return this._type; }
  get asymmetricKeyType() { return this._type === 'secret' ? undefined : this._info.asymmetricKeyType; }
  get asymmetricKeyDetails() {
    if (this._type === 'secret') return undefined;
    const i = this._info;
    if (i.asymmetricKeyType === 'rsa') {
      return { modulusLength: i.modulusLength, publicExponent: typeof BigInt === 'function' ? BigInt('0x' + i.publicExponent) : parseInt(i.publicExponent, 16) };
    }
    if (i.asymmetricKeyType === 'ec') return { namedCurve: i.namedCurve };
    return {};
  }
  get symmetricKeySize() { return this._type === 'secret' ? this._bytes.length : undefined; }
  export(options) {
    if (this._type === 'secret') {
      if (options && options.format === 'jwk') return { kty: 'oct', k: this._bytes.toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_') };
      return Buffer.from(this._bytes);
    }
    if (!options || typeof options !== 'object') throw invalidArgType('options', 'object', options);
    const format = options.format === undefined ? 'pem' : options.format;
    const priv = this._type === 'private';
    if (format === 'jwk') return nc.keyExport(priv, this._info.der, 'jwk');
    if (format !== 'pem' && format !== 'der') {
      throw coded(TypeError, "The property 'options.format' is invalid. Received '" + format + "'", 'ERR_INVALID_ARG_VALUE');
    }
    if (priv && (options.cipher !== undefined || options.passphrase !== undefined)) {
      throw coded(Error, 'hookgate cannot export encrypted private keys', 'ERR_HOOKGATE_UNSUPPORTED');
    }
    const type = options.type;
    if (typeof type !== 'string') {
      throw coded(TypeError, "The property 'options.type' is invalid. Received " + (type === undefined ? 'undefined' : "'" + type + "'"), 'ERR_INVALID_ARG_VALUE');
    }
    const der = out(nc.keyExport(priv, this._info.der, type));
    if (format === 'der') return der;
    const label = type === 'pkcs8' ? 'PRIVATE KEY' : type === 'spki' ? 'PUBLIC KEY'
      : type === 'sec1' ? 'EC PRIVATE KEY' : priv ? 'RSA PRIVATE KEY' : 'RSA PUBLIC KEY';
    const b64 = der.toString('base64');
    let body = '';
    for (let i = 0; i < b64.length; i += 64) body += b64.slice(i, i + 64) + '\n';
    return '-----BEGIN ' + label + '-----\n' + body + '-----END ' + label + '-----\n';
  }
  equals(other) {
    if (!(other instanceof KeyObject)) throw invalidArgType('otherKeyObject', 'an instance of KeyObject', other);
    if (other._type !== this._type) return false;
    const a = this._type === 'secret' ? this._bytes : out(this._info.der);
    const b = other._type === 'secret' ? other._bytes : out(other._info.der);
    return a.length === b.length && a.equals(b);
  }
  static from(key) {
    throw invalidArgType('key', 'an instance of CryptoKey', key);
  }
  get [Symbol.toStringTag]() { return 'KeyObject'; }
}
class SecretKeyObject extends KeyObject {}
class PublicKeyObject extends KeyObject {}
class PrivateKeyObject extends KeyObject {}

function asymmetric(info) {
  const k = info.type === 'private' ? new PrivateKeyObject('private', kInternal) : new PublicKeyObject('public', kInternal);
  k._info = info;
  return k;
}

function secretKey(bytes) {
  const k = new SecretKeyObject('secret', kInternal);
  k._bytes = Buffer.from(bytes);
  return k;
}

const KEY_TYPES = 'string or an instance of ArrayBuffer, Buffer, TypedArray, DataView, KeyObject, or CryptoKey';

// The key a sign/verify/create*Key call names, as Node reads `key` (a KeyObject, PEM text or
// Buffer, or `{ key, format, type, encoding, passphrase }`). `want`: 'private', 'public', 'any'.
function readKey(input, want, argName, types) {
  let options = {};
  let data = input;
  if (input && typeof input === 'object' && !(input instanceof KeyObject) && !ArrayBuffer.isView(input) && !(input instanceof ArrayBuffer)) {
    options = input;
    data = input.key;
  }
  if (data instanceof KeyObject) {
    if (data._type === 'secret') {
      throw coded(TypeError, 'Invalid key object type secret, expected ' + (want === 'private' ? 'private.' : 'public or private.'), 'ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE');
    }
    if (want === 'public' && data._type === 'private') return asymmetric(nc.keyPublic(true, data._info.der));
    if (want === 'private' && data._type !== 'private') {
      throw coded(TypeError, 'Invalid key object type public, expected private.', 'ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE');
    }
    return data;
  }
  const format = options.format === undefined ? 'pem' : options.format;
  if (format === 'jwk') {
    if (!data || typeof data !== 'object') throw invalidArgType('key.key', 'object', data);
    return asymmetric(nc.keyFromJwk(data, want));
  }
  if (typeof data !== 'string' && !ArrayBuffer.isView(data) && !(data instanceof ArrayBuffer)) {
    throw invalidArgType(argName || 'key', types || KEY_TYPES, data);
  }
  // A passphrase with a key that is not encrypted is ignored, as in Node; an encrypted key is
  // refused by the natives.
  const bytes = toBuffer(data, options.encoding, argName || 'key');
  if (format === 'der') {
    const type = options.type;
    if (typeof type !== 'string') {
      throw coded(TypeError, "The property 'options.type' is invalid. Received " + (type === undefined ? 'undefined' : "'" + type + "'"), 'ERR_INVALID_ARG_VALUE');
    }
    return asymmetric(nc.keyParse(bytes, false, type, want));
  }
  if (format !== 'pem') {
    throw coded(TypeError, "The property 'key.format' is invalid. Received '" + format + "'", 'ERR_INVALID_ARG_VALUE');
  }
  return asymmetric(nc.keyParse(bytes, true, '', want));
}

function createPrivateKey(key) {
  return readKey(key, 'private', 'key', 'string or an instance of ArrayBuffer, Buffer, TypedArray, or DataView');
}
function createPublicKey(key) { return readKey(key, 'public'); }
function createSecretKey(key, encoding) {
  if (key instanceof KeyObject) throw invalidArgType('key', 'string or an instance of ArrayBuffer, Buffer, TypedArray, or DataView', key);
  if (typeof key !== 'string' && !ArrayBuffer.isView(key) && !(key instanceof ArrayBuffer)) {
    throw invalidArgType('key', 'string or an instance of ArrayBuffer, Buffer, TypedArray, or DataView', key);
  }
  return secretKey(toBuffer(key, encoding, 'key'));
}

// --- Signatures.

function signOptions(key) {
  const o = key && typeof key === 'object' && !(key instanceof KeyObject) && !ArrayBuffer.isView(key) ? key : {};
  if (o.dsaEncoding !== undefined && o.dsaEncoding !== 'der' && o.dsaEncoding !== 'ieee-p1363') {
    throw coded(TypeError, "The property 'options.dsaEncoding' is invalid. Received '" + o.dsaEncoding + "'", 'ERR_INVALID_ARG_VALUE');
  }
  if (o.padding !== undefined && o.padding !== 1 && o.padding !== 6) {
    throw coded(Error, 'hookgate signs with RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING only', 'ERR_HOOKGATE_UNSUPPORTED');
  }
  return { padding: o.padding, saltLength: o.saltLength, dsaEncoding: o.dsaEncoding };
}
function doSign(algorithm, data, key) {
  const k = readKey(key, 'private');
  return out(nc.sign(algorithm == null ? undefined : String(algorithm), k._info.der, data, signOptions(key)));
}
function doVerify(algorithm, data, key, signature) {
  const k = readKey(key, 'any');
  return nc.verify(algorithm == null ? undefined : String(algorithm), k._type === 'private', k._info.der, data, signature, signOptions(key));
}

function checkSignAlgorithm(algorithm) {
  if (typeof algorithm !== 'string') throw invalidArgType('algorithm', 'string', algorithm);
  const name = algorithm.toLowerCase().replace(/^rsa-/, '').replace('sha-', 'sha');
  if (!/^(sha1|sha224|sha256|sha384|sha512)$/.test(name)) throw coded(TypeError, 'Invalid digest', 'ERR_CRYPTO_INVALID_DIGEST');
  return algorithm;
}

class Sign extends Writable {
  constructor(algorithm) {
    super();
    this._alg = checkSignAlgorithm(algorithm);
    this._chunks = [];
  }
  update(data, encoding) { this._chunks.push(toBuffer(data, encoding, 'data')); return this; }
  _write(chunk, encoding, cb) { this.update(chunk, encoding); cb(); }
  sign(privateKey, encoding) {
    if (privateKey == null) throw coded(Error, 'No key provided to sign', 'ERR_CRYPTO_SIGN_KEY_REQUIRED');
    return out(doSign(this._alg, Buffer.concat(this._chunks), privateKey), encoding);
  }
}
class Verify extends Writable {
  constructor(algorithm) {
    super();
    this._alg = checkSignAlgorithm(algorithm);
    this._chunks = [];
  }
  update(data, encoding) { this._chunks.push(toBuffer(data, encoding, 'data')); return this; }
  _write(chunk, encoding, cb) { this.update(chunk, encoding); cb(); }
  verify(key, signature, encoding) {
    return doVerify(this._alg, Buffer.concat(this._chunks), key, toBuffer(signature, encoding, 'signature'));
  }
}
function createSign(algorithm, options) { return new Sign(algorithm, options); }
function createVerify(algorithm, options) { return new Verify(algorithm, options); }

// crypto.sign(algorithm, data, key[, callback]): the callback form answers on a later tick, as
// Node's thread pool does.
function sign(algorithm, data, key, callback) {
  const bytes = toBuffer(data, undefined, 'data');
  if (typeof callback === 'function') {
    let result, error = null;
    try { result = doSign(algorithm, bytes, key); } catch (e) { error = e; }
    setTimeout(() => (error ? callback(error) : callback(null, result)), 0);
    return;
  }
  return doSign(algorithm, bytes, key);
}
function verify(algorithm, data, key, signature, callback) {
  const bytes = toBuffer(data, undefined, 'data');
  const sig = toBuffer(signature, undefined, 'signature');
  if (typeof callback === 'function') {
    let result, error = null;
    try { result = doVerify(algorithm, bytes, key, sig); } catch (e) { error = e; }
    setTimeout(() => (error ? callback(error) : callback(null, result)), 0);
    return;
  }
  return doVerify(algorithm, bytes, key, sig);
}

// --- Ciphers: AES in CBC, CTR, ECB and GCM. The natives do whole-block AES; the stream state
// is here.

const CIPHERS = {};
for (const bits of [128, 192, 256]) {
  for (const mode of ['cbc', 'ctr', 'ecb', 'gcm']) CIPHERS['aes-' + bits + '-' + mode] = { keyLen: bits / 8, mode };
  CIPHERS['id-aes' + bits + '-gcm'] = { keyLen: bits / 8, mode: 'gcm' };
}
CIPHERS.aes128 = CIPHERS['aes-128-cbc'];
CIPHERS.aes192 = CIPHERS['aes-192-cbc'];
CIPHERS.aes256 = CIPHERS['aes-256-cbc'];

function badDecrypt() { return coded(Error, 'error:1C800064:Provider routines::bad decrypt', 'ERR_OSSL_BAD_DECRYPT'); }
function wrongFinalBlock() { return coded(Error, 'error:1C80006B:Provider routines::wrong final block length', 'ERR_OSSL_WRONG_FINAL_BLOCK_LENGTH'); }
function authFailed() { return new Error('Unsupported state or unable to authenticate data'); }

// The 16-byte counter block `base + n` (big-endian).
function counterPlus(base, n) {
  const c = Buffer.from(base);
  let carry = n;
  for (let i = 15; i >= 0 && carry > 0; i--) {
    const v = c[i] + (carry % 256);
    c[i] = v & 255;
    carry = Math.floor(carry / 256) + (v > 255 ? 1 : 0);
  }
  return c;
}

class Cipheriv extends Transform {
  constructor(encrypt, algorithm, key, iv, options) {
    super(options);
    if (typeof algorithm !== 'string') throw invalidArgType('cipher', 'string', algorithm);
    const spec = CIPHERS[algorithm.toLowerCase()];
    if (!spec) throw coded(Error, 'Unknown cipher', 'ERR_CRYPTO_UNKNOWN_CIPHER');
    if (key instanceof KeyObject) {
      if (key._type !== 'secret') throw coded(TypeError, 'Invalid key object type ' + key._type + ', expected secret.', 'ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE');
      key = key._bytes;
    } else {
      if (typeof key !== 'string' && !ArrayBuffer.isView(key) && !(key instanceof ArrayBuffer)) throw invalidArgType('key', 'string or an instance of ArrayBuffer, Buffer, TypedArray, DataView, KeyObject, or CryptoKey', key);
      key = toBuffer(key, 'utf8', 'key');
    }
    if (key.length !== spec.keyLen) throw coded(RangeError, 'Invalid key length', 'ERR_CRYPTO_INVALID_KEYLEN');
    if (spec.mode === 'ecb') {
      if (iv != null && toBuffer(iv, 'utf8', 'iv').length !== 0) throw coded(TypeError, 'Invalid initialization vector', 'ERR_CRYPTO_INVALID_IV');
      iv = Buffer.alloc(16);
    } else {
      if (iv === null || iv === undefined) throw invalidArgType('iv', 'string or an instance of ArrayBuffer, Buffer, TypedArray, or DataView', iv);
      iv = toBuffer(iv, 'utf8', 'iv');
      if (spec.mode === 'gcm') {
        if (iv.length === 0) throw coded(TypeError, 'Invalid initialization vector', 'ERR_CRYPTO_INVALID_IV');
        if (iv.length !== 12) throw coded(Error, 'hookgate supports 12-byte AES-GCM IVs only (got ' + iv.length + ')', 'ERR_HOOKGATE_UNSUPPORTED');
      } else if (iv.length !== 16) {
        throw coded(TypeError, 'Invalid initialization vector', 'ERR_CRYPTO_INVALID_IV');
      }
    }
    const tagLen = options && options.authTagLength;
    if (tagLen !== undefined && spec.mode === 'gcm' && (![4, 8, 12, 13, 14, 15, 16].includes(tagLen))) {
      throw coded(TypeError, 'Invalid authentication tag length: ' + tagLen, 'ERR_CRYPTO_INVALID_AUTH_TAG');
    }
    this._encrypt = encrypt;
    this._mode = spec.mode;
    this._key = Buffer.from(key);
    this._iv = Buffer.from(iv);
    this._padding = true;
    this._pending = Buffer.alloc(0);
    this._pos = 0;
    this._finished = false;
    this._decoder = null;
    this._tagLen = tagLen || 16;
    if (spec.mode === 'gcm') {
      this._aad = Buffer.alloc(0);
      this._plain = [];
      this._ctr0 = Buffer.concat([iv, Buffer.from([0, 0, 0, 2])]);
    } else if (spec.mode === 'ctr') {
      this._ctr0 = Buffer.from(iv);
    }
  }
  _streamAt(data) {
    const off = this._pos % 16;
    const input = off ? Buffer.concat([Buffer.alloc(off), data]) : data;
    const res = out(nc.aes('ctr', true, this._key, counterPlus(this._ctr0, Math.floor(this._pos / 16)), input));
    this._pos += data.length;
    return off ? res.subarray(off) : res;
  }
  _blocks(data) {
    const buf = this._pending.length ? Buffer.concat([this._pending, data]) : data;
    let n = buf.length - (buf.length % 16);
    if (!this._encrypt && this._padding && n === buf.length && n > 0) n -= 16;
    this._pending = Buffer.from(buf.subarray(n));
    if (n === 0) return Buffer.alloc(0);
    const chunk = buf.subarray(0, n);
    const res = out(nc.aes(this._mode, this._encrypt, this._key, this._iv, chunk));
    if (this._mode === 'cbc') this._iv = Buffer.from((this._encrypt ? res : chunk).subarray(n - 16, n));
    return res;
  }
  _output(bytes, encoding, last) {
    if (encoding && encoding !== 'buffer') {
      if (!this._decoder || this._decoderEncoding !== encoding) {
        this._decoder = new StringDecoder(encoding);
        this._decoderEncoding = encoding;
      }
      return last ? this._decoder.end(bytes) : this._decoder.write(bytes);
    }
    return bytes;
  }
  update(data, inputEncoding, outputEncoding) {
    if (this._finished) throw new Error('Trying to add data in unsupported state');
    if (typeof data !== 'string' && !ArrayBuffer.isView(data)) throw invalidArgType('data', 'string or an instance of Buffer, TypedArray, or DataView', data);
    const bytes = toBuffer(data, inputEncoding, 'data');
    let res;
    if (this._mode === 'gcm') {
      res = this._streamAt(bytes);
      this._plain.push(this._encrypt ? Buffer.from(bytes) : res);
    } else if (this._mode === 'ctr') {
      res = this._streamAt(bytes);
    } else {
      res = this._blocks(bytes);
    }
    return this._output(res, outputEncoding, false);
  }
  final(outputEncoding) {
    if (this._finished) throw coded(Error, 'Invalid state', 'ERR_CRYPTO_INVALID_STATE');
    this._finished = true;
    let res = Buffer.alloc(0);
    if (this._mode === 'gcm') {
      const tag = out(nc.gcmTag(this._key, this._iv, this._aad, Buffer.concat(this._plain)));
      if (this._encrypt) {
        this._tag = Buffer.from(tag.subarray(0, this._tagLen));
      } else if (!this._expected || !timingSafeEqual(tag.subarray(0, this._expected.length), this._expected)) {
        throw authFailed();
      }
    } else if (this._mode === 'cbc' || this._mode === 'ecb') {
      const p = this._pending;
      if (this._encrypt) {
        if (this._padding) {
          const n = 16 - (p.length % 16);
          res = this._blocks(Buffer.alloc(n, n));
        } else if (p.length) {
          throw wrongFinalBlock();
        }
      } else if (this._padding) {
        if (p.length !== 16) throw wrongFinalBlock();
        this._pending = Buffer.alloc(0);
        const saved = this._padding;
        this._padding = false;
        const block = this._blocks(p);
        this._padding = saved;
        const n = block[15];
        if (n < 1 || n > 16) throw badDecrypt();
        for (let i = 16 - n; i < 16; i++) if (block[i] !== n) throw badDecrypt();
        res = Buffer.from(block.subarray(0, 16 - n));
      } else if (p.length) {
        throw wrongFinalBlock();
      }
    }
    return this._output(res, outputEncoding, true);
  }
  setAutoPadding(ap) { this._padding = ap === undefined ? true : !!ap; return this; }
  setAAD(buffer, options) {
    if (this._mode !== 'gcm') throw coded(Error, 'Unsupported state', 'ERR_CRYPTO_INVALID_STATE');
    this._aad = Buffer.concat([this._aad, toBuffer(buffer, undefined, 'buffer')]);
    return this;
  }
  getAuthTag() {
    if (!this._encrypt || this._mode !== 'gcm' || !this._tag) {
      throw coded(Error, 'Invalid state for operation getAuthTag', 'ERR_CRYPTO_INVALID_STATE');
    }
    return Buffer.from(this._tag);
  }
  setAuthTag(tag, encoding) {
    if (this._encrypt || this._mode !== 'gcm' || this._finished) {
      throw coded(Error, 'Invalid state for operation setAuthTag', 'ERR_CRYPTO_INVALID_STATE');
    }
    const t = toBuffer(tag, encoding, 'buffer');
    if (![4, 8, 12, 13, 14, 15, 16].includes(t.length)) {
      throw coded(TypeError, 'Invalid authentication tag length: ' + t.length, 'ERR_CRYPTO_INVALID_AUTH_TAG');
    }
    this._expected = Buffer.from(t);
    return this;
  }
  _transform(chunk, encoding, cb) {
    try { this.push(this.update(chunk, encoding)); cb(); } catch (e) { cb(e); }
  }
  _flush(cb) {
    try { this.push(this.final()); cb(); } catch (e) { cb(e); }
  }
}
function createCipheriv(algorithm, key, iv, options) { return new Cipheriv(true, algorithm, key, iv, options); }
function createDecipheriv(algorithm, key, iv, options) { return new Cipheriv(false, algorithm, key, iv, options); }

// --- PBKDF2.

const PBKDF2_MAX_ITERATIONS = 10000000;
const PBKDF2_MAX_KEYLEN = 1048576;
function pbkdf2Args(password, salt, iterations, keylen, digest) {
  password = toBuffer(password, 'utf8', 'password');
  salt = toBuffer(salt, 'utf8', 'salt');
  if (typeof iterations !== 'number') throw invalidArgType('iterations', 'number', iterations);
  if (!(iterations >= 1 && iterations <= 2147483647) || iterations % 1 !== 0) {
    throw coded(RangeError, 'The value of "iterations" is out of range. It must be >= 1 && <= 2147483647. Received ' + iterations, 'ERR_OUT_OF_RANGE');
  }
  if (typeof keylen !== 'number') throw invalidArgType('keylen', 'number', keylen);
  if (!(keylen >= 0 && keylen <= 2147483647) || keylen % 1 !== 0) {
    throw coded(RangeError, 'The value of "keylen" is out of range. It must be >= 0 && <= 2147483647. Received ' + keylen, 'ERR_OUT_OF_RANGE');
  }
  if (typeof digest !== 'string') throw invalidArgType('digest', 'string', digest);
  // PBKDF2 runs on the hook's worker and cannot be interrupted: bounds that real uses stay far
  // below (OWASP asks for 600,000 iterations of SHA-256) keep one call from stalling a worker.
  if (iterations > PBKDF2_MAX_ITERATIONS || keylen > PBKDF2_MAX_KEYLEN) {
    throw coded(RangeError, 'hookgate runs pbkdf2 with at most ' + PBKDF2_MAX_ITERATIONS + ' iterations and ' + PBKDF2_MAX_KEYLEN + ' bytes of output', 'ERR_HOOKGATE_UNSUPPORTED');
  }
  return [digest, password, salt, iterations, keylen];
}
function pbkdf2Sync(password, salt, iterations, keylen, digest) {
  return out(nc.pbkdf2(...pbkdf2Args(password, salt, iterations, keylen, digest)));
}
function pbkdf2(password, salt, iterations, keylen, digest, callback) {
  if (typeof digest === 'function') { callback = digest; digest = undefined; }
  if (typeof callback !== 'function') throw invalidArgType('callback', 'function', callback);
  const args = pbkdf2Args(password, salt, iterations, keylen, digest);
  let result, error = null;
  try { result = out(nc.pbkdf2(...args)); } catch (e) { error = e; }
  setTimeout(() => (error ? callback(error) : callback(null, result)), 0);
}

const constants = {
  RSA_PKCS1_PADDING: 1, RSA_NO_PADDING: 3, RSA_PKCS1_OAEP_PADDING: 4, RSA_PKCS1_PSS_PADDING: 6,
  RSA_PSS_SALTLEN_DIGEST: -1, RSA_PSS_SALTLEN_MAX_SIGN: -2, RSA_PSS_SALTLEN_AUTO: -2,
  POINT_CONVERSION_COMPRESSED: 2, POINT_CONVERSION_UNCOMPRESSED: 4, POINT_CONVERSION_HYBRID: 6,
};

module.exports = stub('crypto', 'hookgate offers hashes, HMAC, random values, key objects, signatures, AES and PBKDF2, not key generation, key agreement, RSA encryption or scrypt',
  ['createECDH', 'createDiffieHellman', 'createDiffieHellmanGroup', 'getDiffieHellman', 'diffieHellman',
    'scrypt', 'scryptSync', 'hkdf', 'hkdfSync', 'publicEncrypt', 'privateDecrypt', 'privateEncrypt',
    'publicDecrypt', 'generateKeyPair', 'generateKeyPairSync', 'generateKey', 'generateKeySync',
    'createCipher', 'createDecipher', 'X509Certificate'],
  {
    createHash, createHmac, Hash, Hmac: Hash,
    randomBytes, pseudoRandomBytes: randomBytes, randomFillSync, randomFill, randomInt, randomUUID,
    timingSafeEqual,
    KeyObject, createPrivateKey, createPublicKey, createSecretKey,
    Sign, Verify, createSign, createVerify, sign, verify,
    Cipheriv, Decipheriv: Cipheriv, createCipheriv, createDecipheriv,
    pbkdf2, pbkdf2Sync,
    getHashes() { return HASHES.slice(); },
    getCiphers() { return Object.keys(CIPHERS).sort(); },
    getCurves() { return ['prime256v1', 'secp256k1', 'secp384r1', 'secp521r1']; },
    constants,
  });
