// Compatibility hook (aws-sdk failures): what aws-sdk v2 does when SNS is unreachable, failing
// (500) or throttling (400 Throttling): the retries it makes (the services count them) and the
// error the hook gets. 127.0.0.1:2 has nothing listening; eu-west-3's SNS is the stub's failing one.
const AWS = require('aws-sdk');

module.exports = function (recipient, text, context, cb) {
  const secrets = context.webtask.secrets;
  const sns = (options) => new AWS.SNS(Object.assign({
    apiVersion: '2010-03-31',
    accessKeyId: secrets.AWS_ACCESS_KEY_ID,
    secretAccessKey: secrets.AWS_SECRET_ACCESS_KEY
  }, options));
  const describe = (e) => ({
    name: e.name, message: e.message, code: e.code, statusCode: e.statusCode,
    retryable: e.retryable, region: e.region, hostname: e.hostname,
    original: e.originalError ? e.originalError.code : undefined
  });
  const attempt = (client, message) => client.publish({ PhoneNumber: recipient, Message: message }).promise()
    .then((d) => ({ unexpected: d.MessageId }), describe);
  const out = {};
  attempt(sns({ region: 'us-east-1', endpoint: 'http://127.0.0.1:2' }), text)
    .then((d) => { out.unreachable = d; return attempt(sns({ region: 'eu-west-3' }), 'fail'); })
    .then((d) => { out.server_error = d; return attempt(sns({ region: 'eu-west-3' }), 'throttle'); })
    .then((d) => { out.throttled = d; cb(null, out); }, cb);
};
