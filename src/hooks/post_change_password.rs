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
//! the request's bearer JWT.
//!
//! Must not: read the password. No field of the mapping can point at it unless a user writes
//! that on purpose, and nothing here logs the body.

use bytes::Bytes;
use pingora::http::RequestHeader;
use serde_json::{json, Map, Value};

use super::pre_user_registration::{get_at, outbox_ready, store_event};
use super::Trigger;
use crate::config::{Location, Route};
use crate::outbox::Event;
use crate::proxy::body::{header, request_language, Params};
use crate::proxy::respond::OAuthError;
use crate::proxy::upstream::UpstreamResponse;
use crate::proxy::Proxy;
use crate::reload::Live;

pub async fn exchange(
    proxy: &Proxy,
    live: &Live,
    request_id: &str,
    route: &Route,
    req: RequestHeader,
    body: Bytes,
) -> Result<UpstreamResponse, OAuthError> {
    // Read what the event needs before the request goes; the request itself goes untouched.
    let params = Params::parse(header(&req, "content-type").as_deref(), &body)
        .map(|p| p.values)
        .unwrap_or_default();
    let claims = bearer_claims(header(&req, "authorization").as_deref());
    let accept_language = header(&req, "accept-language");
    let headers = req.headers.clone();
    // Whether hooks will run depends on the client id, which may be in the upstream's answer: any
    // hook that could run makes the event's storage a precondition of the change.
    let maybe_hooks = live
        .generation
        .all_hooks()
        .any(|h| h.trigger == Trigger::PostChangePassword);
    let outbox = match maybe_hooks {
        true => Some(outbox_ready(proxy, request_id, route, "password change").await?),
        false => None,
    };
    let resp = proxy.upstream.send(req, body).await?;
    if !resp.header.status.is_success() {
        return Ok(resp);
    }
    let answered_at = now_rfc3339();
    let answer: Map<String, Value> = serde_json::from_slice(&resp.body).unwrap_or_default();
    let find = |loc: &Location| -> Option<String> {
        let value = match loc {
            Location::Body(path) => get_at(&params, path),
            Location::Response(path) => get_at(&answer, path),
            Location::Jwt(claim) => get_at(&claims, claim),
            Location::Header(name) => {
                return headers
                    .get(name.as_str())
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            }
        }?;
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let map = &route.change_password;
    let client_id = find(&map.client_id);
    let hooks = live.generation.hooks_for(
        Trigger::PostChangePassword,
        client_id.as_deref(),
        Some(&route.name),
    );
    let Some(outbox) = outbox.filter(|_| !hooks.is_empty()) else {
        return Ok(resp);
    };
    let id = find(&map.id);
    if id.is_none() {
        tracing::warn!(request_id, route = %route.name, location = ?map.id, "the password change names no user id where configured; hooks get user.id undefined");
    }
    let connection = find(&map.connection).unwrap_or_else(|| map.default_connection.clone());
    let user = json!({
        "id": id,
        "username": find(&map.username),
        "email": find(&map.email),
        "last_password_reset": answered_at,
    });
    let context = json!({
        "requestLanguage": request_language(accept_language.as_deref()),
        "connection": { "id": connection, "name": connection, "tenant": live.config.tenant.name },
    });
    let event = Event::new(
        Trigger::PostChangePassword,
        &route.name,
        client_id,
        vec![user, context],
    );
    store_event(&outbox, event, request_id, route, id.as_deref()).await?;
    Ok(resp)
}

/// The claims of an `Authorization: Bearer` JWT, unverified (see [`Location::Jwt`]).
fn bearer_claims(authorization: Option<&str>) -> Map<String, Value> {
    crate::proxy::body::bearer_claims(authorization)
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
    fn bearer_claims_are_read_from_the_payload() {
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"sub":"auth0|42","email":"a@b.c"}"#);
        let claims = bearer_claims(Some(&format!("Bearer x.{payload}.sig")));
        assert_eq!(claims["sub"], "auth0|42");
        assert!(bearer_claims(Some("Basic abc")).is_empty());
        assert!(bearer_claims(Some("Bearer opaque")).is_empty());
        assert!(bearer_claims(None).is_empty());
    }

    #[test]
    fn lookup_takes_names_and_pointers() {
        let v = json!({"user": {"id": 7}, "email": "a@b.c"});
        let m = v.as_object().unwrap();
        assert_eq!(get_at(m, "email"), Some(&json!("a@b.c")));
        assert_eq!(get_at(m, "/user/id"), Some(&json!(7)));
        assert_eq!(get_at(m, "/user/nope"), None);
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
