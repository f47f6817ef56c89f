// hookgate's `assert`: browserify's assert@2, a port of Node's (deep equality, throws, rejects,
// strict mode, AssertionError with Node's messages), on the shared `util`. Node words a failed
// `assert(value)` without a message from the call's source text, which assert@2 cannot read (it
// says "0 == true"); the wrappers below give Node's first line and the value instead.
'use strict';
const base = require('assert/build/assert.js');
const { inspect } = require('util');

function wrapOk(orig) {
  const ok = function ok(...args) {
    if (args.length > 0 && !args[0] && args[1] === undefined) {
      const err = new base.AssertionError({
        actual: args[0], expected: true, operator: '==', stackStartFn: ok,
        message: `The expression evaluated to a falsy value:\n\n  assert.ok(${inspect(args[0])})\n`,
      });
      err.generatedMessage = true;
      throw err;
    }
    return orig.apply(this, args);
  };
  return Object.assign(ok, orig);
}
const assert = wrapOk(base);
assert.ok = assert;
const strict = wrapOk(base.strict);
strict.ok = strict;
strict.strict = strict;
assert.strict = strict;
module.exports = assert;
