// Compatibility hook (axios@0.19.2): adds the client's billing plan to its M2M token, read from a
// billing API whose proxy gzips every answer.
module.exports = function (client, scope, audience, context, cb) {
  const axios = require('axios@0.19.2');
  const access_token = { scope: scope };

  axios.get('https://billing.example.com/v1/customers/' + encodeURIComponent(client.id) + '/subscription', {
    headers: { Authorization: 'Bearer ' + context.webtask.secrets.BILLING_API_KEY },
    timeout: 5000
  })
    .then(function (response) {
      access_token['https://example.com/plan'] = response.data.plan;
      access_token['https://example.com/seats'] = response.data.seats;
      cb(null, access_token);
    })
    .catch(function (err) {
      cb(new ServerError('billing lookup failed: ' + err.message));
    });
};
