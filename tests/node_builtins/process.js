// process the way packages use it: nextTick order against promises, env string coercion and
// delete, hrtime shapes, stdout, the EventEmitter methods, and the fields packages branch on.
module.exports = function (cb) {
  const order = [];
  process.nextTick((a, b) => order.push('tick1:' + a + b), 'x', 'y');
  Promise.resolve().then(() => order.push('promise'));
  process.nextTick(() => { order.push('tick2'); process.nextTick(() => order.push('tick3')); });
  process.env.HOOKGATE_TEST_N = 5;
  process.env.HOOKGATE_TEST_U = undefined;
  process.env.HOOKGATE_TEST_D = 'gone';
  delete process.env.HOOKGATE_TEST_D;
  const env = [process.env.HOOKGATE_TEST_N, process.env.HOOKGATE_TEST_U, 'HOOKGATE_TEST_D' in process.env,
    Object.keys(process.env).filter((k) => k.startsWith('HOOKGATE_TEST_')).sort()];
  const t = process.hrtime();
  const diff = process.hrtime(t);
  const heard = [];
  const ret = process.on('hookgate-test', (v) => heard.push(v));
  process.emit('hookgate-test', 'heard');
  process.removeAllListeners('hookgate-test');
  process.emit('hookgate-test', 'not heard');
  setTimeout(() => cb(null, {
    order, env,
    hrtime: [Array.isArray(t), t.length, diff[0], typeof process.hrtime.bigint()],
    events: [heard, ret === process],
    shape: [typeof process.version, process.version.startsWith('v20.'), process.versions.node.startsWith('20.'), process.platform,
      typeof process.pid, typeof process.cwd(), typeof process.uptime(), typeof process.memoryUsage().heapUsed,
      process.stdout.isTTY === true, typeof process.stdout.write('via stdout\n'), Array.isArray(process.argv), Array.isArray(process.execArgv),
      process.browser === true, require('process') === process, String(process)],
  }), 5);
};
