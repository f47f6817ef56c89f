// `dgram` for hooks: no sockets; every function throws ERR_HOOKGATE_UNSUPPORTED.
'use strict';
const { stub } = require('_hookgate/unsupported');
module.exports = stub('dgram', 'hookgate gives hooks no sockets', ["createSocket","Socket"]);
