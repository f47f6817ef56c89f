// `_hookgate/unsupported`: how hookgate's stand-ins for Node modules that need the machine (fs,
// net, child_process, ...) fail. Requiring such a module works, because packages require them at
// top level for code paths a hook never takes; calling one of its functions throws an Error with
// code ERR_HOOKGATE_UNSUPPORTED naming the function and the reason.
// Owns: that error and the stub shape. Must not touch: any real capability (there is none here).
// The name starts with `_` so no npm package can have it.
'use strict';

function unsupportedError(what, why) {
  const e = new Error(`${what} is not available to hooks: ${why}`);
  e.code = 'ERR_HOOKGATE_UNSUPPORTED';
  return e;
}

// A function (also usable as a class to extend) that throws when called or constructed.
function unsupported(what, why) {
  const name = what.slice(what.lastIndexOf('.') + 1);
  const f = { [name]: function () { throw unsupportedError(what, why); } }[name];
  return f;
}

// `module` with every name in `names` as a throwing function, `asyncNames` under `promises` as
// functions returning a rejected promise (what `await fs.promises.x()` callers catch), plus
// `extra` (the constants and predicates that do work).
function stub(module, why, names, extra, asyncNames) {
  const out = {};
  for (const n of names) out[n] = unsupported(`${module}.${n}`, why);
  if (asyncNames) {
    out.promises = {};
    for (const n of asyncNames) {
      out.promises[n] = { [n]: () => Promise.reject(unsupportedError(`${module}.promises.${n}`, why)) }[n];
    }
  }
  return Object.assign(out, extra || {});
}

module.exports = { stub, unsupported, unsupportedError };
