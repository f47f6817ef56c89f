//! post-change-password: after the upstream accepted a password change, asynchronous and durable.
//!
//! ```js
//! module.exports = function (user, context, cb) { ... cb() }
//! ```
//!
//! The request goes to the upstream exactly as the client sent it. On a 2xx answer the event —
//! `user: { id, username, email, last_password_reset }` and `context: { requestLanguage,
//! connection: { id, name, tenant } }` — is written to the same durable outbox as
//! post-user-registration before the client is answered, and the outbox's dispatcher runs the
//! hooks at least once (adding `context.webtask` and `context.event_id`). When the event cannot
//! be stored the request fails in the OAuth shape: 503 before the upstream is called (the outbox
//! is broken or its disk below its reserve), 500 after its 2xx (logged with the event to
//! replay). Legacy servers identify the user in different places, so `[route.change_password]`
//! says where each field is: the request body, the upstream's answer, a header, or a claim of
//! the request's bearer JWT. What the mapping does not find is absent from `user`, counted in
//! `/metrics` and, for the id or email, logged with every location the request offered and the
//! mapping to try; the event is still stored (see README, post-change-password).
//!
//! This file knows the event's arguments and where the mapping finds them. Must not: read the
//! password. No field of the mapping can point at it unless a user writes
//! that on purpose, and nothing here logs the body.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::{put, Answer, Before, Exchange, Failure, Forward, Point, Reserved, Shape};
use crate::config::Trigger;
use crate::config::{ChangePasswordMapping, Location};
use crate::outbox::Event;
use crate::wire::headers::{bearer_claims, request_language, Headers};
use crate::wire::params::{get_at, Params};

/// The post-change-password point.
pub struct ChangePassword;

/// What the event needs of the request, read before it goes.
pub struct State {
    params: Map<String, Value>,
    claims: Map<String, Value>,
    /// Hooks may run: their event can be stored.
    events: Option<Reserved>,
}

#[async_trait]
impl Point for ChangePassword {
    /// `[route.change_password]`: where the user is found.
    type Options = ChangePasswordMapping;
    type State = State;

    fn shape(&self) -> Shape {
        Shape::OAuth
    }

    /// Check that the event can be stored; the request itself goes untouched.
    async fn before_upstream(
        &self,
        cx: &Exchange<'_, ChangePasswordMapping>,
    ) -> Result<Before<State>, Failure> {
        // Read what the event needs before the request goes.
        let params = Params::parse(cx.request.header("content-type"), &cx.request.body)
            .map(|p| p.values)
            .unwrap_or_default();
        let claims = bearer_claims(cx.request.header("authorization"));
        // Whether hooks will run depends on the client id, which may be in the upstream's
        // answer: any hook that could run makes the event's storage a precondition of the change.
        let events = match cx.hooks.any_loaded(Trigger::PostChangePassword) {
            true => Some(cx.events.reserve("password change").await?),
            false => None,
        };
        let state = State {
            params,
            claims,
            events,
        };
        Ok(Before::Forward(Forward::unchanged(), state))
    }

    /// On the upstream's 2xx, store the event before answering.
    async fn after_upstream(
        &self,
        cx: &Exchange<'_, ChangePasswordMapping>,
        state: State,
        resp: Answer,
    ) -> Result<Answer, Failure> {
        if !resp.is_success() {
            return Ok(resp);
        }
        let (params, claims, request_id) = (&state.params, &state.claims, cx.request_id);
        let answered_at = now_rfc3339();
        let answer: Map<String, Value> = serde_json::from_slice(&resp.body).unwrap_or_default();
        let find = |loc: &Location| -> Option<String> {
            let value = match loc {
                Location::Body(path) => get_at(params, path),
                Location::Response(path) => get_at(&answer, path),
                Location::Jwt(claim) => get_at(claims, claim),
                Location::Header(name) => return cx.request.header(name).map(str::to_string),
            }?;
            match value {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        let map = cx.options;
        let client_id = find(&map.client_id);
        let hooks = cx
            .hooks
            .hooks(Trigger::PostChangePassword, client_id.as_deref());
        let Some(reserved) = state.events.filter(|_| !hooks.is_empty()) else {
            return Ok(resp);
        };
        let id = find(&map.id);
        let (username, email) = (find(&map.username), find(&map.email));
        let missing: Vec<(&str, &Location)> = [
            ("id", &map.id, id.is_none()),
            ("username", &map.username, username.is_none()),
            ("email", &map.email, email.is_none()),
            ("client_id", &map.client_id, client_id.is_none()),
        ]
        .into_iter()
        .filter(|(_, _, miss)| *miss)
        .map(|(field, loc, _)| (field, loc))
        .collect();
        // Warned about only when the user cannot be identified (no id or no email); Auth0's own
        // change_password body has no username, so that miss alone is only counted.
        if missing.iter().any(|(f, _)| matches!(*f, "id" | "email")) {
            let seen = Seen {
                body: params,
                answer: &answer,
                claims,
                authorization: cx.request.header("authorization"),
                headers: &cx.request.headers,
            };
            report_unmapped(request_id, cx.route, &missing, &seen);
        }
        count_unmapped(&missing);
        let connection = find(&map.connection).unwrap_or_else(|| map.default_connection.clone());
        // What was not found is absent (`undefined` in the hook), not `null`. An event without a
        // user id is still stored and delivered: the hook may work from the email, and a dropped
        // event could not be recovered once the mapping is fixed. The miss is counted and logged.
        let mut user = Map::new();
        put(&mut user, "id", &id);
        put(&mut user, "username", &username);
        put(&mut user, "email", &email);
        user.insert("last_password_reset".into(), json!(answered_at));
        let user = Value::Object(user);
        let context = json!({
            "requestLanguage": request_language(cx.request.header("accept-language")),
            "connection": { "id": connection, "name": connection, "tenant": cx.config.tenant.name },
        });
        let event = Event::new(
            Trigger::PostChangePassword,
            cx.route,
            client_id,
            vec![user, context],
        );
        cx.events.store(reserved, event, id.as_deref()).await?;
        Ok(resp)
    }
}

/// Fields of the event that the mapping did not find, counted per field since start, for
/// `/metrics` (one process, one count: it is about the configuration in force).
static UNMAPPED: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
const UNMAPPED_FIELDS: [&str; 4] = ["id", "username", "email", "client_id"];

/// `hookgate_change_password_unmapped_total{field}`: password changes whose event lacks that
/// field because the route's `[route.change_password]` mapping found nothing.
pub fn metrics() -> String {
    let mut out = String::from(
        "# HELP hookgate_change_password_unmapped_total Password changes whose post-change-password event lacks a field: its [route.change_password] mapping found nothing.\n\
         # TYPE hookgate_change_password_unmapped_total counter\n",
    );
    for (field, n) in UNMAPPED_FIELDS.iter().zip(&UNMAPPED) {
        out.push_str(&format!(
            "hookgate_change_password_unmapped_total{{field=\"{field}\"}} {}\n",
            n.load(Ordering::Relaxed)
        ));
    }
    out
}

fn count_unmapped(missing: &[(&str, &Location)]) {
    for (field, _) in missing {
        if let Some(i) = UNMAPPED_FIELDS.iter().position(|f| f == field) {
            UNMAPPED[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What one password change carried, for telling the operator where the user could be found.
struct Seen<'a> {
    body: &'a Map<String, Value>,
    answer: &'a Map<String, Value>,
    claims: &'a Map<String, Value>,
    authorization: Option<&'a str>,
    headers: &'a Headers,
}

/// Say, in one warning, which mapping to set: every location this request
/// offered (names only, never values: the body holds the password), and the likely candidates.
fn report_unmapped(request_id: &str, route: &str, missing: &[(&str, &Location)], seen: &Seen) {
    let mut offered = Vec::new();
    leaves("body:", "", seen.body, &mut offered);
    leaves("response:", "", seen.answer, &mut offered);
    offered.extend(seen.claims.keys().map(|k| format!("jwt:{k}")));
    offered.extend(
        seen.headers
            .names()
            .filter(|k| k.starts_with("x-"))
            .map(|k| format!("header:{k}")),
    );
    let token = match seen.authorization {
        None => "no bearer token",
        Some(_) if !seen.claims.is_empty() => "a JWT bearer token",
        Some(a)
            if a.get(..7)
                .is_some_and(|p| p.eq_ignore_ascii_case("bearer ")) =>
        {
            "an opaque (non-JWT) bearer token: jwt:CLAIM can never be read from it"
        }
        Some(_) => "no bearer token",
    };
    let hints: Vec<String> = missing
        .iter()
        .map(|(field, loc)| {
            let names: &[&str] = match *field {
                "id" => &["id", "_id", "user_id", "userid", "uid", "sub"],
                "email" => &["email", "mail", "email_address"],
                "username" => &["username", "login", "user_name", "preferred_username"],
                _ => &["client_id", "azp", "cid"],
            };
            let candidates: Vec<&str> = offered
                .iter()
                .filter(|o| {
                    let last = o.rsplit(['/', ':']).next().unwrap_or("");
                    names.contains(&last.to_ascii_lowercase().as_str())
                })
                .map(String::as_str)
                .collect();
            let set = match candidates.as_slice() {
                [] => "none of what the request carried looks like it".to_string(),
                c => format!("try {field} = \"{}\"", c.join("\" or \"")),
            };
            format!("{field}: nothing at {} ({set})", location_text(loc))
        })
        .collect();
    tracing::warn!(
        request_id,
        route,
        missing = %hints.join("; "),
        seen = %offered.join(" "),
        token,
        "the password change's post-change-password event lacks fields its [route.change_password] mapping did not find (absent in the hook's user; counted in hookgate_change_password_unmapped_total): set the mapping to one of the locations seen"
    );
}

/// The mapping as written in the configuration.
fn location_text(loc: &Location) -> String {
    match loc {
        Location::Body(p) => format!("body:{p}"),
        Location::Response(p) => format!("response:{p}"),
        Location::Header(p) => format!("header:{p}"),
        Location::Jwt(p) => format!("jwt:{p}"),
    }
}

/// The locations of the scalar values in a JSON object, as mapping strings (`body:email`,
/// `response:/user/id`); bounded so a large answer cannot flood the log.
fn leaves(source: &str, prefix: &str, values: &Map<String, Value>, out: &mut Vec<String>) {
    for (k, v) in values {
        if out.len() >= 40 {
            return;
        }
        // Never offered as a place to read the user from.
        if k.to_ascii_lowercase().contains("password") {
            continue;
        }
        let escaped = k.replace('~', "~0").replace('/', "~1");
        match v {
            Value::Object(m) if prefix.len() < 64 => {
                leaves(source, &format!("{prefix}/{escaped}"), m, out)
            }
            // Body fields by name, as the defaults are written; the answer by pointer.
            Value::String(_) | Value::Number(_) if prefix.is_empty() && source == "body:" => {
                out.push(format!("{source}{k}"))
            }
            Value::String(_) | Value::Number(_) => out.push(format!("{source}{prefix}/{escaped}")),
            _ => {}
        }
    }
}

/// The current time as RFC 3339 in UTC, e.g. `2026-11-23T18:04:05.123Z`, as Auth0 gave
/// `last_password_reset`.
fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (secs, millis) = (now.as_secs() as i64, now.subsec_millis());
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offered_locations_are_written_as_mappings_and_never_name_a_password() {
        let body = json!({"email": "a@b.c", "new_password": "x", "user": {"id": 7, "a/b": "y"}});
        let answer = json!({"_id": "u1", "flags": [1], "ok": true});
        let mut out = Vec::new();
        leaves("body:", "", body.as_object().unwrap(), &mut out);
        leaves("response:", "", answer.as_object().unwrap(), &mut out);
        assert_eq!(
            out,
            [
                "body:email",
                "body:/user/id",
                "body:/user/a~1b",
                "response:/_id"
            ]
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 24, "{t}");
        assert!(
            t.starts_with("20") && t.ends_with('Z') && t.as_bytes()[10] == b'T',
            "{t}"
        );
    }
}
