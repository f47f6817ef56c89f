// `stream/promises`: Node's alias of `require('stream').promises`.
'use strict';
module.exports = require('stream').promises;
