// Compatibility hook (Node's own https module, no package): tells the security team's Slack
// channel about a password change with a hand-built https.request, as hooks without dependencies
// did.
const https = require('https');

module.exports = function (user, context, cb) {
  const body = JSON.stringify({ text: 'Password changed for ' + user.email + ' at ' + user.last_password_reset });
  const req = https.request(new URL(context.webtask.secrets.SLACK_WEBHOOK_URL), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }
  }, function (res) {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', function (chunk) { text += chunk; });
    res.on('end', function () { cb(null, { status: res.statusCode, slack: text }); });
  });
  req.on('error', cb);
  req.end(body);
};
