// hookgate's `punycode`: the npm punycode@2, the same code Node's deprecated module is.
'use strict';
module.exports = require('punycode/punycode.js');
