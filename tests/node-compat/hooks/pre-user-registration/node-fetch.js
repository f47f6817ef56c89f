// Compatibility hook (node-fetch@2): enriches the new user's profile from FullContact; a profile
// FullContact does not know (404) is not an error.
const fetch = require('node-fetch');

module.exports = async function (user, context, cb) {
  const res = await fetch('https://api.fullcontact.com/v3/person.enrich', {
    method: 'POST',
    headers: {
      Authorization: 'Bearer ' + context.webtask.secrets.FULLCONTACT_KEY,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify({ email: user.email })
  });
  if (res.status === 404) return cb(null, { user: {} });
  if (!res.ok) return cb(new Error('FullContact answered ' + res.status + ' ' + res.statusText));

  const person = await res.json();
  cb(null, {
    user: {
      user_metadata: {
        name: person.fullName,
        location: person.location,
        title: person.title,
        organization: person.organization
      }
    }
  });
};
