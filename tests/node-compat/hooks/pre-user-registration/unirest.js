// Compatibility hook (unirest@0.6.0): creates the contact in the CRM before the user exists, and
// keeps the contact's id (from the Location header of the 201) on the user.
const unirest = require('unirest');

module.exports = function (user, context, cb) {
  unirest.post('https://crm.example.com/api/v1/contacts')
    .headers({ 'Accept': 'application/json', 'Content-Type': 'application/json', 'X-Api-Key': context.webtask.secrets.CRM_API_KEY })
    .send({ email: user.email, username: user.username, source: 'auth0-signup', tenant: user.tenant })
    .end(function (response) {
      if (response.error) return cb(new Error('CRM answered ' + response.status + ': ' + JSON.stringify(response.body)));
      const location = response.headers.location;
      cb(null, {
        user: {
          app_metadata: { crm_contact_id: location.split('/').pop(), crm_created: response.status === 201 }
        }
      });
    });
};
