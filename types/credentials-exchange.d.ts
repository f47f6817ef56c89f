/// <reference path="./common.d.ts" />
// credentials-exchange: `POST /oauth/token` with grant_type=client_credentials, blocking.
// `/** @type {CredentialsExchange.Hook} */ module.exports = function (client, scope, audience, context, cb) {...}`

declare namespace CredentialsExchange {
  /** The client the identity server issued the token to (from the `[clients.<id>]` registry). */
  interface Client {
    /** The client id the server's token names. */
    id: string;
    /** The client's name from the registry. */
    name: string;
    /** `[tenant] name`. */
    tenant: string;
    /** Flat string metadata from the registry. */
    metadata: { [key: string]: string };
  }

  /** Additional authorization context. */
  interface Context {
    /** The webtask context: `context.webtask.secrets`. */
    webtask: WebtaskContext;
    /** The token request's parameters (client secrets removed), e.g. `context.body.audience`. */
    body: { [param: string]: string };
  }

  /** What to pass to cb: `scope` becomes the token's scopes; namespaced keys (`https://...`) become claims. */
  interface AccessToken {
    /** The token's scopes, exactly (leave it out and the token has none). */
    scope?: string[];
    /** A namespaced claim: `access_token['https://example.com/claim'] = value`. */
    [claim: string]: any;
  }

  /** cb(error) answers 400 invalid_scope / invalid_request or 500 server_error; cb(null, accessToken) changes the token. */
  type Callback = HookCallback<AccessToken>;

  /** `module.exports = function (client, scope, audience, context, cb) { ... }` */
  type Hook = (client: Client, scope: string[] | undefined, audience: string, context: Context, cb: Callback) => void;
}
