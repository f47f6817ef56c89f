//! Access tokens: verifying the upstream's, minting hookgate's, publishing hookgate's JWKS.
//!
//! A token a hook changed is no longer the upstream's token: hookgate signs it with its own key,
//! and resource servers verify it against hookgate's JWKS (current key and previous ones, for
//! rotation). Before any hook runs, the upstream's token is verified against the upstream's JWKS,
//! so hooks only ever see what the identity server really issued.
//!
//! Tokens no hook changed (and other grants) are the upstream's, signed with its keys, and
//! discovery sends resource servers to hookgate's JWKS: so that JWKS also publishes the
//! upstream's current public keys ([`merged_jwks`]), from the same cache the verifier uses
//! ([`UpstreamKeys::keys_to_publish`]). Publishing them trusts nothing a resource server did not
//! already trust through the upstream's own discovery.
//!
//! Must not: know about hooks or HTTP routing.

pub mod keys;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, VerificationAlgorithm};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde_json::{json, Map, Value};

pub use keys::{Alg, SigningKey};

/// hookgate's keys: the one it signs with, and the ones it still publishes.
#[derive(Debug)]
pub struct KeyRing {
    pub current: SigningKey,
    pub previous: Vec<SigningKey>,
    jwks: Value,
    /// `jwks` as served: serialised once, not per request.
    jwks_body: bytes::Bytes,
}

impl KeyRing {
    pub fn new(current: SigningKey, previous: Vec<SigningKey>) -> KeyRing {
        let keys: Vec<Value> = std::iter::once(&current)
            .chain(previous.iter())
            .map(|k| k.public_jwk().clone())
            .collect();
        let jwks = json!({ "keys": keys });
        KeyRing {
            current,
            previous,
            jwks_body: bytes::Bytes::from(jwks.to_string()),
            jwks,
        }
    }

    /// The JWKS document hookgate serves.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// The JWKS document's bytes.
    pub fn jwks_body(&self) -> bytes::Bytes {
        self.jwks_body.clone()
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

/// Is this string shaped like a compact JWS (three base64url parts, a JSON header with `alg`)?
pub fn looks_like_jwt(token: &str) -> bool {
    jws_header(token).is_some()
}

/// An upstream verification key, parsed once when the JWKS is fetched: verifying a token then
/// costs the signature check alone (a generic JWT library re-parses the key on every call).
#[derive(Clone)]
pub struct VerifyKey {
    /// The JWS `alg` this key verifies; a token naming another is refused.
    pub alg: &'static str,
    key: Arc<ParsedPublicKey>,
}

impl VerifyKey {
    /// From a JWK of the upstream's JWKS. `None` for keys hookgate cannot use (encryption keys,
    /// unsupported algorithms): they are skipped, not fatal.
    pub fn from_jwk(jwk: &Value) -> Option<VerifyKey> {
        if jwk
            .get("use")
            .and_then(Value::as_str)
            .is_some_and(|u| u != "sig")
        {
            return None;
        }
        let b64 = |k: &str| {
            jwk.get(k)
                .and_then(Value::as_str)
                .and_then(|v| B64.decode(v).ok())
        };
        let declared = jwk.get("alg").and_then(Value::as_str);
        let (alg, algorithm, bytes): (&'static str, &'static dyn VerificationAlgorithm, Vec<u8>) =
            match (
                jwk.get("kty").and_then(Value::as_str)?,
                jwk.get("crv").and_then(Value::as_str),
            ) {
                ("RSA", _) => {
                    let der = rsa_public_key_der(&b64("n")?, &b64("e")?);
                    match declared.unwrap_or("RS256") {
                        "RS256" => ("RS256", &sig::RSA_PKCS1_2048_8192_SHA256, der),
                        "RS384" => ("RS384", &sig::RSA_PKCS1_2048_8192_SHA384, der),
                        "RS512" => ("RS512", &sig::RSA_PKCS1_2048_8192_SHA512, der),
                        "PS256" => ("PS256", &sig::RSA_PSS_2048_8192_SHA256, der),
                        "PS384" => ("PS384", &sig::RSA_PSS_2048_8192_SHA384, der),
                        "PS512" => ("PS512", &sig::RSA_PSS_2048_8192_SHA512, der),
                        _ => return None,
                    }
                }
                ("EC", Some(crv)) => {
                    let mut point = vec![4u8];
                    point.extend(b64("x")?);
                    point.extend(b64("y")?);
                    match crv {
                        "P-256" => ("ES256", &sig::ECDSA_P256_SHA256_FIXED, point),
                        "P-384" => ("ES384", &sig::ECDSA_P384_SHA384_FIXED, point),
                        _ => return None,
                    }
                }
                ("OKP", Some("Ed25519")) => ("EdDSA", &sig::ED25519, b64("x")?),
                _ => return None,
            };
        if declared.is_some_and(|d| d != alg) {
            return None;
        }
        let key = ParsedPublicKey::new(algorithm, bytes).ok()?;
        Some(VerifyKey {
            alg,
            key: Arc::new(key),
        })
    }

    /// Check a compact JWS's signature; the claims are returned unparsed.
    fn verify<'t>(&self, token: &'t str) -> Result<&'t str, VerifyError> {
        let (signed, signature) = token
            .rsplit_once('.')
            .ok_or_else(|| VerifyError::Invalid("not a compact JWS".into()))?;
        let signature = B64
            .decode(signature)
            .map_err(|_| VerifyError::Invalid("the signature is not base64url".into()))?;
        self.key
            .verify_sig(signed.as_bytes(), &signature)
            .map_err(|_| VerifyError::Invalid("bad signature".into()))?;
        Ok(signed.split_once('.').map(|(_, p)| p).unwrap_or(""))
    }
}

/// DER `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (RFC 8017).
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn len(out: &mut Vec<u8>, n: usize) {
        if n < 0x80 {
            out.push(n as u8);
        } else {
            let bytes: Vec<u8> = n
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
    }
    fn integer(out: &mut Vec<u8>, v: &[u8]) {
        let v: &[u8] = {
            let skip = v
                .iter()
                .take_while(|b| **b == 0)
                .count()
                .min(v.len().saturating_sub(1));
            &v[skip..]
        };
        let pad = v.first().is_some_and(|b| b & 0x80 != 0);
        out.push(0x02);
        len(out, v.len() + pad as usize);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    integer(&mut body, n);
    integer(&mut body, e);
    let mut out = vec![0x30];
    len(&mut out, body.len());
    out.extend(body);
    out
}

type KeyMap = HashMap<String, VerifyKey>;

/// JWK members that only a private (or symmetric) key has: never republished, whatever the
/// upstream's JWKS holds.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The upstream's JWKs as hookgate republishes them: signature keys (no `use`, or `use: sig`)
/// that are not symmetric, with nothing private in them.
fn publishable(set: &Value) -> Vec<Value> {
    set["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|jwk| {
            jwk.is_object()
                && jwk["kty"].as_str().is_some_and(|k| k != "oct")
                && jwk
                    .get("use")
                    .and_then(Value::as_str)
                    .is_none_or(|u| u == "sig")
        })
        .map(|jwk| {
            let mut jwk = jwk.clone();
            let obj = jwk.as_object_mut().expect("filtered on objects");
            for m in PRIVATE_MEMBERS {
                obj.remove(m);
            }
            jwk
        })
        .collect()
}

/// hookgate's JWKS as served: hookgate's keys (current, then previous), then the upstream's.
///
/// A kid collision never lets an upstream key shadow hookgate's: an upstream key whose `kid` is
/// one of hookgate's is left out (its kid comes back in the second value, to be logged). Resource
/// servers pick a key by `kid`, often the first match, and the tokens that only hookgate's keys
/// verify are the ones hooks changed; hookgate's kids are RFC 7638 thumbprints, so a collision
/// means the upstream publishes hookgate's own key, or a kid chosen to collide.
pub fn merged_jwks(ring: &KeyRing, upstream: &[Value]) -> (Value, Vec<String>) {
    let ours: Vec<&str> = std::iter::once(&ring.current)
        .chain(ring.previous.iter())
        .map(|k| k.kid.as_str())
        .collect();
    let mut keys: Vec<Value> = ring.jwks()["keys"].as_array().cloned().unwrap_or_default();
    let mut shadowed = Vec::new();
    for jwk in upstream {
        match jwk.get("kid").and_then(Value::as_str) {
            Some(kid) if ours.contains(&kid) => shadowed.push(kid.to_string()),
            _ => keys.push(jwk.clone()),
        }
    }
    (json!({ "keys": keys }), shadowed)
}

/// The upstream's keys as last fetched, for hookgate's JWKS.
struct Published {
    keys: Arc<Vec<Value>>,
    /// When they were fetched; `None` before the first successful fetch.
    at: Option<Instant>,
}

/// How long the upstream's keys are republished without asking the upstream again: a key it
/// adds (before rotating to it) reaches hookgate's JWKS within this time, or at once when a
/// token naming it is verified.
const PUBLISH_MAX_AGE: Duration = Duration::from_secs(60);

/// The upstream's public keys, fetched from its JWKS and refetched when a token names a `kid`
/// hookgate has not seen (the upstream rotated its keys).
pub struct UpstreamKeys {
    source: JwksSource,
    /// The JWKS URL once known (configured, or found through discovery).
    jwks_url: std::sync::Mutex<Option<String>>,
    http: reqwest::Client,
    keys: ArcSwap<KeyMap>,
    /// Serialises refetches, and remembers which `kid`s caused one lately: a token with a bogus
    /// `kid` must not make hookgate hammer the identity server.
    refetch: tokio::sync::Mutex<HashMap<String, Instant>>,
    /// The upstream's public JWKs from the last successful fetch, republished in hookgate's JWKS.
    published: ArcSwap<Published>,
    /// The last failed refresh for publishing: when, and why (no retry before
    /// [`MIN_REFETCH_INTERVAL`], so JWKS requests cannot hammer a failing upstream).
    publish_failure: std::sync::Mutex<Option<(Instant, VerifyError)>>,
}

const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(5);
const MAX_REFETCHES_PER_INTERVAL: usize = 4;

/// Where the upstream's keys are published.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// A configured JWKS URL.
    Url(String),
    /// The `jwks_uri` of the upstream's discovery document: the first of these URLs that
    /// answers one (OpenID's, then RFC 8414's, as configured).
    Discovery(Vec<String>),
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
            refetch: tokio::sync::Mutex::new(HashMap::new()),
            published: ArcSwap::from_pointee(Published {
                keys: Arc::new(Vec::new()),
                at: None,
            }),
            publish_failure: std::sync::Mutex::new(None),
        }
    }

    async fn resolve_jwks_url(&self) -> Result<String, VerifyError> {
        if let Some(u) = self.jwks_url.lock().unwrap().clone() {
            return Ok(u);
        }
        let JwksSource::Discovery(documents) = &self.source else {
            unreachable!("a configured URL is known from the start")
        };
        let mut why = Vec::new();
        for discovery in documents {
            match self.jwks_uri_of(discovery).await {
                Ok(url) => {
                    *self.jwks_url.lock().unwrap() = Some(url.clone());
                    return Ok(url);
                }
                Err(e) => why.push(format!("{discovery}: {e}")),
            }
        }
        Err(VerifyError::KeysUnavailable(why.join("; ")))
    }

    /// The `jwks_uri` of one discovery document.
    async fn jwks_uri_of(&self, discovery: &str) -> Result<String, String> {
        let doc: Value = self
            .http
            .get(discovery)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        doc["jwks_uri"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| "the discovery document has no jwks_uri".into())
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
        let set: Value = resp.json().await.map_err(|e| unavailable(e.to_string()))?;
        let mut map = KeyMap::new();
        for jwk in set["keys"].as_array().into_iter().flatten() {
            if let Some(key) = VerifyKey::from_jwk(jwk) {
                let kid = jwk["kid"].as_str().unwrap_or_default().to_string();
                map.insert(kid, key);
            }
        }
        tracing::info!(url = %jwks_url, keys = map.len(), "fetched the identity server's JWKS");
        self.keys.store(Arc::new(map));
        self.published.store(Arc::new(Published {
            keys: Arc::new(publishable(&set)),
            at: Some(Instant::now()),
        }));
        Ok(())
    }

    /// The upstream's current public keys, for hookgate's JWKS: from the verifier's cache,
    /// refetched when older than [`PUBLISH_MAX_AGE`]. When the upstream's JWKS cannot be fetched,
    /// the keys last fetched (possibly none) come back with the reason.
    pub async fn keys_to_publish(&self) -> (Arc<Vec<Value>>, Option<VerifyError>) {
        let fresh = |p: &Published| p.at.is_some_and(|t| t.elapsed() < PUBLISH_MAX_AGE);
        let current = self.published.load_full();
        if fresh(&current) {
            return (current.keys.clone(), None);
        }
        // The verifier's lock: one fetch at a time, whoever needs it.
        let _guard = self.refetch.lock().await;
        let current = self.published.load_full();
        if fresh(&current) {
            return (current.keys.clone(), None);
        }
        let recent_failure = self
            .publish_failure
            .lock()
            .unwrap()
            .as_ref()
            .filter(|(at, _)| at.elapsed() < MIN_REFETCH_INTERVAL)
            .map(|(_, e)| e.clone());
        if let Some(e) = recent_failure {
            return (current.keys.clone(), Some(e));
        }
        match self.fetch().await {
            Ok(()) => {
                *self.publish_failure.lock().unwrap() = None;
                (self.published.load().keys.clone(), None)
            }
            Err(e) => {
                *self.publish_failure.lock().unwrap() = Some((Instant::now(), e.clone()));
                (current.keys.clone(), Some(e))
            }
        }
    }

    /// The key for `kid`, refetching the JWKS once if it is unknown.
    async fn key_for(&self, kid: &str) -> Result<VerifyKey, VerifyError> {
        if let Some(k) = lookup(&self.keys.load(), kid) {
            return Ok(k);
        }
        let mut recent = self.refetch.lock().await;
        // Another request may have refetched while we waited.
        if let Some(k) = lookup(&self.keys.load(), kid) {
            return Ok(k);
        }
        // Each unknown kid may cause one refetch per interval (a real rotation is seen at once),
        // and only a few distinct ones may (a flood of made-up kids costs the upstream little).
        recent.retain(|_, at| at.elapsed() < MIN_REFETCH_INTERVAL);
        if !recent.contains_key(kid) && recent.len() < MAX_REFETCHES_PER_INTERVAL {
            recent.insert(kid.to_string(), Instant::now());
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
        let Some(header) = jws_header(token) else {
            return Err(VerifyError::Opaque);
        };
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let key = self.key_for(kid).await?;
        if key.alg != alg {
            return Err(VerifyError::Invalid(format!(
                "the token says {alg} but its key is for {}",
                key.alg
            )));
        }
        let payload = key.verify(token)?;
        let claims: Map<String, Value> = B64
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| VerifyError::Invalid("the claims are not a JSON object".into()))?;
        check_time(&claims)?;
        Ok(UpstreamToken {
            typ: header
                .get("typ")
                .and_then(Value::as_str)
                .map(str::to_string),
            claims,
        })
    }
}

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 60;

fn check_time(claims: &Map<String, Value>) -> Result<(), VerifyError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let Some(exp) = claims.get("exp").and_then(Value::as_u64) {
        if exp + LEEWAY_SECS < now {
            return Err(VerifyError::Invalid("the token has expired".into()));
        }
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_u64) {
        if nbf > now + LEEWAY_SECS {
            return Err(VerifyError::Invalid("the token is not valid yet".into()));
        }
    }
    Ok(())
}

/// The JOSE header of a compact JWS, or `None` when the token is not shaped like one (opaque).
fn jws_header(token: &str) -> Option<Map<String, Value>> {
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let header: Map<String, Value> = serde_json::from_slice(&B64.decode(h).ok()?).ok()?;
    header.contains_key("alg").then_some(header)
}

fn lookup(map: &KeyMap, kid: &str) -> Option<VerifyKey> {
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

    fn key(alg: Alg) -> SigningKey {
        SigningKey::from_pem(keys::generate_pem(alg).unwrap().as_bytes()).unwrap()
    }

    #[test]
    fn upstream_keys_verify_each_algorithm_and_refuse_tampering() {
        for alg in [Alg::RS256, Alg::ES256, Alg::EdDSA] {
            let k = key(alg);
            let vk = VerifyKey::from_jwk(k.public_jwk()).unwrap();
            assert_eq!(vk.alg, alg.name());
            let token = k
                .sign(
                    Some("at+jwt"),
                    &json!({"sub": "c", "exp": 4_000_000_000u64}),
                )
                .unwrap();
            assert!(vk.verify(&token).is_ok(), "{alg:?}");
            // Another key of the same kind does not verify it.
            let other = VerifyKey::from_jwk(key(alg).public_jwk()).unwrap();
            assert!(other.verify(&token).is_err(), "{alg:?}");
            // Nor does a changed payload.
            let forged = k.sign(None, &json!({"sub": "admin"})).unwrap();
            let (h, _) = token.split_once('.').unwrap();
            let (_, rest) = forged.split_once('.').unwrap();
            let (forged_payload, _) = rest.split_once('.').unwrap();
            let sig = token.rsplit_once('.').unwrap().1;
            assert!(
                vk.verify(&format!("{h}.{forged_payload}.{sig}")).is_err(),
                "{alg:?}"
            );
        }
    }

    #[test]
    fn keys_declared_for_another_use_or_algorithm_are_skipped() {
        let mut jwk = key(Alg::ES256).public_jwk().clone();
        jwk["use"] = json!("enc");
        assert!(VerifyKey::from_jwk(&jwk).is_none());
        jwk["use"] = json!("sig");
        jwk["alg"] = json!("RS256");
        assert!(VerifyKey::from_jwk(&jwk).is_none());
    }

    #[test]
    fn time_claims_are_checked_with_leeway() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let c = |v: Value| v.as_object().unwrap().clone();
        assert!(check_time(&c(json!({"exp": now + 10}))).is_ok());
        assert!(
            check_time(&c(json!({"exp": now - 30}))).is_ok(),
            "within leeway"
        );
        assert!(check_time(&c(json!({"exp": now - 600}))).is_err());
        assert!(check_time(&c(json!({"nbf": now + 600}))).is_err());
        assert!(check_time(&c(json!({}))).is_ok());
    }

    #[test]
    fn the_upstreams_keys_follow_hookgates_and_never_shadow_them() {
        let (cur, old) = (key(Alg::ES256), key(Alg::RS256));
        let (cur_kid, old_kid) = (cur.kid.clone(), old.kid.clone());
        let ring = KeyRing::new(cur, vec![old]);
        let with_kid = |kid: &str| {
            let mut jwk = key(Alg::RS256).public_jwk().clone();
            jwk["kid"] = json!(kid);
            jwk
        };
        let upstream = vec![with_kid("theirs"), with_kid(&old_kid), with_kid(&cur_kid)];
        let (jwks, shadowed) = merged_jwks(&ring, &upstream);
        let keys = jwks["keys"].as_array().unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert_eq!(kids, vec![cur_kid.as_str(), old_kid.as_str(), "theirs"]);
        assert_eq!(keys[0], *ring.current.public_jwk());
        assert_eq!(shadowed, vec![old_kid.clone(), cur_kid.clone()]);
        let _: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
    }

    #[test]
    fn only_public_signature_keys_of_the_upstream_are_republished() {
        let set = json!({"keys": [
            {"kty": "RSA", "kid": "a", "n": "x", "e": "AQAB", "d": "secret", "p": "s", "q": "s"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "x", "e": "AQAB"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "b", "use": "sig", "crv": "P-256", "x": "x", "y": "y"},
            "not a key",
            {"kid": "no kty"}
        ]});
        let keys = publishable(&set);
        let kids: Vec<_> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert_eq!(kids, vec!["a", "b"]);
        assert!(keys[0].get("d").is_none() && keys[0].get("p").is_none());
        assert_eq!(keys[0]["n"], "x");
        assert!(publishable(&json!({})).is_empty());
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
        let _: jsonwebtoken::jwk::JwkSet = serde_json::from_value(ring.jwks().clone()).unwrap();
    }
}
