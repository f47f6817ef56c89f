const crypto = require('crypto');
const ED25519 = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEID6zzI7Dl+RdQ9ewfhVO14JUw1bqEYNzGTw+Ozi6ikdS\n-----END PRIVATE KEY-----\n";
const P384 = "-----BEGIN PRIVATE KEY-----\nMIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDCLaWq51FFPqt5tbKTQ\nJBhiOiU7pxRbv6xL+euKak4MPPodPSIzcmdFsCw9viSIoGShZANiAASD1Bj8ssqq\nbDmJrv4jgOymfc7dH8mEQ1RBfmGB2Bz3h1DMGhTZpyMbC/FN8Ds5gAAGQf92Xv1H\nnPA3P5bDG6JftvuBj4qiFO2B9J5SRjaklvtaD+vg3hPFRtUWpt90c6M=\n-----END PRIVATE KEY-----\n";
const CERT = "-----BEGIN CERTIFICATE-----\nMIIBhjCCAS2gAwIBAgIUNys4RZwONPqwvAcI/1OZQmDmKFgwCgYIKoZIzj0EAwIw\nGDEWMBQGA1UEAwwNaG9va2dhdGUtdGVzdDAgFw0yNjEyMDExNTU4NDJaGA8yMTI2\nMTEwNzE1NTg0MlowGDEWMBQGA1UEAwwNaG9va2dhdGUtdGVzdDBZMBMGByqGSM49\nAgEGCCqGSM49AwEHA0IABKlZfLOpdBzmNEuBIKfNh80iOeKkryiWyrgTl7b0k0Oe\nBpiWQUGtURF4p1vygPQq4ctd9peSPqWMfRqIZlYo2WWjUzBRMB0GA1UdDgQWBBR4\nWa85c1bOOu6gtqvEcqFsgXsKozAfBgNVHSMEGDAWgBR4Wa85c1bOOu6gtqvEcqFs\ngXsKozAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIGUaho/tYt4e\nH0bjsyaaJ6ElTeOCNAZY9KpX8+40aEheAiBPkngwmVuhZIRwuY6bBXP2ZHyvzZwD\nUtmVUWbuR51ksQ==\n-----END CERTIFICATE-----\n";
const RSA = "-----BEGIN RSA PRIVATE KEY-----\nMIIEogIBAAKCAQEAsSj+Qc/5FEonmQKZrCLdUlo5z7HygSEGeoRmDOMHt1sWcVRH\nFyXk2Ialq4sIhV4cHJqqLDRFc0J1lAO/DjGXWvL5Cn2kE4Rylfg+su01rzu5JowO\nATjebVsShfYO/Z9ZwXw1S3QVJKjHjGasfjcFrR0MIRB/drR2IOzZnMJNjYvgp96W\n+/uyjALAHCjSYs6EnXoe2hd2f9kjr0Jk/JuSDWHh3KsYFJD0wLssevWNgJaA2iQB\nGDNLZ7M5CA+WPNAhJMczLPPhxohyY7osN5V+98xbw9gHw4jqfvKvccBSDjRMRa6+\nE8U/AR+fuHX8GfbeI5JqZgwYrTQ1cZiIqvW0twIDAQABAoH/CpjpJ4R/hqxVX5uE\n9TW0Nz9m1nAEzlUpO5vBPeoRTS4fMBBr4h/Qz4sbq/4LEXXF7vRv4ruL1B6hRQd2\ngnq2Bg9XVDF1PYGSiN+G4J3wc0e9qwfyc2WwNpCmYcmDzfHSJRESw/CyCVHJ3xfU\nZQrYhqdWtR0eTrySdxv5VOuLol7UEGl3XTgUURmImEk5111iIQ0o11APtzkghJGQ\nBp8c8GwIyRpU8gmEGN3rn3g2pzHCAFSuvtHR154NZ0ZB3mWUQoDfD+2E9WCVAg1d\nWCl+dYj6ZB1YIKHhNI3j2LAeLULKceC9Qo49/SOKMbfwCyG7wQeSVhNh2I6e5EwT\ntbZpAoGBANqpO9k19cq01uXnLcLxrPxsYesPdCJw9lv8vQJyQQswy7UmPtV9SMcu\nTrIEX/fie23HAa3jRIBwECvYrE2h6JlStunOm/kbvl1bgMDKHFGTNvJvMtm2ss8n\nyhtrJK3DtoxjdKEtZsPFnS+xY690ETBaP3ctirvRJL0buL9BTavvAoGBAM9pi9l1\nbkUrThaQZi8sUg3j13M3Vp1kqDUBa4fruGZBJ2gAxhnU+Vg8i6LeSPux6/htmPJO\nHQXjcByQEdPh/1pG1mr7IY9U0pzUQMpgRsCwLOp+lp7hvA+atMw6tt9cqw8uLR4j\nCE9HjtnQUWe4JTGbs4JtS0am9NPb/lfRMdu5AoGAJ86laZ7MN3ICqWoTx6itwGqO\nzPdMQjTkdMynMDnSo5Hnk/v5dm5PgItqojfvrLYbmFmhcaGtR+Ce4QyaGav/J2KK\nkDgf5xLo7iAJaY+h5ivx1eLuk/oRxWrN/X3c+JFnu1kj02/rhHqGajdWGYv80Rus\n8CpnVlf140OXt6HQ3RsCgYEAlLr32Mj3eMwz48RKMhuS/3jZXzpYdubeI5xQEph6\nk4C3FEIxzAZHgvlvnCvPpAUS1AMrQN24vCc6lpDM5+ZQaNkRGofYqeJGYMVnbHeb\nZMMwgjqiIW53n6ztZuHXjtXxqCIRomG2rLsAebqDFWAb87XWBHoBF7nTKDTB7xEI\nsqkCgYEA1DGqjFS566ilqNN24k6Q5DpxujZCznqu/mE2/YpS6l0Da7X1GmNJKi3R\nDjX/C4MQt5KHBvCND4AW5+hCaaVtTSQMo4w2pj0m6IbyGiFnY3qb3uhmw7Uht9rj\ne5w57YWdI0jXVx0/Z4nJipVQs7/BeemHxDT2RxqEQwCtyq9TMEU=\n-----END RSA PRIVATE KEY-----\n";
const EC = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIOwJi7uTRCj8pC+TmBZMyciOE+87BGXoapZ9+cvXwqY6oAoGCCqGSM49\nAwEHoUQDQgAEPKWaID61msRAFg+hb1+ttuoQ1MHJiPavP2qKW0f4SmSO7/1mge5J\nWsYCMYGqXQhlj40Tkd/+OWWM03Hg6SKlWQ==\n-----END EC PRIVATE KEY-----\n";
function failure(f) {
  try { f(); return 'no error'; } catch (err) { return [err.name, err.code || null, err.message].join(' | '); }
}

// KeyObject: every input format, every output format, details, equality, and the errors packages
// check for.
module.exports = function (cb) {
  const rsa = crypto.createPrivateKey(RSA);
  const ec = crypto.createPrivateKey(EC);
  const ed = crypto.createPrivateKey(ED25519);
  const p384 = crypto.createPrivateKey({ key: P384, format: 'pem' });
  const der = (k, type) => k.export({ format: 'der', type: type });
  const out = {};
  // First: OpenSSL leaves errors queued by some calls (equals on keys of different types), and
  // Node reports a stale one for the next failure.
  out.errors = [
    failure(() => crypto.createPrivateKey(crypto.createPublicKey(RSA).export({ format: 'pem', type: 'spki' }))),
    failure(() => crypto.createPrivateKey(42)),
    failure(() => crypto.createPublicKey(42)),
    failure(() => crypto.sign('sha256', Buffer.from('x'), 42)),
    failure(() => crypto.createPublicKey({ key: der(crypto.createPrivateKey(RSA), 'pkcs8'), format: 'der' })),
    failure(() => crypto.createPrivateKey(EC).export({ format: 'pem', type: 'pkcs1' })),
    failure(() => new crypto.KeyObject('secret')),
    failure(() => new crypto.KeyObject('nope')),
  ];
  // `openssl ecparam -genkey` output (parameters first), a passphrase on a key that needs none,
  // and text around the PEM block.
  out.pemVariants = [
    crypto.createPrivateKey('-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n' + EC).equals(ec),
    crypto.createPrivateKey({ key: RSA, passphrase: 'unused' }).equals(rsa),
    crypto.createPublicKey('Subject: CN=hookgate-test\n' + CERT).asymmetricKeyType,
    crypto.createPrivateKey(RSA.replace(/\n/g, '\r\n')).equals(rsa),
  ];
  out.kinds = [rsa, ec, ed, p384, crypto.createPublicKey(CERT)].map((k) => [k.type, k.asymmetricKeyType, k.asymmetricKeyDetails && JSON.stringify(k.asymmetricKeyDetails, (n, v) => typeof v === 'bigint' ? 'bigint:' + v : v)]);
  out.instance = [rsa instanceof crypto.KeyObject, Object.prototype.toString.call(rsa)];
  out.certSpki = crypto.createPublicKey(CERT).export({ format: 'der', type: 'spki' }).toString('base64');
  out.derRoundTrips = [
    crypto.createPrivateKey({ key: der(rsa, 'pkcs1'), format: 'der', type: 'pkcs1' }).equals(rsa),
    crypto.createPrivateKey({ key: der(rsa, 'pkcs8'), format: 'der', type: 'pkcs8' }).equals(rsa),
    crypto.createPrivateKey({ key: der(ec, 'sec1'), format: 'der', type: 'sec1' }).equals(ec),
    crypto.createPublicKey({ key: der(crypto.createPublicKey(rsa), 'spki'), format: 'der', type: 'spki' }).equals(crypto.createPublicKey(RSA)),
    crypto.createPublicKey({ key: der(crypto.createPublicKey(rsa), 'pkcs1'), format: 'der', type: 'pkcs1' }).equals(crypto.createPublicKey(RSA)),
    crypto.createPublicKey(ec).equals(crypto.createPublicKey(EC)),
    rsa.equals(ec),
    rsa.equals(crypto.createPublicKey(rsa)),
  ];
  out.pem = [ed.export({ format: 'pem', type: 'pkcs8' }), crypto.createPublicKey(ed).export({ format: 'pem', type: 'spki' }), crypto.createPublicKey(p384).export({ format: 'pem', type: 'spki' })];
  out.jwk = [ed.export({ format: 'jwk' }), crypto.createPublicKey(p384).export({ format: 'jwk' })];
  out.jwkBack = [
    crypto.createPrivateKey({ key: ed.export({ format: 'jwk' }), format: 'jwk' }).equals(ed),
    crypto.createPublicKey({ key: p384.export({ format: 'jwk' }), format: 'jwk' }).equals(crypto.createPublicKey(p384)),
    crypto.createPrivateKey({ key: rsa.export({ format: 'jwk' }), format: 'jwk' }).equals(rsa),
  ];
  const secret = crypto.createSecretKey('s3cret', 'utf8');
  out.secret = [secret.type, secret.symmetricKeySize, secret.asymmetricKeyType, secret.export().toString(), secret.equals(crypto.createSecretKey(Buffer.from('s3cret'))), secret.equals(crypto.createSecretKey(Buffer.from('other')))];
  out.hmacWithKeyObject = crypto.createHmac('sha256', secret).update('x').digest('hex');
  cb(null, out);
};
