// Node's `dns/promises`: `dns.promises`.
'use strict';
module.exports = require('dns').promises;
