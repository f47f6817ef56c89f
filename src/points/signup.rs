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
//! mapping puts them → if post-user-registration hooks will run, check that the outbox can store
//! their event (else 503, before the user is created) → on a 2xx answer, write the event to the
//! outbox *before* answering (so a crash after the answer loses nothing; if the write fails,
//! 500 and the event in an error log line to replay it) → answer the upstream's answer as it
//! came. A non-2xx answer passes through and starts no post hook. In the hooks' `user`, a field
//! the client did not send is absent (`'phoneNumber' in user === false`), as Auth0 gave it.
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
use crate::outbox::{Event, Outbox};
use crate::proxy::body::{form_decode, header, request_language, Params};
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
    let mut stripped = Vec::new();
    for loc in [map.app_metadata.as_str(), "app_metadata"] {
        if take_at(&mut params.values, loc).is_some() {
            stripped.push(loc.to_string());
        }
    }
    // Also every other spelling a server could read as app_metadata (`app_metadata[role]`,
    // `app_metadata.role`, `App_Metadata`…): qs-style and PHP-style parsers nest such keys.
    stripped.extend(strip_spellings(&mut params.values, &map.app_metadata));
    stripped.extend(strip_spellings(&mut params.values, "app_metadata"));
    if !stripped.is_empty() {
        tracing::warn!(
            request_id,
            route = %route.name,
            keys = ?stripped,
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
        // A field the client did not send is absent (`undefined`), as in Auth0, not `null`.
        let mut user = Map::new();
        user.insert("tenant".into(), json!(tenant));
        put(&mut user, "username", &fields.username);
        put(&mut user, "password", &fields.password);
        put(&mut user, "email", &fields.email);
        user.insert("emailVerified".into(), json!(false));
        put(&mut user, "phoneNumber", &fields.phone_number);
        user.insert("phoneNumberVerified".into(), json!(false));
        let user = Value::Object(user);
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
    // Its post-event must be storable before the user is created: refused now (503, nothing
    // created) rather than answered 2xx with the event lost.
    let post_hooks = !live
        .generation
        .hooks_for(
            Trigger::PostUserRegistration,
            client_id.as_deref(),
            Some(&route.name),
        )
        .is_empty();
    let outbox = match post_hooks {
        true => Some(outbox_ready(proxy, request_id, route, "signup").await?),
        false => None,
    };
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

    let Some(outbox) = outbox else {
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
    // As for the pre hooks: what is unknown is absent, not `null`.
    let mut user = Map::new();
    put(&mut user, "id", &id);
    user.insert("tenant".into(), json!(live.config.tenant.name));
    put(&mut user, "username", &fields.username);
    put(&mut user, "email", &fields.email);
    user.insert("emailVerified".into(), json!(false));
    put(&mut user, "phoneNumber", &fields.phone_number);
    user.insert("phoneNumberVerified".into(), json!(false));
    user.insert(
        "user_metadata".into(),
        Value::Object(user_metadata.unwrap_or_default()),
    );
    user.insert(
        "app_metadata".into(),
        Value::Object(app_metadata.unwrap_or_default()),
    );
    let user = Value::Object(user);
    let event = post_user_registration::event(&route.name, client_id, user, Value::Object(context));
    store_event(&outbox, event, request_id, route, id.as_deref()).await?;
    Ok(resp)
}

/// Set `key` to `value` when there is one; leave it out otherwise, so the hook sees `undefined`
/// (`'phoneNumber' in user === false`) for a field the request did not carry, as Auth0's hooks did.
pub(crate) fn put(user: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        user.insert(key.into(), json!(v));
    }
}

/// The outbox, if a post-event can be stored now; else the request is refused before the
/// upstream changes anything: 503 in the route's shape (nothing happened, trying again later is
/// safe). `what` names the request in the log.
pub(crate) async fn outbox_ready(
    proxy: &Proxy,
    request_id: &str,
    route: &Route,
    what: &str,
) -> Result<Arc<Outbox>, OAuthError> {
    let refused = |problem: String| {
        tracing::error!(request_id, route = %route.name, problem, "the {what}'s post-event could not be stored; refused before the upstream was called (nothing was changed)");
        OAuthError::new(
            503,
            "temporarily_unavailable",
            format!(
                "the {what} cannot be recorded right now; nothing was changed, try again later"
            ),
        )
    };
    let outbox = proxy
        .outbox
        .clone()
        .ok_or_else(|| refused("the outbox is not open".into()))?;
    match outbox.preflight().await {
        Ok(()) => Ok(outbox),
        Err(problem) => Err(refused(problem.to_string())),
    }
}

/// Store a post-event after the upstream's 2xx. If that fails, the change exists upstream but
/// its hooks would never run: the request fails (500 in the route's shape; the client must not
/// take the change as recorded) and the whole event is logged at error level, so an operator
/// can replay it. Events never hold a password.
pub(crate) async fn store_event(
    outbox: &Arc<Outbox>,
    event: Event,
    request_id: &str,
    route: &Route,
    user_id: Option<&str>,
) -> Result<(), OAuthError> {
    let (event_id, trigger) = (event.id.clone(), event.trigger);
    let replay = serde_json::to_string(&event).unwrap_or_default();
    match outbox.enqueue(event).await {
        Ok(seq) => {
            tracing::debug!(request_id, event_id, seq, "{trigger} queued");
            Ok(())
        }
        Err(e) => {
            tracing::error!(
                request_id, route = %route.name, event_id, user_id, error = %format!("{e:#}"),
                event = %replay,
                "UNRECORDED {trigger} event: the upstream applied the request but its event could not be stored; the request was answered 500; replay the `event` once the outbox is writable"
            );
            Err(OAuthError::server_error(format!(
                "the request reached the identity server but hookgate could not record it \
                 (request id {request_id}); it may have been applied: check before trying again"
            )))
        }
    }
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
/// Remove every top-level key that names `loc` (a key or a JSON pointer) or something inside it,
/// in any spelling a body parser might nest: `a[b][c]`, `a.b.c` and mixtures, any case, `_`
/// also matching `.` and space (PHP turns those into `_`), the key also read once more
/// percent-decoded (a server that decodes twice). Returns the keys removed.
fn strip_spellings(values: &mut Map<String, Value>, loc: &str) -> Vec<String> {
    let path: Vec<String> = if let Some(p) = loc.strip_prefix('/') {
        p.split('/').map(unescape).collect()
    } else {
        vec![loc.to_string()]
    };
    let hits: Vec<String> = values
        .keys()
        .filter(|k| names_path(k, &path) || names_path(&form_decode(k), &path))
        .cloned()
        .collect();
    for k in &hits {
        values.remove(k);
    }
    hits
}

/// Does `key` spell `path` or a member of it? See [`strip_spellings`].
fn names_path(key: &str, path: &[String]) -> bool {
    let key = key.to_ascii_lowercase();
    let mut rest = key.as_bytes();
    for (i, segment) in path.iter().enumerate() {
        let segment = segment.to_ascii_lowercase();
        if i > 0 {
            match rest.first() {
                Some(b'.') => rest = &rest[1..],
                Some(b'[') => {
                    rest = &rest[1..];
                    let Some(r) = eat(rest, segment.as_bytes()) else {
                        return false;
                    };
                    let Some(r) = r.strip_prefix(b"]") else {
                        return false;
                    };
                    rest = r;
                    continue;
                }
                _ => return false,
            }
        }
        let Some(r) = eat(rest, segment.as_bytes()) else {
            return false;
        };
        rest = r;
    }
    matches!(rest.first(), None | Some(b'[') | Some(b'.'))
}

/// `text` without the leading `word`, where `_` in `word` also matches `.` and space.
fn eat<'t>(text: &'t [u8], word: &[u8]) -> Option<&'t [u8]> {
    if text.len() < word.len() {
        return None;
    }
    let same = text
        .iter()
        .zip(word)
        .all(|(t, w)| t == w || (*w == b'_' && matches!(t, b'.' | b' ')));
    same.then(|| &text[word.len()..])
}

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

    fn hook_with(on_error: OnError) -> Arc<Hook> {
        crate::hooks::generation::hook_for_tests(Trigger::PreUserRegistration, on_error)
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
    fn every_spelling_of_app_metadata_is_a_spelling_of_it() {
        let p = |l: &str| vec![l.to_string()];
        for key in [
            "app_metadata",
            "APP_METADATA",
            "app_metadata[role]",
            "App_Metadata[role][x]",
            "app_metadata.role",
            "app.metadata[role]",
            "app metadata",
            "app_metadata[]",
        ] {
            assert!(names_path(key, &p("app_metadata")), "{key}");
        }
        for key in [
            "app_metadatax",
            "user_metadata[a]",
            "xapp_metadata",
            "app",
            "",
        ] {
            assert!(!names_path(key, &p("app_metadata")), "{key}");
        }
        let nested = vec!["profile".to_string(), "app".to_string()];
        for key in [
            "profile[app]",
            "profile[app][role]",
            "profile.app.role",
            "Profile[App]",
        ] {
            assert!(names_path(key, &nested), "{key}");
        }
        for key in [
            "profile",
            "profile[apps]",
            "profile[metadata]",
            "profile.application",
        ] {
            assert!(!names_path(key, &nested), "{key}");
        }
        let mut m = serde_json::from_str::<Map<String, Value>>(
            r#"{"app_metadata%5Brole%5D":"admin","email":"a@b","app_metadata.x":1}"#,
        )
        .unwrap();
        let mut hit = strip_spellings(&mut m, "app_metadata");
        hit.sort();
        assert_eq!(hit, ["app_metadata%5Brole%5D", "app_metadata.x"]);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["email"]);
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
