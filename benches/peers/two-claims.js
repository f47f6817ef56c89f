// The credentials-exchange hook every contender of benches/compare.py runs, verbatim: hookgate
// loads it as a hook file, the Node.js and nginx+njs peers wrap this same source and call it in
// process. Auth0's signature: (client, scope, audience, context, cb).
module.exports = function (client, scope, audience, context, cb) {
  var access_token = {};
  access_token.scope = scope;
  access_token['https://example.com/tier'] = client.metadata.tier || 'standard';
  access_token['https://example.com/region'] = 'eu';
  cb(null, access_token);
};
