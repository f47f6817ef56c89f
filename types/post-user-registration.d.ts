/// <reference path="./common.d.ts" />
// post-user-registration: after the signup succeeded upstream, asynchronous (the outbox runs it at least once).
// `/** @type {PostUserRegistration.Hook} */ module.exports = function (user, context, cb) {...}`

declare namespace PostUserRegistration {
  /** The user that was created. */
  interface User {
    /** The user's id. */
    id: string;
    /** The tenant's name. */
    tenant: string;
    /** The user's username. */
    username: string;
    /** The user's email. */
    email: string;
    /** Whether the email is verified. */
    emailVerified: boolean;
    /** The user's phone number. */
    phoneNumber: string;
    /** Whether the phone number is verified. */
    phoneNumberVerified: boolean;
    /** The user's metadata. */
    user_metadata: { [key: string]: any };
    /** The application metadata. */
    app_metadata: { [key: string]: any };
  }

  /** The connection the user signed up with. */
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

  /** The result is ignored; an error is retried by the outbox, then dead-lettered. */
  type Callback = HookCallback<any>;

  /** `module.exports = function (user, context, cb) { ... }` */
  type Hook = (user: User, context: Context, cb: Callback) => void;
}
