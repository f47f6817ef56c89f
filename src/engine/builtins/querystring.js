// `querystring`: Node's module, following lib/querystring.js: multi-character separators, maxKeys,
// custom encode/decode options, a replaceable `escape`/`unescape`, and Node's byte-wise fallback
// for malformed escapes (querystring-es3 throws URIError on those, so it is not used).
// Must not touch: URL parsing (url.js) or URLSearchParams (a host global).
'use strict';

const hex = (c) => (c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1);

// Node's unescapeBuffer: %XX to bytes where well-formed, every other char code kept (as a byte).
function unescapeBuffer(s, decodeSpaces) {
  const { Buffer } = require('buffer');
  const out = Buffer.alloc(s.length);
  let index = 0;
  let outIndex = 0;
  const maxLength = s.length - 2;
  while (index < s.length) {
    let c = s.charCodeAt(index);
    if (c === 43 && decodeSpaces) { out[outIndex++] = 32; index++; continue; }
    if (c === 37 && index < maxLength) {
      c = s.charCodeAt(++index);
      const hi = hex(c);
      if (hi < 0) { out[outIndex++] = 37; continue; }
      const lo = hex(s.charCodeAt(++index));
      if (lo < 0) { out[outIndex++] = 37; index--; } else { c = hi * 16 + lo; }
    }
    out[outIndex++] = c;
    index++;
  }
  return out.slice(0, outIndex);
}

function qsUnescape(s, decodeSpaces) {
  try {
    return decodeURIComponent(s);
  } catch (e) {
    return QueryString.unescapeBuffer(s, decodeSpaces).toString();
  }
}

function qsEscape(str) {
  if (typeof str !== 'string') {
    if (typeof str === 'object') str = String(str);
    else str += '';
  }
  return encodeURIComponent(str);
}

function stringifyPrimitive(v) {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && isFinite(v)) return '' + v;
  if (typeof v === 'bigint') return '' + v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return '';
}

function encodeStringified(v, encode) {
  if (typeof v === 'string') return v.length ? encode(v) : '';
  if (typeof v === 'number' && isFinite(v)) return Math.abs(v) < 1e21 ? '' + v : encode('' + v);
  if (typeof v === 'bigint') return '' + v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return '';
}

function stringify(obj, sep, eq, options) {
  sep = sep || '&';
  eq = eq || '=';
  let encode = QueryString.escape;
  if (options && typeof options.encodeURIComponent === 'function') encode = options.encodeURIComponent;
  const convert = encode === qsEscape ? encodeStringified : (v, enc) => enc(stringifyPrimitive(v));
  if (obj === null || typeof obj !== 'object') return '';
  let fields = '';
  for (const k of Object.keys(obj)) {
    const v = obj[k];
    const ks = convert(k, encode) + eq;
    if (Array.isArray(v)) {
      if (v.length === 0) continue;
      if (fields) fields += sep;
      for (let j = 0; j < v.length; ++j) {
        if (j) fields += sep;
        fields += ks + convert(v[j], encode);
      }
    } else {
      if (fields) fields += sep;
      fields += ks + convert(v, encode);
    }
  }
  return fields;
}

function parse(qs, sep, eq, options) {
  const obj = Object.create(null);
  if (typeof qs !== 'string' || qs.length === 0) return obj;
  sep = sep ? String(sep) : '&';
  eq = eq ? String(eq) : '=';
  let pairs = 1000;
  if (options && typeof options.maxKeys === 'number') pairs = options.maxKeys > 0 ? options.maxKeys : Infinity;
  let decode = QueryString.unescape;
  if (options && typeof options.decodeURIComponent === 'function') decode = options.decodeURIComponent;
  const decodeStr = (s) => {
    if (!/[%+]/.test(s)) return s;
    s = s.replace(/\+/g, '%20');
    try { return decode(s); } catch (e) { return QueryString.unescape(s, true); }
  };
  for (const part of qs.split(sep)) {
    if (part.length > 0) {
      const idx = part.indexOf(eq);
      const k = decodeStr(idx >= 0 ? part.slice(0, idx) : part);
      const v = decodeStr(idx >= 0 ? part.slice(idx + eq.length) : '');
      const cur = obj[k];
      if (cur === undefined) obj[k] = v;
      else if (Array.isArray(cur)) cur.push(v);
      else obj[k] = [cur, v];
    }
    if (--pairs === 0) break;
  }
  return obj;
}

const QueryString = module.exports = {
  unescapeBuffer, unescape: qsUnescape, escape: qsEscape,
  stringify, encode: stringify, parse, decode: parse,
};
