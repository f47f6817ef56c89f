// hookgate's `util`: browserify's util@0.12 for the predicates, types, callbackify, debuglog and
// deprecate, with what Node 20 does differently put back: inspect/format (./inspect.js),
// promisify honouring `util.promisify.custom` (Node's registered symbol, which packages also
// spell `Symbol.for('nodejs.util.promisify.custom')`), Node's `inherits` (keeps methods already
// on the prototype), Buffer.isBuffer, and TextEncoder/TextDecoder from the globals at call time.
// Must not touch: TextEncoder/TextDecoder themselves (host globals).
'use strict';
const base = require('util/util.js');
const { inspect, format, formatWithOptions } = require('./inspect.js');

const util = Object.assign({}, base);
util.inspect = inspect;
util.format = format;
util.formatWithOptions = formatWithOptions;

const kCustomPromisify = Symbol.for('nodejs.util.promisify.custom');
function promisify(original) {
  if (typeof original !== 'function') {
    const e = new TypeError('The "original" argument must be of type function');
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
  if (original[kCustomPromisify]) {
    const fn = original[kCustomPromisify];
    if (typeof fn !== 'function') {
      const e = new TypeError('The "util.promisify.custom" argument must be of type function');
      e.code = 'ERR_INVALID_ARG_TYPE';
      throw e;
    }
    return Object.defineProperty(fn, kCustomPromisify, { value: fn, enumerable: false, writable: false, configurable: true });
  }
  function fn(...args) {
    return new Promise((resolve, reject) => {
      original.call(this, ...args, (err, ...values) => {
        if (err) reject(err);
        else resolve(values[0]);
      });
    });
  }
  Object.setPrototypeOf(fn, Object.getPrototypeOf(original));
  Object.defineProperty(fn, kCustomPromisify, { value: fn, enumerable: false, writable: false, configurable: true });
  return Object.defineProperties(fn, Object.getOwnPropertyDescriptors(original));
}
promisify.custom = kCustomPromisify;
util.promisify = promisify;

util.inherits = function inherits(ctor, superCtor) {
  if (typeof ctor !== 'function' || typeof superCtor !== 'function' || superCtor.prototype === undefined) {
    const e = new TypeError('The "ctor" and "superCtor" arguments must be functions with a prototype');
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
  Object.defineProperty(ctor, 'super_', { value: superCtor, writable: true, configurable: true });
  Object.setPrototypeOf(ctor.prototype, superCtor.prototype);
};

util.isBuffer = (v) => require('buffer').Buffer.isBuffer(v);
util.isError = (e) => e instanceof Error || Object.prototype.toString.call(e) === '[object Error]';
util.debug = util.debuglog;
util.isDeepStrictEqual = function isDeepStrictEqual(a, b) {
  try {
    require('assert').deepStrictEqual(a, b);
    return true;
  } catch (e) {
    if (e && e.code === 'ERR_ASSERTION') return false;
    throw e;
  }
};
util.stripVTControlCharacters = (s) => String(s).replace(/[\u001B\u009B][[\]()#;?]*(?:(?:(?:(?:;[-a-zA-Z\d/#&.:=?%@~_]+)*|[a-zA-Z\d]+(?:;[-a-zA-Z\d/#&.:=?%@~_]*)*)?\u0007)|(?:(?:\d{1,4}(?:;\d{0,4})*)?[\dA-PR-TZcf-ntqry=><~]))/g, '');
util.toUSVString = (s) => String(s).toWellFormed ? String(s).toWellFormed() : String(s).replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
Object.defineProperty(util, 'TextEncoder', { enumerable: true, get: () => globalThis.TextEncoder });
Object.defineProperty(util, 'TextDecoder', { enumerable: true, get: () => globalThis.TextDecoder });
module.exports = util;
