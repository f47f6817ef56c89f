// `child_process` for hooks: no processes; every function throws ERR_HOOKGATE_UNSUPPORTED.
'use strict';
const { stub } = require('_hookgate/unsupported');
module.exports = stub('child_process', 'hookgate runs hooks without processes',
  ["ChildProcess","exec","execFile","execFileSync","execSync","fork","spawn","spawnSync"]);
