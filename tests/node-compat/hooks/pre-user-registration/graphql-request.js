// Compatibility hook (graphql-request@1.8.2): a sign-up must match an invitation in the company's
// GraphQL API; the account it belongs to goes into app_metadata, a blocked address is refused.
const { GraphQLClient } = require('graphql-request@1.8.2');

const query = `query Invitation($email: String!) {
  invitation(email: $email) { account { id name plan } role blocked }
}`;

module.exports = function (user, context, cb) {
  const client = new GraphQLClient('https://accounts.example.com/graphql', {
    headers: { authorization: 'Bearer ' + context.webtask.secrets.ACCOUNTS_API_TOKEN }
  });

  client.request(query, { email: user.email })
    .then(function (data) {
      const invitation = data.invitation;
      if (!invitation || invitation.blocked) {
        return cb(new PreUserRegistrationError('no usable invitation for ' + user.email, 'Sign-ups are by invitation only.'));
      }
      cb(null, {
        user: {
          app_metadata: { account_id: invitation.account.id, plan: invitation.account.plan, role: invitation.role }
        }
      });
    })
    .catch(function (err) { cb(err); });
};
