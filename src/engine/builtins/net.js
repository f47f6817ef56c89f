// `net` for hooks: no sockets (outbound HTTP goes through the host's client), so every function
// throws ERR_HOOKGATE_UNSUPPORTED — except isIP/isIPv4/isIPv6, which are pure and which packages
// such as tough-cookie call on every cookie. The address patterns are Node's (lib/internal/net.js).
'use strict';
const { stub } = require('_hookgate/unsupported');
const v4Seg = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
const v4Str = `(?:${v4Seg}\\.){3}${v4Seg}`;
const IPv4Reg = new RegExp(`^${v4Str}$`);
const v6Seg = '(?:[0-9a-fA-F]{1,4})';
const IPv6Reg = new RegExp('^(?:' +
  `(?:${v6Seg}:){7}(?:${v6Seg}|:)|` +
  `(?:${v6Seg}:){6}(?:${v4Str}|:${v6Seg}|:)|` +
  `(?:${v6Seg}:){5}(?::${v4Str}|(?::${v6Seg}){1,2}|:)|` +
  `(?:${v6Seg}:){4}(?:(?::${v6Seg}){0,1}:${v4Str}|(?::${v6Seg}){1,3}|:)|` +
  `(?:${v6Seg}:){3}(?:(?::${v6Seg}){0,2}:${v4Str}|(?::${v6Seg}){1,4}|:)|` +
  `(?:${v6Seg}:){2}(?:(?::${v6Seg}){0,3}:${v4Str}|(?::${v6Seg}){1,5}|:)|` +
  `(?:${v6Seg}:){1}(?:(?::${v6Seg}){0,4}:${v4Str}|(?::${v6Seg}){1,6}|:)|` +
  `(?::(?:(?::${v6Seg}){0,5}:${v4Str}|(?::${v6Seg}){1,7}|:))` +
')(?:%[0-9a-zA-Z-.:]{1,})?$');
const isIPv4 = (s) => IPv4Reg.test(`${s}`);
const isIPv6 = (s) => IPv6Reg.test(`${s}`);
const isIP = (s) => (isIPv4(s) ? 4 : isIPv6(s) ? 6 : 0);
module.exports = stub('net', 'hookgate gives hooks no sockets (use fetch or http/https)',
  ["BlockList","SocketAddress","connect","createConnection","createServer","Server","Socket","Stream","getDefaultAutoSelectFamily","setDefaultAutoSelectFamily","getDefaultAutoSelectFamilyAttemptTimeout","setDefaultAutoSelectFamilyAttemptTimeout"],
  { isIP, isIPv4, isIPv6 });
