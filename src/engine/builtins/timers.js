// `timers`: the global timer functions (globals/timers.js owns them), as Node's module exports
// them, plus `timers.promises`.
'use strict';
const g = globalThis;
module.exports = {
  setTimeout: g.setTimeout, clearTimeout: g.clearTimeout,
  setInterval: g.setInterval, clearInterval: g.clearInterval,
  setImmediate: g.setImmediate, clearImmediate: g.clearImmediate,
  promises: require('timers/promises'),
};
