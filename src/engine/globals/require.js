// CommonJS `require` over the module graph the host resolved at load time. Module objects are
// cached per context, so a package is evaluated once per (worker, hook), like Node's cache.
(function (native, g) {
  'use strict';
  // Private built-ins (primordials.js): a hook's prototype changes never reach loading.
  const P = native.P;
  const cache = new P.SafeMap();
  function load(key) {
    const cached = cache.get(key);
    if (cached) return cached.exports;
    const m = native.moduleInfo(key); // [kind, filename, dirname, payload]
    const module = { exports: {}, id: m[1], filename: m[1], loaded: false, children: [], paths: [] };
    cache.set(key, module);
    try {
      if (m[0] === 'json') {
        module.exports = P.parse(m[3]);
      } else {
        const wrapper = native.moduleLoad(key);
        const require = makeRequire(key);
        module.require = require;
        P.apply(wrapper, module.exports, [module.exports, require, module, m[1], m[2]]);
      }
    } catch (e) {
      cache.delete(key);
      throw e;
    }
    module.loaded = true;
    return module.exports;
  }
  function makeRequire(from) {
    const require = function (spec) {
      if (typeof spec !== 'string') throw new TypeError('The "id" argument must be of type string');
      const key = native.moduleResolve(from, spec);
      if (key === undefined) {
        const e = new Error("Cannot find module '" + spec + "': hookgate resolves require() when hooks load, so only require('literal') calls are available");
        e.code = 'MODULE_NOT_FOUND';
        throw e;
      }
      return load(key);
    };
    require.cache = {};
    // Built-ins reach the host's functions through their own require; hook code never sees them.
    // Defined, not assigned: an assignment would call a setter a hook put on
    // Function.prototype.native and hand it `native`.
    if (P.apply(P.startsWith, from, ['builtin:'])) P.defineProperty(require, 'native', { value: native });
    // The file name as hooks see it (`/hooks/...`), never the module key (a real path on disk).
    require.resolve = function (spec) { const k = native.moduleResolve(from, spec); if (k === undefined) throw new Error("Cannot find module '" + spec + "'"); return native.moduleInfo(k)[1]; };
    return require;
  }
  // The globals built on built-ins (Buffer, process's EventEmitter) load them here, into the same
  // cache, so `Buffer === require('buffer').Buffer`.
  native.builtin = function (name) { return load('builtin:' + name); };
  return { main(key) { return load(key); } };
})
