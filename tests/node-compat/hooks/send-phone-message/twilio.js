// Compatibility hook (twilio@3): sends the MFA code by SMS. The Twilio client reads its credentials
// from process.env when none are passed, so the hook puts its secrets there first.
module.exports = function (recipient, text, context, cb) {
  process.env.TWILIO_ACCOUNT_SID = context.webtask.secrets.TWILIO_ACCOUNT_SID;
  process.env.TWILIO_AUTH_TOKEN = context.webtask.secrets.TWILIO_AUTH_TOKEN;
  const client = require('twilio')();

  client.messages
    .create({ body: text, from: context.webtask.secrets.TWILIO_FROM, to: recipient })
    .then(function (message) { cb(null, { MessageID: message.sid, status: message.status }); })
    .catch(function (err) { cb(err); });
};
