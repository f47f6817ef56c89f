// Node's `https` client: `http.js`'s client with https URLs and port 443. TLS is the host's
// (rustls, with the platform's roots); certificate options a package passes are accepted and
// have no effect.
// Owns: nothing of its own. Must not touch: anything `http.js` owns.
'use strict';
const http = require('http');
module.exports = http[Symbol.for('hookgate.http.makeModule')]('https:');
