// Compatibility hook (jsonwebtoken@9): mints the tokens the client's downstream APIs want — RS256
// and ES256 with keys kept as secrets, HS256 with a shared secret — and checks a partner's ES256
// token, as hooks that call other APIs do. `iat` is fixed so the RS256 and HS256 tokens are the
// same bytes under Node and under hookgate (RSA PKCS#1 v1.5 and HMAC are deterministic); ECDSA is
// not, so the ES256 token is checked by verifying, both ways.
module.exports = function (client, scope, audience, context, cb) {
  const jwt = require('jsonwebtoken@9.0.3');
  const crypto = require('crypto');
  const secrets = context.webtask.secrets;
  const claims = { sub: client.id, scope: scope.join(' '), iat: 1700000000 };
  const options = { audience: 'https://billing.example.com/', issuer: 'https://my-tenant.auth0.com/', keyid: 'k1' };
  const at = { clockTimestamp: 1700000060 };

  const rs256 = jwt.sign(claims, secrets.JWT_RSA_KEY, Object.assign({ algorithm: 'RS256' }, options));
  const hs256 = jwt.sign(claims, secrets.JWT_HS_SECRET, Object.assign({ algorithm: 'HS256', expiresIn: '5m' }, options));
  const es256 = jwt.sign(claims, secrets.JWT_EC_KEY, Object.assign({ algorithm: 'ES256' }, options));
  const ecPublic = crypto.createPublicKey(secrets.JWT_EC_KEY);
  const rsaPublic = crypto.createPublicKey(secrets.JWT_RSA_KEY).export({ type: 'spki', format: 'pem' });

  let tampered;
  try {
    jwt.verify(rs256.slice(0, -4) + 'AAAA', rsaPublic, at);
    tampered = 'accepted';
  } catch (err) {
    tampered = err.name + ': ' + err.message;
  }
  let wrongAlg;
  try {
    jwt.verify(hs256, rsaPublic, at);
    wrongAlg = 'accepted';
  } catch (err) {
    wrongAlg = err.name + ': ' + err.message;
  }

  const access_token = { scope: scope };
  access_token['https://example.com/rs256'] = rs256;
  access_token['https://example.com/hs256'] = hs256;
  access_token['https://example.com/rs256_claims'] = jwt.verify(rs256, rsaPublic, at);
  access_token['https://example.com/hs256_sub'] = jwt.verify(hs256, secrets.JWT_HS_SECRET, at).sub;
  access_token['https://example.com/es256_header'] = jwt.decode(es256, { complete: true }).header;
  access_token['https://example.com/es256_sub'] = jwt.verify(es256, ecPublic, at).sub;
  access_token['https://example.com/partner_sub'] = jwt.verify(client.metadata.partner_token, ecPublic, at).sub;
  access_token['https://example.com/tampered'] = tampered;
  access_token['https://example.com/wrong_alg'] = wrongAlg;
  cb(null, access_token);
};
