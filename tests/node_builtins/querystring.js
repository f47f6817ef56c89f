// querystring.stringify/parse with arrays, escapes, custom separators.
const qs = require('querystring');
module.exports = function (cb) {
  cb(null, {
    stringify: [
      qs.stringify({ a: [1, 2], b: 'x y', c: 'ü&=', d: '', e: true, f: null }),
      qs.stringify({ w: 'a', x: 'b' }, ';', ':'),
      qs.stringify({ "it's": "(*)!~" }),
    ],
    parse: [
      qs.parse('a=1&a=2&b=x%20y&c=%C3%BC%26%3D&d&e=&plus=a+b'),
      qs.parse('w:a;x:b', ';', ':'),
      qs.parse('a=1&b=2&c=3', null, null, { maxKeys: 2 }),
      qs.parse('bad=%E0%A4%A'),
    ],
    escape: [qs.escape('a b&c/ü'), qs.unescape('a%20b%26'), qs.unescape('%zz%20')],
  });
};
