// hookgate's `events`: browserify's events@3 (Node's EventEmitter, with `once`), with Node's
// error for emitting a non-Error 'error' nobody listens to (events@3 says "(undefined)").
'use strict';
const EventEmitter = require('events/events.js');
const emit = EventEmitter.prototype.emit;
EventEmitter.prototype.emit = function (type, ...args) {
  if (type === 'error' && (this._events === undefined || this._events.error === undefined) && !(args[0] instanceof Error)) {
    const er = args[0];
    let shown;
    try { shown = require('util').inspect(er); } catch (e) { shown = String(er); }
    const err = new Error(`Unhandled error. (${shown})`);
    err.code = 'ERR_UNHANDLED_ERROR';
    err.context = er;
    throw err;
  }
  return emit.call(this, type, ...args);
};
module.exports = EventEmitter;
