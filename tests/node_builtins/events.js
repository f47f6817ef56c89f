// EventEmitter: listener order (prepend, once), counts, 'error' without a listener, events.once.
const EventEmitter = require('events');
const { once } = require('events');
module.exports = function (cb) {
  const log = [];
  const e = new EventEmitter();
  e.on('x', (a) => log.push('on:' + a));
  e.prependListener('x', (a) => log.push('prepend:' + a));
  e.once('x', (a) => log.push('once:' + a));
  e.emit('x', 1);
  e.emit('x', 2);
  const counts = [e.listenerCount('x'), e.eventNames(), e.emit('nobody')];
  const thrown = [];
  try { e.emit('error', new Error('boom')); } catch (err) { thrown.push(err.message); }
  try { e.emit('error', 'text'); } catch (err) { thrown.push(err.message, err.code); }
  e.on('error', (err) => log.push('handled:' + err.message));
  e.emit('error', new Error('caught'));
  const shared = EventEmitter.EventEmitter === EventEmitter && new (require('stream').Readable)() instanceof EventEmitter;
  setTimeout(() => e.emit('later', 42, 'y'), 1);
  once(e, 'later').then((args) => cb(null, { log, counts, thrown, shared, args }));
};
