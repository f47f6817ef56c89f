// Buffer the way packages use it: encodings both ways, concat, slices, binary read/write.
const { Buffer: B } = require('buffer');
module.exports = function (cb) {
  const s = 'héllo wörld ✓';
  const b = Buffer.from(s);
  const w = Buffer.alloc(16);
  w.writeUInt32BE(0xdeadbeef, 0);
  w.writeInt16LE(-2, 4);
  w.writeDoubleLE(1.5, 6);
  w.writeUInt8(255, 14);
  cb(null, {
    global: B === Buffer,
    byteLength: [Buffer.byteLength(s), s.length, Buffer.byteLength('aGk=', 'base64')],
    hex: b.toString('hex'),
    base64: b.toString('base64'),
    fromHex: Buffer.from('68c3a96c6c6f', 'hex').toString(),
    fromBase64: Buffer.from('aMOpbGxv', 'base64').toString('utf8'),
    base64Loose: Buffer.from('aGk=\n', 'base64').toString(),
    latin1: [Buffer.from('héllo', 'latin1').toString('hex'), Buffer.from([0xe9, 0x41]).toString('latin1')],
    binary: Buffer.from([0xe9, 0x41]).toString('binary'),
    ascii: Buffer.from([0x68, 0x69]).toString('ascii'),
    ucs2: [Buffer.from('hé', 'ucs2').toString('hex'), Buffer.from('68006500', 'hex').toString('utf16le')],
    concat: Buffer.concat([Buffer.from('ab'), Buffer.from('cd')]).toString(),
    alloc: [Buffer.alloc(3, 1).toString('hex'), Buffer.allocUnsafe(5).length],
    isBuffer: [Buffer.isBuffer(b), Buffer.isBuffer(new Uint8Array(2)), Buffer.isBuffer('x')],
    slice: [b.slice(1, 3).toString('hex'), b.subarray(-3).toString('hex')],
    json: JSON.stringify(Buffer.from('hi')),
    compare: [Buffer.from('a').equals(Buffer.from('a')), Buffer.compare(Buffer.from('a'), Buffer.from('b'))],
    rw: [w.toString('hex'), w.readUInt32BE(0), w.readInt16LE(4), w.readDoubleLE(6), w.readUInt8(14), w.readUInt16BE(0)],
    search: [b.indexOf('w'), b.includes('wör')],
    inspect: require('util').inspect(Buffer.from('abc')),
    uint8: b instanceof Uint8Array,
    lossy: [Buffer.from([0xe0, 0xa4, 0x41, 0xff, 0xf0, 0x9f, 0x98]).toString(), Buffer.from([0xed, 0xa0, 0x80, 0xc0, 0xaf]).toString('utf8'), Buffer.from('f09f9880', 'hex').toString()],
  });
};
