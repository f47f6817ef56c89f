// Compatibility hook (jose@4): the client presents a token from a partner identity provider
// (client.metadata.partner_token); the hook verifies it against the partner's published JWKS,
// fetched with jose's createRemoteJWKSet over Node's https, and copies its subject into the token.
module.exports = function (client, scope, audience, context, cb) {
  const jose = require('jose@4.15.9');
  const JWKS = jose.createRemoteJWKSet(new URL('https://partner.example.com/.well-known/jwks.json'));
  jose.jwtVerify(client.metadata.partner_token, JWKS, { algorithms: ['ES256'] })
    .then(function (verified) {
      const access_token = { scope: scope };
      access_token['https://example.com/partner_sub'] = verified.payload.sub;
      access_token['https://example.com/partner_kid'] = verified.protectedHeader.kid;
      cb(null, access_token);
    })
    .catch(function (err) {
      cb(new InvalidRequestError('partner token rejected: ' + err.code));
    });
};
