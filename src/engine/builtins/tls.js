// `tls` for hooks: no sockets, so every function throws ERR_HOOKGATE_UNSUPPORTED; the constants
// packages read at load time are Node 20's.
'use strict';
const { stub } = require('_hookgate/unsupported');
module.exports = stub('tls', 'hookgate gives hooks no sockets (https requests go through the host)',
  ["getCiphers","convertALPNProtocols","checkServerIdentity","createSecureContext","SecureContext","TLSSocket","Server","createServer","connect","createSecurePair"],
  { CLIENT_RENEG_LIMIT: 3, CLIENT_RENEG_WINDOW: 600, DEFAULT_ECDH_CURVE: 'auto', DEFAULT_MIN_VERSION: 'TLSv1.2', DEFAULT_MAX_VERSION: 'TLSv1.3', rootCertificates: [] });
