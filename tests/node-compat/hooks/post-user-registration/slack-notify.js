// Compatibility hook (slack-notify@0.1.4): Auth0's own "Integrate with Slack" example, calling cb
// without waiting for Slack (the request must still go out).
module.exports = function (user, context, cb) {

  // Get your Slack's hook URL from https://slack.com/services/10525858050
  var SLACK_HOOK = context.webtask.secrets.SLACK_WEBHOOK_URL;

  // Post the new user's name and email address to the selected channel
  var slack = require('slack-notify@0.1.4')(SLACK_HOOK);
  var message = 'New User: ' + (user.name || user.email) + ' (' + user.email + ')';
  var channel = '#some_channel';

  slack.success({
   text: message,
   channel: channel
  });

  // Return immediately; the request to the Slack API will continue on the sandbox
  cb(null, user, context);
};
