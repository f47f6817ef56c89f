// string_decoder across split multi-byte characters, punycode, assert (deep equality, throws,
// rejects, strict), timers and timers/promises.
const { StringDecoder } = require('string_decoder');
const punycode = require('punycode');
const assert = require('assert');
const timers = require('timers');
const { setTimeout: sleep } = require('timers/promises');
function code(fn) { try { fn(); return 'no throw'; } catch (e) { return [e.name, e.code, e.message.split('\n')[0]]; } }
module.exports = function (cb) {
  const d = new StringDecoder('utf8');
  const euro = Buffer.from('€uro');
  const decoded = [d.write(euro.slice(0, 1)), d.write(euro.slice(1, 2)), d.write(euro.slice(2)), d.end()];
  const b64 = new StringDecoder('base64');
  const asserts = [
    code(() => assert.deepEqual({ a: [1, '2'] }, { a: ['1', 2] })),
    code(() => assert.deepStrictEqual({ a: [1, '2'] }, { a: ['1', 2] })),
    code(() => assert.deepStrictEqual(new Map([[1, { x: 1 }]]), new Map([[1, { x: 1 }]]))),
    code(() => assert.deepStrictEqual(new Set([1, 2]), new Set([2, 1]))),
    code(() => assert.deepStrictEqual([1, 2], [1, 2, 3])),
    code(() => assert.deepStrictEqual(new Date(0), new Date(0))),
    code(() => assert.deepStrictEqual(Object.create(null), {})),
    code(() => assert.strictEqual(1, 2)),
    code(() => assert.notStrictEqual(1, 1)),
    code(() => assert.equal(1, '1')),
    code(() => assert.ok(0)),
    code(() => assert(false, 'custom message')),
    code(() => assert.throws(() => { throw new TypeError('bad thing'); }, TypeError)),
    code(() => assert.throws(() => { throw new TypeError('bad thing'); }, /bad/)),
    code(() => assert.throws(() => { throw new TypeError('bad thing'); }, { name: 'TypeError', message: 'bad thing' })),
    code(() => assert.throws(() => {})),
    code(() => assert.doesNotThrow(() => {})),
    code(() => assert.match('abc', /b/)),
    code(() => assert.fail('boom')),
    code(() => assert.strict.equal(1, '1')),
    code(() => require('assert/strict').deepEqual([1], ['1'])),
    [typeof assert.AssertionError, new assert.AssertionError({ message: 'm' }).code],
  ];
  const order = [];
  timers.setTimeout(() => order.push('timers.setTimeout'), 0);
  assert.rejects(Promise.reject(new Error('async fail')), /async fail/)
    .then(() => assert.rejects(Promise.resolve(1)).catch((e) => e.message))
    .then((notRejected) => sleep(2, 'slept').then((v) => {
      order.push(v);
      cb(null, {
        decoded, base64: [b64.write(Buffer.from('ab')), b64.end()],
        punycode: [punycode.encode('mañana'), punycode.decode('maana-pta'), punycode.toASCII('mañana.com'), punycode.toUnicode('xn--maana-pta.com')],
        asserts, notRejected, order,
        timers: [timers.setTimeout === setTimeout, timers.clearInterval === clearInterval, typeof timers.setImmediate],
      });
    }));
};
