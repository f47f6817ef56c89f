/// <reference path="./common.d.ts" />
// pre-user-registration: the signup route, blocking. Deny with `cb(new PreUserRegistrationError(log, userMessage))`.
// `/** @type {PreUserRegistration.Hook} */ module.exports = function (user, context, cb) {...}`

declare namespace PreUserRegistration {
  /** The user being created. */
  interface User {
    /** The tenant's name. */
    tenant: string;
    /** The user's username. */
    username: string;
    /** The user's password (never log it). */
    password: string;
    /** The user's email. */
    email: string;
    /** Whether the email is verified. */
    emailVerified: boolean;
    /** The user's phone number. */
    phoneNumber: string;
    /** Whether the phone number is verified. */
    phoneNumberVerified: boolean;
  }

  /** The connection the user signs up with. */
  interface Connection {
    /** The connection's id. */
    id: string;
    /** The connection's name, e.g. `Username-Password-Authentication`. */
    name: string;
    /** The connection's tenant. */
    tenant: string;
  }

  /** Auth0 context info, such as the connection. */
  interface Context {
    /** The language of the client agent (`Accept-Language`). */
    requestLanguage: string;
    /** The connection. */
    connection: Connection;
    /** The webtask context: `context.webtask.secrets`. */
    webtask: WebtaskContext;
  }

  /** What to pass to cb: metadata added to the user being created (names must not start with `$` or contain `.`). */
  interface Response {
    /** `{ user_metadata, app_metadata }` */
    user?: { user_metadata?: { [key: string]: any }; app_metadata?: { [key: string]: any } };
  }

  /** cb(new PreUserRegistrationError(logMessage, userMessage)) denies the signup; cb(null, response) allows it. */
  type Callback = HookCallback<Response>;

  /** `module.exports = function (user, context, cb) { ... }` */
  type Hook = (user: User, context: Context, cb: Callback) => void;
}
