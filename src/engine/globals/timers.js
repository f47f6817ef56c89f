// setTimeout/setInterval/setImmediate and their clear* functions. The host owns the clock: it
// fires due timers between jobs of the hook's event loop, until the loop is empty or the hook's
// deadline passes. `unref()` timers do not keep the loop alive, as in Node.
(function (native, g) {
  'use strict';
  const timers = new Map();
  let nextId = 1;
  class Timeout {
    constructor(id) { this._id = id; }
    ref() { native.timerRef(this._id, true); return this; }
    unref() { native.timerRef(this._id, false); return this; }
    hasRef() { return true; }
    refresh() { const t = timers.get(this._id); if (t) native.timerAdd(this._id, t.delay); return this; }
    [Symbol.toPrimitive]() { return this._id; }
  }
  function add(fn, delay, args, repeat) {
    if (typeof fn !== 'function') throw new TypeError('The "callback" argument must be of type function');
    delay = Number(delay);
    if (!(delay >= 1) || delay > 2147483647) delay = repeat ? 1 : 0;
    const id = nextId++;
    timers.set(id, { fn, args, delay, repeat });
    native.timerAdd(id, delay);
    return new Timeout(id);
  }
  function clear(t) {
    const id = (t && typeof t === 'object') ? t._id : Number(t);
    if (timers.delete(id)) native.timerClear(id);
  }
  const slice = Array.prototype.slice;
  const defs = {
    setTimeout(fn, delay) { return add(fn, delay, slice.call(arguments, 2), false); },
    setInterval(fn, delay) { return add(fn, delay, slice.call(arguments, 2), true); },
    setImmediate(fn) { return add(fn, 0, slice.call(arguments, 1), false); },
    clearTimeout: clear, clearInterval: clear, clearImmediate: clear,
    queueMicrotask(fn) { Promise.resolve().then(fn); },
  };
  for (const k of Object.keys(defs)) Object.defineProperty(g, k, { value: defs[k], writable: true, configurable: true });
  return {
    fire(id) {
      const t = timers.get(id);
      if (!t) return;
      if (t.repeat) native.timerAdd(id, t.delay); else timers.delete(id);
      t.fn.apply(undefined, t.args);
    },
    reset() { timers.clear(); },
  };
})
