//! Who may call the management API: bearer tokens from `[[admin.token]]`, the one table of
//! scopes per method and route ([`required_scopes`]), and a rate limit per token.
//!
//! Every request goes through [`middleware`]: no or an unknown token is 401 `Invalid token`; a
//! route outside the table is 404; a token without one of the route's scopes is 403 `Insufficient
//! scope, expected any of: ...` (`errorCode: insufficient_scope`, the text deploy-cli looks for);
//! a token over its rate is 429 with `X-RateLimit-*` and `Retry-After`. Tokens are compared in
//! constant time (SHA-256 of both sides, compared with `subtle`, against every token).
//!
//! Owns: authentication, the scope table and rate limiting. Must not: log a token or a request
//! body, or handle a route.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::errors::ApiError;
use crate::config::admin::Admin as AdminConfig;
use crate::config::secrets::read_secret;

/// Method, route pattern, scopes (any of them). A `*` segment is one segment, a trailing `**`
/// one or more. The first matching row wins. Routes mounted by other parts of hookgate (run
/// records, the Runner, the outbox) are listed here too, so every scope is decided in one place.
pub const SCOPE_TABLE: &[(&str, &str, &[&str])] = &[
    // Auth0's Management API.
    ("GET", "/api/v2/hooks", &["read:hooks"]),
    ("POST", "/api/v2/hooks", &["create:hooks"]),
    ("GET", "/api/v2/hooks/*", &["read:hooks"]),
    ("PATCH", "/api/v2/hooks/*", &["update:hooks"]),
    ("DELETE", "/api/v2/hooks/*", &["delete:hooks"]),
    ("GET", "/api/v2/hooks/*/secrets", &["read:hooks"]),
    // Auth0's documents disagree on this one: either scope is accepted.
    (
        "POST",
        "/api/v2/hooks/*/secrets",
        &["create:hooks", "update:hooks"],
    ),
    ("PATCH", "/api/v2/hooks/*/secrets", &["update:hooks"]),
    ("DELETE", "/api/v2/hooks/*/secrets", &["delete:hooks"]),
    // hookgate's own.
    ("POST", "/api/hookgate/hooks/order", &["update:hooks"]),
    ("POST", "/api/hookgate/hooks/test", &["update:hooks"]),
    ("GET", "/api/hookgate/hooks", &["read:hooks"]),
    ("GET", "/api/hookgate/hooks/*", &["read:hooks"]),
    ("PATCH", "/api/hookgate/hooks/*", &["update:hooks"]),
    ("GET", "/api/hookgate/status", &["read:hooks"]),
    ("GET", "/api/hookgate/runs", &["read:logs"]),
    ("GET", "/api/hookgate/runs/**", &["read:logs"]),
    ("GET", "/api/hookgate/outbox", &["read:outbox"]),
    ("GET", "/api/hookgate/outbox/**", &["read:outbox"]),
    ("POST", "/api/hookgate/outbox/**", &["update:outbox"]),
    ("DELETE", "/api/hookgate/outbox/**", &["update:outbox"]),
];

/// The scopes that allow `method path`, any one of them; `None`: no such route.
pub fn required_scopes(method: &Method, path: &str) -> Option<&'static [&'static str]> {
    let path = path.trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').collect();
    SCOPE_TABLE
        .iter()
        .find(|(m, pattern, _)| *m == method.as_str() && matches(pattern, &segs))
        .map(|(_, _, scopes)| *scopes)
}

fn matches(pattern: &str, segs: &[&str]) -> bool {
    let pat: Vec<&str> = pattern.split('/').collect();
    if pat.last() == Some(&"**") {
        let fixed = &pat[..pat.len() - 1];
        return segs.len() > fixed.len()
            && fixed
                .iter()
                .zip(segs)
                .all(|(p, s)| (*p == "*" && !s.is_empty()) || p == s)
            && segs[fixed.len()..].iter().all(|s| !s.is_empty());
    }
    pat.len() == segs.len()
        && pat
            .iter()
            .zip(segs)
            .all(|(p, s)| (*p == "*" && !s.is_empty()) || p == s)
}

/// One configured token.
struct Token {
    name: String,
    digest: [u8; 32],
    scopes: Vec<String>,
    bucket: Mutex<Bucket>,
}

/// A token bucket: `burst` requests at once, refilled at `per_sec`.
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The tokens and the rate limit.
pub struct Auth {
    tokens: Vec<Token>,
    per_sec: f64,
    burst: f64,
}

/// Who made a request (handlers may log it; never the token itself).
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_name: String,
}

impl Auth {
    /// Read every token's value now. An unreadable or empty token is an error: starting with it
    /// would leave a configured client locked out without saying why.
    pub fn from_config(admin: &AdminConfig, base_dir: &std::path::Path) -> anyhow::Result<Auth> {
        let mut tokens = Vec::new();
        for t in &admin.tokens {
            let value = read_secret(&t.token, base_dir, &|k| std::env::var(k).ok())
                .map_err(|e| anyhow::anyhow!("[[admin.token]] {}: {e}", t.name))?;
            if value.trim().is_empty() {
                anyhow::bail!("[[admin.token]] {}: the token is empty", t.name);
            }
            tokens.push(Token {
                name: t.name.clone(),
                digest: Sha256::digest(value.as_bytes()).into(),
                scopes: t.scopes.clone(),
                bucket: Mutex::new(Bucket {
                    tokens: admin.rate_limit_burst as f64,
                    at: Instant::now(),
                }),
            });
        }
        Ok(Auth {
            tokens,
            per_sec: admin.rate_limit_per_sec as f64,
            burst: admin.rate_limit_burst as f64,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The token presented, compared with every configured one without stopping early.
    fn find(&self, presented: &str) -> Option<&Token> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for t in &self.tokens {
            if bool::from(t.digest.ct_eq(&digest)) {
                found = Some(t);
            }
        }
        found
    }

    /// Take one request from the token's bucket: `Ok(remaining)` or `Err(seconds to wait)`.
    fn take(&self, token: &Token) -> Result<u32, f64> {
        let mut b = token.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(b.at).as_secs_f64() * self.per_sec;
        b.tokens = (b.tokens + refill).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(b.tokens.floor() as u32)
        } else {
            Err((1.0 - b.tokens) / self.per_sec)
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Authenticate, authorise and rate-limit one request.
pub async fn middleware(State(auth): State<Arc<Auth>>, mut req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty());
    let Some(token) = presented.and_then(|p| auth.find(p)) else {
        return ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", "Invalid token")
            .into_response();
    };
    let Some(scopes) = required_scopes(req.method(), req.uri().path()) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route {} {}", req.method(), req.uri().path()),
        )
        .into_response();
    };
    if !scopes.iter().any(|s| token.scopes.iter().any(|t| t == s)) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("Insufficient scope, expected any of: {}", scopes.join(",")),
        )
        .into_response();
    }
    let limit = auth.burst as u32;
    let (mut resp, remaining, reset_in) = match auth.take(token) {
        Ok(remaining) => {
            let (method, path) = (req.method().clone(), req.uri().path().to_string());
            req.extensions_mut().insert(Caller {
                token_name: token.name.clone(),
            });
            let resp = next.run(req).await;
            tracing::info!(token = %token.name, %method, path, status = resp.status().as_u16(), "management API");
            let missing = auth.burst - remaining as f64;
            (resp, remaining, missing / auth.per_sec)
        }
        Err(wait) => {
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Global limit has been reached",
            )
            .into_response();
            let secs = wait.ceil().max(1.0) as u64;
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
            (resp, 0, wait)
        }
    };
    let h = resp.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    h.insert(
        "x-ratelimit-reset",
        HeaderValue::from(unix_now() + reset_in.ceil() as u64),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_its_scopes_and_others_have_none() {
        let get = Method::GET;
        assert_eq!(
            required_scopes(&get, "/api/v2/hooks"),
            Some(&["read:hooks"][..])
        );
        assert_eq!(
            required_scopes(&get, "/api/v2/hooks/hk-1"),
            Some(&["read:hooks"][..])
        );
        assert_eq!(
            required_scopes(&Method::POST, "/api/v2/hooks/hk-1/secrets"),
            Some(&["create:hooks", "update:hooks"][..])
        );
        assert_eq!(
            required_scopes(&Method::DELETE, "/api/v2/hooks/hk-1/secrets"),
            Some(&["delete:hooks"][..])
        );
        assert_eq!(
            required_scopes(&Method::POST, "/api/hookgate/hooks/test"),
            Some(&["update:hooks"][..])
        );
        assert_eq!(
            required_scopes(&get, "/api/hookgate/runs/abc/lines"),
            Some(&["read:logs"][..])
        );
        assert_eq!(
            required_scopes(&Method::POST, "/api/hookgate/outbox/12/retry"),
            Some(&["update:outbox"][..])
        );
        assert_eq!(required_scopes(&get, "/api/v2/hooks/a/b"), None);
        assert_eq!(required_scopes(&Method::PUT, "/api/v2/hooks/a"), None);
        assert_eq!(required_scopes(&get, "/api/v2/hooks//secrets"), None);
        assert_eq!(required_scopes(&get, "/api/v2/clients"), None);
    }
}
