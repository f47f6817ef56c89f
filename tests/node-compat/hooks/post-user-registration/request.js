// Compatibility hook (request@2.88.2): tells Slack about the sign-up and waits for Slack's answer;
// anything but 200 `ok` (a revoked webhook answers 404 no_service) is the hook's error.
const request = require('request');

module.exports = function (user, context, cb) {
  request.post({
    url: context.webtask.secrets.SLACK_WEBHOOK_URL,
    json: {
      text: 'New sign-up: ' + user.email,
      attachments: [{ fields: [{ title: 'Connection', value: context.connection.name, short: true }] }]
    },
    gzip: true
  }, function (err, response, body) {
    if (err) return cb(err);
    if (response.statusCode !== 200) return cb(new Error('Slack answered ' + response.statusCode + ': ' + body));
    cb(null, { slack: body });
  });
};
