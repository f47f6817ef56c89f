// Compatibility hook (aws-sdk, hookgate's built-in subset): the same SMS through Amazon SNS in the
// callback form, `publish(params, function (err, data) {...})`, with AWS.config set globally.
var AWS = require('aws-sdk');

module.exports = function (recipient, text, context, cb) {
  AWS.config.update({
    region: 'us-east-1',
    accessKeyId: context.webtask.secrets.AWS_ACCESS_KEY_ID,
    secretAccessKey: context.webtask.secrets.AWS_SECRET_ACCESS_KEY
  });

  new AWS.SNS().publish({ PhoneNumber: recipient, Message: text }, function (err, data) {
    if (err) return cb(err);
    cb(null, { MessageID: data.MessageId });
  });
};
