// `http2` for hooks: no sockets; every function throws ERR_HOOKGATE_UNSUPPORTED.
'use strict';
const { stub } = require('_hookgate/unsupported');
module.exports = stub('http2', 'hookgate gives hooks no sockets (use fetch or http/https)',
  ["connect","createServer","createSecureServer","getDefaultSettings","getPackedSettings","getUnpackedSettings","performServerHandshake","Http2ServerRequest","Http2ServerResponse"],
  { constants: {}, sensitiveHeaders: Symbol('nodejs.http2.sensitiveHeaders') });
