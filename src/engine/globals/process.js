// The `process` and `Buffer` globals. `process` describes a Node 20 on Linux without a machine
// behind it: no host environment, no exit, stdout/stderr go to console. `process.env` is a fresh,
// empty object for every hook call (made on first use in the call, kept per call: several calls
// run at once in one context): hooks write credentials into it, and nothing may pass from one
// call to another or come from the host.
// `Buffer` is the `buffer` built-in's, loaded the first time a hook touches it.
// Owns: those two globals. Must not touch: the event loop (nextTick rides on microtasks) or the
// modules themselves (the built-ins own Buffer and EventEmitter; `native.builtin` loads them).
(function (native, g) {
  'use strict';
  const P = native.P;
  const apply = P.apply;
  const clock = typeof g.performance === 'object' && g.performance && typeof g.performance.now === 'function'
    ? () => g.performance.now() : () => Date.now();
  const started = clock();

  function unsupported(what, why) {
    const e = new Error(`${what} is not available to hooks: ${why}`);
    e.code = 'ERR_HOOKGATE_UNSUPPORTED';
    return e;
  }

  // Node coerces every value written to process.env to a string, and shows nothing but strings.
  function freshEnv() {
    return new Proxy({}, {
      set(target, key, value) {
        if (typeof key === 'symbol') throw new TypeError('Cannot convert a Symbol value to a string');
        target[key] = String(value);
        return true;
      },
      defineProperty(target, key, desc) {
        if (!('value' in desc)) {
          const e = new TypeError("'process.env' does not accept an accessor(getter/setter) descriptor");
          e.code = 'ERR_INVALID_OBJECT_DEFINE_PROPERTY';
          throw e;
        }
        target[key] = String(desc.value);
        return true;
      },
    });
  }

  // nextTick: a queue drained in one microtask, so ticks queued together run before promise
  // reactions queued after them, and ticks queued by a tick run before those reactions too.
  // The queue is a prototype-less object indexed head..tail, and the tick runs through private
  // built-ins (primordials.js): a hook replacing Array.prototype.push or Promise.prototype.then
  // does not stop its own nextTick callbacks.
  const ticks = P.create(null);
  let head = 0, tail = 0;
  let draining = false;
  function drainTicks() {
    try {
      while (head < tail) {
        const t = ticks[head];
        delete ticks[head++];
        apply(t.fn, undefined, t.args);
      }
    } catch (e) {
      if (head < tail) P.then(P.resolved(), drainTicks);
      else draining = false;
      if (emitter && emitter.listenerCount('uncaughtException') > 0) { process.emit('uncaughtException', e, 'uncaughtException'); return; }
      // What would end a Node process fails the call (or is logged after cb), like a throw.
      native.uncaught(e);
      return;
    }
    draining = false;
  }
  function nextTick(fn) {
    if (typeof fn !== 'function') {
      const e = new P.TypeError('The "callback" argument must be of type function. Received ' + typeof fn);
      e.code = 'ERR_INVALID_ARG_TYPE';
      throw e;
    }
    ticks[tail++] = { fn, args: apply(P.slice, arguments, [1]) };
    if (!draining) { draining = true; P.then(P.resolved(), drainTicks); }
  }

  // process is an EventEmitter (the `events` built-in's, created on first use); listeners are
  // harmless: nothing but emitWarning and a throwing nextTick ever emits.
  let emitter = null;
  function events() {
    if (!emitter) emitter = new (native.builtin('events'))();
    return emitter;
  }

  function hrtime(prev) {
    const ns = Math.round((clock() - started) * 1e6) + 1e9;
    let s = Math.floor(ns / 1e9);
    let n = ns % 1e9;
    if (prev) {
      s -= prev[0];
      n -= prev[1];
      if (n < 0) { s -= 1; n += 1e9; }
    }
    return [s, n];
  }
  hrtime.bigint = () => BigInt(Math.round((clock() - started) * 1e6) + 1e9);

  function stream(fd, level) {
    const s = {
      fd, isTTY: false, writable: true,
      write(chunk, encoding, cb) {
        const text = typeof chunk === 'string' ? chunk : String(chunk);
        const line = text.endsWith('\n') ? text.slice(0, -1) : text;
        if (level === 'error') g.console.error(line); else g.console.log(line);
        const done = typeof encoding === 'function' ? encoding : cb;
        if (typeof done === 'function') nextTick(done);
        return true;
      },
      end(chunk, encoding, cb) { if (chunk != null && typeof chunk !== 'function') s.write(chunk, encoding, cb); return s; },
      on() { return s; }, once() { return s; }, off() { return s; }, removeListener() { return s; },
      emit() { return false; }, getColorDepth: () => 1, hasColors: () => false,
    };
    return s;
  }

  // `[hooks] node_version`: the description of the Node release a hook expects (Auth0 ran 12).
  // The companion versions are those of that release line's last version where known.
  const version = typeof native.nodeVersion === 'string' ? native.nodeVersion : 'v20.11.1';
  const major = P.String(version).slice(1).split('.')[0];
  const LINES = {
    8: { v8: '6.2.414.78', uv: '1.23.2', modules: '57', lts: 'Carbon' },
    10: { v8: '6.8.275.32-node.59', uv: '1.34.2', modules: '64', lts: 'Dubnium' },
    12: { v8: '7.8.279.23-node.57', uv: '1.40.0', modules: '72', lts: 'Erbium' },
    14: { v8: '8.4.371.23-node.89', uv: '1.42.0', modules: '83', lts: 'Fermium' },
    16: { v8: '9.4.146.26-node.26', uv: '1.43.0', modules: '93', lts: 'Gallium' },
    18: { v8: '10.2.154.26-node.36', uv: '1.44.2', modules: '108', lts: 'Hydrogen' },
    20: { v8: '11.3.244.8-node.17', uv: '1.46.0', modules: '115', lts: 'Iron' },
  };
  const line = LINES[major] || LINES[20];
  const process = {
    title: 'hookgate',
    version,
    versions: { node: version.slice(1), v8: line.v8, uv: line.uv, modules: line.modules, hookgate: '0.1.0' },
    release: { name: 'node', lts: line.lts },
    platform: 'linux',
    arch: 'x64',
    argv: ['/usr/local/bin/node', '/hook.js'],
    argv0: 'node',
    execArgv: [],
    execPath: '/usr/local/bin/node',
    pid: 1,
    ppid: 0,
    exitCode: undefined,
    browser: false,
    config: { variables: {} },
    features: {},
    stdout: stream(1, 'log'),
    stderr: stream(2, 'error'),
    stdin: { fd: 0, isTTY: false, readable: false, on() { return this; }, once() { return this; }, removeListener() { return this; }, read: () => null, pause() { return this; }, resume() { return this; } },
    nextTick,
    hrtime,
    cwd: () => '/',
    chdir() { throw unsupported('process.chdir', 'hookgate runs hooks without a filesystem'); },
    umask: () => 0o22,
    uptime: () => (clock() - started) / 1000,
    memoryUsage: Object.assign(() => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }), { rss: () => 0 }),
    cpuUsage: () => ({ user: 0, system: 0 }),
    resourceUsage: () => ({}),
    getuid: () => -1, getgid: () => -1, geteuid: () => -1, getegid: () => -1,
    exit(code) { throw unsupported(`process.exit(${code === undefined ? '' : code})`, 'a hook ends by calling cb'); },
    abort() { throw unsupported('process.abort', 'a hook ends by calling cb'); },
    kill() { throw unsupported('process.kill', 'hookgate runs hooks without processes'); },
    binding(name) { throw unsupported(`process.binding('${name}')`, 'hookgate has no Node internals'); },
    emitWarning(warning, type, code) {
      if (type !== null && typeof type === 'object') { code = type.code; type = type.type; }
      const w = typeof warning === 'string' ? new Error(warning) : warning;
      if (typeof warning === 'string') w.name = typeof type === 'string' && type ? type : 'Warning';
      if (code !== undefined && w.code === undefined) w.code = code;
      if (w.name === 'DeprecationWarning' && process.noDeprecation) return;
      g.console.warn(`(node:${process.pid}) ${w.code ? `[${w.code}] ` : ''}${w.name}: ${w.message}`);
      if (emitter) emitter.emit('warning', w);
    },
  };
  for (const m of ['on', 'addListener', 'once', 'off', 'removeListener', 'removeAllListeners', 'prependListener',
    'prependOnceListener', 'setMaxListeners']) {
    process[m] = function () { const e = events(); e[m].apply(e, arguments); return process; };
  }
  for (const m of ['emit', 'listeners', 'rawListeners', 'listenerCount', 'eventNames', 'getMaxListeners']) {
    process[m] = function () { const e = events(); return e[m].apply(e, arguments); };
  }
  // One env per call, made when the call first reads it (most hooks never do, and a Proxy with
  // its handler per call was a tenth of a warm call's work). Keyed by the call whose JS runs:
  // several calls of the hook run at once in this context, and one's env must not leak into,
  // or be reset under, another. Envs of calls that ended are swept when new ones are made.
  const envs = new P.SafeMap();
  let made = 0;
  function envOf(seq) {
    let env = envs.get(seq);
    if (env === undefined) {
      if (++made % 64 === 0) envs.forEach(function (v, k) { if (!native.callLive(k)) envs.delete(k); });
      env = freshEnv();
      envs.set(seq, env);
    }
    return env;
  }
  Object.defineProperty(process, 'env', {
    get() { return envOf(native.currentCall()); },
    set(v) { envs.set(native.currentCall(), v); },
    enumerable: true,
    configurable: true,
  });
  Object.defineProperty(process, Symbol.toStringTag, { value: 'process' });
  Object.defineProperty(g, 'process', { value: process, writable: true, configurable: true });

  // Buffer: replaced by the real class on first read, so contexts that never touch it never load
  // the buffer module.
  Object.defineProperty(g, 'Buffer', {
    configurable: true,
    get() {
      const B = native.builtin('buffer').Buffer;
      Object.defineProperty(g, 'Buffer', { value: B, writable: true, configurable: true });
      return B;
    },
    set(v) { Object.defineProperty(g, 'Buffer', { value: v, writable: true, configurable: true }); },
  });

  return {};
})
