// Compatibility hook (jsonwebtoken@9 and jose@4): mints ES256 tokens only. ECDSA signatures differ
// on every run, so tests/node_compat.rs does not compare them with Node's: it hands the tokens
// hookgate minted here to Node, which must verify them with the public key.
module.exports = function (client, scope, audience, context, cb) {
  const jwt = require('jsonwebtoken@9.0.3');
  const jose = require('jose@4.15.9');
  const crypto = require('crypto');
  const key = context.webtask.secrets.JWT_EC_KEY;
  const jsonwebtoken = jwt.sign({ sub: client.id, iat: 1700000000 }, key, { algorithm: 'ES256', keyid: 'k1' });
  new jose.SignJWT({ scope: scope.join(' ') })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setSubject(client.id)
    .setIssuedAt(1700000000)
    .sign(crypto.createPrivateKey(key))
    .then(function (joseToken) {
      cb(null, { scope: scope, 'https://example.com/jsonwebtoken': jsonwebtoken, 'https://example.com/jose': joseToken });
    }, cb);
};
