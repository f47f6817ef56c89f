//! post-user-registration: after the upstream created the user, asynchronous and durable.
//!
//! ```js
//! module.exports = function (user, context, cb) { ... cb() }
//! ```
//!
//! The signup route (`pre_user_registration`) calls [`event`] after a 2xx answer and stores it
//! in the outbox before answering; the outbox's dispatcher runs the hooks later, at least once,
//! adding `context.webtask` (the hook's secrets, never stored) and `context.event_id` (stable
//! across retries, for deduplication). The hooks' response is ignored; a failure is retried.
//!
//! `user`: `{ id, tenant, username, email, emailVerified, phoneNumber, phoneNumberVerified,
//! user_metadata, app_metadata }` — the id from the upstream's answer, the metadata as finally
//! sent upstream; a field the client did not send (or an id the answer lacks) is absent, not
//! `null`, as on Auth0. `context`: as for pre-user-registration. Must not: hold the password.

use serde_json::Value;

use super::Trigger;
use crate::outbox::Event;

/// The outbox event for one created user.
pub fn event(route: &str, client_id: Option<String>, user: Value, context: Value) -> Event {
    debug_assert!(
        user.get("password").is_none(),
        "the password never reaches the outbox"
    );
    Event::new(
        Trigger::PostUserRegistration,
        route,
        client_id,
        vec![user, context],
    )
}
