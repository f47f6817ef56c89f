// hookgate's `path`: path-browserify (Node's POSIX path; process.cwd() is '/').
'use strict';
module.exports = require('path-browserify/index.js');
