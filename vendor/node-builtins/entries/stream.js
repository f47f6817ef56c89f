// hookgate's `stream`: stream-browserify's legacy Stream (an EventEmitter with pipe) carrying
// readable-stream@3's Readable/Writable/Duplex/Transform/PassThrough, finished and pipeline —
// the same shape as Node's `require('stream')`, which is itself the Stream constructor.
'use strict';
const Stream = require('stream-browserify/index.js');
function pipelinePromise(...streams) {
  return new Promise((resolve, reject) => Stream.pipeline(...streams, (err, v) => (err ? reject(err) : resolve(v))));
}
function finishedPromise(stream, opts) {
  return new Promise((resolve, reject) => Stream.finished(stream, opts || {}, (err) => (err ? reject(err) : resolve())));
}
Stream.promises = { pipeline: pipelinePromise, finished: finishedPromise };
Stream.isReadable = (s) => !!(s && typeof s.read === 'function' && s.readable !== false);
Stream.isErrored = (s) => !!(s && (s._readableState || s._writableState || {}).errorEmitted);
// Node's Stream inherits EventEmitter's statics: `require('stream').EventEmitter` is EventEmitter.
Stream.EventEmitter = require('events');
Stream._isUint8Array = (v) => v instanceof Uint8Array;
Stream._uint8ArrayToBuffer = (v) => require('buffer').Buffer.from(v.buffer, v.byteOffset, v.byteLength);
module.exports = Stream;
