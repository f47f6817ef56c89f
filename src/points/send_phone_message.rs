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
//!
//! Owns: the webhook's authentication, arguments and answer. Must not: call the upstream (there
//! is none for this point) or write bytes (the proxy renders its answer and failures).

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::{Answer, Before, Exchange, Failure, Point, Shape};
use crate::config::PhoneRoute;
use crate::config::Trigger;
use crate::engine::HookError;

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

/// The send-phone-message point: a webhook hookgate answers itself.
pub struct SendPhoneMessage;

#[async_trait]
impl Point for SendPhoneMessage {
    /// A send-phone-message route's own settings.
    type Options = PhoneRoute;
    /// The upstream is never called.
    type State = std::convert::Infallible;

    fn shape(&self) -> Shape {
        Shape::Webhook
    }

    /// Authenticate the caller, run the providers in order, answer the first success.
    async fn before_upstream(
        &self,
        cx: &Exchange<'_, PhoneRoute>,
    ) -> Result<Before<Self::State>, Failure> {
        let request_id = cx.request_id;
        authenticate(cx.options, cx.request.header("authorization"))?;
        let (recipient, text, context) = parse(&cx.request.body)?;
        let hooks = cx.hooks.hooks(Trigger::SendPhoneMessage, None);
        if hooks.is_empty() {
            tracing::error!(request_id, route = %cx.route, "a send-phone-message request arrived, but no send-phone-message hook is enabled");
            return Err(Failure::Internal(
                "no message provider is configured".into(),
            ));
        }
        // The client the identity server says it sends for, for run records.
        let client_id = context
            .get("client")
            .and_then(|c| c.get("client_id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut last = None;
        for hook in &hooks {
            let mut context = context.clone();
            context.insert("webtask".into(), hook.webtask());
            let args = vec![json!(recipient), json!(text), Value::Object(context)];
            match cx.hooks.call(hook, args, client_id.as_deref()).await {
                Ok(result) => {
                    let result = if result.is_null() { json!({}) } else { result };
                    return Ok(Before::Answer(Answer {
                        status: 200,
                        body: Bytes::from(result.to_string()),
                    }));
                }
                Err(e) => {
                    tracing::error!(request_id, hook = %hook.name, error = %e, more_providers = !std::ptr::eq(hook, hooks.last().unwrap()), "the message provider hook failed");
                    last = Some(e);
                }
            }
        }
        Err(match last {
            Some(HookError::Timeout) => {
                Failure::HookTimedOut("the message provider did not answer in time".into())
            }
            Some(HookError::Overloaded) => Failure::Overloaded(
                "the message provider hook could not run now: try again later".into(),
            ),
            _ => Failure::HookFailed("the message could not be sent".into()),
        })
    }

    async fn after_upstream(
        &self,
        _cx: &Exchange<'_, PhoneRoute>,
        state: Self::State,
        _answer: Answer,
    ) -> Result<Answer, Failure> {
        match state {}
    }
}

/// `Authorization: Bearer <route's webhook_secret>`, compared in constant time.
fn authenticate(options: &PhoneRoute, authorization: Option<&str>) -> Result<(), Failure> {
    let unauthorized = |d: &str| Failure::Unauthorized(d.into());
    let expected = &options.webhook_secret;
    let given = authorization
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| unauthorized("a bearer token is required"))?;
    aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), expected.0.as_bytes())
        .map_err(|_| unauthorized("the bearer token is not valid"))
}

/// The body's fields, checked one by one so that a bad request names what is wrong. Fields the
/// contract does not know are ignored, so an identity server that sends more still works.
fn parse(body: &[u8]) -> Result<(String, String, Map<String, Value>), Failure> {
    let bad = |field: &str, what: &str| Failure::BadRequest(format!("`{field}` {what}"));
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return Err(Failure::BadRequest("the body must be a JSON object".into()));
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
        let err = |b: &str| match parse(b.as_bytes()).unwrap_err() {
            Failure::BadRequest(description) => description,
            other => panic!("{other:?}"),
        };
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
