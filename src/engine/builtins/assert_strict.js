// `assert/strict`: Node's alias of `require('assert').strict`.
'use strict';
module.exports = require('assert').strict;
