// Calling the hook: fresh arguments, the cb contract (exactly once; a second call is logged and
// ignored), a returned Promise counting as cb, and turning whatever was thrown into
// { class, message, user_message }.
(function (native, g) {
  'use strict';
  function describe(e) {
    if (typeof e === 'string') return { class: 'string', message: e };
    if (e !== null && typeof e === 'object') {
      let cls = typeof e.name === 'string' && e.name ? e.name : '';
      const ctor = e.constructor && typeof e.constructor.name === 'string' ? e.constructor.name : '';
      if ((!cls || cls === 'Error') && ctor && ctor !== 'Object') cls = ctor;
      let message = e.message !== undefined ? String(e.message) : '';
      if (!(e instanceof Error) && message === '') { try { message = JSON.stringify(e); } catch (x) { message = String(e); } }
      const out = { class: cls || 'Error', message };
      if (e.userMessage !== undefined && e.userMessage !== null) out.user_message = String(e.userMessage);
      if (typeof e.stack === 'string') out.stack = e.stack;
      return out;
    }
    return { class: typeof e, message: String(e) };
  }
  const beginCall = native.beginCall;
  function invoke(fn, args) {
    beginCall();
    let done = false;
    // An arrow function: no `prototype` object to make per call.
    const cb = (err, value) => {
      if (done) { native.log(2, 'cb was called more than once; this call is ignored'); return; }
      done = true;
      if (err !== null && err !== undefined) native.settle(false, describe(err));
      else native.settle(true, value);
    };
    for (let i = 0; i < args.length; i++) if (args[i] === null) args[i] = undefined;
    args.push(cb);
    let r;
    try {
      r = fn.apply(undefined, args);
    } catch (e) {
      if (!done) { done = true; native.settle(false, describe(e)); }
      else native.log(3, 'error thrown after cb was called (ignored): ' + describe(e).class + ': ' + describe(e).message);
      return;
    }
    if (r !== null && (typeof r === 'object' || typeof r === 'function') && typeof r.then === 'function') {
      r.then(function (v) { if (!done) cb(null, v); }, function (e) {
        if (!done) cb(e === undefined || e === null ? new Error('the hook\'s promise was rejected without a reason') : e);
        else native.log(3, 'promise rejected after cb was called (ignored): ' + describe(e).class + ': ' + describe(e).message);
      });
    }
  }
  return { invoke, describe };
})
