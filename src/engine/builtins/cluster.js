// `cluster` for hooks: one process, always the primary; every function throws
// ERR_HOOKGATE_UNSUPPORTED.
'use strict';
const { stub } = require('_hookgate/unsupported');
module.exports = stub('cluster', 'hookgate runs hooks without processes',
  ["Worker","setupPrimary","setupMaster","fork","disconnect"],
  { isWorker: false, isMaster: true, isPrimary: true, workers: {}, settings: {}, SCHED_NONE: 1, SCHED_RR: 2, schedulingPolicy: 2 });
