// hookgate's `string_decoder`: the npm string_decoder (Node's own, on the shared `buffer`).
'use strict';
module.exports = require('string_decoder/lib/string_decoder.js');
