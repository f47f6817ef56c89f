//! hookgate's signing keys: loading PEM files, signing JWTs, publishing the public half as a JWKS,
//! and generating new keys (`hookgate keys generate`).
//!
//! Keys are parsed once, at load time: signing a token then costs just the signature (parsing a
//! PKCS#8 RSA key per token, as a generic JWT library does, would cost more than the signature).
//!
//! Owns: hookgate's own keys and signing. Must not: verify upstream tokens (`super`) or know routes.

use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The signature algorithms hookgate signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    RS256,
    ES256,
    EdDSA,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<Alg> {
        match s.to_ascii_uppercase().as_str() {
            "RS256" => Some(Alg::RS256),
            "ES256" => Some(Alg::ES256),
            "EDDSA" | "ED25519" => Some(Alg::EdDSA),
            _ => None,
        }
    }
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private key ready to sign, with its public JWK.
pub struct SigningKey {
    pub alg: Alg,
    /// RFC 7638 thumbprint of the public key: stable across restarts, unique per key.
    pub kid: String,
    pair: Pair,
    jwk: Value,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Load a private key from a PEM file (PKCS#8 `PRIVATE KEY`, or PKCS#1 `RSA PRIVATE KEY`).
    pub fn load(path: &Path) -> Result<SigningKey, String> {
        let text =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        SigningKey::from_pem(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn from_pem(text: &[u8]) -> Result<SigningKey, String> {
        let block = pem::parse(text).map_err(|e| format!("not a PEM file: {e}"))?;
        let der = block.contents();
        let (alg, pair) = match block.tag() {
            "RSA PRIVATE KEY" => (
                Alg::RS256,
                Pair::Rsa(RsaKeyPair::from_der(der).map_err(|e| format!("bad RSA key: {e}"))?),
            ),
            "PRIVATE KEY" => {
                if let Ok(k) = Ed25519KeyPair::from_pkcs8(der) {
                    (Alg::EdDSA, Pair::Ed(k))
                } else if let Ok(k) =
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                {
                    (Alg::ES256, Pair::Ec(k))
                } else if let Ok(k) = RsaKeyPair::from_pkcs8(der) {
                    (Alg::RS256, Pair::Rsa(k))
                } else {
                    return Err("the key is not RSA, EC P-256 or Ed25519".into());
                }
            }
            other => {
                return Err(format!(
                    "a `{other}` PEM block is not a private key hookgate reads; convert it with \
                     `openssl pkcs8 -topk8 -nocrypt -in KEY -out key.pem`"
                ))
            }
        };
        let public = public_jwk(&pair);
        let kid = thumbprint(&public);
        let mut jwk = public;
        let obj = jwk.as_object_mut().expect("public_jwk builds an object");
        obj.insert("kid".into(), json!(kid));
        obj.insert("alg".into(), json!(alg.name()));
        obj.insert("use".into(), json!("sig"));
        Ok(SigningKey {
            alg,
            kid,
            pair,
            jwk,
            rng: SystemRandom::new(),
        })
    }

    /// The public key as a JWK (with `kid`, `alg`, `use`).
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    /// A compact JWS over `claims`, with the given `typ` (e.g. `at+jwt`, as the upstream used).
    pub fn sign(&self, typ: Option<&str>, claims: &Value) -> Result<String, String> {
        let mut header = json!({ "alg": self.alg.name(), "kid": self.kid });
        if let Some(t) = typ {
            header["typ"] = json!(t);
        }
        let mut out = String::with_capacity(512);
        B64.encode_string(header.to_string(), &mut out);
        out.push('.');
        B64.encode_string(claims.to_string(), &mut out);
        let sig = match &self.pair {
            Pair::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    out.as_bytes(),
                    &mut sig,
                )
                .map_err(|_| "RSA signing failed")?;
                sig
            }
            Pair::Ec(k) => k
                .sign(&self.rng, out.as_bytes())
                .map_err(|_| "ECDSA signing failed")?
                .as_ref()
                .to_vec(),
            Pair::Ed(k) => k.sign(out.as_bytes()).as_ref().to_vec(),
        };
        out.push('.');
        B64.encode_string(sig, &mut out);
        Ok(out)
    }
}

fn public_jwk(pair: &Pair) -> Value {
    match pair {
        Pair::Rsa(k) => {
            let public = k.public_key();
            json!({
                "kty": "RSA",
                "n": B64.encode(public.modulus().big_endian_without_leading_zero()),
                "e": B64.encode(public.exponent().big_endian_without_leading_zero()),
            })
        }
        Pair::Ec(k) => {
            // Uncompressed point: 0x04 || X (32) || Y (32).
            let point = k.public_key().as_ref();
            json!({
                "kty": "EC",
                "crv": "P-256",
                "x": B64.encode(&point[1..33]),
                "y": B64.encode(&point[33..65]),
            })
        }
        Pair::Ed(k) => json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": B64.encode(k.public_key().as_ref()),
        }),
    }
}

/// RFC 7638: SHA-256 over the required members, in lexicographic order, no white space.
fn thumbprint(jwk: &Value) -> String {
    let members: &[&str] = match jwk["kty"].as_str() {
        Some("RSA") => &["e", "kty", "n"],
        Some("EC") => &["crv", "kty", "x", "y"],
        _ => &["crv", "kty", "x"],
    };
    let canonical = members
        .iter()
        .map(|m| format!("\"{m}\":{}", jwk[*m]))
        .collect::<Vec<_>>()
        .join(",");
    B64.encode(Sha256::digest(format!("{{{canonical}}}").as_bytes()))
}

/// A new private key as PKCS#8 PEM.
pub fn generate_pem(alg: Alg) -> Result<String, String> {
    let rng = SystemRandom::new();
    let der: Vec<u8> = match alg {
        Alg::RS256 => aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .and_then(|k| k.as_der().map(|d| d.as_ref().to_vec()))
            .map_err(|_| "RSA key generation failed")?,
        Alg::ES256 => {
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| "EC key generation failed")?
                .as_ref()
                .to_vec()
        }
        Alg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| "Ed25519 key generation failed")?
            .as_ref()
            .to_vec(),
    };
    Ok(pem::encode(&pem::Pem::new("PRIVATE KEY", der)))
}

/// The public key of any PEM private key as a jsonwebtoken `Jwk` (for verifying in tests/tools).
pub fn jwk_of(key: &SigningKey) -> Jwk {
    serde_json::from_value(key.jwk.clone()).expect("hookgate's JWKs are valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};

    fn roundtrip(alg: Alg, jwt_alg: Algorithm) {
        let pem = generate_pem(alg).unwrap();
        let key = SigningKey::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(key.alg, alg);
        let claims = json!({ "sub": "c1", "scope": "a b", "exp": 4_000_000_000u64, "https://x.example/k": [1, 2] });
        let token = key.sign(Some("at+jwt"), &claims).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(key.kid.as_str()));
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        // A standard JWT library verifies it with the published JWK alone.
        let dk = DecodingKey::from_jwk(&jwk_of(&key)).unwrap();
        let mut v = Validation::new(jwt_alg);
        v.validate_aud = false;
        let data = decode::<Value>(&token, &dk, &v).unwrap();
        assert_eq!(data.claims, claims);
        // The kid is stable for the same key.
        assert_eq!(SigningKey::from_pem(pem.as_bytes()).unwrap().kid, key.kid);
    }

    #[test]
    fn es256_tokens_verify_with_the_published_jwk() {
        roundtrip(Alg::ES256, Algorithm::ES256);
    }

    #[test]
    fn eddsa_tokens_verify_with_the_published_jwk() {
        roundtrip(Alg::EdDSA, Algorithm::EdDSA);
    }

    #[test]
    fn rs256_tokens_verify_with_the_published_jwk() {
        roundtrip(Alg::RS256, Algorithm::RS256);
    }

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1.
        let jwk = json!({"kty":"RSA","e":"AQAB","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
        assert_eq!(
            thumbprint(&jwk),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn non_key_pem_is_refused_with_a_hint() {
        let pem = pem::encode(&pem::Pem::new("CERTIFICATE", vec![1, 2, 3]));
        let err = SigningKey::from_pem(pem.as_bytes()).unwrap_err();
        assert!(err.contains("openssl pkcs8"), "{err}");
    }
}
