// Compatibility hook (jose@4): the same tokens minted with jose's CommonJS build — keys imported
// as KeyObjects, PKCS#8 and JWK, an ES256 token checked through a JWKS, and a partner's token
// verified. `iat` is fixed so RS256 and HS256 are the same bytes under Node and hookgate.
module.exports = function (client, scope, audience, context, cb) {
  const jose = require('jose@4.15.9');
  const crypto = require('crypto');
  const secrets = context.webtask.secrets;
  const at = { currentDate: new Date(1700000060 * 1000) };
  const claims = { scope: scope.join(' ') };

  function mint(alg, key) {
    return new jose.SignJWT(claims)
      .setProtectedHeader({ alg: alg, kid: 'k1' })
      .setSubject(client.id)
      .setIssuer('https://my-tenant.auth0.com/')
      .setAudience('https://billing.example.com/')
      .setIssuedAt(1700000000)
      .sign(key);
  }

  (async function () {
    const rsaKey = crypto.createPrivateKey(secrets.JWT_RSA_KEY);
    const ecPkcs8 = crypto.createPrivateKey(secrets.JWT_EC_KEY).export({ type: 'pkcs8', format: 'pem' });
    const ecKey = await jose.importPKCS8(ecPkcs8, 'ES256');
    const hsKey = new TextEncoder().encode(secrets.JWT_HS_SECRET);
    const rs256 = await mint('RS256', rsaKey);
    const hs256 = await mint('HS256', hsKey);
    const es256 = await mint('ES256', ecKey);

    const ecJwk = await jose.exportJWK(crypto.createPublicKey(secrets.JWT_EC_KEY));
    const jwks = jose.createLocalJWKSet({ keys: [Object.assign({ kid: 'k1', alg: 'ES256', use: 'sig' }, ecJwk)] });
    const rsaJwk = await jose.exportJWK(crypto.createPublicKey(secrets.JWT_RSA_KEY));

    const access_token = { scope: scope };
    access_token['https://example.com/rs256'] = rs256;
    access_token['https://example.com/hs256'] = hs256;
    access_token['https://example.com/ec_jwk'] = ecJwk;
    access_token['https://example.com/rs256_sub'] = (await jose.jwtVerify(rs256, await jose.importJWK(rsaJwk, 'RS256'), at)).payload.sub;
    access_token['https://example.com/hs256_sub'] = (await jose.jwtVerify(hs256, hsKey, at)).payload.sub;
    access_token['https://example.com/es256_sub'] = (await jose.jwtVerify(es256, jwks, at)).payload.sub;
    access_token['https://example.com/partner_sub'] = (await jose.jwtVerify(client.metadata.partner_token, jwks, at)).payload.sub;
    try {
      await jose.jwtVerify(es256.slice(0, -4) + 'AAAA', jwks, at);
      access_token['https://example.com/tampered'] = 'accepted';
    } catch (err) {
      access_token['https://example.com/tampered'] = err.code + ': ' + err.message;
    }
    return access_token;
  })().then(function (token) { cb(null, token); }, function (err) { cb(err); });
};
