//! Access tokens: verifying the upstream's, minting hookgate's, publishing hookgate's JWKS.
//!
//! A token a hook changed is no longer the upstream's token: hookgate signs it with its own key,
//! and resource servers verify it against hookgate's JWKS (current key and previous ones, for
//! rotation). Before any hook runs, the upstream's token is verified against the upstream's JWKS,
//! so hooks only ever see what the identity server really issued.
//!
//! Must not: know about hooks or HTTP routing.

pub mod keys;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Map, Value};

pub use keys::{Alg, SigningKey};

/// hookgate's keys: the one it signs with, and the ones it still publishes.
#[derive(Debug)]
pub struct KeyRing {
    pub current: SigningKey,
    pub previous: Vec<SigningKey>,
    jwks: Value,
}

impl KeyRing {
    pub fn new(current: SigningKey, previous: Vec<SigningKey>) -> KeyRing {
        let keys: Vec<Value> = std::iter::once(&current)
            .chain(previous.iter())
            .map(|k| k.public_jwk().clone())
            .collect();
        KeyRing {
            current,
            previous,
            jwks: json!({ "keys": keys }),
        }
    }

    /// The JWKS document hookgate serves.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }
}

/// Why an upstream token could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// Not a JWT at all (an opaque token).
    Opaque,
    /// A JWT, but its signature or claims do not check out.
    Invalid(String),
    /// The upstream's keys could not be fetched.
    KeysUnavailable(String),
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyError::Opaque => write!(f, "the access token is opaque, not a JWT"),
            VerifyError::Invalid(e) => write!(f, "the access token does not verify: {e}"),
            VerifyError::KeysUnavailable(e) => {
                write!(f, "the identity server's keys are unavailable: {e}")
            }
        }
    }
}

/// A verified upstream token, taken apart.
#[derive(Debug, Clone)]
pub struct UpstreamToken {
    pub typ: Option<String>,
    pub claims: Map<String, Value>,
}

/// Is this string shaped like a compact JWS (three base64url parts, a JSON header)?
pub fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    B64.decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .is_some_and(|v| v.get("alg").is_some())
}

type KeyMap = HashMap<String, (DecodingKey, Option<Algorithm>)>;

/// The upstream's public keys, fetched from its JWKS and refetched when a token names a `kid`
/// hookgate has not seen (the upstream rotated its keys).
pub struct UpstreamKeys {
    source: JwksSource,
    /// The JWKS URL once known (configured, or found through discovery).
    jwks_url: std::sync::Mutex<Option<String>>,
    http: reqwest::Client,
    keys: ArcSwap<KeyMap>,
    /// Serialises refetches, and remembers when the last one happened: a token with a bogus
    /// `kid` must not make hookgate hammer the identity server.
    refetch: tokio::sync::Mutex<Option<Instant>>,
}

const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(5);

/// Where the upstream's keys are published.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// A configured JWKS URL.
    Url(String),
    /// The `jwks_uri` of the upstream's discovery document at this URL.
    Discovery(String),
}

impl UpstreamKeys {
    pub fn new(source: JwksSource) -> UpstreamKeys {
        let known = match &source {
            JwksSource::Url(u) => Some(u.clone()),
            JwksSource::Discovery(_) => None,
        };
        UpstreamKeys {
            source,
            jwks_url: std::sync::Mutex::new(known),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("a plain HTTP client builds"),
            keys: ArcSwap::from_pointee(HashMap::new()),
            refetch: tokio::sync::Mutex::new(None),
        }
    }

    async fn resolve_jwks_url(&self) -> Result<String, VerifyError> {
        if let Some(u) = self.jwks_url.lock().unwrap().clone() {
            return Ok(u);
        }
        let JwksSource::Discovery(discovery) = &self.source else {
            unreachable!("a configured URL is known from the start")
        };
        let unavailable = |e: String| VerifyError::KeysUnavailable(format!("{discovery}: {e}"));
        let doc: Value = self
            .http
            .get(discovery)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| unavailable(e.to_string()))?
            .json()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let url = doc["jwks_uri"]
            .as_str()
            .ok_or_else(|| unavailable("the discovery document has no jwks_uri".into()))?
            .to_string();
        *self.jwks_url.lock().unwrap() = Some(url.clone());
        Ok(url)
    }

    async fn fetch(&self) -> Result<(), VerifyError> {
        let jwks_url = self.resolve_jwks_url().await?;
        let unavailable = |e: String| VerifyError::KeysUnavailable(format!("{jwks_url}: {e}"));
        let resp = self
            .http
            .get(&jwks_url)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("HTTP {}", resp.status())));
        }
        let set: JwkSet = resp.json().await.map_err(|e| unavailable(e.to_string()))?;
        let mut map = KeyMap::new();
        for jwk in &set.keys {
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            let alg = jwk
                .common
                .key_algorithm
                .and_then(|a| a.to_string().parse::<Algorithm>().ok());
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            map.insert(kid, (key, alg));
        }
        tracing::info!(url = %jwks_url, keys = map.len(), "fetched the identity server's JWKS");
        self.keys.store(Arc::new(map));
        Ok(())
    }

    /// The key for `kid`, refetching the JWKS once if it is unknown.
    async fn key_for(&self, kid: &str) -> Result<(DecodingKey, Option<Algorithm>), VerifyError> {
        if let Some(k) = lookup(&self.keys.load(), kid) {
            return Ok(k);
        }
        let mut last = self.refetch.lock().await;
        // Another request may have refetched while we waited.
        if let Some(k) = lookup(&self.keys.load(), kid) {
            return Ok(k);
        }
        if last.is_none_or(|t| t.elapsed() >= MIN_REFETCH_INTERVAL) {
            *last = Some(Instant::now());
            self.fetch().await?;
        }
        lookup(&self.keys.load(), kid).ok_or_else(|| {
            VerifyError::Invalid(format!(
                "no key with kid `{kid}` in the identity server's JWKS"
            ))
        })
    }

    /// Verify an upstream access token's signature and time claims.
    pub async fn verify(&self, token: &str) -> Result<UpstreamToken, VerifyError> {
        if !looks_like_jwt(token) {
            return Err(VerifyError::Opaque);
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| VerifyError::Invalid(e.to_string()))?;
        let kid = header.kid.clone().unwrap_or_default();
        let (key, key_alg) = self.key_for(&kid).await?;
        if key_alg.is_some_and(|a| a != header.alg) {
            return Err(VerifyError::Invalid(format!(
                "the token says {:?} but its key is for {:?}",
                header.alg,
                key_alg.unwrap()
            )));
        }
        let mut validation = Validation::new(header.alg);
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.leeway = 60;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| VerifyError::Invalid(e.to_string()))?;
        Ok(UpstreamToken {
            typ: header.typ,
            claims: data.claims,
        })
    }
}

fn lookup(map: &KeyMap, kid: &str) -> Option<(DecodingKey, Option<Algorithm>)> {
    map.get(kid).cloned().or_else(|| {
        // A token without a kid is fine when the upstream has a single key.
        (kid.is_empty() && map.len() == 1).then(|| map.values().next().cloned().unwrap())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_shape_detection() {
        let key = SigningKey::from_pem(keys::generate_pem(Alg::ES256).unwrap().as_bytes()).unwrap();
        let jwt = key.sign(None, &json!({"a": 1})).unwrap();
        assert!(looks_like_jwt(&jwt));
        assert!(!looks_like_jwt("2YotnFZFEjr1zCsicMWpAA"));
        assert!(!looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt(&format!("{jwt}.x")));
    }

    #[test]
    fn jwks_lists_current_then_previous_keys() {
        let k = |a| SigningKey::from_pem(keys::generate_pem(a).unwrap().as_bytes()).unwrap();
        let (cur, old) = (k(Alg::ES256), k(Alg::EdDSA));
        let (cur_kid, old_kid) = (cur.kid.clone(), old.kid.clone());
        let ring = KeyRing::new(cur, vec![old]);
        let kids: Vec<_> = ring.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(kids, vec![cur_kid, old_kid]);
        // It parses as a standard JWK set.
        let _: JwkSet = serde_json::from_value(ring.jwks().clone()).unwrap();
    }
}
