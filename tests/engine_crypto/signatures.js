const crypto = require('crypto');
const ED25519 = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEID6zzI7Dl+RdQ9ewfhVO14JUw1bqEYNzGTw+Ozi6ikdS\n-----END PRIVATE KEY-----\n";
const P384 = "-----BEGIN PRIVATE KEY-----\nMIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDCLaWq51FFPqt5tbKTQ\nJBhiOiU7pxRbv6xL+euKak4MPPodPSIzcmdFsCw9viSIoGShZANiAASD1Bj8ssqq\nbDmJrv4jgOymfc7dH8mEQ1RBfmGB2Bz3h1DMGhTZpyMbC/FN8Ds5gAAGQf92Xv1H\nnPA3P5bDG6JftvuBj4qiFO2B9J5SRjaklvtaD+vg3hPFRtUWpt90c6M=\n-----END PRIVATE KEY-----\n";
const CERT = "-----BEGIN CERTIFICATE-----\nMIIBhjCCAS2gAwIBAgIUNys4RZwONPqwvAcI/1OZQmDmKFgwCgYIKoZIzj0EAwIw\nGDEWMBQGA1UEAwwNaG9va2dhdGUtdGVzdDAgFw0yNjEyMDExNTU4NDJaGA8yMTI2\nMTEwNzE1NTg0MlowGDEWMBQGA1UEAwwNaG9va2dhdGUtdGVzdDBZMBMGByqGSM49\nAgEGCCqGSM49AwEHA0IABKlZfLOpdBzmNEuBIKfNh80iOeKkryiWyrgTl7b0k0Oe\nBpiWQUGtURF4p1vygPQq4ctd9peSPqWMfRqIZlYo2WWjUzBRMB0GA1UdDgQWBBR4\nWa85c1bOOu6gtqvEcqFsgXsKozAfBgNVHSMEGDAWgBR4Wa85c1bOOu6gtqvEcqFs\ngXsKozAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIGUaho/tYt4e\nH0bjsyaaJ6ElTeOCNAZY9KpX8+40aEheAiBPkngwmVuhZIRwuY6bBXP2ZHyvzZwD\nUtmVUWbuR51ksQ==\n-----END CERTIFICATE-----\n";
const RSA = "-----BEGIN RSA PRIVATE KEY-----\nMIIEogIBAAKCAQEAsSj+Qc/5FEonmQKZrCLdUlo5z7HygSEGeoRmDOMHt1sWcVRH\nFyXk2Ialq4sIhV4cHJqqLDRFc0J1lAO/DjGXWvL5Cn2kE4Rylfg+su01rzu5JowO\nATjebVsShfYO/Z9ZwXw1S3QVJKjHjGasfjcFrR0MIRB/drR2IOzZnMJNjYvgp96W\n+/uyjALAHCjSYs6EnXoe2hd2f9kjr0Jk/JuSDWHh3KsYFJD0wLssevWNgJaA2iQB\nGDNLZ7M5CA+WPNAhJMczLPPhxohyY7osN5V+98xbw9gHw4jqfvKvccBSDjRMRa6+\nE8U/AR+fuHX8GfbeI5JqZgwYrTQ1cZiIqvW0twIDAQABAoH/CpjpJ4R/hqxVX5uE\n9TW0Nz9m1nAEzlUpO5vBPeoRTS4fMBBr4h/Qz4sbq/4LEXXF7vRv4ruL1B6hRQd2\ngnq2Bg9XVDF1PYGSiN+G4J3wc0e9qwfyc2WwNpCmYcmDzfHSJRESw/CyCVHJ3xfU\nZQrYhqdWtR0eTrySdxv5VOuLol7UEGl3XTgUURmImEk5111iIQ0o11APtzkghJGQ\nBp8c8GwIyRpU8gmEGN3rn3g2pzHCAFSuvtHR154NZ0ZB3mWUQoDfD+2E9WCVAg1d\nWCl+dYj6ZB1YIKHhNI3j2LAeLULKceC9Qo49/SOKMbfwCyG7wQeSVhNh2I6e5EwT\ntbZpAoGBANqpO9k19cq01uXnLcLxrPxsYesPdCJw9lv8vQJyQQswy7UmPtV9SMcu\nTrIEX/fie23HAa3jRIBwECvYrE2h6JlStunOm/kbvl1bgMDKHFGTNvJvMtm2ss8n\nyhtrJK3DtoxjdKEtZsPFnS+xY690ETBaP3ctirvRJL0buL9BTavvAoGBAM9pi9l1\nbkUrThaQZi8sUg3j13M3Vp1kqDUBa4fruGZBJ2gAxhnU+Vg8i6LeSPux6/htmPJO\nHQXjcByQEdPh/1pG1mr7IY9U0pzUQMpgRsCwLOp+lp7hvA+atMw6tt9cqw8uLR4j\nCE9HjtnQUWe4JTGbs4JtS0am9NPb/lfRMdu5AoGAJ86laZ7MN3ICqWoTx6itwGqO\nzPdMQjTkdMynMDnSo5Hnk/v5dm5PgItqojfvrLYbmFmhcaGtR+Ce4QyaGav/J2KK\nkDgf5xLo7iAJaY+h5ivx1eLuk/oRxWrN/X3c+JFnu1kj02/rhHqGajdWGYv80Rus\n8CpnVlf140OXt6HQ3RsCgYEAlLr32Mj3eMwz48RKMhuS/3jZXzpYdubeI5xQEph6\nk4C3FEIxzAZHgvlvnCvPpAUS1AMrQN24vCc6lpDM5+ZQaNkRGofYqeJGYMVnbHeb\nZMMwgjqiIW53n6ztZuHXjtXxqCIRomG2rLsAebqDFWAb87XWBHoBF7nTKDTB7xEI\nsqkCgYEA1DGqjFS566ilqNN24k6Q5DpxujZCznqu/mE2/YpS6l0Da7X1GmNJKi3R\nDjX/C4MQt5KHBvCND4AW5+hCaaVtTSQMo4w2pj0m6IbyGiFnY3qb3uhmw7Uht9rj\ne5w57YWdI0jXVx0/Z4nJipVQs7/BeemHxDT2RxqEQwCtyq9TMEU=\n-----END RSA PRIVATE KEY-----\n";
const EC = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIOwJi7uTRCj8pC+TmBZMyciOE+87BGXoapZ9+cvXwqY6oAoGCCqGSM49\nAwEHoUQDQgAEPKWaID61msRAFg+hb1+ttuoQ1MHJiPavP2qKW0f4SmSO7/1mge5J\nWsYCMYGqXQhlj40Tkd/+OWWM03Hg6SKlWQ==\n-----END EC PRIVATE KEY-----\n";
function failure(f) {
  try { f(); return 'no error'; } catch (err) { return [err.name, err.code || null, err.message].join(' | '); }
}

// Signatures: Ed25519 and RSA PKCS#1 are deterministic (compared as bytes); ECDSA and PSS are
// checked by verifying. Sign/Verify as streams, the callback forms, and the errors.
module.exports = function (cb) {
  const data = Buffer.from('payload to sign');
  const out = {};
  out.ed25519 = crypto.sign(null, data, ED25519).toString('base64');
  out.ed25519Verify = [crypto.verify(null, data, crypto.createPublicKey(ED25519), Buffer.from(out.ed25519, 'base64')), crypto.verify(null, Buffer.from('other'), ED25519, Buffer.from(out.ed25519, 'base64'))];
  out.rsa = ['RSA-SHA256', 'sha384', 'SHA512', 'sha256WithRSAEncryption'].map((alg) => crypto.sign(alg, data, RSA).toString('hex').slice(0, 32));
  const pss = crypto.sign('sha256', data, { key: RSA, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST });
  out.pss = [pss.length, crypto.verify('sha256', data, { key: crypto.createPublicKey(RSA), padding: 6, saltLength: 32 }, pss), crypto.verify('sha256', data, { key: RSA, padding: 6 }, pss), crypto.verify('sha256', data, RSA, pss)];
  const p384 = crypto.sign('sha384', data, { key: P384, dsaEncoding: 'ieee-p1363' });
  out.p384 = [p384.length, crypto.verify('sha384', data, { key: P384, dsaEncoding: 'ieee-p1363' }, p384), crypto.verify('sha384', data, P384, p384)];
  const der = crypto.sign('sha256', data, EC);
  out.ecDer = [der[0], crypto.verify('sha256', data, EC, der), crypto.verify('sha256', Buffer.from('x'), EC, der)];
  const signer = crypto.createSign('sha256');
  signer.write('payload ');
  signer.end('to sign');
  out.streamed = signer.sign(RSA, 'hex') === crypto.sign('sha256', data, RSA).toString('hex');
  const verifier = crypto.createVerify('RSA-SHA256');
  verifier.update('payload to ');
  verifier.update(Buffer.from('sign'));
  out.verifier = verifier.verify(crypto.createPublicKey(RSA).export({ type: 'spki', format: 'pem' }), crypto.sign('sha256', data, RSA).toString('base64'), 'base64');
  out.errors = [
    failure(() => crypto.createSign('sha256').update('x').sign(crypto.createPublicKey(RSA))),
    failure(() => crypto.sign('sha256', data, crypto.createSecretKey(Buffer.from('k')))),
    failure(() => crypto.createSign('nope')),
    failure(() => crypto.sign('sha256', 'not a buffer', RSA)),
  ];
  crypto.sign('sha256', data, EC, function (err, sig) {
    crypto.verify('sha256', data, EC, sig, function (err2, ok) {
      out.callbacks = [err, err2, ok];
      cb(null, out);
    });
  });
};
