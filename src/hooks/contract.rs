//! Each trigger's hook contract, in one table: the arguments its hooks are called with (before
//! `cb`), the payload Auth0's Runner filled them with by default (`hookgate test`), and Auth0's
//! starter code (`hookgate new`, the files in `starters/`). The points build the real arguments
//! from a request; this is what a person writing or trying a hook needs to know of them.
//!
//! Owns: the per-trigger contract data. Must not: build arguments from a request (the points
//! do) or run anything (the engine does).

use serde_json::{json, Value};

use crate::config::Trigger;

/// The Runner's default payload for `trigger`: the argument names and their values.
/// pre-user-registration's is the default user and context of Auth0's documentation.
pub fn default_payload(trigger: Trigger) -> Value {
    let connection_context = json!({
        "requestLanguage": "en-us",
        "connection": { "id": "con_xxxxxxxxxxxxxxxx", "name": "Username-Password-Authentication", "tenant": "my-tenant" },
        "webtask": { "secrets": {} }
    });
    match trigger {
        Trigger::CredentialsExchange => json!({
            "client": { "id": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "name": "Test Application", "tenant": "my-tenant", "metadata": {} },
            "scope": ["read:connections"],
            "audience": "https://my-tenant.auth0.com/api/v2/",
            "context": {
                "webtask": { "secrets": {} },
                "body": { "grant_type": "client_credentials", "client_id": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "audience": "https://my-tenant.auth0.com/api/v2/" }
            }
        }),
        Trigger::PreUserRegistration => json!({
            "user": {
                "tenant": "my-tenant", "username": "user1", "password": "xxxxxxx", "email": "user1@foo.com",
                "emailVerified": false, "phoneNumber": "1-000-000-0000", "phoneNumberVerified": false,
                "user_metadata": { "hobby": "surfing" }, "app_metadata": { "plan": "full" }
            },
            "context": connection_context,
        }),
        Trigger::PostUserRegistration => json!({
            "user": {
                "id": "abc", "tenant": "my-tenant", "username": "user1", "email": "user1@foo.com",
                "emailVerified": false, "phoneNumber": "1-000-000-0000", "phoneNumberVerified": false,
                "user_metadata": { "hobby": "surfing" }, "app_metadata": { "plan": "full" }
            },
            "context": connection_context,
        }),
        Trigger::PostChangePassword => json!({
            "user": { "id": "abc", "username": "user1", "email": "user1@foo.com", "last_password_reset": "2019-02-27T14:14:29.206Z" },
            "context": connection_context,
        }),
        Trigger::SendPhoneMessage => json!({
            "recipient": "1-808-555-5555",
            "text": "Here is your one time password: 871068",
            "context": {
                "factor_type": "first", "message_type": "sms", "action": "enrollment", "language": "en",
                "code": "871068", "ip": "127.0.0.1", "user_agent": "Mozilla/5.0",
                "client": { "client_id": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "name": "Test Application", "client_metadata": {} },
                "user": { "user_id": "auth0|5c8a3c7f1b2c3d4e5f6a7b8c", "name": "user1", "email": "user1@foo.com", "app_metadata": {}, "user_metadata": {} },
                "webtask": { "secrets": {} }
            }
        }),
    }
}

/// The hook's argument names, in order (cb excluded).
pub fn argument_names(trigger: Trigger) -> &'static [&'static str] {
    match trigger {
        Trigger::CredentialsExchange => &["client", "scope", "audience", "context"],
        Trigger::PreUserRegistration
        | Trigger::PostUserRegistration
        | Trigger::PostChangePassword => &["user", "context"],
        Trigger::SendPhoneMessage => &["recipient", "text", "context"],
    }
}

/// Auth0's starter code for `trigger`.
pub fn starter(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::CredentialsExchange => include_str!("starters/credentials-exchange.js"),
        Trigger::PreUserRegistration => include_str!("starters/pre-user-registration.js"),
        Trigger::PostUserRegistration => {
            include_str!("starters/post-user-registration.js")
        }
        Trigger::PostChangePassword => include_str!("starters/post-change-password.js"),
        Trigger::SendPhoneMessage => include_str!("starters/send-phone-message.js"),
    }
}

/// Whether an error class a hook called back with is one its trigger's contract uses to refuse
/// the request on purpose (run records and metrics count it as `denied`, not `error`):
/// credentials-exchange's `InvalidScopeError` and `InvalidRequestError`, pre-user-registration's
/// `PreUserRegistrationError`. The points map the same classes to their answers.
pub fn denies(trigger: Trigger, class: &str) -> bool {
    match trigger {
        Trigger::CredentialsExchange => {
            matches!(class, "InvalidScopeError" | "InvalidRequestError")
        }
        Trigger::PreUserRegistration => class == "PreUserRegistrationError",
        Trigger::PostUserRegistration | Trigger::PostChangePassword | Trigger::SendPhoneMessage => {
            false
        }
    }
}
