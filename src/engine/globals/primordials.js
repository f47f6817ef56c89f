// Private copies of the built-ins hookgate's own JS (the other parts) relies on, taken when a
// context is made, before any hook code runs: a hook that replaces `Function.prototype.apply`,
// `Array.prototype.push`, `Promise.prototype.then`, `JSON.stringify`, `Map.prototype.get`...
// changes what its own code sees, never how hookgate calls it, runs its timers or delivers its
// requests (Node's lib does the same with its "primordials"). The glue calls functions through
// `apply` (Reflect.apply, copied), never through a method looked up on a value the hook could
// have touched. Owns: `native.P`. Must not touch: the globals the hook sees.
(function (native, g) {
  'use strict';
  const apply = Reflect.apply;
  const defineProperty = Object.defineProperty;
  const freeze = Object.freeze;
  // A Map whose methods are its own prototype's, copied from Map.prototype now: a hook
  // replacing Map.prototype.get later does not reach it (nor can the hook reach its prototype).
  class SafeMap extends Map {}
  const names = ['get', 'set', 'has', 'delete', 'clear', 'forEach'];
  for (let i = 0; i < names.length; i++) {
    defineProperty(SafeMap.prototype, names[i], { value: Map.prototype[names[i]] });
  }
  defineProperty(SafeMap.prototype, 'size', { get: Object.getOwnPropertyDescriptor(Map.prototype, 'size').get });
  freeze(SafeMap.prototype);
  const NativePromise = Promise;
  const promiseThen = Promise.prototype.then;
  const promiseResolve = Promise.resolve;
  const P = freeze({
    apply,
    defineProperty,
    create: Object.create,
    SafeMap,
    stringify: JSON.stringify,
    parse: JSON.parse,
    String,
    Number,
    Error,
    TypeError,
    slice: Array.prototype.slice,
    startsWith: String.prototype.startsWith,
    // `then(p, ok, err)` on a native promise, with the intrinsic then; throws if `p` is not one.
    then(p, ok, err) { return apply(promiseThen, p, [ok, err]); },
    // A resolved native promise (for queueing a microtask).
    resolved() { return apply(promiseResolve, NativePromise, []); },
    // Append `v` to array `a` as an own element (no push, no setters up the prototype chain).
    append(a, v) { defineProperty(a, a.length, { value: v, writable: true, enumerable: true, configurable: true }); },
  });
  native.P = P;
  return {};
})
