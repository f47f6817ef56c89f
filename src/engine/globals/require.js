// CommonJS `require` over the module graph the host resolved at load time. Module objects are
// cached per context, so a package is evaluated once per (worker, hook), like Node's cache.
(function (native, g) {
  'use strict';
  // Private built-ins (primordials.js): a hook's prototype changes never reach loading.
  const P = native.P;
  const cache = new P.SafeMap();
  // Captured now, before any hook runs: a hook replacing Object.freeze must not see (or keep
  // unfrozen) a module's secrets.
  const freeze = Object.freeze;
  // An Actions Module's `actions` (`{ secrets }`, frozen), one per module, shared by its files.
  const actionsOf = new P.SafeMap();
  function actionsFor(key) {
    const secretsKey = native.moduleResolve(key, 'hookgate:actions-module-secrets');
    if (secretsKey === undefined) throw new P.Error('hookgate: ' + key + ' has no module secrets');
    let actions = actionsOf.get(secretsKey);
    if (!actions) {
      actions = freeze({ secrets: freeze(load(secretsKey)) });
      actionsOf.set(secretsKey, actions);
    }
    return actions;
  }
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
        // A file of an Actions Module (key `actions:<name>:<path>`, made by program.rs) gets a
        // sixth argument, `actions`: passed here with the private apply, so no function a hook
        // can replace ever receives it.
        const actions = P.apply(P.startsWith, key, ['actions:']) ? actionsFor(key) : undefined;
        P.apply(wrapper, module.exports, [module.exports, require, module, m[1], m[2], actions]);
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
