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
//! This file knows the point's arguments, how to apply its result and how its errors map to
//! HTTP. It must not know how hooks are run (`crate::engine`) or how bytes move
//! (`crate::proxy`).

use std::sync::Arc;

use bytes::Bytes;
use pingora::http::RequestHeader;
use serde_json::{json, Map, Value};

use super::{Hook, OnError, Trigger};
use crate::config::{OpaqueTokens, Route};
use crate::engine::{HookError, Wait};
use crate::proxy::body::{basic_credentials, header, Params};
use crate::proxy::respond::OAuthError;
use crate::proxy::upstream::UpstreamResponse;
use crate::proxy::Proxy;
use crate::reload::Live;
use crate::token::VerifyError;

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

/// Run a token request through the upstream and the credentials-exchange hooks.
pub async fn exchange(
    proxy: &Proxy,
    live: &Live,
    request_id: &str,
    route: &Route,
    mut req: RequestHeader,
    body: Bytes,
) -> Result<UpstreamResponse, OAuthError> {
    let content_type = header(&req, "content-type");
    let params = Params::parse(content_type.as_deref(), &body)?;
    if params.get("grant_type").as_deref() != Some("client_credentials") {
        // Every other grant is the upstream's business alone: the request goes as it came.
        return proxy.upstream.send(req, body).await;
    }
    let authorization = header(&req, "authorization");
    let client_id = basic_credentials(authorization.as_deref())
        .map(|(id, _)| id)
        .or_else(|| params.get("client_id"));

    // Adapt the request to the legacy server: Auth0's `audience` under the upstream's name,
    // and the body in the shape it reads.
    let mut upstream_params = params.clone();
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
    req.insert_header("content-type", format.content_type())
        .map_err(|e| OAuthError::server_error(format!("cannot build the upstream request: {e}")))?;
    let resp = proxy
        .upstream
        .send(req, Bytes::from(upstream_params.encode(format)))
        .await?;

    if resp.header.status.as_u16() != 200 {
        return Ok(resp);
    }
    let hooks = live.generation.hooks_for(
        Trigger::CredentialsExchange,
        client_id.as_deref(),
        Some(&route.name),
    );
    if hooks.is_empty() {
        return Ok(resp);
    }
    let wait = proxy.hook_wait();
    if wait == Wait::SpinFirst {
        // A worker asleep wakes while the upstream's token is read and verified.
        proxy.engine.prewake();
    }
    let Ok(Value::Object(mut answer)) = serde_json::from_slice::<Value>(&resp.body) else {
        return Err(OAuthError::new(
            502,
            "server_error",
            "the identity server's token answer is not a JSON object",
        ));
    };
    let Some(access_token) = answer.get("access_token").and_then(Value::as_str) else {
        return Err(OAuthError::new(
            502,
            "server_error",
            "the identity server's token answer has no access_token",
        ));
    };

    let upstream_token = match proxy.upstream_keys.verify(access_token).await {
        Ok(t) => Some(t),
        Err(VerifyError::Opaque) => None,
        Err(e) => {
            tracing::error!(request_id, error = %e, "refusing the identity server's token");
            return Err(OAuthError::new(
                502,
                "server_error",
                "the identity server's token could not be verified",
            ));
        }
    };

    let claims = upstream_token.as_ref().map(|t| &t.claims);
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
    let registered = live.config.clients.get(&client_id);
    let client = json!({
        "id": client_id,
        "name": registered.and_then(|c| c.name.clone()).unwrap_or_else(|| client_id.clone()),
        "tenant": live.config.tenant.name,
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
        let context = json!({ "webtask": hook.webtask(), "body": body_for_hooks });
        let args = vec![
            client.clone(),
            outcome.scope.as_ref().map_or(Value::Null, |s| json!(s)),
            audience.as_ref().map_or(Value::Null, |a| json!(a)),
            context,
        ];
        match proxy.engine.call_with(hook, args, request_id, wait).await {
            Ok(result) => outcome.apply(hook, &result, request_id)?,
            Err(e) => fail(hook, &e, request_id)?,
        }
    }

    let changed = outcome.scope != granted || !outcome.claims.is_empty();
    if !changed {
        return Ok(resp);
    }
    let Some(upstream_token) = upstream_token else {
        return match live.config.token.opaque_tokens {
            OpaqueTokens::Pass => {
                tracing::warn!(request_id, "hooks changed an opaque token; passing the identity server's token through unchanged (token.opaque_tokens = \"pass\")");
                Ok(resp)
            }
            OpaqueTokens::Deny => {
                tracing::error!(request_id, "hooks changed scopes or claims, but the identity server issued an opaque token that hookgate cannot rewrite; configure it to issue JWT access tokens, or set token.opaque_tokens = \"pass\"");
                Err(OAuthError::server_error(
                    "the access token cannot carry the hooks' changes",
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
    let keys = live
        .keys
        .as_ref()
        .ok_or_else(|| OAuthError::server_error("hookgate has no signing key"))?;
    let token = keys
        .current
        .sign(upstream_token.typ.as_deref(), &Value::Object(minted))
        .map_err(OAuthError::server_error)?;
    answer.insert("access_token".into(), json!(token));
    match scope_text {
        Some(s) => answer.insert("scope".into(), json!(s)),
        None => answer.remove("scope"),
    };
    Ok(UpstreamResponse {
        header: resp.header,
        body: Bytes::from(serde_json::to_vec(&answer).expect("a JSON map serialises")),
    })
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
    fn apply(&mut self, hook: &Hook, result: &Value, request_id: &str) -> Result<(), OAuthError> {
        let empty = Map::new();
        let fields = match result {
            Value::Object(m) => m,
            Value::Null => &empty,
            other => {
                tracing::error!(request_id, hook = %hook.name, result = %other, "the hook passed cb a value that is not an object");
                return Err(OAuthError::server_error(format!(
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
                        return Err(OAuthError::server_error(format!(
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
                return Err(OAuthError::server_error(format!(
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

/// The contract's error table; `on_error` decides for timeouts, crashes and unexpected throws.
/// A hook that could not run (overloaded) is a 503, whatever `on_error` says.
fn fail(hook: &Arc<Hook>, e: &HookError, request_id: &str) -> Result<(), OAuthError> {
    if *e == HookError::Overloaded {
        return Err(overloaded(hook));
    }
    let deliberate = match e {
        HookError::Failed(f) => match f.class.as_str() {
            "InvalidScopeError" => Some(OAuthError::new(400, "invalid_scope", &f.message)),
            "InvalidRequestError" => Some(OAuthError::new(400, "invalid_request", &f.message)),
            "ServerError" | "string" => Some(OAuthError::server_error(&f.message)),
            _ => None,
        },
        _ => None,
    };
    if let Some(err) = deliberate {
        tracing::info!(request_id, hook = %hook.name, error = %err, "the hook denied the token");
        return Err(err);
    }
    match hook.on_error {
        OnError::Allow => {
            tracing::warn!(request_id, hook = %hook.name, error = %e, "the hook failed; on_error = allow, so the token goes on without it");
            Ok(())
        }
        OnError::Deny => {
            tracing::error!(request_id, hook = %hook.name, error = %e, "the hook failed; denying the token");
            Err(match e {
                HookError::Failed(f) => OAuthError::server_error(&f.message),
                HookError::Timeout => {
                    OAuthError::server_error(format!("hook {} timed out", hook.name))
                }
                HookError::Crashed(_) => {
                    OAuthError::server_error(format!("hook {} failed", hook.name))
                }
                HookError::Overloaded => overloaded(hook),
            })
        }
    }
}

/// 503 `temporarily_unavailable`: the client may retry.
fn overloaded(hook: &Hook) -> OAuthError {
    OAuthError::new(
        503,
        "temporarily_unavailable",
        format!(
            "hook {} could not run: hookgate is overloaded, retry later",
            hook.name
        ),
    )
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
            "credentials-exchange/h".into(),
            Trigger::CredentialsExchange,
            "h.js".into(),
            std::time::Duration::from_secs(1),
            Default::default(),
            program,
        );
        h.on_error = on_error;
        Arc::new(h)
    }

    #[test]
    fn an_overloaded_hook_is_a_503_even_with_on_error_allow() {
        for on_error in [OnError::Deny, OnError::Allow] {
            let e = fail(&hook_with(on_error), &HookError::Overloaded, "r").unwrap_err();
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
}
