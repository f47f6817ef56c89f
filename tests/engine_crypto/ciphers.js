const crypto = require('crypto');
const ED25519 = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEID6zzI7Dl+RdQ9ewfhVO14JUw1bqEYNzGTw+Ozi6ikdS\n-----END PRIVATE KEY-----\n";
const P384 = "-----BEGIN PRIVATE KEY-----\nMIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDCLaWq51FFPqt5tbKTQ\nJBhiOiU7pxRbv6xL+euKak4MPPodPSIzcmdFsCw9viSIoGShZANiAASD1Bj8ssqq\nbDmJrv4jgOymfc7dH8mEQ1RBfmGB2Bz3h1DMGhTZpyMbC/FN8Ds5gAAGQf92Xv1H\nnPA3P5bDG6JftvuBj4qiFO2B9J5SRjaklvtaD+vg3hPFRtUWpt90c6M=\n-----END PRIVATE KEY-----\n";
const CERT = "-----BEGIN CERTIFICATE-----\nMIIBhjCCAS2gAwIBAgIUNys4RZwONPqwvAcI/1OZQmDmKFgwCgYIKoZIzj0EAwIw\nGDEWMBQGA1UEAwwNaG9va2dhdGUtdGVzdDAgFw0yNjEyMDExNTU4NDJaGA8yMTI2\nMTEwNzE1NTg0MlowGDEWMBQGA1UEAwwNaG9va2dhdGUtdGVzdDBZMBMGByqGSM49\nAgEGCCqGSM49AwEHA0IABKlZfLOpdBzmNEuBIKfNh80iOeKkryiWyrgTl7b0k0Oe\nBpiWQUGtURF4p1vygPQq4ctd9peSPqWMfRqIZlYo2WWjUzBRMB0GA1UdDgQWBBR4\nWa85c1bOOu6gtqvEcqFsgXsKozAfBgNVHSMEGDAWgBR4Wa85c1bOOu6gtqvEcqFs\ngXsKozAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIGUaho/tYt4e\nH0bjsyaaJ6ElTeOCNAZY9KpX8+40aEheAiBPkngwmVuhZIRwuY6bBXP2ZHyvzZwD\nUtmVUWbuR51ksQ==\n-----END CERTIFICATE-----\n";
const RSA = "-----BEGIN RSA PRIVATE KEY-----\nMIIEogIBAAKCAQEAsSj+Qc/5FEonmQKZrCLdUlo5z7HygSEGeoRmDOMHt1sWcVRH\nFyXk2Ialq4sIhV4cHJqqLDRFc0J1lAO/DjGXWvL5Cn2kE4Rylfg+su01rzu5JowO\nATjebVsShfYO/Z9ZwXw1S3QVJKjHjGasfjcFrR0MIRB/drR2IOzZnMJNjYvgp96W\n+/uyjALAHCjSYs6EnXoe2hd2f9kjr0Jk/JuSDWHh3KsYFJD0wLssevWNgJaA2iQB\nGDNLZ7M5CA+WPNAhJMczLPPhxohyY7osN5V+98xbw9gHw4jqfvKvccBSDjRMRa6+\nE8U/AR+fuHX8GfbeI5JqZgwYrTQ1cZiIqvW0twIDAQABAoH/CpjpJ4R/hqxVX5uE\n9TW0Nz9m1nAEzlUpO5vBPeoRTS4fMBBr4h/Qz4sbq/4LEXXF7vRv4ruL1B6hRQd2\ngnq2Bg9XVDF1PYGSiN+G4J3wc0e9qwfyc2WwNpCmYcmDzfHSJRESw/CyCVHJ3xfU\nZQrYhqdWtR0eTrySdxv5VOuLol7UEGl3XTgUURmImEk5111iIQ0o11APtzkghJGQ\nBp8c8GwIyRpU8gmEGN3rn3g2pzHCAFSuvtHR154NZ0ZB3mWUQoDfD+2E9WCVAg1d\nWCl+dYj6ZB1YIKHhNI3j2LAeLULKceC9Qo49/SOKMbfwCyG7wQeSVhNh2I6e5EwT\ntbZpAoGBANqpO9k19cq01uXnLcLxrPxsYesPdCJw9lv8vQJyQQswy7UmPtV9SMcu\nTrIEX/fie23HAa3jRIBwECvYrE2h6JlStunOm/kbvl1bgMDKHFGTNvJvMtm2ss8n\nyhtrJK3DtoxjdKEtZsPFnS+xY690ETBaP3ctirvRJL0buL9BTavvAoGBAM9pi9l1\nbkUrThaQZi8sUg3j13M3Vp1kqDUBa4fruGZBJ2gAxhnU+Vg8i6LeSPux6/htmPJO\nHQXjcByQEdPh/1pG1mr7IY9U0pzUQMpgRsCwLOp+lp7hvA+atMw6tt9cqw8uLR4j\nCE9HjtnQUWe4JTGbs4JtS0am9NPb/lfRMdu5AoGAJ86laZ7MN3ICqWoTx6itwGqO\nzPdMQjTkdMynMDnSo5Hnk/v5dm5PgItqojfvrLYbmFmhcaGtR+Ce4QyaGav/J2KK\nkDgf5xLo7iAJaY+h5ivx1eLuk/oRxWrN/X3c+JFnu1kj02/rhHqGajdWGYv80Rus\n8CpnVlf140OXt6HQ3RsCgYEAlLr32Mj3eMwz48RKMhuS/3jZXzpYdubeI5xQEph6\nk4C3FEIxzAZHgvlvnCvPpAUS1AMrQN24vCc6lpDM5+ZQaNkRGofYqeJGYMVnbHeb\nZMMwgjqiIW53n6ztZuHXjtXxqCIRomG2rLsAebqDFWAb87XWBHoBF7nTKDTB7xEI\nsqkCgYEA1DGqjFS566ilqNN24k6Q5DpxujZCznqu/mE2/YpS6l0Da7X1GmNJKi3R\nDjX/C4MQt5KHBvCND4AW5+hCaaVtTSQMo4w2pj0m6IbyGiFnY3qb3uhmw7Uht9rj\ne5w57YWdI0jXVx0/Z4nJipVQs7/BeemHxDT2RxqEQwCtyq9TMEU=\n-----END RSA PRIVATE KEY-----\n";
const EC = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIOwJi7uTRCj8pC+TmBZMyciOE+87BGXoapZ9+cvXwqY6oAoGCCqGSM49\nAwEHoUQDQgAEPKWaID61msRAFg+hb1+ttuoQ1MHJiPavP2qKW0f4SmSO7/1mge5J\nWsYCMYGqXQhlj40Tkd/+OWWM03Hg6SKlWQ==\n-----END EC PRIVATE KEY-----\n";
function failure(f) {
  try { f(); return 'no error'; } catch (err) { return [err.name, err.code || null, err.message].join(' | '); }
}

// Ciphers as streams and in pieces, padding off, ECB and AES-192, and what Node lists.
module.exports = function (cb) {
  const hex = (s) => Buffer.from(s, 'hex');
  const out = {};
  out.ecb = crypto.createCipheriv('aes-128-ecb', hex('2b7e151628aed2a6abf7158809cf4f3c'), null).setAutoPadding(false).update(hex('6bc1bee22e409f96e93d7e117393172a')).toString('hex');
  const k192 = hex('8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b');
  const gcm = crypto.createCipheriv('aes-192-gcm', k192, hex('000102030405060708090a0b'), { authTagLength: 8 });
  const gcmCt = Buffer.concat([gcm.update('sixteen byte blk'), gcm.update('+ a tail'), gcm.final()]);
  out.gcm192 = [gcmCt.toString('hex'), gcm.getAuthTag().toString('hex')];
  const open = crypto.createDecipheriv('aes-192-gcm', k192, hex('000102030405060708090a0b'), { authTagLength: 8 });
  open.setAuthTag(gcm.getAuthTag());
  out.gcm192Back = Buffer.concat([open.update(gcmCt), open.final()]).toString();
  out.noPadding = failure(() => { const c = crypto.createCipheriv('aes-128-cbc', Buffer.alloc(16), Buffer.alloc(16)); c.setAutoPadding(false); c.update('short'); c.final(); });
  out.utf8Split = (() => {
    const key = Buffer.alloc(32, 9), iv = Buffer.alloc(16, 4);
    const c = crypto.createCipheriv('aes-256-ctr', key, iv);
    const ct = Buffer.concat([c.update('héllo wörld ✓ ✓ ✓'), c.final()]);
    const d = crypto.createDecipheriv('aes-256-ctr', key, iv);
    let s = '';
    for (let i = 0; i < ct.length; i++) s += d.update(ct.subarray(i, i + 1), null, 'utf8');
    return s + d.final('utf8');
  })();
  out.finalTwice = failure(() => { const c = crypto.createCipheriv('aes-128-ctr', Buffer.alloc(16), Buffer.alloc(16)); c.final(); c.final(); });
  out.unknown = failure(() => crypto.createCipheriv('aes-128-xyz', Buffer.alloc(16), Buffer.alloc(16)));
  out.listed = ['aes-256-gcm', 'aes-128-cbc', 'aes-256-ctr'].map((n) => crypto.getCiphers().includes(n));
  const c = crypto.createCipheriv('aes-128-cbc', Buffer.alloc(16, 1), Buffer.alloc(16, 2));
  const chunks = [];
  c.on('data', (d) => chunks.push(d));
  c.on('end', () => {
    out.stream = Buffer.concat(chunks).toString('hex');
    cb(null, out);
  });
  c.write('streamed ');
  c.end('through the Transform');
};
