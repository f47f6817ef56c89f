// Node's `perf_hooks`: `performance` (the global's, else one over Date.now); observers and
// histograms are not available.
// Owns: nothing of its own. Must not touch: timers.
'use strict';
const { unsupported } = require('_hookgate/unsupported');
const WHY = 'hookgate offers performance.now() and timeOrigin only';
const origin = Date.now();
const performance = typeof globalThis.performance === 'object' && globalThis.performance
  ? globalThis.performance
  : { now: () => Date.now() - origin, timeOrigin: origin, mark() {}, measure() {}, clearMarks() {}, clearMeasures() {} };
module.exports = {
  performance,
  PerformanceObserver: unsupported('perf_hooks.PerformanceObserver', WHY),
  monitorEventLoopDelay: unsupported('perf_hooks.monitorEventLoopDelay', WHY),
  createHistogram: unsupported('perf_hooks.createHistogram', WHY),
  constants: {},
};
