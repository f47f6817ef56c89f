// `util/types`: Node's alias of `require('util').types`.
'use strict';
module.exports = require('util').types;
