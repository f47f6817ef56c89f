// CommonJS `require` over the module graph the host resolved at load time. Module objects are
// cached per context, so a package is evaluated once per (worker, hook), like Node's cache.
(function (native, g) {
  'use strict';
  const cache = new Map();
  function load(key) {
    const cached = cache.get(key);
    if (cached) return cached.exports;
    const m = native.moduleInfo(key); // [kind, filename, dirname, payload]
    const module = { exports: {}, id: key, filename: m[1], loaded: false, children: [], paths: [] };
    cache.set(key, module);
    try {
      if (m[0] === 'json') {
        module.exports = JSON.parse(m[3]);
      } else {
        const wrapper = native.moduleLoad(key);
        const require = makeRequire(key);
        module.require = require;
        wrapper.call(module.exports, module.exports, require, module, m[1], m[2]);
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
    if (from.startsWith('builtin:')) require.native = native;
    require.resolve = function (spec) { const k = native.moduleResolve(from, spec); if (k === undefined) throw new Error("Cannot find module '" + spec + "'"); return k; };
    return require;
  }
  // The globals built on built-ins (Buffer, process's EventEmitter) load them here, into the same
  // cache, so `Buffer === require('buffer').Buffer`.
  native.builtin = function (name) { return load('builtin:' + name); };
  return { main(key) { return load(key); } };
})
