// A Readable piped through a Transform into a Writable; pipeline, finished, Readable.from, and
// `require('stream')` being the legacy Stream constructor with the classes on it.
const Stream = require('stream');
const { Readable, Writable, Transform, PassThrough, pipeline, finished } = Stream;
const { pipeline: pipelineP } = require('stream/promises');
module.exports = function (cb) {
  const chunks = [];
  const events = [];
  const src = new Readable({ read() {} });
  const upper = new Transform({
    transform(chunk, enc, done) { done(null, chunk.toString().toUpperCase()); },
    flush(done) { this.push('!'); done(); },
  });
  const sink = new Writable({
    write(chunk, enc, done) { chunks.push(chunk.toString()); done(); },
  });
  src.on('end', () => events.push('end'));
  sink.on('finish', () => events.push('finish'));
  finished(sink, (err) => {
    events.push('finished:' + (err ? err.message : 'ok'));
    const objects = [];
    pipeline(
      Readable.from(['a', 'b', 'c']),
      new PassThrough({ objectMode: true }),
      new Writable({ objectMode: true, write(o, enc, done) { objects.push(o); done(); } }),
      (err2) => {
        const failing = new Readable({ read() { this.destroy(new Error('source broke')); } });
        pipelineP(failing, new PassThrough()).catch((e) => {
          cb(null, {
            chunks, events, objects, pipelineErr: err2 === undefined ? 'undefined' : String(err2), promiseErr: e.message,
            shape: [typeof Stream, Stream.Stream === Stream, src instanceof Stream, sink instanceof Stream,
              upper instanceof Readable, upper instanceof Writable, typeof Stream.promises.pipeline],
          });
        });
      });
  });
  src.pipe(upper).pipe(sink);
  src.push('hello ');
  src.push(Buffer.from('wörld'));
  src.push(null);
};
