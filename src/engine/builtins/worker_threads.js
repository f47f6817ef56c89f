// `worker_threads` for hooks: the hook is always on the main thread; every function throws
// ERR_HOOKGATE_UNSUPPORTED.
'use strict';
const { stub } = require('_hookgate/unsupported');
module.exports = stub('worker_threads', 'hookgate runs each hook call on one thread',
  ["MessagePort","MessageChannel","markAsUntransferable","moveMessagePortToContext","receiveMessageOnPort","postMessageToThread","Worker","BroadcastChannel","setEnvironmentData","getEnvironmentData"],
  { isMainThread: true, parentPort: null, threadId: 0, workerData: null, resourceLimits: {}, SHARE_ENV: Symbol.for('nodejs.worker_threads.SHARE_ENV') });
