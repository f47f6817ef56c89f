// Compatibility hook (aws-sdk, hookgate's built-in subset): sends the MFA code through Amazon SNS
// with `publish(params).promise()`.
const AWS = require('aws-sdk');

module.exports = function (recipient, text, context, cb) {
  const sns = new AWS.SNS({
    apiVersion: '2010-03-31',
    region: 'us-east-1',
    accessKeyId: context.webtask.secrets.AWS_ACCESS_KEY_ID,
    secretAccessKey: context.webtask.secrets.AWS_SECRET_ACCESS_KEY
  });

  sns.publish({
    PhoneNumber: recipient,
    Message: text,
    MessageAttributes: {
      'AWS.SNS.SMS.SMSType': { DataType: 'String', StringValue: 'Transactional' },
      'AWS.SNS.SMS.SenderID': { DataType: 'String', StringValue: 'MyTenant' }
    }
  }).promise()
    .then(function (data) { cb(null, { MessageID: data.MessageId }); })
    .catch(function (err) { cb(err); });
};
