// path (POSIX): join, resolve (cwd is '/' in hookgate; only absolute inputs here, so Node agrees),
// relative, normalize, parse, and the small helpers.
const path = require('path');
module.exports = function (cb) {
  cb(null, {
    join: [path.join('/a/b', '../c', './d.txt'), path.join('a', '', 'b/'), path.join()],
    resolve: [path.resolve('/foo/bar', './baz'), path.resolve('/foo/bar', '/tmp/file/'), path.resolve('/a', 'b', '..', 'c')],
    relative: [path.relative('/data/orandea/test/aaa', '/data/orandea/impl/bbb'), path.relative('/a', '/a'), path.relative('/a/b', '/a/b/c/d')],
    normalize: path.normalize('/foo/bar//baz/asdf/quux/..'),
    parse: path.parse('/home/user/dir/file.txt'),
    pieces: [path.basename('/a/b.html', '.html'), path.dirname('/a/b/c'), path.extname('index.coffee.md'), path.isAbsolute('x/y')],
    format: path.format({ dir: '/home/user', base: 'file.txt' }),
    sep: [path.sep, path.delimiter, path.posix === path, require('path/posix') === path],
  });
};
