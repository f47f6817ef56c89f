// setTimeout/setInterval/setImmediate and their clear* functions. The host owns the clock: it
// fires due timers between rounds of the worker's event loop, as the call that set them, until
// that call ends (its loop is empty or its deadline passed; `dropCalls` then forgets what it
// left). `unref()` timers do not keep the loop alive, as in Node. Built-ins used here are
// private copies (primordials.js); an exception from a timer's callback is the call's
// (`native.uncaught`), so one escaping `fire` means the glue broke.
(function (native, g) {
  'use strict';
  const P = native.P;
  const apply = P.apply;
  const slice = P.slice;
  const timers = new P.SafeMap();
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
    if (typeof fn !== 'function') throw new P.TypeError('The "callback" argument must be of type function');
    delay = P.Number(delay);
    if (!(delay >= 1) || delay > 2147483647) delay = repeat ? 1 : 0;
    const id = nextId++;
    timers.set(id, { fn, args, delay, repeat });
    native.timerAdd(id, delay);
    return new Timeout(id);
  }
  function clear(t) {
    const id = (t && typeof t === 'object') ? t._id : P.Number(t);
    if (timers.delete(id)) native.timerClear(id);
  }
  const defs = {
    setTimeout(fn, delay) { return add(fn, delay, apply(slice, arguments, [2]), false); },
    setInterval(fn, delay) { return add(fn, delay, apply(slice, arguments, [2]), true); },
    setImmediate(fn) { return add(fn, 0, apply(slice, arguments, [1]), false); },
    clearTimeout: clear, clearInterval: clear, clearImmediate: clear,
    queueMicrotask(fn) { P.then(P.resolved(), fn); },
  };
  const keys = ['setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval', 'clearImmediate', 'queueMicrotask'];
  for (let i = 0; i < keys.length; i++) P.defineProperty(g, keys[i], { value: defs[keys[i]], writable: true, configurable: true });
  return {
    fire(id) {
      const t = timers.get(id);
      if (!t) return;
      if (t.repeat) native.timerAdd(id, t.delay); else timers.delete(id);
      try {
        apply(t.fn, undefined, t.args);
      } catch (e) {
        native.uncaught(e);
      }
    },
    // The timers of calls that ended: `ids` is an array the host made.
    drop(ids) { for (let i = 0; i < ids.length; i++) timers.delete(ids[i]); },
  };
})
