// Sends the MFA code through an SMS provider's HTTP API (SMS_API_URL and SMS_API_KEY secrets)
// and answers with the provider's message id, like Auth0's Runner showed.
module.exports = function (recipient, text, context, cb) {
  fetch(context.webtask.secrets.SMS_API_URL, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'Authorization': 'Bearer ' + context.webtask.secrets.SMS_API_KEY
    },
    body: JSON.stringify({ to: recipient, body: text, channel: context.message_type })
  })
    .then(function (res) {
      if (!res.ok) throw new Error('SMS provider answered HTTP ' + res.status);
      return res.json();
    })
    .then(function (data) { cb(null, { MessageID: data.id }); })
    .catch(function (err) { cb(err); });
};
