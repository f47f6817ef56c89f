//! send-phone-message: a custom SMS/voice provider for MFA codes, blocking.
//!
//! ```js
//! module.exports = function (recipient, text, context, cb) { ... cb(null, { MessageID: '...' }) }
//! ```
//!
//! Identity servers that support a custom SMS provider call a webhook; hookgate serves it itself
//! (the request never goes upstream): the caller authenticates with the route's bearer secret,
//! the body `{recipient, text, context}` becomes the hook's arguments, and the hook's response is
//! the answer. With several hooks enabled they are providers in order of preference: the next one
//! runs only when the previous failed — failover Auth0 never offered, and never a second SMS.
//!
//! | outcome | answer |
//! |---|---|
//! | success | 200 with the hook's response JSON |
//! | the caller's secret is missing or wrong | 401 `invalid_token` |
//! | the body is malformed | 400 `invalid_request` naming the field |
//! | every hook failed | 500 `server_error`, generic (the errors are logged) |
//! | the last hook timed out | 504 `temporarily_unavailable` |

use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use serde_json::{json, Map, Value};

use super::Trigger;
use crate::config::Route;
use crate::engine::HookError;
use crate::proxy::respond::OAuthError;
use crate::proxy::upstream::UpstreamResponse;
use crate::proxy::Proxy;
use crate::reload::Live;

/// The context fields of the contract, with their JSON types, as the identity server sends them.
const CONTEXT_STRINGS: [&str; 6] = [
    "message_type",
    "action",
    "language",
    "code",
    "ip",
    "user_agent",
];
const CONTEXT_OBJECTS: [&str; 2] = ["client", "user"];

pub async fn answer(
    proxy: &Proxy,
    live: &Live,
    request_id: &str,
    route: &Route,
    req: &RequestHeader,
    body: &Bytes,
) -> Result<UpstreamResponse, OAuthError> {
    authenticate(route, req)?;
    let (recipient, text, context) = parse(body)?;
    let hooks = live
        .generation
        .hooks_for(Trigger::SendPhoneMessage, None, Some(&route.name));
    if hooks.is_empty() {
        tracing::error!(request_id, route = %route.name, "a send-phone-message request arrived, but no send-phone-message hook is enabled");
        return Err(OAuthError::server_error(
            "no message provider is configured",
        ));
    }
    let mut last = None;
    for hook in &hooks {
        let mut context = context.clone();
        context.insert("webtask".into(), hook.webtask());
        let args = vec![json!(recipient), json!(text), Value::Object(context)];
        match proxy
            .engine
            .call_with(hook, args, request_id, proxy.hook_wait())
            .await
        {
            Ok(result) => {
                let result = if result.is_null() { json!({}) } else { result };
                let mut header = ResponseHeader::build(200, Some(2))
                    .map_err(|e| OAuthError::server_error(e.to_string()))?;
                header
                    .insert_header("content-type", "application/json")
                    .map_err(|e| OAuthError::server_error(e.to_string()))?;
                return Ok(UpstreamResponse {
                    header,
                    body: Bytes::from(result.to_string()),
                });
            }
            Err(e) => {
                tracing::error!(request_id, hook = %hook.name, error = %e, more_providers = !std::ptr::eq(hook, hooks.last().unwrap()), "the message provider hook failed");
                last = Some(e);
            }
        }
    }
    Err(match last {
        Some(HookError::Timeout) => OAuthError::new(
            504,
            "temporarily_unavailable",
            "the message provider did not answer in time",
        ),
        Some(HookError::Overloaded) => OAuthError::new(
            503,
            "temporarily_unavailable",
            "the message provider hook could not run now: try again later",
        ),
        _ => OAuthError::server_error("the message could not be sent"),
    })
}

/// `Authorization: Bearer <route's webhook_secret>`, compared in constant time.
fn authenticate(route: &Route, req: &RequestHeader) -> Result<(), OAuthError> {
    let unauthorized = |d: &str| OAuthError::new(401, "invalid_token", d);
    let expected = route
        .webhook_secret
        .as_ref()
        .ok_or_else(|| unauthorized("this webhook has no secret configured"))?;
    let given = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| unauthorized("a bearer token is required"))?;
    aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), expected.0.as_bytes())
        .map_err(|_| unauthorized("the bearer token is not valid"))
}

/// The body's fields, checked one by one so that a bad request names what is wrong. Fields the
/// contract does not know are ignored, so an identity server that sends more still works.
fn parse(body: &[u8]) -> Result<(String, String, Map<String, Value>), OAuthError> {
    let bad = |field: &str, what: &str| OAuthError::invalid_request(format!("`{field}` {what}"));
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return Err(OAuthError::invalid_request(
            "the body must be a JSON object",
        ));
    };
    let string = |field: &str| match body.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        None | Some(Value::Null) => Err(bad(field, "is required")),
        Some(_) => Err(bad(field, "must be a non-empty string")),
    };
    let recipient = string("recipient")?;
    let text = string("text")?;
    let given = match body.get("context") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(bad("context", "must be an object")),
    };
    let mut context = Map::new();
    for field in CONTEXT_STRINGS {
        match given.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                context.insert(field.into(), json!(s));
            }
            Some(_) => return Err(bad(&format!("context.{field}"), "must be a string")),
        }
    }
    for field in CONTEXT_OBJECTS {
        match given.get(field) {
            None | Some(Value::Null) => {
                context.insert(field.into(), json!({}));
            }
            Some(Value::Object(m)) => {
                context.insert(field.into(), Value::Object(m.clone()));
            }
            Some(_) => return Err(bad(&format!("context.{field}"), "must be an object")),
        }
    }
    match context.get("message_type").and_then(Value::as_str) {
        None | Some("sms") | Some("voice") => {}
        Some(_) => return Err(bad("context.message_type", "must be \"sms\" or \"voice\"")),
    }
    Ok((recipient, text, context))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_the_bad_field() {
        let err = |b: &str| parse(b.as_bytes()).unwrap_err().description;
        assert_eq!(err("[]"), "the body must be a JSON object");
        assert_eq!(err(r#"{"text":"t"}"#), "`recipient` is required");
        assert_eq!(
            err(r#"{"recipient":5,"text":"t"}"#),
            "`recipient` must be a non-empty string"
        );
        assert_eq!(
            err(r#"{"recipient":"+1","text":""}"#),
            "`text` must be a non-empty string"
        );
        assert_eq!(
            err(r#"{"recipient":"+1","text":"t","context":[]}"#),
            "`context` must be an object"
        );
        assert_eq!(
            err(r#"{"recipient":"+1","text":"t","context":{"code":1}}"#),
            "`context.code` must be a string"
        );
        assert_eq!(
            err(r#"{"recipient":"+1","text":"t","context":{"message_type":"fax"}}"#),
            "`context.message_type` must be \"sms\" or \"voice\""
        );
    }

    #[test]
    fn parse_keeps_known_context_fields_and_ignores_the_rest() {
        let (r, t, c) = parse(
            br#"{"recipient":"+1555","text":"code 1","extra":true,
                 "context":{"message_type":"voice","code":"1","client":{"client_id":"x"},"unknown":1}}"#,
        )
        .unwrap();
        assert_eq!((r.as_str(), t.as_str()), ("+1555", "code 1"));
        assert_eq!(
            Value::Object(c),
            json!({"message_type":"voice","code":"1","client":{"client_id":"x"},"user":{}})
        );
    }
}
