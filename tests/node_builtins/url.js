// Legacy url.parse/format/resolve (Node's legacy semantics) and the helpers around them.
const url = require('url');
module.exports = function (cb) {
  const p = url.parse('http://user:pw@host:8080/p/a/t/h?query=string#hash', true);
  const fields = {};
  for (const k of ['protocol', 'slashes', 'auth', 'host', 'port', 'hostname', 'hash', 'search', 'query', 'pathname', 'path', 'href']) fields[k] = p[k];
  const plain = url.parse('https://Example.COM/a%20b?x=1&x=2&y');
  cb(null, {
    fields,
    queryString: url.parse('/p?a=1', false).query,
    plain: [plain.host, plain.pathname, plain.search, plain.query, plain.href],
    relative: [url.parse('/just/a/path?q=1').pathname, url.parse('//cdn.example/x', false, true).host, url.parse('mailto:a@b.c').href],
    format: [
      url.format({ protocol: 'https', hostname: 'example.com', pathname: '/some/path', query: { page: 1, format: 'json', tags: ['a', 'b'] } }),
      url.format(p),
      url.format({ protocol: 'http:', host: 'a.b:81', hash: 'frag', search: '?s=1' }),
    ],
    resolve: [url.resolve('/one/two/three', 'four'), url.resolve('http://example.com/', '/one'), url.resolve('http://example.com/one', '/two'), url.resolve('http://a/b/c/d;p?q', '../g')],
    domainToASCII: [url.domainToASCII('español.com'), url.domainToASCII('xn--iñvalid.com')],
    shape: [typeof url.Url, typeof url.fileURLToPath, typeof url.pathToFileURL],
  });
};
