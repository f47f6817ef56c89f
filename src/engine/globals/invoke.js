// Calling the hook: fresh arguments, the cb contract (exactly once; a second call is logged and
// ignored), a returned Promise counting as cb, and turning whatever was thrown into
// { class, message, user_message }. Each cb is made for one call and names it (`seq`): several
// calls of a hook run at once in one context, and a cb may be called while another call's JS runs.
// Every built-in used here is a private copy (primordials.js): nothing the hook replaces reaches
// this code, and everything the hook throws is caught here, so an exception escaping `invoke`
// means the glue itself broke (the worker then replaces its runtime).
(function (native, g) {
  'use strict';
  const P = native.P;
  const apply = P.apply;
  const String = P.String;
  const Error = P.Error;
  function read(e, key) { try { return e[key]; } catch (x) { return undefined; } }
  function text(v) { try { return String(v); } catch (x) { return '(unprintable)'; } }
  function describe(e) {
    if (typeof e === 'string') return { class: 'string', message: e };
    if (e !== null && typeof e === 'object') {
      const name = read(e, 'name');
      let cls = typeof name === 'string' && name ? name : '';
      const ctor = read(e, 'constructor');
      const ctorName = ctor ? read(ctor, 'name') : undefined;
      if ((!cls || cls === 'Error') && typeof ctorName === 'string' && ctorName && ctorName !== 'Object') cls = ctorName;
      const m = read(e, 'message');
      let message = m !== undefined ? text(m) : '';
      let isError = false;
      try { isError = e instanceof Error; } catch (x) { /* a hostile Symbol.hasInstance */ }
      if (!isError && message === '') { try { message = P.stringify(e); } catch (x) { message = text(e); } }
      const out = { class: cls || 'Error', message: message === undefined ? '' : message };
      const um = read(e, 'userMessage');
      if (um !== undefined && um !== null) out.user_message = text(um);
      const stack = read(e, 'stack');
      if (typeof stack === 'string') out.stack = stack;
      return out;
    }
    return { class: typeof e, message: text(e) };
  }
  function invoke(fn, args, seq) {
    let done = false;
    // An arrow function: no `prototype` object to make per call.
    const cb = (err, value) => {
      if (done) { native.log(2, 'cb was called more than once; this call is ignored'); return; }
      done = true;
      if (err !== null && err !== undefined) native.settle(seq, false, describe(err));
      else native.settle(seq, true, value);
    };
    for (let i = 0; i < args.length; i++) if (args[i] === null) args[i] = undefined;
    P.append(args, cb);
    let r;
    try {
      r = apply(fn, undefined, args);
    } catch (e) {
      if (!done) { done = true; native.settle(seq, false, describe(e)); }
      else { const d = describe(e); native.log(3, 'error thrown after cb was called (ignored): ' + d.class + ': ' + d.message); }
      return;
    }
    if (r === null || (typeof r !== 'object' && typeof r !== 'function')) return;
    const ok = function (v) { if (!done) cb(null, v); };
    const fail = function (e) {
      if (!done) cb(e === undefined || e === null ? new Error('the hook\'s promise was rejected without a reason') : e);
      else { const d = describe(e); native.log(3, 'promise rejected after cb was called (ignored): ' + d.class + ': ' + d.message); }
    };
    // A native promise (what an async function returns) is followed with the intrinsic `then`,
    // whatever the hook did to Promise.prototype; any other thenable with its own `then`.
    try {
      P.then(r, ok, fail);
      return;
    } catch (x) { /* not a native promise */ }
    try {
      const then = r.then;
      if (typeof then === 'function') apply(then, r, [ok, fail]);
    } catch (e) {
      if (!done) { done = true; native.settle(seq, false, describe(e)); }
    }
  }
  return { invoke, describe };
})
