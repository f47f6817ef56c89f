// util: format, inspect of nested values, promisify (with promisify.custom), inherits, types,
// deprecate, isDeepStrictEqual.
const util = require('util');
function Base() { this.base = true; }
Base.prototype.hello = function () { return 'hello from ' + this.name; };
function Child(name) { Base.call(this); this.name = name; }
Child.prototype.own = function () { return 'own'; };
util.inherits(Child, Base);
class Point { constructor() { this.x = 1; this.y = 2; } }
module.exports = function (cb) {
  const circular = { name: 'c' };
  circular.self = circular;
  const custom = { [util.inspect.custom]() { return 'CUSTOM!'; } };
  const inspected = [
    util.inspect({ a: 1, b: 'two', c: [1, 2, 3], d: { e: { f: { g: 1 } } } }),
    util.inspect({ a: { b: { c: { d: {} } } } }, { depth: 0 }),
    util.inspect([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26]),
    util.inspect({ longlonglongkey1: 'a string value here', longlonglongkey2: 'another string value', k3: [1, 2] }),
    util.inspect(circular),
    util.inspect(new Map([['k', { v: 1 }]])),
    util.inspect(new Set([1, 'two'])),
    util.inspect(new Point()),
    util.inspect(Object.create(null)),
    util.inspect([undefined, null, -0, 10n, Symbol('s'), 'it\'s', function named() {}, () => {}, class K {}]),
    util.inspect(new Date(0)),
    util.inspect(/x+/gi),
    util.inspect(custom),
    util.inspect({ 'a-b': 1, [Symbol('k')]: 2, get g() { return 1; } }),
    util.inspect('str'),
    util.inspect(new Array(3)),
    util.inspect([[1, [2, [3, [4]]]]]),
    util.inspect({ arr: new Array(120).fill(0) }).split('\n').length,
  ];
  const formatted = [
    util.format('%s %d %j', 'a', 42, { x: [1] }),
    util.format('%s:%s', 'only'),
    util.format('%d%% of %i', '12.5', 7.9, 'extra', { y: 1 }),
    util.format('%o', [1]),
    util.format('%s', { a: { b: { c: 1 } } }),
    util.format('%s', [1, 2]),
    util.format('%s', null, undefined, 3n),
    util.format(1, 'two', { three: 3 }),
    util.format('%O', { a: 1 }),
    util.format('%f', '1.5x'),
  ];
  function legacy(a, b, done) { setTimeout(() => done(null, a + b), 1); }
  function failing(done) { done(new Error('nope')); }
  function withCustom(done) { done(null, 'callback'); }
  withCustom[util.promisify.custom] = () => Promise.resolve('custom');
  const c = new Child('kid');
  const deprecated = util.deprecate(() => 'still works', 'old() is deprecated', 'DEP_X');
  util.promisify(legacy)(2, 3).then((sum) =>
    util.promisify(failing)().catch((e) =>
      util.promisify(withCustom)().then((viaCustom) => cb(null, {
        inspected, formatted, sum, failed: e.message, viaCustom,
        customSymbol: util.promisify.custom === Symbol.for('nodejs.util.promisify.custom'),
        inspectSymbol: util.inspect.custom === Symbol.for('nodejs.util.inspect.custom'),
        inherits: [c.hello(), c.own(), c instanceof Base, Child.super_ === Base],
        types: [util.types.isDate(new Date()), util.types.isRegExp(/x/), util.types.isPromise(Promise.resolve()),
          util.types.isUint8Array(Buffer.alloc(1)), util.isArray([]), util.isBuffer(Buffer.alloc(1))],
        deprecated: deprecated(),
        deepEqual: [util.isDeepStrictEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }), util.isDeepStrictEqual({ a: 1 }, { a: '1' })],
      }))));
};
