// hookgate's `buffer`: feross/buffer@6 (Node's Buffer on Uint8Array), plus the Node names it lacks
// and Node's UTF-8 decoding: an invalid sequence becomes one U+FFFD per maximal subpart (WHATWG,
// as V8 does); buffer@6 emits one per byte, which shows in every lossy decode.
// Must not touch: the global `Buffer` (globals/process.js installs this module's Buffer).
'use strict';
const b = require('buffer/index.js');
const Buffer = b.Buffer;

function utf8Decode(buf, start, end) {
  let out = '';
  const chunk = [];
  let i = start;
  while (i < end) {
    const b0 = buf[i];
    if (b0 < 0x80) {
      chunk.push(b0);
      i++;
    } else {
      let need = 0;
      let cp = 0;
      if (b0 >= 0xC2 && b0 <= 0xDF) { need = 1; cp = b0 & 0x1F; } else if (b0 >= 0xE0 && b0 <= 0xEF) { need = 2; cp = b0 & 0x0F; } else if (b0 >= 0xF0 && b0 <= 0xF4) { need = 3; cp = b0 & 0x07; }
      if (need === 0) {
        chunk.push(0xFFFD);
        i++;
      } else {
        let lower = b0 === 0xE0 ? 0xA0 : b0 === 0xF0 ? 0x90 : 0x80;
        let upper = b0 === 0xED ? 0x9F : b0 === 0xF4 ? 0x8F : 0xBF;
        let j = i + 1;
        let ok = true;
        for (let k = 0; k < need; k++, j++) {
          const c = buf[j];
          if (j >= end || c < lower || c > upper) { ok = false; break; }
          lower = 0x80;
          upper = 0xBF;
          cp = (cp << 6) | (c & 0x3F);
        }
        if (!ok) chunk.push(0xFFFD);
        else if (cp > 0xFFFF) { cp -= 0x10000; chunk.push(0xD800 | (cp >> 10), 0xDC00 | (cp & 0x3FF)); } else chunk.push(cp);
        i = j;
      }
    }
    if (chunk.length > 4096) { out += String.fromCharCode.apply(null, chunk); chunk.length = 0; }
  }
  return out + String.fromCharCode.apply(null, chunk);
}

const toString = Buffer.prototype.toString;
Buffer.prototype.toString = function (encoding, start, end) {
  if (arguments.length === 0 || encoding === undefined || encoding === 'utf8' || encoding === 'utf-8' || (typeof encoding === 'string' && /^utf-?8$/i.test(encoding))) {
    const len = this.length;
    start = start === undefined || start < 0 ? 0 : Math.min(start | 0, len);
    end = end === undefined || end > len ? len : Math.max(end | 0, 0);
    return end <= start ? '' : utf8Decode(this, start, end);
  }
  return toString.apply(this, arguments);
};
Buffer.prototype.toLocaleString = Buffer.prototype.toString;

b.constants = { MAX_LENGTH: b.kMaxLength, MAX_STRING_LENGTH: (1 << 29) - 24 };
module.exports = b;
