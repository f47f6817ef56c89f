// Compatibility hook (twilio@3.84.1's JWT helpers): mints a Twilio Video access token and a Client
// capability token for the client — HS256 through twilio's own jsonwebtoken — and reads them back.
// The tokens carry the current time, so the claims are compared, not the bytes.
module.exports = function (client, scope, audience, context, cb) {
  const twilio = require('twilio@3.84.1');
  const AccessToken = twilio.jwt.AccessToken;
  const secrets = context.webtask.secrets;
  const token = new AccessToken(secrets.TWILIO_ACCOUNT_SID, secrets.TWILIO_API_KEY, secrets.TWILIO_API_SECRET, { identity: client.id, ttl: 600 });
  token.addGrant(new AccessToken.VideoGrant({ room: 'support' }));
  const capability = new twilio.jwt.ClientCapability({ accountSid: secrets.TWILIO_ACCOUNT_SID, authToken: secrets.TWILIO_AUTH_TOKEN });
  capability.addScope(new twilio.jwt.ClientCapability.OutgoingClientScope({ applicationSid: 'AP0123456789abcdef0123456789abcdef' }));

  // Read back with Node's crypto: split, check the HMAC, decode.
  const crypto = require('crypto');
  function check(jwt, secret) {
    const parts = jwt.split('.');
    const mac = crypto.createHmac('sha256', secret).update(parts[0] + '.' + parts[1]).digest('base64')
      .replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
    const valid = crypto.timingSafeEqual(Buffer.from(mac), Buffer.from(parts[2]));
    return { valid: valid, header: JSON.parse(Buffer.from(parts[0], 'base64').toString()), claims: JSON.parse(Buffer.from(parts[1], 'base64').toString()) };
  }
  const video = check(token.toJwt(), secrets.TWILIO_API_SECRET);
  const voice = check(capability.toJwt(), secrets.TWILIO_AUTH_TOKEN);
  const access_token = { scope: scope };
  access_token['https://example.com/twilio_video'] = {
    valid: video.valid, header: video.header, grants: video.claims.grants, iss: video.claims.iss,
    sub: video.claims.sub, ttl: video.claims.exp - video.claims.iat,
  };
  access_token['https://example.com/twilio_voice'] = { valid: voice.valid, scope: voice.claims.scope, iss: voice.claims.iss };
  cb(null, access_token);
};
