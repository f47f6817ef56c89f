// `vm` for hooks: no second realm; every function throws ERR_HOOKGATE_UNSUPPORTED (a hook can
// still use `new Function` / eval in its own context).
'use strict';
const { stub } = require('_hookgate/unsupported');
module.exports = stub('vm', 'hookgate gives hooks no separate JS contexts',
  ["Script","createContext","createScript","runInContext","runInNewContext","runInThisContext","isContext","compileFunction","measureMemory"],
  { constants: {} });
