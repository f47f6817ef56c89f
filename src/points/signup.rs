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
//! Errors are answered in Auth0's `/dbconnections/signup` shape ([`Shape::Signup`]):
//! `PreUserRegistrationError` with its `userMessage` (its `logMessage` only logged); any other
//! hook failure with a generic message, unless the hook has `on_error = "allow"`.
//!
//! post-user-registration, asynchronous and durable:
//!
//! ```js
//! module.exports = function (user, context, cb) { ... cb() }
//! ```
//!
//! After a 2xx answer the signup stores its [`event`] in the outbox before answering; the outbox's
//! dispatcher runs the hooks later, at least once, adding `context.webtask` (the hook's secrets,
//! never stored) and `context.event_id` (stable across retries, for deduplication). The hooks'
//! response is ignored; a failure is retried. `user`: `{ id, tenant, username, email,
//! emailVerified, phoneNumber, phoneNumberVerified, user_metadata, app_metadata }` — the id from
//! the upstream's answer, the metadata as finally sent upstream; a field the client did not send
//! (or an id the answer lacks) is absent, not `null`, as on Auth0. `context`: as for
//! pre-user-registration.
//!
//! This file knows the point's arguments, how to apply its result and which failure each problem
//! is. It must not know how hooks are run (`crate::engine`) or how events are stored
//! (`crate::outbox`). The password is in the hook's `user` (the contract says so) and in the
//! forwarded body, and nowhere else: never in a log line, never in the outbox.

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::{
    put, Answer, Before, ErrorTable, Exchange, Failure, Forward, HeaderEdit, Point, Reserved, Shape,
};
use crate::config::Trigger;
use crate::config::{SignupMapping, SignupRoute};
use crate::engine::{HookError, HookFailure};
use crate::hooks::{Hook, Kind};
use crate::outbox::Event;
use crate::wire::headers::request_language;
use crate::wire::params::{form_decode, get_at, set_at, take_at, unescape, Params};

/// What a denied signup shows when the hook gave no message for the user.
const GENERIC_DENIAL: &str = "the signup was refused";

/// The signup point: pre-user-registration, and post-user-registration's event.
pub struct Signup;

/// What the post-event needs of the request.
pub struct State {
    fields: Fields,
    client_id: Option<String>,
    context: Map<String, Value>,
    user_metadata: Option<Map<String, Value>>,
    app_metadata: Option<Map<String, Value>>,
    /// Post-user-registration hooks will run: their event can be stored.
    events: Option<Reserved>,
}

#[async_trait]
impl Point for Signup {
    /// A signup route's own settings.
    type Options = SignupRoute;
    type State = State;

    fn shape(&self) -> Shape {
        Shape::Signup
    }

    /// Run the signup through the pre-user-registration hooks; forward it with their metadata.
    async fn before_upstream(
        &self,
        cx: &Exchange<'_, SignupRoute>,
    ) -> Result<Before<State>, Failure> {
        let (map, request_id) = (&cx.options.signup, cx.request_id);
        let mut params = cx.request.params()?;

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
                route = %cx.route,
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
        let tenant = cx.config.tenant.name.clone();
        let mut context = Map::new();
        if let Some(lang) = request_language(cx.request.header("accept-language")) {
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

        let hooks = cx
            .hooks
            .hooks(Trigger::PreUserRegistration, client_id.as_deref());
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
                let result = cx.hooks.call(hook, args, client_id.as_deref()).await;
                let applied = match result {
                    Ok(v) => hook_metadata(&v).map_err(|problem| {
                        tracing::error!(request_id, hook = %hook.name, problem, "the hook's response is invalid");
                        HookError::Crashed(problem)
                    }),
                    Err(e) => Err(e),
                };
                match applied {
                    Ok((um, am)) => {
                        // An Action's `null` removes a key (`api.user.setUserMetadata(k, null)`);
                        // a Hook's `null` is a value, as in Auth0.
                        let action = hook.kind == Kind::Action;
                        for (changes, into) in [(um, &mut user_metadata), (am, &mut app_metadata)] {
                            let Some(changes) = changes else { continue };
                            let into = into.get_or_insert_with(Map::new);
                            for (k, v) in changes {
                                if action && v.is_null() {
                                    into.remove(&k);
                                } else {
                                    into.insert(k, v);
                                }
                            }
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
        let post_hooks = !cx
            .hooks
            .hooks(Trigger::PostUserRegistration, client_id.as_deref())
            .is_empty();
        let events = match post_hooks {
            true => Some(cx.events.reserve("signup").await?),
            false => None,
        };
        let format = cx.options.upstream_body.format(params.format);
        let forward = Forward {
            body: Some(Bytes::from(params.encode(format))),
            headers: vec![HeaderEdit::Set(
                "content-type",
                format.content_type().into(),
            )],
        };
        let state = State {
            fields,
            client_id,
            context,
            user_metadata,
            app_metadata,
            events,
        };
        Ok(Before::Forward(forward, state))
    }

    /// On the upstream's 2xx, store post-user-registration's event before answering.
    async fn after_upstream(
        &self,
        cx: &Exchange<'_, SignupRoute>,
        state: State,
        resp: Answer,
    ) -> Result<Answer, Failure> {
        let (map, request_id) = (&cx.options.signup, cx.request_id);
        if !resp.is_success() {
            return Ok(resp);
        }
        let Some(reserved) = state.events else {
            return Ok(resp);
        };
        let fields = state.fields;
        let id = serde_json::from_slice::<Value>(&resp.body)
            .ok()
            .and_then(|answer| answer.pointer(&map.user_id).cloned())
            .and_then(|v| match v {
                Value::String(s) => Some(s),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
        if id.is_none() {
            tracing::warn!(request_id, route = %cx.route, pointer = %map.user_id, "the signup answer has no user id at the configured pointer; post-user-registration hooks get user.id undefined");
        }
        // As for the pre hooks: what is unknown is absent, not `null`.
        let mut user = Map::new();
        put(&mut user, "id", &id);
        user.insert("tenant".into(), json!(cx.config.tenant.name));
        put(&mut user, "username", &fields.username);
        put(&mut user, "email", &fields.email);
        user.insert("emailVerified".into(), json!(false));
        put(&mut user, "phoneNumber", &fields.phone_number);
        user.insert("phoneNumberVerified".into(), json!(false));
        user.insert(
            "user_metadata".into(),
            Value::Object(state.user_metadata.unwrap_or_default()),
        );
        user.insert(
            "app_metadata".into(),
            Value::Object(state.app_metadata.unwrap_or_default()),
        );
        let user = Value::Object(user);
        let event = event(
            cx.route,
            state.client_id,
            user,
            Value::Object(state.context),
        );
        cx.events.store(reserved, event, id.as_deref()).await?;
        Ok(resp)
    }
}

/// The outbox event for one created user. Must not: hold the password.
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

/// The client's `user_metadata`: an object (a form sends it as JSON text) with valid key names.
fn client_metadata(v: Value) -> Result<Map<String, Value>, Failure> {
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

fn invalid_signup(description: impl Into<String>) -> Failure {
    Failure::Refused {
        code: "invalid_signup",
        description: description.into(),
    }
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
/// other failure denies with a generic one, unless `on_error = "allow"` (see [`super::settle`]).
const ERRORS: ErrorTable = ErrorTable {
    what: "signup",
    // The hook could not run: 503 whatever `on_error` says (failing open under load would let a
    // flood walk around the hook).
    overloaded: |_| {
        Failure::Overloaded("the signup could not be checked now: try again later".into())
    },
    deliberate,
    denied: |_, _| invalid_signup(GENERIC_DENIAL),
};

fn deliberate(f: &HookFailure) -> Option<Failure> {
    (f.class == "PreUserRegistrationError").then(|| Failure::HookDenied {
        code: "invalid_signup",
        description: f
            .user_message
            .as_deref()
            .unwrap_or(GENERIC_DENIAL)
            .to_string(),
    })
}

fn fail(hook: &Hook, e: &HookError, request_id: &str) -> Result<(), Failure> {
    super::settle(request_id, hook, e, &ERRORS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run records and metrics call `denied` exactly what this point answers as a denial.
    #[test]
    fn the_contracts_denials_are_the_errors_this_point_answers_as_denied() {
        for class in [
            "InvalidScopeError",
            "InvalidRequestError",
            "ServerError",
            "PreUserRegistrationError",
            "Error",
            "TypeError",
            "string",
        ] {
            let f = HookFailure {
                class: class.into(),
                message: "m".into(),
                user_message: None,
            };
            assert_eq!(
                crate::hooks::contract::denies(Trigger::PreUserRegistration, class),
                matches!(deliberate(&f), Some(Failure::HookDenied { .. })),
                "{class}"
            );
        }
    }
    use crate::config::OnError;
    use crate::proxy::respond::{render, ErrorShape};
    use std::sync::Arc;

    fn hook_with(on_error: OnError) -> Arc<Hook> {
        super::super::hook_for_tests(Trigger::PreUserRegistration, on_error)
    }

    #[test]
    fn an_overloaded_hook_is_a_503_in_the_signup_shape_even_with_on_error_allow() {
        for on_error in [OnError::Deny, OnError::Allow] {
            let e = fail(&hook_with(on_error), &HookError::Overloaded, "r").unwrap_err();
            let e = render(&e, Shape::Signup);
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
}
