//! pre-user-registration: the signup route, blocking; and the hand-off of its successful signups
//! to post-user-registration.
//!
//! ```js
//! module.exports = function (user, context, cb) { ... cb(null, { user: { user_metadata, app_metadata } }) }
//! ```
//!
//! The way of a signup: parse the body (form or JSON) → strip client-supplied `app_metadata`
//! (a client must never set it; logged) → run the hooks in order, merging the metadata each
//! returns over what the client sent → forward the body with the metadata where the route's
//! mapping puts them → on a 2xx answer, write the post-user-registration event to the outbox
//! *before* answering (so a crash after the answer loses nothing) → answer the upstream's
//! answer as it came. A non-2xx answer passes through and starts no post hook.
//!
//! Errors are answered in Auth0's `/dbconnections/signup` shape (see
//! [`crate::proxy::respond::ErrorShape::Signup`]): `PreUserRegistrationError` with its
//! `userMessage` (its `logMessage` only logged); any other hook failure with a generic message,
//! unless the hook has `on_error = "allow"`.
//!
//! This file knows the point's arguments, how to apply its result and how its errors map to HTTP.
//! It must not know how hooks are run (`crate::engine`) or how events are stored (`crate::outbox`).
//! The password is in the hook's `user` (the contract says so) and in the forwarded body, and
//! nowhere else: never in a log line, never in the outbox.

use std::sync::Arc;

use bytes::Bytes;
use pingora::http::RequestHeader;
use serde_json::{json, Map, Value};

use super::{post_user_registration, Hook, OnError, Trigger};
use crate::config::{Route, SignupMapping};
use crate::engine::HookError;
use crate::proxy::body::{header, request_language, Params};
use crate::proxy::respond::{ErrorShape, OAuthError};
use crate::proxy::upstream::UpstreamResponse;
use crate::proxy::Proxy;
use crate::reload::Live;

/// What a denied signup shows when the hook gave no message for the user.
const GENERIC_DENIAL: &str = "the signup was refused";

/// Run a signup through the pre-user-registration hooks and the upstream.
pub async fn signup(
    proxy: &Proxy,
    live: &Live,
    request_id: &str,
    route: &Route,
    mut req: RequestHeader,
    body: Bytes,
) -> Result<UpstreamResponse, OAuthError> {
    let map = &route.signup;
    let content_type = header(&req, "content-type");
    let mut params = Params::parse(content_type.as_deref(), &body)?;

    // Security first: the client's app_metadata never reaches a hook or the upstream.
    let mut stripped = false;
    for loc in [map.app_metadata.as_str(), "app_metadata"] {
        stripped |= take_at(&mut params.values, loc).is_some();
    }
    if stripped {
        tracing::warn!(
            request_id,
            route = %route.name,
            "the signup body carried app_metadata; removed (only hooks may set it)"
        );
    }
    let mut user_metadata = match take_at(&mut params.values, &map.user_metadata)
        .or_else(|| take_at(&mut params.values, "user_metadata"))
    {
        None | Some(Value::Null) => None,
        Some(v) => Some(client_metadata(v)?),
    };

    let fields = Fields::read(&params, map);
    // Auth0's signup body names the application; hooks limited to clients honour it.
    let client_id = params.get("client_id");
    let connection = fields
        .connection
        .clone()
        .unwrap_or_else(|| map.default_connection.clone());
    let tenant = live.config.tenant.name.clone();
    let mut context = Map::new();
    if let Some(lang) = request_language(header(&req, "accept-language").as_deref()) {
        context.insert("requestLanguage".into(), json!(lang));
    }
    context.insert(
        "connection".into(),
        json!({
            "id": map.connection_id.clone().unwrap_or_else(|| connection.clone()),
            "name": connection,
            "tenant": tenant,
        }),
    );

    let hooks = live.generation.hooks_for(
        Trigger::PreUserRegistration,
        client_id.as_deref(),
        Some(&route.name),
    );
    let mut app_metadata: Option<Map<String, Value>> = None;
    if !hooks.is_empty() {
        let user = json!({
            "tenant": tenant,
            "username": fields.username,
            "password": fields.password,
            "email": fields.email,
            "emailVerified": false,
            "phoneNumber": fields.phone_number,
            "phoneNumberVerified": false,
        });
        for hook in &hooks {
            let mut ctx = context.clone();
            ctx.insert("webtask".into(), hook.webtask());
            let args = vec![user.clone(), Value::Object(ctx)];
            let result = proxy
                .engine
                .call_with(hook, args, request_id, proxy.hook_wait())
                .await;
            let applied = match result {
                Ok(v) => hook_metadata(&v).map_err(|problem| {
                    tracing::error!(request_id, hook = %hook.name, problem, "the hook's response is invalid");
                    HookError::Crashed(problem)
                }),
                Err(e) => Err(e),
            };
            match applied {
                Ok((um, am)) => {
                    if let Some(um) = um {
                        user_metadata.get_or_insert_with(Map::new).extend(um);
                    }
                    if let Some(am) = am {
                        app_metadata.get_or_insert_with(Map::new).extend(am);
                    }
                }
                Err(e) => fail(hook, &e, request_id)?,
            }
        }
    }

    // The forwarded body: what the client sent, minus app_metadata, plus the final metadata.
    if let Some(um) = &user_metadata {
        set_at(
            &mut params.values,
            &map.user_metadata,
            Value::Object(um.clone()),
        );
    }
    if let Some(am) = &app_metadata {
        set_at(
            &mut params.values,
            &map.app_metadata,
            Value::Object(am.clone()),
        );
    }
    let format = route.upstream_body.format(params.format);
    req.insert_header("content-type", format.content_type())
        .map_err(|e| OAuthError::server_error(format!("cannot build the upstream request: {e}")))?;
    let resp = proxy
        .upstream
        .send(req, Bytes::from(params.encode(format)))
        .await?;
    if !resp.header.status.is_success() {
        return Ok(resp);
    }

    if live
        .generation
        .hooks_for(
            Trigger::PostUserRegistration,
            client_id.as_deref(),
            Some(&route.name),
        )
        .is_empty()
    {
        return Ok(resp);
    }
    let Some(outbox) = proxy.outbox.as_ref() else {
        tracing::error!(
            request_id,
            "post-user-registration hooks exist but the outbox is not open; restart hookgate"
        );
        return Ok(resp);
    };
    let id = serde_json::from_slice::<Value>(&resp.body)
        .ok()
        .and_then(|answer| answer.pointer(&map.user_id).cloned())
        .and_then(|v| match v {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
    if id.is_none() {
        tracing::warn!(request_id, route = %route.name, pointer = %map.user_id, "the signup answer has no user id at the configured pointer; post-user-registration hooks get user.id undefined");
    }
    let user = json!({
        "id": id,
        "tenant": live.config.tenant.name,
        "username": fields.username,
        "email": fields.email,
        "emailVerified": false,
        "phoneNumber": fields.phone_number,
        "phoneNumberVerified": false,
        "user_metadata": user_metadata.unwrap_or_default(),
        "app_metadata": app_metadata.unwrap_or_default(),
    });
    let event = post_user_registration::event(&route.name, client_id, user, Value::Object(context));
    let event_id = event.id.clone();
    // The signup exists upstream whatever happens here: answering an error would make the
    // client retry a signup that succeeded. A failed write is logged loudly instead.
    match outbox.enqueue(event).await {
        Ok(seq) => tracing::debug!(request_id, event_id, seq, "post-user-registration queued"),
        Err(e) => tracing::error!(
            request_id, event_id, user_id = ?id, error = %format!("{e:#}"),
            "could not store the post-user-registration event; its hooks will not run"
        ),
    }
    Ok(resp)
}

/// The signup fields the hooks see, read where the mapping says.
struct Fields {
    username: Option<String>,
    password: Option<String>,
    email: Option<String>,
    phone_number: Option<String>,
    connection: Option<String>,
}

impl Fields {
    fn read(params: &Params, map: &SignupMapping) -> Fields {
        let get = |loc: &str| match get_at(&params.values, loc)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        Fields {
            username: get(&map.username),
            password: get(&map.password),
            email: get(&map.email),
            phone_number: get(&map.phone_number),
            connection: get(&map.connection),
        }
    }
}

/// A location in a body: a top-level name, or a JSON pointer (`/user/email`).
pub(crate) fn get_at<'a>(values: &'a Map<String, Value>, loc: &str) -> Option<&'a Value> {
    match loc.strip_prefix('/') {
        None => values.get(loc),
        Some(_) => {
            let (first, rest) = split_pointer(loc);
            let v = values.get(&first)?;
            if rest.is_empty() {
                Some(v)
            } else {
                v.pointer(&rest)
            }
        }
    }
}

fn take_at(values: &mut Map<String, Value>, loc: &str) -> Option<Value> {
    if !loc.starts_with('/') {
        return values.remove(loc);
    }
    let (parent, last) = loc.rsplit_once('/')?;
    let last = unescape(last);
    if parent.is_empty() {
        return values.remove(&last);
    }
    let (first, rest) = split_pointer(parent);
    let mut v = values.get_mut(&first)?;
    if !rest.is_empty() {
        v = v.pointer_mut(&rest)?;
    }
    v.as_object_mut()?.remove(&last)
}

/// Set a value, creating the objects on the way (a non-object on the way is replaced).
fn set_at(values: &mut Map<String, Value>, loc: &str, value: Value) {
    if !loc.starts_with('/') {
        values.insert(loc.to_string(), value);
        return;
    }
    let parts: Vec<String> = loc[1..].split('/').map(unescape).collect();
    let mut here = values;
    for part in &parts[..parts.len() - 1] {
        let next = here
            .entry(part.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        here = next.as_object_mut().expect("made an object above");
    }
    here.insert(parts[parts.len() - 1].clone(), value);
}

/// `/a/b/c` → (`a`, `/b/c`).
fn split_pointer(loc: &str) -> (String, String) {
    let body = &loc[1..];
    match body.split_once('/') {
        Some((first, rest)) => (unescape(first), format!("/{rest}")),
        None => (unescape(body), String::new()),
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The client's `user_metadata`: an object (a form sends it as JSON text) with valid key names.
fn client_metadata(v: Value) -> Result<Map<String, Value>, OAuthError> {
    let v = match v {
        Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        v => v,
    };
    let Value::Object(m) = v else {
        return Err(invalid_signup("user_metadata must be an object"));
    };
    check_keys(&m).map_err(|p| invalid_signup(format!("user_metadata: {p}")))?;
    Ok(m)
}

fn invalid_signup(description: impl Into<String>) -> OAuthError {
    OAuthError::new(400, "invalid_signup", description).signup()
}

/// Metadata key names, at every depth: no leading `$`, no `.` (Auth0's rule; MongoDB's, really).
pub fn check_keys(m: &Map<String, Value>) -> Result<(), String> {
    fn walk(v: &Value, path: &str) -> Result<(), String> {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if k.starts_with('$') || k.contains('.') {
                        return Err(format!(
                            "the property name `{path}{k}` must not start with `$` or contain `.`"
                        ));
                    }
                    walk(v, &format!("{path}{k}."))?;
                }
                Ok(())
            }
            Value::Array(items) => items.iter().try_for_each(|i| walk(i, path)),
            _ => Ok(()),
        }
    }
    walk(&Value::Object(m.clone()), "")
}

type Metadata = (Option<Map<String, Value>>, Option<Map<String, Value>>);

/// The metadata a hook's response adds: `{ user: { user_metadata, app_metadata } }`; anything
/// else in `user` (the starter code echoes the whole user back) is ignored.
fn hook_metadata(result: &Value) -> Result<Metadata, String> {
    let user = match result {
        Value::Null => return Ok((None, None)),
        Value::Object(r) => match r.get("user") {
            None | Some(Value::Null) => return Ok((None, None)),
            Some(Value::Object(u)) => u,
            Some(_) => return Err("the response's `user` is not an object".into()),
        },
        _ => return Err("the response passed to cb is not an object".into()),
    };
    let take = |key: &str| -> Result<Option<Map<String, Value>>, String> {
        match user.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => {
                check_keys(m).map_err(|p| format!("{key}: {p}"))?;
                Ok(Some(m.clone()))
            }
            Some(_) => Err(format!("user.{key} is not an object")),
        }
    };
    Ok((take("user_metadata")?, take("app_metadata")?))
}

/// The contract's error table: `PreUserRegistrationError` denies with its user message; every
/// other failure denies with a generic one, unless `on_error = "allow"`.
fn fail(hook: &Arc<Hook>, e: &HookError, request_id: &str) -> Result<(), OAuthError> {
    // The hook could not run: 503 whatever `on_error` says (failing open under load would let a
    // flood walk around the hook), in the signup shape.
    if *e == HookError::Overloaded {
        tracing::warn!(request_id, hook = %hook.name, "the hook could not run (overloaded); the signup is refused with 503");
        return Err(OAuthError::new(
            503,
            "temporarily_unavailable",
            "the signup could not be checked now: try again later",
        )
        .signup());
    }
    if let HookError::Failed(f) = e {
        if f.class == "PreUserRegistrationError" {
            tracing::info!(request_id, hook = %hook.name, log_message = %f.message, "the hook denied the signup");
            let mut err = OAuthError::new(
                400,
                "invalid_signup",
                f.user_message.as_deref().unwrap_or(GENERIC_DENIAL),
            );
            err.shape = ErrorShape::Signup {
                name: "PreUserRegistrationError",
            };
            return Err(err);
        }
    }
    match hook.on_error {
        OnError::Allow => {
            tracing::warn!(request_id, hook = %hook.name, error = %e, "the hook failed; on_error = allow, so the signup goes on without it");
            Ok(())
        }
        OnError::Deny => {
            tracing::error!(request_id, hook = %hook.name, error = %e, "the hook failed; denying the signup");
            Err(invalid_signup(GENERIC_DENIAL))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hook with `on_error`, for the error table (no program: it is never run).
    fn hook_with(on_error: OnError) -> Arc<Hook> {
        let program = crate::engine::program::Program {
            main: String::new(),
            modules: std::collections::HashMap::new(),
        };
        let mut h = Hook::standalone(
            "pre-user-registration/h".into(),
            Trigger::PreUserRegistration,
            "h.js".into(),
            std::time::Duration::from_secs(1),
            Default::default(),
            program,
        );
        h.on_error = on_error;
        Arc::new(h)
    }

    #[test]
    fn an_overloaded_hook_is_a_503_in_the_signup_shape_even_with_on_error_allow() {
        for on_error in [OnError::Deny, OnError::Allow] {
            let e = fail(&hook_with(on_error), &HookError::Overloaded, "r").unwrap_err();
            assert_eq!((e.status, e.error), (503, "temporarily_unavailable"));
            assert!(
                matches!(e.shape, ErrorShape::Signup { .. }),
                "{:?}",
                e.shape
            );
        }
    }

    #[test]
    fn key_names_are_checked_at_every_depth() {
        let ok = json!({"a": {"b": [{"c": 1}]}, "x$": 1});
        assert!(check_keys(ok.as_object().unwrap()).is_ok());
        for bad in [
            json!({"$set": 1}),
            json!({"a.b": 1}),
            json!({"a": {"$b": 1}}),
            json!({"a": [{"b.c": 1}]}),
        ] {
            assert!(check_keys(bad.as_object().unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn locations_are_names_or_pointers() {
        let mut m = json!({"user": {"mail": "a@b", "x": 1}, "email": "top"})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(get_at(&m, "email"), Some(&json!("top")));
        assert_eq!(get_at(&m, "/user/mail"), Some(&json!("a@b")));
        assert_eq!(take_at(&mut m, "/user/x"), Some(json!(1)));
        set_at(&mut m, "/profile/meta", json!({"k": 1}));
        set_at(&mut m, "flat", json!(2));
        assert_eq!(
            Value::Object(m),
            json!({"user": {"mail": "a@b"}, "email": "top", "profile": {"meta": {"k": 1}}, "flat": 2})
        );
    }

    #[test]
    fn hook_responses() {
        assert_eq!(hook_metadata(&Value::Null).unwrap(), (None, None));
        let (um, am) = hook_metadata(
            &json!({"user": {"password": "x", "user_metadata": {"a": 1}, "app_metadata": {"b": 2}}}),
        )
        .unwrap();
        assert_eq!(Value::Object(um.unwrap()), json!({"a": 1}));
        assert_eq!(Value::Object(am.unwrap()), json!({"b": 2}));
        assert!(hook_metadata(&json!({"user": {"app_metadata": {"a.b": 1}}})).is_err());
        assert!(hook_metadata(&json!({"user": {"user_metadata": [1]}})).is_err());
        assert!(hook_metadata(&json!("nope")).is_err());
    }

    #[test]
    fn request_language_is_the_first_tag() {
        assert_eq!(
            request_language(Some("en-US,en;q=0.9")).as_deref(),
            Some("en-us")
        );
        assert_eq!(request_language(Some("fr;q=0.8")).as_deref(), Some("fr"));
        assert_eq!(request_language(Some("*")), None);
        assert_eq!(request_language(None), None);
    }
}
