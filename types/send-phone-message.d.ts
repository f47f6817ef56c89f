/// <reference path="./common.d.ts" />
// send-phone-message: a custom SMS/voice provider for MFA codes, blocking (hookgate serves the webhook).
// `/** @type {SendPhoneMessage.Hook} */ module.exports = function (recipient, text, context, cb) {...}`

declare namespace SendPhoneMessage {
  /** The application the code is for. */
  interface Client {
    /** The client id. */
    client_id: string;
    /** The client's name. */
    name: string;
    /** The client's metadata. */
    client_metadata: { [key: string]: string };
  }

  /** The user the code is for. */
  interface User {
    /** The user's id. */
    user_id: string;
    /** The user's name. */
    name: string;
    /** The user's email. */
    email: string;
    /** The application metadata. */
    app_metadata: { [key: string]: any };
    /** The user's metadata. */
    user_metadata: { [key: string]: any };
  }

  /** Additional context of the message. */
  interface Context {
    /** `first` or `second`. */
    factor_type: string;
    /** `sms` or `voice`. */
    message_type: 'sms' | 'voice';
    /** `enrollment` or `second-factor-authentication`. */
    action: string;
    /** The language of the login flow. */
    language: string;
    /** The one-time code. */
    code: string;
    /** The end user's IP address. */
    ip: string;
    /** The end user's user agent. */
    user_agent: string;
    /** The application. */
    client: Client;
    /** The user. */
    user: User;
    /** The webtask context: `context.webtask.secrets`. */
    webtask: WebtaskContext;
  }

  /** What to pass to cb, e.g. `{ MessageID: '...' }`: the webhook's answer. */
  type Callback = HookCallback<{ [key: string]: any }>;

  /** `module.exports = function (recipient, text, context, cb) { ... }` */
  type Hook = (recipient: string, text: string, context: Context, cb: Callback) => void;
}
