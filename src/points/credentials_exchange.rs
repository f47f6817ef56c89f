//! credentials-exchange: `POST /oauth/token` with `grant_type=client_credentials`, blocking.
//!
//! ```js
//! module.exports = function (client, scope, audience, context, cb) { ... cb(null, accessToken) }
//! ```
//!
//! The upstream authenticates the client and issues its token first; hooks run only on its 200
//! answer carrying a token, so an unauthenticated caller can never run a hook. Then, per the
//! contract: the hook's `scope` array replaces the token's scopes (absent: no scopes), namespaced
//! keys become claims, everything else is ignored with a log line, and registered claims stay the
//! upstream's. The changed token is signed with hookgate's key. Other grants pass through
//! untouched, and so do the upstream's non-200 answers.
//!
//! The client hooks see, and that `clients = [...]` targeting matches, is the one the upstream's
//! verified token names (`client_id`, else `azp`, else `sub`), never what hookgate makes of the
//! request's credentials: a spelling of the credentials hookgate reads differently from the
//! server must not lend one client the hooks of another. Only an opaque token falls back to the
//! credentials, and then only when they name exactly one client.
//!
//! The upstream request is adapted to what the server accepts: Auth0's `audience` under the
//! route's `audience_param`, a default audience when the request names none (the client's in
//! the registry, else the route's: servers that issue opaque tokens without one would make
//! every audience-less request fail once a hook changes the token), and the client's
//! credentials presented as the route (or the registered client) says, Basic or in the body
//! (RFC 6749 §2.3.1), on every grant, since the server authenticates the client on each.
//!
//! This file knows the point's arguments, how to apply its result and which failure each
//! problem is. It must not know how hooks are run (`crate::engine`) or how bytes move (the
//! transport, `proxy`).

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::{Answer, Before, ErrorTable, Exchange, Failure, Forward, HeaderEdit, Point, Shape};
use crate::config::BodyFormat;
use crate::config::Trigger;
use crate::config::{ClientAuth, OpaqueTokens, TokenRoute};
use crate::engine::{HookError, HookFailure};
use crate::hooks::{Hook, Kind};
use crate::token::VerifyError;
use crate::wire::headers::basic_credentials;
use crate::wire::params::Params;

/// Claims a hook can never set or change.
const REGISTERED_CLAIMS: [&str; 9] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "azp",
    "client_id",
];

/// Request parameters that never reach a hook (nor a log line).
const SECRET_PARAMS: [&str; 2] = ["client_secret", "client_assertion"];

/// The credentials-exchange point.
pub struct CredentialsExchange;

/// What the answer needs of the request.
pub enum State {
    /// Not a client-credentials grant: the upstream's answer is the answer.
    Pass,
    /// A client-credentials grant: its hooks run on the upstream's token.
    Hooks {
        params: Params,
        sent_client: Option<String>,
    },
}

#[async_trait]
impl Point for CredentialsExchange {
    /// A token route's own settings.
    type Options = TokenRoute;
    type State = State;

    fn shape(&self) -> Shape {
        Shape::OAuth
    }

    /// Adapt the token request to the upstream.
    async fn before_upstream(
        &self,
        cx: &Exchange<'_, TokenRoute>,
    ) -> Result<Before<State>, Failure> {
        let route = cx.options;
        let mut params = cx.request.params()?;
        let authorization = cx.request.header("authorization");
        let sent_client = sent_client_id(authorization, &params);
        // Settings of the client the credentials name: how to present them, its default audience.
        // (Not who the client is for hooks: that is the verified token's, below.)
        let sent_registered = sent_client
            .as_deref()
            .and_then(|id| cx.config.clients.get(id));
        let client_auth = sent_registered
            .and_then(|c| c.upstream_client_auth)
            .unwrap_or(route.upstream_client_auth);
        if params.get("grant_type").as_deref() != Some("client_credentials") {
            // Every other grant is the upstream's business alone: the request goes as it came,
            // but for the client's credentials, presented as the server accepts them.
            if client_auth == ClientAuth::Same {
                return Ok(Before::Forward(Forward::unchanged(), State::Pass));
            }
            let mut upstream_params = params.clone();
            let Some(moved) =
                present_credentials(client_auth, authorization, &mut upstream_params)?
            else {
                return Ok(Before::Forward(Forward::unchanged(), State::Pass));
            };
            let forward = send_params(Some(moved), &upstream_params, params.format);
            return Ok(Before::Forward(forward, State::Pass));
        }
        // No audience named: the registered client's default, else the route's. Hooks see it as
        // the audience, as Auth0's tenant default audience was.
        let named = ["audience", "resource", route.audience_param.as_str()]
            .iter()
            .any(|k| params.get(k).is_some_and(|v| !v.is_empty()));
        if !named {
            if let Some(aud) = sent_registered
                .and_then(|c| c.default_audience.clone())
                .or_else(|| route.default_audience.clone())
            {
                // Empty ones name nothing: they must not travel next to the default.
                for k in ["audience", "resource", route.audience_param.as_str()] {
                    params.values.remove(k);
                }
                params.values.insert("audience".into(), json!(aud));
            }
        }

        // Adapt the request to the legacy server: Auth0's `audience` under the upstream's name,
        // the client's credentials as it accepts them, and the body in the shape it reads.
        let mut upstream_params = params.clone();
        let moved = present_credentials(client_auth, authorization, &mut upstream_params)?;
        if route.audience_param != "audience"
            && !upstream_params.values.contains_key(&route.audience_param)
        {
            if let Some(aud) = upstream_params.values.remove("audience") {
                upstream_params
                    .values
                    .insert(route.audience_param.clone(), aud);
            }
        }
        let format = route.upstream_body.format(params.format);
        let forward = send_params(moved, &upstream_params, format);
        Ok(Before::Forward(
            forward,
            State::Hooks {
                params,
                sent_client,
            },
        ))
    }

    /// Run the hooks on the upstream's token, and re-sign it when they changed it.
    async fn after_upstream(
        &self,
        cx: &Exchange<'_, TokenRoute>,
        state: State,
        resp: Answer,
    ) -> Result<Answer, Failure> {
        let State::Hooks {
            params,
            sent_client,
        } = state
        else {
            return Ok(resp);
        };
        let (route, request_id) = (cx.options, cx.request_id);
        if resp.status != 200 {
            return Ok(resp);
        }
        if !cx.hooks.any_for_route(Trigger::CredentialsExchange) {
            return Ok(resp);
        }
        // A worker asleep wakes while the upstream's token is read and verified.
        cx.hooks.prewake();
        let Ok(Value::Object(mut answer)) = serde_json::from_slice::<Value>(&resp.body) else {
            return Err(Failure::UpstreamInvalid(
                "the identity server's token answer is not a JSON object".into(),
            ));
        };
        let Some(access_token) = answer.get("access_token").and_then(Value::as_str) else {
            return Err(Failure::UpstreamInvalid(
                "the identity server's token answer has no access_token".into(),
            ));
        };

        let upstream_token = match cx.tokens.upstream_keys.verify(access_token).await {
            Ok(t) => Some(t),
            Err(VerifyError::Opaque) => None,
            Err(e) => {
                tracing::error!(request_id, error = %e, "refusing the identity server's token");
                return Err(Failure::UpstreamInvalid(
                    "the identity server's token could not be verified".into(),
                ));
            }
        };

        let claims = upstream_token.as_ref().map(|t| &t.claims);
        // The client is who the identity server says it is: the verified token names it. What
        // the request sent is only a fallback for tokens that name no client (opaque ones).
        let client_id = match claims.and_then(token_client_id) {
            Some(id) => {
                if sent_client.as_ref().is_some_and(|sent| *sent != id) {
                    tracing::warn!(request_id, token_client = %id, sent_client = ?sent_client, "the client credentials name another client than the identity server's token; the token's client is used");
                }
                Some(id)
            }
            None => sent_client,
        };
        let hooks = cx
            .hooks
            .hooks(Trigger::CredentialsExchange, client_id.as_deref());
        if hooks.is_empty() {
            return Ok(resp);
        }
        let granted = granted_scope(claims, &answer);
        let audience = claims
            .and_then(|c| match c.get("aud") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Array(a)) => a.first().and_then(Value::as_str).map(str::to_string),
                _ => None,
            })
            .or_else(|| params.get("audience"))
            .or_else(|| params.get(&route.audience_param));
        let client_id = client_id.unwrap_or_default();
        let registered = cx.config.clients.get(&client_id);
        let client = json!({
            "id": client_id,
            "name": registered.and_then(|c| c.name.clone()).unwrap_or_else(|| client_id.clone()),
            "tenant": cx.config.tenant.name,
            "metadata": registered.map(|c| json!(c.metadata)).unwrap_or_else(|| json!({})),
        });
        let mut body_for_hooks = params.values.clone();
        for secret in SECRET_PARAMS {
            body_for_hooks.remove(secret);
        }

        let mut outcome = Outcome {
            scope: granted.clone(),
            claims: Map::new(),
        };
        for hook in &hooks {
            let mut context = json!({ "webtask": hook.webtask(), "body": body_for_hooks });
            if hook.kind == Kind::Action {
                // What the handlers before it set: the Action's event.accessToken.customClaims
                // (Hooks see Auth0's context, without it).
                context["claims"] = json!(outcome.claims);
            }
            let args = vec![
                client.clone(),
                outcome.scope.as_ref().map_or(Value::Null, |s| json!(s)),
                audience.as_ref().map_or(Value::Null, |a| json!(a)),
                context,
            ];
            match cx.hooks.call(hook, args, Some(client_id.as_str())).await {
                Ok(result) => outcome.apply(hook, &result, request_id)?,
                Err(e) => fail(hook, &e, request_id)?,
            }
        }

        let changed = outcome.scope != granted || !outcome.claims.is_empty();
        if !changed {
            return Ok(resp);
        }
        let Some(upstream_token) = upstream_token else {
            return match cx.config.token.opaque_tokens {
                OpaqueTokens::Pass => {
                    tracing::warn!(request_id, "hooks changed an opaque token; passing the identity server's token through unchanged (token.opaque_tokens = \"pass\")");
                    Ok(resp)
                }
                OpaqueTokens::Deny => {
                    tracing::error!(request_id, "hooks changed scopes or claims, but the identity server issued an opaque token that hookgate cannot rewrite; configure it to issue JWT access tokens, or set token.opaque_tokens = \"pass\"");
                    Err(Failure::Internal(
                        "the access token cannot carry the hooks' changes".into(),
                    ))
                }
            };
        };

        let mut minted = upstream_token.claims.clone();
        for (k, v) in outcome.claims {
            minted.insert(k, v);
        }
        let scope_text = outcome
            .scope
            .as_ref()
            .filter(|s| !s.is_empty())
            .map(|s| s.join(" "));
        if minted.contains_key("scp") {
            // The upstream uses the array form; keep its shape.
            match &outcome.scope {
                Some(s) if !s.is_empty() => minted.insert("scp".into(), json!(s)),
                _ => minted.remove("scp"),
            };
        } else {
            match &scope_text {
                Some(s) => minted.insert("scope".into(), json!(s)),
                None => minted.remove("scope"),
            };
        }
        let keys = cx
            .tokens
            .signing
            .ok_or_else(|| Failure::Internal("hookgate has no signing key".into()))?;
        let token = keys
            .current
            .sign(upstream_token.typ.as_deref(), &Value::Object(minted))
            .map_err(|e| Failure::Internal(e.to_string()))?;
        answer.insert("access_token".into(), json!(token));
        match scope_text {
            Some(s) => answer.insert("scope".into(), json!(s)),
            None => answer.remove("scope"),
        };
        Ok(Answer {
            status: resp.status,
            body: Bytes::from(serde_json::to_vec(&answer).expect("a JSON map serialises")),
        })
    }
}

/// Send `params` upstream as a `format` body, after the credentials' move (if any).
fn send_params(moved: Option<HeaderEdit>, params: &Params, format: BodyFormat) -> Forward {
    let mut headers: Vec<HeaderEdit> = moved.into_iter().collect();
    headers.push(HeaderEdit::Set(
        "content-type",
        format.content_type().into(),
    ));
    Forward {
        body: Some(Bytes::from(params.encode(format))),
        headers,
    }
}

/// Present the client's credentials as `how` says: HTTP Basic (`client_secret_basic`) or in the
/// body (`client_secret_post`), whichever way they came. `Some(edit)` of the `Authorization`
/// header when the request changed (`params` changed with it).
///
/// Only a client id *with* a secret moves (a public client's lone `client_id`, or a
/// `client_assertion`, stays where it is). Credentials in both places that name different
/// clients are refused: the server would refuse them too, and hookgate must not pick one.
fn present_credentials(
    how: ClientAuth,
    authorization: Option<&str>,
    params: &mut Params,
) -> Result<Option<HeaderEdit>, Failure> {
    let conflict = || {
        Failure::BadRequest(
            "the client is authenticated twice (HTTP Basic and the request body) with different credentials".into(),
        )
    };
    match how {
        ClientAuth::Same => Ok(None),
        ClientAuth::Basic => {
            let (Some(id), Some(secret)) = (params.get("client_id"), params.get("client_secret"))
            else {
                return Ok(None);
            };
            if let Some(a) = authorization {
                // Also in the header: fine only if it says the same.
                if basic_credentials(Some(a)) != Some((id.clone(), secret.clone())) {
                    return Err(conflict());
                }
            }
            params.values.remove("client_id");
            params.values.remove("client_secret");
            Ok(Some(HeaderEdit::Set(
                "authorization",
                basic_header(&id, &secret),
            )))
        }
        ClientAuth::Post => {
            let Some((id, secret)) = basic_credentials(authorization) else {
                return Ok(None);
            };
            let body_id = params.get("client_id");
            let body_secret = params.get("client_secret");
            if body_id.as_ref().is_some_and(|b| *b != id)
                || body_secret.as_ref().is_some_and(|b| *b != secret)
            {
                return Err(conflict());
            }
            params.values.insert("client_id".into(), json!(id));
            params.values.insert("client_secret".into(), json!(secret));
            Ok(Some(HeaderEdit::Remove("authorization")))
        }
    }
}

/// `Basic base64(id:secret)`, each part form-urlencoded first (RFC 6749 §2.3.1), so a `:`, `%`
/// or `+` in a secret reaches the server intact.
fn basic_header(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// The client a verified upstream token was issued to: `client_id` (RFC 9068, node-oidc-provider,
/// Keycloak), else `azp` (Auth0, OIDC), else `sub` (a client-credentials token's subject is its
/// client). `None` when the token names none.
fn token_client_id(claims: &Map<String, Value>) -> Option<String> {
    ["client_id", "azp", "sub"]
        .iter()
        .find_map(|k| {
            claims
                .get(*k)
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
        })
        .map(str::to_string)
}

/// The client the request's credentials name, when they name exactly one: a Basic header
/// hookgate cannot read, or a Basic header and a body `client_id` that disagree, name no one
/// (an identity server might read either, and hookgate must not guess which).
fn sent_client_id(authorization: Option<&str>, params: &Params) -> Option<String> {
    let body = params.get("client_id").filter(|id| !id.is_empty());
    let Some(authorization) = authorization else {
        return body;
    };
    let (basic, _) = basic_credentials(Some(authorization))?;
    match body {
        Some(b) if b != basic => None,
        _ => (!basic.is_empty()).then_some(basic),
    }
}

/// The scopes the upstream granted: the token's `scope` (space-separated) or `scp` (array),
/// else the answer's `scope`. `None` when nothing was granted — the hook then sees `undefined`.
fn granted_scope(
    claims: Option<&Map<String, Value>>,
    answer: &Map<String, Value>,
) -> Option<Vec<String>> {
    let from_text = |v: &Value| {
        v.as_str()
            .map(|s| s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    };
    let list = claims
        .and_then(|c| {
            c.get("scope").and_then(from_text).or_else(|| {
                c.get("scp").and_then(Value::as_array).map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
            })
        })
        .or_else(|| answer.get("scope").and_then(from_text));
    list.filter(|l| !l.is_empty())
}

/// What the hooks have decided so far; each hook sees the scope the previous one left.
#[derive(Debug, PartialEq)]
struct Outcome {
    scope: Option<Vec<String>>,
    claims: Map<String, Value>,
}

impl Outcome {
    fn apply(&mut self, hook: &Hook, result: &Value, request_id: &str) -> Result<(), Failure> {
        let empty = Map::new();
        let fields = match result {
            Value::Object(m) => m,
            Value::Null => &empty,
            other => {
                tracing::error!(request_id, hook = %hook.name, result = %other, "the hook passed cb a value that is not an object");
                return Err(Failure::HookFailed(format!(
                    "hook {} returned an invalid access token",
                    hook.name
                )));
            }
        };
        self.scope = match fields.get("scope") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut list = Vec::with_capacity(items.len());
                for item in items {
                    let Some(s) = item.as_str() else {
                        tracing::error!(request_id, hook = %hook.name, scope = %fields["scope"], "the hook's scope holds a non-string");
                        return Err(Failure::HookFailed(format!(
                            "hook {} returned an invalid scope",
                            hook.name
                        )));
                    };
                    if !list.iter().any(|x| x == s) {
                        list.push(s.to_string());
                    }
                }
                Some(list)
            }
            Some(other) => {
                tracing::error!(request_id, hook = %hook.name, scope = %other, "the hook's scope is not an array");
                return Err(Failure::HookFailed(format!(
                    "hook {} returned an invalid scope",
                    hook.name
                )));
            }
        };
        for (key, value) in fields {
            if key == "scope" {
                continue;
            }
            if REGISTERED_CLAIMS.contains(&key.as_str()) {
                tracing::warn!(request_id, hook = %hook.name, claim = %key, "hooks cannot change registered claims; ignored");
            } else if is_namespaced(key) {
                self.claims.insert(key.clone(), value.clone());
            } else {
                tracing::warn!(request_id, hook = %hook.name, claim = %key, "a custom claim must be namespaced (an http:// or https:// URL not on auth0.com, webtask.io or webtask.run); ignored");
            }
        }
        Ok(())
    }
}

/// A namespaced claim: an `http://` or `https://` URL whose host is not Auth0's or Webtask's.
pub fn is_namespaced(key: &str) -> bool {
    if !(key.starts_with("http://") || key.starts_with("https://")) {
        return false;
    }
    let Ok(url) = reqwest::Url::parse(key) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    !["auth0.com", "webtask.io", "webtask.run"]
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

/// The contract's error table: Auth0's error classes deny with their code; `on_error` decides
/// for timeouts, crashes and unexpected throws (see [`super::settle`]).
const ERRORS: ErrorTable = ErrorTable {
    what: "token",
    overloaded,
    deliberate,
    denied,
};

fn fail(hook: &Hook, e: &HookError, request_id: &str) -> Result<(), Failure> {
    super::settle(request_id, hook, e, &ERRORS)
}

fn deliberate(f: &HookFailure) -> Option<Failure> {
    let denied = |code| Failure::HookDenied {
        code,
        description: f.message.clone(),
    };
    match f.class.as_str() {
        "InvalidScopeError" => Some(denied("invalid_scope")),
        "InvalidRequestError" => Some(denied("invalid_request")),
        "ServerError" | "string" => Some(Failure::HookFailed(f.message.clone())),
        _ => None,
    }
}

fn denied(hook: &Hook, e: &HookError) -> Failure {
    match e {
        HookError::Failed(f) => Failure::HookFailed(f.message.clone()),
        HookError::Timeout => Failure::HookFailed(format!("hook {} timed out", hook.name)),
        HookError::Crashed(_) => Failure::HookFailed(format!("hook {} failed", hook.name)),
        HookError::Overloaded => overloaded(hook),
    }
}

/// 503 `temporarily_unavailable`: the client may retry.
fn overloaded(hook: &Hook) -> Failure {
    Failure::Overloaded(format!(
        "hook {} could not run: hookgate is overloaded, retry later",
        hook.name
    ))
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
                crate::hooks::contract::denies(Trigger::CredentialsExchange, class),
                matches!(deliberate(&f), Some(Failure::HookDenied { .. })),
                "{class}"
            );
        }
    }
    use crate::config::OnError;
    use crate::proxy::respond::render;
    use std::sync::Arc;

    fn hook_with(on_error: OnError) -> Arc<Hook> {
        super::super::hook_for_tests(Trigger::CredentialsExchange, on_error)
    }

    #[test]
    fn an_overloaded_hook_is_a_503_even_with_on_error_allow() {
        for on_error in [OnError::Deny, OnError::Allow] {
            let e = fail(&hook_with(on_error), &HookError::Overloaded, "r").unwrap_err();
            let e = render(&e, Shape::OAuth);
            assert_eq!((e.status, e.error), (503, "temporarily_unavailable"));
        }
    }

    #[test]
    fn namespaced_claims() {
        for ok in [
            "https://example.com/roles",
            "http://my.app/x",
            "https://auth0.company.com/y",
        ] {
            assert!(is_namespaced(ok), "{ok}");
        }
        for bad in [
            "roles",
            "https://auth0.com/x",
            "https://tenant.auth0.com/x",
            "http://webtask.io/a",
            "https://x.webtask.run/",
            "urn:x",
            "https://",
        ] {
            assert!(!is_namespaced(bad), "{bad}");
        }
    }

    #[test]
    fn granted_scope_prefers_the_token() {
        let answer = json!({"scope": "from answer"});
        let answer = answer.as_object().unwrap();
        let claims = json!({"scope": "a b"});
        assert_eq!(
            granted_scope(claims.as_object(), answer),
            Some(vec!["a".into(), "b".into()])
        );
        let claims = json!({"scp": ["x"]});
        assert_eq!(
            granted_scope(claims.as_object(), answer),
            Some(vec!["x".into()])
        );
        assert_eq!(
            granted_scope(None, answer),
            Some(vec!["from".into(), "answer".into()])
        );
        assert_eq!(granted_scope(None, &Map::new()), None);
        let claims = json!({"scope": ""});
        assert_eq!(granted_scope(claims.as_object(), &Map::new()), None);
    }

    #[test]
    fn the_token_names_the_client_by_client_id_then_azp_then_sub() {
        let c = |v: Value| v.as_object().unwrap().clone();
        let id = |v| token_client_id(&c(v));
        assert_eq!(
            id(json!({"client_id": "a", "azp": "b", "sub": "c"})).as_deref(),
            Some("a")
        );
        assert_eq!(
            id(json!({"client_id": "", "azp": "b", "sub": "c"})).as_deref(),
            Some("b")
        );
        assert_eq!(id(json!({"sub": "c"})).as_deref(), Some("c"));
        assert_eq!(id(json!({"client_id": 5})), None);
        assert_eq!(id(json!({})), None);
    }

    fn form(body: &str) -> Params {
        Params::parse(Some("application/x-www-form-urlencoded"), body.as_bytes()).unwrap()
    }

    #[test]
    fn basic_credentials_are_form_encoded_before_base64() {
        let h = basic_header("my client", "a+b%c:d/é");
        assert_eq!(
            h,
            format!(
                "Basic {}",
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    "my+client:a%2Bb%25c%3Ad%2F%C3%A9"
                )
            )
        );
        // hookgate's own reader (as lenient as servers) gets the same credentials back.
        assert_eq!(
            basic_credentials(Some(&h)),
            Some(("my client".to_string(), "a+b%c:d/é".to_string()))
        );
    }

    #[test]
    fn credentials_move_between_the_body_and_basic_as_configured() {
        let set = |v: String| Some(HeaderEdit::Set("authorization", v));
        // Body → Basic.
        let mut p = form("grant_type=x&client_id=c&client_secret=s");
        let edit = present_credentials(ClientAuth::Basic, None, &mut p).unwrap();
        assert_eq!(p.get("client_id"), None);
        assert_eq!(p.get("client_secret"), None);
        assert_eq!(edit, set(basic_header("c", "s")));
        // Basic → body.
        let mut p = form("grant_type=x");
        let edit =
            present_credentials(ClientAuth::Post, Some(&basic_header("c", "s:1")), &mut p).unwrap();
        assert_eq!(edit, Some(HeaderEdit::Remove("authorization")));
        assert_eq!(p.get("client_id").as_deref(), Some("c"));
        assert_eq!(p.get("client_secret").as_deref(), Some("s:1"));
        // Already as wanted, a public client, `same`: nothing moves.
        for (how, auth, body) in [
            (ClientAuth::Post, None, "client_id=c&client_secret=s"),
            (
                ClientAuth::Basic,
                Some(basic_header("c", "s")),
                "grant_type=x",
            ),
            (ClientAuth::Basic, None, "client_id=public"),
            (
                ClientAuth::Post,
                Some("Bearer x".to_string()),
                "client_id=c",
            ),
            (ClientAuth::Same, None, "client_id=c&client_secret=s"),
        ] {
            let mut p = form(body);
            let before = p.clone();
            assert_eq!(
                present_credentials(how, auth.as_deref(), &mut p).unwrap(),
                None,
                "{body}"
            );
            assert_eq!(p, before);
        }
        // Both places, the same client: one place. Different clients: refused.
        let mut p = form("client_id=c&client_secret=s");
        let edit =
            present_credentials(ClientAuth::Basic, Some(&basic_header("c", "s")), &mut p).unwrap();
        assert_eq!(edit, set(basic_header("c", "s")));
        assert_eq!(p.get("client_id"), None);
        for (how, body) in [
            (ClientAuth::Basic, "client_id=d&client_secret=s"),
            (ClientAuth::Post, "client_id=d"),
            (ClientAuth::Post, "client_id=c&client_secret=other"),
        ] {
            let mut p = form(body);
            let err = present_credentials(how, Some(&basic_header("c", "s")), &mut p).unwrap_err();
            assert_eq!(render(&err, Shape::OAuth).status, 400, "{body}");
        }
    }

    #[test]
    fn credentials_that_name_no_single_client_name_none() {
        use base64::Engine as _;
        let basic = |raw: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(raw)
            )
        };
        let form = |body: &str| {
            Params::parse(Some("application/x-www-form-urlencoded"), body.as_bytes()).unwrap()
        };
        let none = form("grant_type=client_credentials");
        let a = form("client_id=a");
        assert_eq!(
            sent_client_id(Some(&basic("a:s")), &none).as_deref(),
            Some("a")
        );
        assert_eq!(
            sent_client_id(Some(&basic("a:s")), &a).as_deref(),
            Some("a")
        );
        assert_eq!(sent_client_id(None, &a).as_deref(), Some("a"));
        assert_eq!(sent_client_id(Some(&basic("b:s")), &a), None, "disagree");
        assert_eq!(sent_client_id(Some("Basic !!"), &a), None, "unreadable");
        assert_eq!(sent_client_id(Some(&basic(":s")), &none), None, "empty");
        assert_eq!(sent_client_id(None, &form("client_id=")), None);
    }
}
