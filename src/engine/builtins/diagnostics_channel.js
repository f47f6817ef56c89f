// Node's `diagnostics_channel`, enough for the packages that publish to it (node-redis v5):
// named channels with subscribers, called synchronously on publish. No TracingChannel (packages
// test for `tracingChannel` and skip tracing without it), no AsyncLocalStorage stores.
// Owns: the channel registry of one hook context. Must not touch: anything outside it.
'use strict';
const channels = new Map();

class Channel {
  constructor(name) { this.name = name; this._subscribers = []; }
  get hasSubscribers() { return this._subscribers.length > 0; }
  subscribe(fn) { this._subscribers.push(fn); }
  unsubscribe(fn) {
    const i = this._subscribers.indexOf(fn);
    if (i < 0) return false;
    this._subscribers.splice(i, 1);
    return true;
  }
  publish(message) {
    for (const fn of this._subscribers.slice()) {
      try { fn(message, this.name); } catch (e) { process.nextTick(() => { throw e; }); }
    }
  }
  bindStore() {}
  unbindStore() { return false; }
  runStores(data, fn, thisArg, ...args) { this.publish(data); return fn.apply(thisArg, args); }
}

function channel(name) {
  let c = channels.get(name);
  if (!c) { c = new Channel(name); channels.set(name, c); }
  return c;
}

module.exports = {
  channel,
  hasSubscribers(name) { const c = channels.get(name); return !!c && c.hasSubscribers; },
  subscribe(name, fn) { channel(name).subscribe(fn); },
  unsubscribe(name, fn) { return channel(name).unsubscribe(fn); },
  Channel,
};
