// Adds a namespaced claim with the client's tier and narrows the scopes: clients whose metadata
// says `readonly` lose every write:* scope; everyone gets `read:profile`.
module.exports = function (client, scope, audience, context, cb) {
  var access_token = {};
  var scopes = (scope || []).slice();
  if (client.metadata && client.metadata.readonly === 'true') {
    scopes = scopes.filter(function (s) { return s.indexOf('write:') !== 0; });
  }
  if (scopes.indexOf('read:profile') === -1) scopes.push('read:profile');
  access_token.scope = scopes;
  access_token['https://hookgate.example/tier'] = (client.metadata && client.metadata.tier) || 'free';
  cb(null, access_token);
};
