// `os` for hooks: a fixed, anonymous description of a Linux machine. Hooks must not learn the
// host's name, users, interfaces or load, and packages only read these for user-agent strings,
// temp paths and line endings. Must not touch: anything real about the host.
'use strict';
const { stub } = require('_hookgate/unsupported');
const why = 'hookgate gives hooks no access to the host';
const unsupported = stub('os', why, ['setPriority', 'getPriority']);
module.exports = {
  EOL: '\n',
  devNull: '/dev/null',
  arch: () => 'x64',
  machine: () => 'x86_64',
  platform: () => 'linux',
  type: () => 'Linux',
  release: () => '6.0.0',
  version: () => '#1 SMP hookgate',
  hostname: () => 'hookgate',
  homedir: () => '/',
  tmpdir: () => '/tmp',
  endianness: () => 'LE',
  cpus: () => [],
  availableParallelism: () => 1,
  totalmem: () => 268435456,
  freemem: () => 134217728,
  loadavg: () => [0, 0, 0],
  uptime: () => Math.floor(process.uptime()),
  networkInterfaces: () => ({}),
  userInfo: () => ({ uid: -1, gid: -1, username: 'hookgate', homedir: '/', shell: null }),
  constants: { signals: {}, errno: {}, priority: {} },
  setPriority: unsupported.setPriority,
  getPriority: unsupported.getPriority,
};
