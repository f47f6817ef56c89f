// `path/posix`: Node's alias of `require('path').posix` (hookgate's path is POSIX only).
'use strict';
module.exports = require('path').posix;
