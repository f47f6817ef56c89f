// A small `assert`, enough for hooks that validate their input. Node's full module comes with the
// Node-compatibility work.
'use strict';
class AssertionError extends Error {
  constructor(message) { super(message); this.name = 'AssertionError'; this.code = 'ERR_ASSERTION'; }
}
function fail(message, dflt) { throw message instanceof Error ? message : new AssertionError(message || dflt); }
function assert(value, message) { if (!value) fail(message, 'The expression evaluated to a falsy value'); }
function deepEqual(a, b) { return JSON.stringify(a) === JSON.stringify(b); }
assert.ok = assert;
assert.AssertionError = AssertionError;
assert.fail = function (message) { fail(message, 'Failed'); };
assert.equal = function (a, b, m) { if (a != b) fail(m, a + ' == ' + b); };
assert.notEqual = function (a, b, m) { if (a == b) fail(m, a + ' != ' + b); };
assert.strictEqual = function (a, b, m) { if (!Object.is(a, b)) fail(m, 'Expected values to be strictly equal'); };
assert.notStrictEqual = function (a, b, m) { if (Object.is(a, b)) fail(m, 'Expected "actual" to be strictly unequal to "expected"'); };
assert.deepEqual = assert.deepStrictEqual = function (a, b, m) { if (!deepEqual(a, b)) fail(m, 'Expected values to be deeply equal'); };
assert.strict = assert;
module.exports = assert;
