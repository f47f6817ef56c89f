// hookgate's `url`: the npm url@0.11.0 for Node's legacy API (parse/format/resolve keep Node's
// legacy semantics: it is Node's old url.js), with the WHATWG `URL`/`URLSearchParams` taken from
// the globals at call time (the host provides those) and Node's helpers around them.
// Must not touch: URL parsing itself (the global URL owns that).
'use strict';
const legacy = require('url/url.js');
const punycode = require('punycode');
const path = require('path');

function WhatwgURL() { return globalThis.URL; }

function unsupportedArg(name, expected, value) {
  const e = new TypeError(`The "${name}" argument must be ${expected}. Received ${typeof value}`);
  e.code = 'ERR_INVALID_ARG_TYPE';
  return e;
}

function format(obj, options) {
  const URL = WhatwgURL();
  if (URL && obj instanceof URL) {
    const o = Object.assign({ auth: true, fragment: true, search: true, unicode: false }, options);
    let out = obj.protocol + (obj.host || obj.protocol === 'file:' ? '//' : '');
    if (o.auth && (obj.username || obj.password)) out += obj.username + (obj.password ? ':' + obj.password : '') + '@';
    out += o.unicode ? domainToUnicode(obj.hostname) + (obj.port ? ':' + obj.port : '') : obj.host;
    out += obj.pathname;
    if (o.search) out += obj.search;
    if (o.fragment) out += obj.hash;
    return out;
  }
  return legacy.format(obj);
}

function domainToASCII(domain) {
  try {
    // An `xn--` label must already be ASCII (UTS #46); punycode would encode it again.
    if (String(domain).split('.').some((l) => /^xn--/i.test(l) && /[^\x00-\x7f]/.test(l))) return '';
    const out = punycode.toASCII(String(domain).toLowerCase());
    return /[\s%#/:?@[\\\]<>^|]/.test(out) ? '' : out;
  } catch (e) {
    return '';
  }
}

function domainToUnicode(domain) {
  try { return punycode.toUnicode(String(domain).toLowerCase()); } catch (e) { return ''; }
}

function fileURLToPath(input) {
  const URL = WhatwgURL();
  let u = input;
  if (typeof input === 'string') {
    if (!URL) throw new Error('url.fileURLToPath needs the global URL');
    u = new URL(input);
  } else if (!input || typeof input.href !== 'string') {
    throw unsupportedArg('path', 'of type string or an instance of URL', input);
  }
  if (u.protocol !== 'file:') {
    const e = new TypeError('The URL must be of scheme file');
    e.code = 'ERR_INVALID_URL_SCHEME';
    throw e;
  }
  if (u.hostname !== '') {
    const e = new TypeError('File URL host must be "localhost" or empty on linux');
    e.code = 'ERR_INVALID_FILE_URL_HOST';
    throw e;
  }
  if (/%2f/i.test(u.pathname)) {
    const e = new TypeError('File URL path must not include encoded / characters');
    e.code = 'ERR_INVALID_FILE_URL_PATH';
    throw e;
  }
  return decodeURIComponent(u.pathname);
}

function pathToFileURL(p) {
  const URL = WhatwgURL();
  let resolved = path.resolve(String(p));
  if (String(p).endsWith('/') && !resolved.endsWith('/')) resolved += '/';
  const encoded = resolved.replace(/%/g, '%25').replace(/\\/g, '%5C').replace(/\n/g, '%0A')
    .replace(/\r/g, '%0D').replace(/\t/g, '%09').replace(/#/g, '%23').replace(/\?/g, '%3F');
  return new URL('file://' + encoded);
}

function urlToHttpOptions(u) {
  const out = {
    protocol: u.protocol,
    hostname: typeof u.hostname === 'string' && u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname,
    hash: u.hash, search: u.search, pathname: u.pathname,
    path: `${u.pathname || ''}${u.search || ''}`, href: u.href,
  };
  if (u.port !== '') out.port = Number(u.port);
  if (u.username || u.password) out.auth = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
  return out;
}

module.exports = {
  Url: legacy.Url, parse: legacy.parse, resolve: legacy.resolve, resolveObject: legacy.resolveObject,
  format, domainToASCII, domainToUnicode, fileURLToPath, pathToFileURL, urlToHttpOptions,
};
Object.defineProperty(module.exports, 'URL', { enumerable: true, get: () => globalThis.URL });
Object.defineProperty(module.exports, 'URLSearchParams', { enumerable: true, get: () => globalThis.URLSearchParams });
