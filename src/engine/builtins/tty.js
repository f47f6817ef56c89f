// `tty` for hooks: nothing is a terminal (debug, chalk and supports-color ask). Opening a tty
// stream throws ERR_HOOKGATE_UNSUPPORTED.
'use strict';
const { stub } = require('_hookgate/unsupported');
module.exports = stub('tty', 'hooks have no terminal', ['ReadStream', 'WriteStream'], { isatty: () => false });
