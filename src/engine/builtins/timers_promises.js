// `timers/promises`: promise forms of the global timers (no AbortSignal support yet: an
// `options.signal` is ignored).
'use strict';
const g = globalThis;
module.exports = {
  setTimeout: (delay, value) => new Promise((resolve) => g.setTimeout(resolve, delay, value)),
  setImmediate: (value) => new Promise((resolve) => g.setImmediate(resolve, value)),
  async *setInterval(delay, value) {
    for (;;) {
      await new Promise((resolve) => g.setTimeout(resolve, delay));
      yield value;
    }
  },
  scheduler: {
    wait: (delay) => new Promise((resolve) => g.setTimeout(resolve, delay)),
    yield: () => new Promise((resolve) => g.setImmediate(resolve)),
  },
};
