// console.log/info/debug/warn/error, captured into `tracing` by the host with hook name and request
// id, formatted by Node's rules (`util.format`: '%s'/'%d'/'%j' placeholders, objects inspected),
// as Auth0's logs showed them. If `util` cannot be loaded, a plain JSON rendering stands in.
(function (native, g) {
  'use strict';
  const P = native.P;
  function show(v, depth) {
    if (typeof v === 'string') return v;
    if (v instanceof Error) return (v.stack ? String(v.name) + ': ' + v.message + '\n' + v.stack : String(v));
    if (typeof v === 'function') return '[Function' + (v.name ? ': ' + v.name : '') + ']';
    if (typeof v === 'symbol' || typeof v === 'bigint') return String(v);
    if (v === undefined) return 'undefined';
    try {
      const s = P.stringify(v);
      return s === undefined ? P.String(v) : s;
    } catch (e) {
      return String(v);
    }
  }
  let utilFormat = null;
  function format(args) {
    if (utilFormat === null) {
      // Loaded on the first console call of a context, not for hooks that never log.
      try { utilFormat = native.builtin('util').format; } catch (e) { utilFormat = false; }
    }
    if (utilFormat) {
      try { return P.apply(utilFormat, null, args); } catch (e) { /* fall back below */ }
    }
    let out = '';
    for (let i = 0; i < args.length; i++) {
      if (i) out += ' ';
      out += show(args[i]);
    }
    return out;
  }
  const log = native.log;
  const make = (level) => function () { log(level, format(arguments)); };
  const console = {
    debug: make(0), log: make(1), info: make(1), warn: make(2), error: make(3),
    trace: make(0), dir: make(1),
  };
  Object.defineProperty(g, 'console', { value: console, writable: true, configurable: true });
  return { format };
})
