/// <reference path="./common.d.ts" />
// post-change-password: after a password change succeeded upstream, asynchronous (the outbox runs it at least once).
// `/** @type {PostChangePassword.Hook} */ module.exports = function (user, context, cb) {...}`

declare namespace PostChangePassword {
  /** The user whose password was changed. */
  interface User {
    /** The user's id. */
    id: string;
    /** The user's username. */
    username: string;
    /** The user's email. */
    email: string;
    /** When the password was changed (ISO 8601). */
    last_password_reset: string;
  }

  /** The connection of the user. */
  interface Connection {
    /** The connection's id. */
    id: string;
    /** The connection's name. */
    name: string;
    /** The connection's tenant. */
    tenant: string;
  }

  /** Auth0 context info, such as the connection. */
  interface Context {
    /** The language of the client agent. */
    requestLanguage: string;
    /** The connection. */
    connection: Connection;
    /** The webtask context: `context.webtask.secrets`. */
    webtask: WebtaskContext;
  }

  /** The result is ignored; an error only produces a log entry (and an outbox retry). */
  type Callback = HookCallback<any>;

  /** `module.exports = function (user, context, cb) { ... }` */
  type Hook = (user: User, context: Context, cb: Callback) => void;
}
