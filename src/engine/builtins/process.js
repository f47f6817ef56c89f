// `process`: Node's module form of the global `process` (globals/process.js owns it).
'use strict';
module.exports = globalThis.process;
