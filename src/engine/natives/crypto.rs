//! The Rust half of Node's key objects, signatures, AES ciphers and PBKDF2, over the host's
//! crypto (aws-lc-rs), installed on `native` next to the digests of `natives.rs`.
//!
//! Owns: reading keys (PEM and DER in PKCS#8, SPKI, PKCS#1, SEC1 and X.509 certificates; JWK for
//! RSA, EC and Ed25519) into one canonical form — PKCS#8 DER for a private key, SPKI DER for a
//! public one — and writing them back out in each of those; RSA (PKCS#1 v1.5 and PSS), ECDSA
//! (P-256, P-384, P-521, secp256k1; DER or IEEE P1363 signatures) and Ed25519 sign/verify; raw
//! AES blocks in CBC, CTR and ECB and the GCM tag; PBKDF2.
//! Must not touch: JS shapes, streaming, padding of cipher input, PEM armour — `crypto.js` does
//! those. Nothing here keeps state between calls: a key travels as its DER bytes each time.

use aws_lc_rs::signature::{self, KeyPair as _};
use base64::Engine as _;
use rquickjs::{Ctx, Exception, Function, Object, Value};

use crate::engine::bytes::{bytes_in, bytes_out};

/// An error as Node reports it: message and `code` (empty: none).
#[derive(Debug, PartialEq)]
pub(crate) struct CryptoError {
    pub message: String,
    pub code: &'static str,
}

fn err<T>(message: impl Into<String>, code: &'static str) -> Result<T, CryptoError> {
    Err(CryptoError {
        message: message.into(),
        code,
    })
}

/// OpenSSL's answer to key bytes it cannot read.
fn unsupported_key<T>() -> Result<T, CryptoError> {
    err(
        "error:1E08010C:DECODER routines::unsupported",
        "ERR_OSSL_UNSUPPORTED",
    )
}

// ---------------------------------------------------------------------------------------------
// DER, just enough for key structures.

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_K256: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x0a];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// One TLV: (tag, contents, the bytes after it).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The elements of a constructed value's contents.
fn items(mut input: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (tag, body, rest) = tlv(input)?;
        out.push((tag, body));
        input = rest;
    }
    Some(out)
}

fn enc(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = body.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(body);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    enc(0x30, &parts.concat())
}

/// A DER INTEGER from unsigned big-endian bytes.
fn int(unsigned: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = {
        let i = unsigned
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(unsigned.len());
        &unsigned[i..]
    };
    let mut body = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|&b| b & 0x80 != 0) {
        body.push(0);
    }
    body.extend_from_slice(trimmed);
    enc(0x02, &body)
}

/// An INTEGER's contents as unsigned big-endian bytes without leading zeros.
fn uint(body: &[u8]) -> Vec<u8> {
    let i = body
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(body.len().saturating_sub(1));
    body[i..].to_vec()
}

fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut body = vec![0u8];
    body.extend_from_slice(bytes);
    enc(0x03, &body)
}

// ---------------------------------------------------------------------------------------------
// Keys.

/// The curves hookgate signs with, by Node's name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Curve {
    P256,
    P384,
    P521,
    K256,
}

impl Curve {
    fn oid(self) -> &'static [u8] {
        match self {
            Curve::P256 => OID_P256,
            Curve::P384 => OID_P384,
            Curve::P521 => OID_P521,
            Curve::K256 => OID_K256,
        }
    }
    fn from_oid(oid: &[u8]) -> Option<Curve> {
        [Curve::P256, Curve::P384, Curve::P521, Curve::K256]
            .into_iter()
            .find(|c| c.oid() == oid)
    }
    /// OpenSSL's name, as Node's `asymmetricKeyDetails.namedCurve` gives it.
    pub(crate) fn node_name(self) -> &'static str {
        match self {
            Curve::P256 => "prime256v1",
            Curve::P384 => "secp384r1",
            Curve::P521 => "secp521r1",
            Curve::K256 => "secp256k1",
        }
    }
    fn jwk_name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
            Curve::K256 => "secp256k1",
        }
    }
    fn from_name(name: &str) -> Option<Curve> {
        match name {
            "P-256" | "prime256v1" | "secp256r1" => Some(Curve::P256),
            "P-384" | "secp384r1" => Some(Curve::P384),
            "P-521" | "secp521r1" => Some(Curve::P521),
            "secp256k1" => Some(Curve::K256),
            _ => None,
        }
    }
    fn field_len(self) -> usize {
        match self {
            Curve::P256 | Curve::K256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }
    /// The ASN.1 signing algorithm, only used to load the key pair (any digest of the curve).
    fn loader(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            Curve::P521 => &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
            Curve::K256 => &signature::ECDSA_P256K1_SHA256_ASN1_SIGNING,
        }
    }
}

/// A key in canonical form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    pub private: bool,
    pub kind: Kind,
    /// PKCS#8 for a private key, SPKI for a public one.
    pub der: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Rsa,
    Ec(Curve),
    Ed25519,
}

impl Kind {
    pub(crate) fn node_name(self) -> &'static str {
        match self {
            Kind::Rsa => "rsa",
            Kind::Ec(_) => "ec",
            Kind::Ed25519 => "ed25519",
        }
    }
}

/// RSA's numbers, unsigned big-endian; the private ones empty in a public key.
struct RsaParts {
    n: Vec<u8>,
    e: Vec<u8>,
    /// d, p, q, dp, dq, qi.
    private: Vec<Vec<u8>>,
}

fn rsa_pkcs1_private(der: &[u8]) -> Option<RsaParts> {
    let (0x30, body, _) = tlv(der)? else {
        return None;
    };
    let ints = items(body)?;
    if ints.len() < 9 || ints.iter().any(|(t, _)| *t != 0x02) {
        return None;
    }
    Some(RsaParts {
        n: uint(ints[1].1),
        e: uint(ints[2].1),
        private: ints[3..9].iter().map(|(_, b)| uint(b)).collect(),
    })
}

fn rsa_pkcs1_public(der: &[u8]) -> Option<RsaParts> {
    let (0x30, body, _) = tlv(der)? else {
        return None;
    };
    let ints = items(body)?;
    match ints.as_slice() {
        [(0x02, n), (0x02, e)] => Some(RsaParts {
            n: uint(n),
            e: uint(e),
            private: Vec::new(),
        }),
        _ => None,
    }
}

fn rsa_pkcs1_encode(p: &RsaParts) -> Vec<u8> {
    if p.private.is_empty() {
        return seq(&[int(&p.n), int(&p.e)]);
    }
    let mut parts = vec![int(&[0]), int(&p.n), int(&p.e)];
    parts.extend(p.private.iter().map(|x| int(x)));
    seq(&parts)
}

fn rsa_alg_id() -> Vec<u8> {
    seq(&[enc(0x06, OID_RSA), vec![0x05, 0x00]])
}

fn ec_alg_id(c: Curve) -> Vec<u8> {
    seq(&[enc(0x06, OID_EC), enc(0x06, c.oid())])
}

fn ed_alg_id() -> Vec<u8> {
    seq(&[enc(0x06, OID_ED25519)])
}

fn rsa_private_key(p: &RsaParts) -> Key {
    Key {
        private: true,
        kind: Kind::Rsa,
        der: seq(&[int(&[0]), rsa_alg_id(), enc(0x04, &rsa_pkcs1_encode(p))]),
    }
}

fn rsa_public_key(n: &[u8], e: &[u8]) -> Key {
    let p = RsaParts {
        n: n.to_vec(),
        e: e.to_vec(),
        private: Vec::new(),
    };
    Key {
        private: false,
        kind: Kind::Rsa,
        der: seq(&[rsa_alg_id(), bit_string(&rsa_pkcs1_encode(&p))]),
    }
}

fn ec_public_key(c: Curve, point: &[u8]) -> Key {
    Key {
        private: false,
        kind: Kind::Ec(c),
        der: seq(&[ec_alg_id(c), bit_string(point)]),
    }
}

/// The private scalar (fixed length) and the uncompressed public point of an EC private key.
fn ec_parts(c: Curve, any_private_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
    use aws_lc_rs::encoding::AsBigEndian;
    let pair = signature::EcdsaKeyPair::from_private_key_der(c.loader(), any_private_der)
        .or_else(|_| unsupported_key())?;
    let d = pair
        .private_key()
        .as_be_bytes()
        .or_else(|_| unsupported_key())?;
    Ok((d.as_ref().to_vec(), pair.public_key().as_ref().to_vec()))
}

/// SEC1 `ECPrivateKey`, with the curve named inside only when `named` (as in a SEC1 file;
/// PKCS#8 names it outside).
fn sec1(c: Curve, d: &[u8], point: &[u8], named: bool) -> Vec<u8> {
    let mut parts = vec![int(&[1]), enc(0x04, d)];
    if named {
        parts.push(enc(0xa0, &enc(0x06, c.oid())));
    }
    parts.push(enc(0xa1, &bit_string(point)));
    seq(&parts)
}

fn ec_private_key(c: Curve, d: &[u8], point: &[u8]) -> Key {
    Key {
        private: true,
        kind: Kind::Ec(c),
        der: seq(&[
            int(&[0]),
            ec_alg_id(c),
            enc(0x04, &sec1(c, d, point, false)),
        ]),
    }
}

fn ed_private_key(seed: &[u8]) -> Key {
    Key {
        private: true,
        kind: Kind::Ed25519,
        der: seq(&[int(&[0]), ed_alg_id(), enc(0x04, &enc(0x04, seed))]),
    }
}

fn ed_public_key(public: &[u8]) -> Key {
    Key {
        private: false,
        kind: Kind::Ed25519,
        der: seq(&[ed_alg_id(), bit_string(public)]),
    }
}

/// What PKCS#8 and SPKI wrap: the algorithm OID, its named-curve parameter, the key inside.
type Wrapped = (Vec<u8>, Option<Vec<u8>>, Vec<u8>);

/// A PKCS#8 `PrivateKeyInfo`, re-encoded canonically.
fn from_pkcs8(der: &[u8]) -> Result<Key, CryptoError> {
    let parse = || -> Option<Wrapped> {
        let (0x30, body, _) = tlv(der)? else {
            return None;
        };
        let parts = items(body)?;
        let (0x30, alg) = *parts.get(1)? else {
            return None;
        };
        let (0x04, inner) = *parts.get(2)? else {
            return None;
        };
        let alg = items(alg)?;
        let (0x06, oid) = *alg.first()? else {
            return None;
        };
        let param = alg
            .get(1)
            .filter(|(t, _)| *t == 0x06)
            .map(|(_, b)| b.to_vec());
        Some((oid.to_vec(), param, inner.to_vec()))
    };
    let Some((oid, param, inner)) = parse() else {
        return unsupported_key();
    };
    match oid.as_slice() {
        OID_RSA => match rsa_pkcs1_private(&inner) {
            Some(p) => Ok(rsa_private_key(&p)),
            None => unsupported_key(),
        },
        OID_EC => {
            let Some(c) = param.as_deref().and_then(Curve::from_oid) else {
                return err("Unsupported key curve", "ERR_OSSL_UNSUPPORTED");
            };
            let (d, point) = ec_parts(c, der)?;
            Ok(ec_private_key(c, &d, &point))
        }
        OID_ED25519 => match tlv(&inner) {
            Some((0x04, seed, _)) if seed.len() == 32 => Ok(ed_private_key(seed)),
            _ => unsupported_key(),
        },
        _ => err(
            "hookgate reads RSA, EC and Ed25519 keys only",
            "ERR_OSSL_UNSUPPORTED",
        ),
    }
}

/// A SEC1 `ECPrivateKey` (it names its curve inside).
fn from_sec1(der: &[u8]) -> Result<Key, CryptoError> {
    let curve = (|| {
        let (0x30, body, _) = tlv(der)? else {
            return None;
        };
        items(body)?.iter().find_map(|(t, b)| match (t, tlv(b)) {
            (0xa0, Some((0x06, oid, _))) => Curve::from_oid(oid),
            _ => None,
        })
    })();
    let Some(c) = curve else {
        return unsupported_key();
    };
    let (d, point) = ec_parts(c, der)?;
    Ok(ec_private_key(c, &d, &point))
}

/// A `SubjectPublicKeyInfo`, re-encoded canonically.
fn from_spki(der: &[u8]) -> Result<Key, CryptoError> {
    let parse = || -> Option<Wrapped> {
        let (0x30, body, _) = tlv(der)? else {
            return None;
        };
        let parts = items(body)?;
        let [(0x30, alg), (0x03, bits)] = parts.as_slice() else {
            return None;
        };
        let alg = items(alg)?;
        let (0x06, oid) = *alg.first()? else {
            return None;
        };
        let param = alg
            .get(1)
            .filter(|(t, _)| *t == 0x06)
            .map(|(_, b)| b.to_vec());
        let (0, key) = bits.split_first()? else {
            return None;
        };
        Some((oid.to_vec(), param, key.to_vec()))
    };
    let Some((oid, param, key)) = parse() else {
        return unsupported_key();
    };
    match oid.as_slice() {
        OID_RSA => match rsa_pkcs1_public(&key) {
            Some(p) => Ok(rsa_public_key(&p.n, &p.e)),
            None => unsupported_key(),
        },
        OID_EC => match param.as_deref().and_then(Curve::from_oid) {
            Some(c) if key.len() == 1 + 2 * c.field_len() && key[0] == 4 => {
                Ok(ec_public_key(c, &key))
            }
            Some(_) => err(
                "hookgate reads uncompressed EC points only",
                "ERR_OSSL_UNSUPPORTED",
            ),
            None => err("Unsupported key curve", "ERR_OSSL_UNSUPPORTED"),
        },
        OID_ED25519 if key.len() == 32 => Ok(ed_public_key(&key)),
        _ => err(
            "hookgate reads RSA, EC and Ed25519 keys only",
            "ERR_OSSL_UNSUPPORTED",
        ),
    }
}

/// The subject public key of an X.509 certificate.
fn from_certificate(der: &[u8]) -> Result<Key, CryptoError> {
    let spki = (|| {
        let (0x30, cert, _) = tlv(der)? else {
            return None;
        };
        let (0x30, tbs, _) = tlv(cert)? else {
            return None;
        };
        let mut rest = tbs;
        let mut fields = Vec::new();
        while !rest.is_empty() {
            let (tag, _, after) = tlv(rest)?;
            fields.push((tag, &rest[..rest.len() - after.len()]));
            rest = after;
        }
        // [0] version is optional; then serial, signature, issuer, validity, subject, spki.
        let skip = usize::from(fields.first()?.0 == 0xa0);
        fields.get(skip + 5).map(|(_, raw)| raw.to_vec())
    })();
    match spki {
        Some(spki) => from_spki(&spki),
        None => unsupported_key(),
    }
}

/// The public half of `key` (itself when public).
pub(crate) fn public_of(key: &Key) -> Result<Key, CryptoError> {
    if !key.private {
        return Ok(key.clone());
    }
    let inner = || -> Option<Vec<u8>> {
        let (_, body, _) = tlv(&key.der)?;
        let parts = items(body)?;
        let (0x04, inner) = *parts.get(2)? else {
            return None;
        };
        Some(inner.to_vec())
    };
    let Some(inner) = inner() else {
        return unsupported_key();
    };
    match key.kind {
        Kind::Rsa => match rsa_pkcs1_private(&inner) {
            Some(p) => Ok(rsa_public_key(&p.n, &p.e)),
            None => unsupported_key(),
        },
        Kind::Ec(c) => {
            let (_, point) = ec_parts(c, &key.der)?;
            Ok(ec_public_key(c, &point))
        }
        Kind::Ed25519 => {
            let Some((0x04, seed, _)) = tlv(&inner) else {
                return unsupported_key();
            };
            let pair = signature::Ed25519KeyPair::from_seed_unchecked(seed)
                .or_else(|_| unsupported_key())?;
            Ok(ed_public_key(pair.public_key().as_ref()))
        }
    }
}

/// Read a key. `pem` text, or DER with `der_type` (`pkcs1`, `pkcs8`, `spki`, `sec1`); `want`
/// is `private`, `public` (a private key's public half is taken), or `any` (what `sign`/`verify`
/// accept).
pub(crate) fn parse_key(
    input: &[u8],
    pem_text: bool,
    der_type: &str,
    want: &str,
) -> Result<Key, CryptoError> {
    let key = if pem_text {
        let text = String::from_utf8_lossy(input);
        // The first block holding a key: `openssl ecparam -genkey` writes an `EC PARAMETERS`
        // block before the key, which OpenSSL (so Node) skips.
        let blocks = pem::parse_many(text.as_bytes()).or_else(|_| unsupported_key())?;
        let Some(block) = blocks.into_iter().find(|b| b.tag() != "EC PARAMETERS") else {
            return unsupported_key();
        };
        if block.headers().get("Proc-Type").is_some() {
            return err(
                "hookgate cannot read encrypted PEM keys (Proc-Type header)",
                "ERR_OSSL_UNSUPPORTED",
            );
        }
        let der = block.contents();
        match block.tag() {
            "PRIVATE KEY" => from_pkcs8(der)?,
            "RSA PRIVATE KEY" => match rsa_pkcs1_private(der) {
                Some(p) => rsa_private_key(&p),
                None => return unsupported_key(),
            },
            "EC PRIVATE KEY" => from_sec1(der)?,
            "PUBLIC KEY" => from_spki(der)?,
            "RSA PUBLIC KEY" => match rsa_pkcs1_public(der) {
                Some(p) => rsa_public_key(&p.n, &p.e),
                None => return unsupported_key(),
            },
            "CERTIFICATE" => from_certificate(der)?,
            "ENCRYPTED PRIVATE KEY" => {
                return err(
                    "hookgate cannot read encrypted private keys",
                    "ERR_OSSL_UNSUPPORTED",
                )
            }
            _ => return unsupported_key(),
        }
    } else {
        match der_type {
            "pkcs8" => from_pkcs8(input)?,
            "spki" => from_spki(input)?,
            "sec1" => from_sec1(input)?,
            "pkcs1" => {
                if let Some(p) = rsa_pkcs1_private(input) {
                    rsa_private_key(&p)
                } else if let Some(p) = rsa_pkcs1_public(input) {
                    rsa_public_key(&p.n, &p.e)
                } else {
                    return unsupported_key();
                }
            }
            _ => {
                return err(
                    format!("The property 'options.type' is invalid. Received '{der_type}'"),
                    "ERR_INVALID_ARG_VALUE",
                )
            }
        }
    };
    match want {
        "private" if !key.private => unsupported_key(),
        "public" => public_of(&key),
        _ => Ok(key),
    }
}

fn b64u(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64u(s: &str) -> Result<Vec<u8>, CryptoError> {
    let trimmed = s.trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
        .or_else(|_| err("Invalid JWK data", "ERR_CRYPTO_INVALID_JWK"))
}

fn left_pad(bytes: &[u8], len: usize) -> Vec<u8> {
    let bytes = &bytes[bytes.len().saturating_sub(len)..];
    let mut out = vec![0u8; len - bytes.len()];
    out.extend_from_slice(bytes);
    out
}

/// The JWK members of `key`, in Node's order.
pub(crate) fn to_jwk(key: &Key) -> Result<Vec<(&'static str, String)>, CryptoError> {
    let public = public_of(key)?;
    let spki_key = || -> Option<Vec<u8>> {
        let (_, body, _) = tlv(&public.der)?;
        let parts = items(body)?;
        Some(parts.get(1)?.1.get(1..)?.to_vec())
    };
    let Some(pub_bytes) = spki_key() else {
        return unsupported_key();
    };
    let private_inner = || -> Option<Vec<u8>> {
        let (_, body, _) = tlv(&key.der)?;
        Some(items(body)?.get(2)?.1.to_vec())
    };
    match key.kind {
        Kind::Rsa => {
            let parts = if key.private {
                private_inner().and_then(|i| rsa_pkcs1_private(&i))
            } else {
                rsa_pkcs1_public(&pub_bytes)
            };
            let Some(p) = parts else {
                return unsupported_key();
            };
            let mut out = vec![
                ("kty", "RSA".to_owned()),
                ("n", b64u(&p.n)),
                ("e", b64u(&p.e)),
            ];
            for (name, v) in ["d", "p", "q", "dp", "dq", "qi"].iter().zip(&p.private) {
                out.push((name, b64u(v)));
            }
            Ok(out)
        }
        Kind::Ec(c) => {
            let n = c.field_len();
            let mut out = vec![
                ("kty", "EC".to_owned()),
                ("x", b64u(&pub_bytes[1..1 + n])),
                ("y", b64u(&pub_bytes[1 + n..])),
                ("crv", c.jwk_name().to_owned()),
            ];
            if key.private {
                let (d, _) = ec_parts(c, &key.der)?;
                out.push(("d", b64u(&left_pad(&d, n))));
            }
            Ok(out)
        }
        Kind::Ed25519 => {
            let mut out = vec![("crv", "Ed25519".to_owned()), ("x", b64u(&pub_bytes))];
            if key.private {
                match private_inner().as_deref().and_then(tlv) {
                    Some((0x04, seed, _)) => out.push(("d", b64u(seed))),
                    _ => return unsupported_key(),
                }
            }
            out.push(("kty", "OKP".to_owned()));
            Ok(out)
        }
    }
}

/// A key from JWK members (`get` answers a member's string value). Private when `d` is present.
pub(crate) fn from_jwk(get: &dyn Fn(&str) -> Option<String>) -> Result<Key, CryptoError> {
    let need = |name: &str| -> Result<Vec<u8>, CryptoError> {
        match get(name) {
            Some(v) => unb64u(&v),
            None => err(
                format!("The \"key.{name}\" property must be of type string."),
                "ERR_INVALID_ARG_TYPE",
            ),
        }
    };
    let kty = get("kty").unwrap_or_default();
    let private = get("d").is_some();
    match kty.as_str() {
        "RSA" => {
            let (n, e) = (need("n")?, need("e")?);
            if !private {
                return Ok(rsa_public_key(&n, &e));
            }
            let mut rest = Vec::new();
            for name in ["d", "p", "q", "dp", "dq", "qi"] {
                rest.push(need(name)?);
            }
            Ok(rsa_private_key(&RsaParts {
                n,
                e,
                private: rest,
            }))
        }
        "EC" => {
            let crv = get("crv").unwrap_or_default();
            let Some(c) = Curve::from_name(&crv) else {
                return err(
                    format!("Unsupported JWK EC curve: {crv}."),
                    "ERR_CRYPTO_INVALID_JWK",
                );
            };
            let n = c.field_len();
            let (x, y) = (need("x")?, need("y")?);
            if x.len() > n || y.len() > n {
                return err("Invalid JWK EC key", "ERR_CRYPTO_INVALID_JWK");
            }
            let mut point = vec![4u8];
            point.extend(left_pad(&x, n));
            point.extend(left_pad(&y, n));
            if !private {
                return Ok(ec_public_key(c, &point));
            }
            let d = left_pad(&need("d")?, n);
            // Load it once: a scalar that does not match the point is refused here, as Node does.
            signature::EcdsaKeyPair::from_private_key_and_public_key(c.loader(), &d, &point)
                .or_else(|_| err("Invalid JWK EC key", "ERR_CRYPTO_INVALID_JWK"))?;
            Ok(ec_private_key(c, &d, &point))
        }
        "OKP" => {
            if get("crv").as_deref() != Some("Ed25519") {
                return err("Unsupported JWK OKP curve", "ERR_CRYPTO_INVALID_JWK");
            }
            if private {
                Ok(ed_private_key(&need("d")?))
            } else {
                Ok(ed_public_key(&need("x")?))
            }
        }
        _ => err(
            "The property 'key.kty' is invalid. Received ".to_owned() + &format!("'{kty}'"),
            "ERR_INVALID_ARG_VALUE",
        ),
    }
}

/// `key` as DER of `format` (`pkcs8`, `spki`, `pkcs1`, `sec1`).
pub(crate) fn export_der(key: &Key, format: &str) -> Result<Vec<u8>, CryptoError> {
    let inner = |der: &[u8], index: usize| -> Option<Vec<u8>> {
        let (_, body, _) = tlv(der)?;
        let v = items(body)?.get(index)?.1.to_vec();
        Some(v)
    };
    let bad = || {
        err(
            format!(
                "The selected key encoding {format} {}.",
                if key.private {
                    "can only be used for RSA keys"
                } else {
                    "is not supported for this key"
                }
            ),
            "ERR_CRYPTO_INCOMPATIBLE_KEY_OPTIONS",
        )
    };
    match (format, key.private, key.kind) {
        ("pkcs8", true, _) | ("spki", false, _) => Ok(key.der.clone()),
        ("pkcs1", true, Kind::Rsa) => inner(&key.der, 2).map_or_else(unsupported_key, Ok),
        ("pkcs1", false, Kind::Rsa) => inner(&key.der, 1)
            .and_then(|b| b.get(1..).map(<[u8]>::to_vec))
            .map_or_else(unsupported_key, Ok),
        ("sec1", true, Kind::Ec(c)) => {
            let (d, point) = ec_parts(c, &key.der)?;
            Ok(sec1(c, &d, &point, true))
        }
        _ => bad(),
    }
}

/// `modulusLength` and `publicExponent` (big-endian) of an RSA key.
pub(crate) fn rsa_details(key: &Key) -> Option<(usize, Vec<u8>)> {
    let public = public_of(key).ok()?;
    let pkcs1 = export_der(&public, "pkcs1").ok()?;
    let p = rsa_pkcs1_public(&pkcs1)?;
    let lead = p.n.first().map_or(0, |b| b.leading_zeros() as usize);
    let bits = (p.n.len() * 8).saturating_sub(lead);
    Some((bits, p.e))
}

// ---------------------------------------------------------------------------------------------
// Signatures.

/// How to sign: Node's `padding` (1 PKCS#1 v1.5, 6 PSS) and `dsaEncoding`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignOptions {
    pub pss: bool,
    /// `saltLength` as given (-1 = digest length, -2 = max for signing/auto for verify).
    pub salt_length: Option<i32>,
    pub p1363: bool,
}

fn digest_name(alg: &str) -> String {
    let a = alg.to_ascii_lowercase();
    let a = a.strip_prefix("rsa-").unwrap_or(&a).replace("sha-", "sha");
    // Node's `ecdsa-with-SHA256` and `sha256WithRSAEncryption` name the digest too.
    for d in ["sha1", "sha224", "sha256", "sha384", "sha512"] {
        if a == d || a.ends_with(&format!("with-{d}")) || a.starts_with(&format!("{d}with")) {
            return d.to_owned();
        }
    }
    a
}

fn pss_salt_ok(o: &SignOptions, digest_len: i32, signing: bool) -> bool {
    match o.salt_length {
        None => !signing,
        Some(-1) => true,
        Some(-2) => !signing,
        Some(n) => n == digest_len,
    }
}

/// Sign `data` with the private key `key` (digest `alg`; ignored by Ed25519).
pub(crate) fn sign(
    alg: Option<&str>,
    key: &Key,
    data: &[u8],
    o: SignOptions,
) -> Result<Vec<u8>, CryptoError> {
    if !key.private {
        return err(
            "error:1E08010C:DECODER routines::unsupported",
            "ERR_OSSL_UNSUPPORTED",
        );
    }
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let digest = alg.map(digest_name);
    let unsupported_digest = || {
        err(
            format!(
                "hookgate cannot sign with digest {} and a {} key",
                digest.as_deref().unwrap_or("none"),
                key.kind.node_name()
            ),
            "ERR_OSSL_EVP_INVALID_DIGEST",
        )
    };
    match key.kind {
        Kind::Rsa => {
            let pair = signature::RsaKeyPair::from_pkcs8(&key.der).or_else(|e| {
                err(
                    format!("hookgate cannot sign with this RSA key: {e}"),
                    "ERR_OSSL_UNSUPPORTED",
                )
            })?;
            let (enc, len): (&'static dyn signature::RsaEncoding, i32) =
                match (digest.as_deref(), o.pss) {
                    (Some("sha256") | None, false) => (&signature::RSA_PKCS1_SHA256, 32),
                    (Some("sha384"), false) => (&signature::RSA_PKCS1_SHA384, 48),
                    (Some("sha512"), false) => (&signature::RSA_PKCS1_SHA512, 64),
                    (Some("sha256") | None, true) => (&signature::RSA_PSS_SHA256, 32),
                    (Some("sha384"), true) => (&signature::RSA_PSS_SHA384, 48),
                    (Some("sha512"), true) => (&signature::RSA_PSS_SHA512, 64),
                    _ => return unsupported_digest(),
                };
            if o.pss && !pss_salt_ok(&o, len, true) {
                return err(
                    "hookgate signs RSA-PSS with a salt as long as the digest only (RSA_PSS_SALTLEN_DIGEST)",
                    "ERR_HOOKGATE_UNSUPPORTED",
                );
            }
            let mut sig = vec![0u8; pair.public_modulus_len()];
            pair.sign(enc, &rng, data, &mut sig)
                .or_else(|_| err("RSA signing failed", "ERR_OSSL_RSA"))?;
            Ok(sig)
        }
        Kind::Ec(c) => {
            use signature as s;
            let d = digest.as_deref().unwrap_or("sha256");
            let a: &'static s::EcdsaSigningAlgorithm = match (c, d, o.p1363) {
                (Curve::P256, "sha256", false) => &s::ECDSA_P256_SHA256_ASN1_SIGNING,
                (Curve::P256, "sha256", true) => &s::ECDSA_P256_SHA256_FIXED_SIGNING,
                (Curve::P384, "sha384", false) => &s::ECDSA_P384_SHA384_ASN1_SIGNING,
                (Curve::P384, "sha384", true) => &s::ECDSA_P384_SHA384_FIXED_SIGNING,
                (Curve::P521, "sha512", false) => &s::ECDSA_P521_SHA512_ASN1_SIGNING,
                (Curve::P521, "sha512", true) => &s::ECDSA_P521_SHA512_FIXED_SIGNING,
                (Curve::P521, "sha384", false) => &s::ECDSA_P521_SHA384_ASN1_SIGNING,
                (Curve::P521, "sha384", true) => &s::ECDSA_P521_SHA384_FIXED_SIGNING,
                (Curve::P521, "sha256", false) => &s::ECDSA_P521_SHA256_ASN1_SIGNING,
                (Curve::P521, "sha256", true) => &s::ECDSA_P521_SHA256_FIXED_SIGNING,
                (Curve::K256, "sha256", false) => &s::ECDSA_P256K1_SHA256_ASN1_SIGNING,
                (Curve::K256, "sha256", true) => &s::ECDSA_P256K1_SHA256_FIXED_SIGNING,
                _ => return unsupported_digest(),
            };
            let pair = s::EcdsaKeyPair::from_pkcs8(a, &key.der).or_else(|_| unsupported_key())?;
            let sig = pair
                .sign(&rng, data)
                .or_else(|_| err("ECDSA signing failed", "ERR_OSSL_EC"))?;
            Ok(sig.as_ref().to_vec())
        }
        Kind::Ed25519 => {
            if digest.is_some() {
                return unsupported_digest();
            }
            let pair = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&key.der)
                .or_else(|_| unsupported_key())?;
            Ok(pair.sign(data).as_ref().to_vec())
        }
    }
}

/// Whether `sig` is `key`'s signature of `data` (a private key verifies with its public half).
pub(crate) fn verify(
    alg: Option<&str>,
    key: &Key,
    data: &[u8],
    sig: &[u8],
    o: SignOptions,
) -> Result<bool, CryptoError> {
    use signature as s;
    let public = public_of(key)?;
    let raw = || -> Option<Vec<u8>> {
        let (_, body, _) = tlv(&public.der)?;
        Some(items(body)?.get(1)?.1.get(1..)?.to_vec())
    };
    let Some(raw) = raw() else {
        return unsupported_key();
    };
    let digest = alg.map(digest_name);
    let unsupported_digest = || {
        err(
            format!(
                "hookgate cannot verify with digest {} and a {} key",
                digest.as_deref().unwrap_or("none"),
                key.kind.node_name()
            ),
            "ERR_OSSL_EVP_INVALID_DIGEST",
        )
    };
    let algorithm: &'static dyn s::VerificationAlgorithm = match key.kind {
        Kind::Rsa => {
            let (a, len): (&'static dyn s::VerificationAlgorithm, i32) =
                match (digest.as_deref(), o.pss) {
                    (Some("sha1"), false) => (&s::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY, 20),
                    (Some("sha256") | None, false) => {
                        (&s::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, 32)
                    }
                    (Some("sha384"), false) => (&s::RSA_PKCS1_2048_8192_SHA384, 48),
                    (Some("sha512"), false) => {
                        (&s::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY, 64)
                    }
                    (Some("sha256") | None, true) => (&s::RSA_PSS_2048_8192_SHA256, 32),
                    (Some("sha384"), true) => (&s::RSA_PSS_2048_8192_SHA384, 48),
                    (Some("sha512"), true) => (&s::RSA_PSS_2048_8192_SHA512, 64),
                    _ => return unsupported_digest(),
                };
            if o.pss && !pss_salt_ok(&o, len, false) {
                return err(
                    "hookgate verifies RSA-PSS with a salt as long as the digest only",
                    "ERR_HOOKGATE_UNSUPPORTED",
                );
            }
            a
        }
        Kind::Ec(c) => {
            let d = digest.as_deref().unwrap_or("sha256");
            match (c, d, o.p1363) {
                (Curve::P256, "sha256", false) => &s::ECDSA_P256_SHA256_ASN1,
                (Curve::P256, "sha256", true) => &s::ECDSA_P256_SHA256_FIXED,
                (Curve::P256, "sha384", false) => &s::ECDSA_P256_SHA384_ASN1,
                (Curve::P256, "sha512", false) => &s::ECDSA_P256_SHA512_ASN1,
                (Curve::P384, "sha384", false) => &s::ECDSA_P384_SHA384_ASN1,
                (Curve::P384, "sha384", true) => &s::ECDSA_P384_SHA384_FIXED,
                (Curve::P384, "sha256", false) => &s::ECDSA_P384_SHA256_ASN1,
                (Curve::P384, "sha512", false) => &s::ECDSA_P384_SHA512_ASN1,
                (Curve::P521, "sha512", false) => &s::ECDSA_P521_SHA512_ASN1,
                (Curve::P521, "sha512", true) => &s::ECDSA_P521_SHA512_FIXED,
                (Curve::P521, "sha384", false) => &s::ECDSA_P521_SHA384_ASN1,
                (Curve::P521, "sha384", true) => &s::ECDSA_P521_SHA384_FIXED,
                (Curve::P521, "sha256", false) => &s::ECDSA_P521_SHA256_ASN1,
                (Curve::P521, "sha256", true) => &s::ECDSA_P521_SHA256_FIXED,
                (Curve::K256, "sha256", false) => &s::ECDSA_P256K1_SHA256_ASN1,
                (Curve::K256, "sha256", true) => &s::ECDSA_P256K1_SHA256_FIXED,
                _ => return unsupported_digest(),
            }
        }
        Kind::Ed25519 => {
            if digest.is_some() {
                return unsupported_digest();
            }
            &s::ED25519
        }
    };
    // RSA verification takes the PKCS#1 public key; EC the point; Ed25519 the 32 bytes.
    Ok(s::UnparsedPublicKey::new(algorithm, &raw)
        .verify(data, sig)
        .is_ok())
}

// ---------------------------------------------------------------------------------------------
// Ciphers and PBKDF2.

fn aes_key(key: &[u8]) -> Result<aws_lc_rs::cipher::UnboundCipherKey, CryptoError> {
    use aws_lc_rs::cipher as c;
    let alg = match key.len() {
        16 => &c::AES_128,
        24 => &c::AES_192,
        32 => &c::AES_256,
        _ => return err("Invalid key length", "ERR_CRYPTO_INVALID_KEYLEN"),
    };
    c::UnboundCipherKey::new(alg, key)
        .or_else(|_| err("Invalid key length", "ERR_CRYPTO_INVALID_KEYLEN"))
}

/// AES over whole blocks (CBC, ECB) or any length (CTR), no padding: `crypto.js` keeps the
/// stream state (the IV to chain, the partial block, PKCS#7).
pub(crate) fn aes(
    mode: &str,
    encrypt: bool,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    use aws_lc_rs::cipher::{DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext};
    use aws_lc_rs::iv::FixedLength;
    let mut buf = data.to_vec();
    if buf.is_empty() {
        return Ok(buf);
    }
    let k = aes_key(key)?;
    let iv16 = || -> Result<[u8; 16], CryptoError> {
        <[u8; 16]>::try_from(iv)
            .or_else(|_| err("Invalid initialization vector", "ERR_CRYPTO_INVALID_IV"))
    };
    fn failed<T>() -> Result<T, CryptoError> {
        err("AES operation failed", "ERR_OSSL_EVP_CIPHER")
    }
    match (mode, encrypt) {
        ("ecb", true) => {
            let key = EncryptingKey::ecb(k).or_else(|_| failed())?;
            key.less_safe_encrypt(&mut buf, EncryptionContext::None)
                .or_else(|_| failed())?;
        }
        ("ecb", false) => {
            let key = DecryptingKey::ecb(k).or_else(|_| failed())?;
            key.decrypt(&mut buf, DecryptionContext::None)
                .or_else(|_| failed())?;
        }
        ("cbc" | "ctr", true) => {
            let key = if mode == "cbc" {
                EncryptingKey::cbc(k)
            } else {
                EncryptingKey::ctr(k)
            }
            .or_else(|_| failed())?;
            key.less_safe_encrypt(
                &mut buf,
                EncryptionContext::Iv128(FixedLength::from(iv16()?)),
            )
            .or_else(|_| failed())?;
        }
        ("cbc" | "ctr", false) => {
            let key = if mode == "cbc" {
                DecryptingKey::cbc(k)
            } else {
                DecryptingKey::ctr(k)
            }
            .or_else(|_| failed())?;
            key.decrypt(
                &mut buf,
                DecryptionContext::Iv128(FixedLength::from(iv16()?)),
            )
            .or_else(|_| failed())?;
        }
        _ => {
            return err(
                format!("Unknown AES mode {mode}"),
                "ERR_CRYPTO_UNKNOWN_CIPHER",
            )
        }
    }
    Ok(buf)
}

/// The 16-byte GCM tag of `plaintext` under `key`, a 12-byte `iv` and `aad`.
pub(crate) fn gcm_tag(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    use aws_lc_rs::aead;
    let alg = match key.len() {
        16 => &aead::AES_128_GCM,
        24 => &aead::AES_192_GCM,
        32 => &aead::AES_256_GCM,
        _ => return err("Invalid key length", "ERR_CRYPTO_INVALID_KEYLEN"),
    };
    let nonce = aead::Nonce::try_assume_unique_for_key(iv).or_else(|_| {
        err(
            "hookgate supports 12-byte GCM IVs only",
            "ERR_HOOKGATE_UNSUPPORTED",
        )
    })?;
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(alg, key)
            .or_else(|_| err("Invalid key length", "ERR_CRYPTO_INVALID_KEYLEN"))?,
    );
    let mut buf = plaintext.to_vec();
    let tag = key
        .seal_in_place_separate_tag(nonce, aead::Aad::from(aad), &mut buf)
        .or_else(|_| err("AES-GCM failed", "ERR_OSSL_EVP_CIPHER"))?;
    Ok(tag.as_ref().to_vec())
}

pub(crate) fn pbkdf2(
    digest: &str,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    keylen: usize,
) -> Result<Vec<u8>, CryptoError> {
    use aws_lc_rs::pbkdf2 as p;
    let alg = match digest_name(digest).as_str() {
        "sha1" => p::PBKDF2_HMAC_SHA1,
        "sha256" => p::PBKDF2_HMAC_SHA256,
        "sha384" => p::PBKDF2_HMAC_SHA384,
        "sha512" => p::PBKDF2_HMAC_SHA512,
        _ => {
            return err(
                format!("Invalid digest: {digest}"),
                "ERR_CRYPTO_INVALID_DIGEST",
            )
        }
    };
    let Some(iterations) = std::num::NonZeroU32::new(iterations) else {
        return err(
            "The value of \"iterations\" is out of range. It must be >= 1 && <= 2147483647. Received 0",
            "ERR_OUT_OF_RANGE",
        );
    };
    let mut out = vec![0u8; keylen];
    if keylen > 0 {
        p::derive(alg, iterations, salt, password, &mut out);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The JS boundary.

fn throw(ctx: &Ctx<'_>, e: CryptoError) -> rquickjs::Error {
    let ex = match Exception::from_message(ctx.clone(), &e.message) {
        Ok(ex) => ex,
        Err(err) => return err,
    };
    if !e.code.is_empty() {
        if let Err(err) = ex.set("code", e.code) {
            return err;
        }
    }
    ctx.throw(ex.into_value())
}

/// `{type, asymmetricKeyType, der, namedCurve?, modulusLength?, publicExponent?}` for `crypto.js`.
fn key_out<'js>(ctx: &Ctx<'js>, key: &Key) -> rquickjs::Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    o.set("type", if key.private { "private" } else { "public" })?;
    o.set("asymmetricKeyType", key.kind.node_name())?;
    o.set("der", bytes_out(ctx, key.der.clone())?)?;
    match key.kind {
        Kind::Ec(c) => o.set("namedCurve", c.node_name())?,
        Kind::Rsa => {
            if let Some((bits, e)) = rsa_details(key) {
                o.set("modulusLength", bits as f64)?;
                let hex: String = e.iter().map(|b| format!("{b:02x}")).collect();
                o.set("publicExponent", hex)?;
            }
        }
        Kind::Ed25519 => {}
    }
    Ok(o)
}

/// The canonical key `crypto.js` passes back: (private?, der).
fn key_in(private: bool, der: Vec<u8>) -> Result<Key, CryptoError> {
    let key = if private {
        from_pkcs8(&der)?
    } else {
        from_spki(&der)?
    };
    Ok(key)
}

fn options_in(o: &Option<Object<'_>>) -> SignOptions {
    let get_num = |name: &str| -> Option<i32> {
        o.as_ref()
            .and_then(|o| o.get::<_, Option<f64>>(name).ok().flatten())
            .map(|n| n as i32)
    };
    SignOptions {
        pss: get_num("padding") == Some(6),
        salt_length: get_num("saltLength"),
        p1363: o
            .as_ref()
            .and_then(|o| o.get::<_, Option<String>>("dsaEncoding").ok().flatten())
            .as_deref()
            == Some("ieee-p1363"),
    }
}

/// Install the crypto natives on `native`.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> rquickjs::Result<()> {
    let crypto = Object::new(ctx.clone())?;
    native.set("crypto", crypto.clone())?;
    let native = crypto;
    native.set(
        "keyParse",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>,
             data: Value<'js>,
             pem_text: bool,
             der_type: String,
             want: String|
             -> rquickjs::Result<Object<'js>> {
                let data = bytes_in(&data)?;
                let key =
                    parse_key(&data, pem_text, &der_type, &want).map_err(|e| throw(&ctx, e))?;
                key_out(&ctx, &key)
            },
        )?,
    )?;
    native.set(
        "keyFromJwk",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, jwk: Object<'js>, want: String| -> rquickjs::Result<Object<'js>> {
                let get = |name: &str| -> Option<String> {
                    jwk.get::<_, Option<String>>(name).ok().flatten()
                };
                let key = from_jwk(&get)
                    .and_then(|k| match want.as_str() {
                        "public" => public_of(&k),
                        "private" if !k.private => err(
                            "Invalid JWK private key: no \"d\"",
                            "ERR_CRYPTO_INVALID_JWK",
                        ),
                        _ => Ok(k),
                    })
                    .map_err(|e| throw(&ctx, e))?;
                key_out(&ctx, &key)
            },
        )?,
    )?;
    native.set(
        "keyPublic",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, private: bool, der: Value<'js>| -> rquickjs::Result<Object<'js>> {
                let key = key_in(private, bytes_in(&der)?)
                    .and_then(|k| public_of(&k))
                    .map_err(|e| throw(&ctx, e))?;
                key_out(&ctx, &key)
            },
        )?,
    )?;
    native.set(
        "keyExport",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>,
             private: bool,
             der: Value<'js>,
             format: String|
             -> rquickjs::Result<Value<'js>> {
                let key = key_in(private, bytes_in(&der)?).map_err(|e| throw(&ctx, e))?;
                if format == "jwk" {
                    let members = to_jwk(&key).map_err(|e| throw(&ctx, e))?;
                    let o = Object::new(ctx.clone())?;
                    for (k, v) in members {
                        o.set(k, v)?;
                    }
                    return Ok(o.into_value());
                }
                let der = export_der(&key, &format).map_err(|e| throw(&ctx, e))?;
                bytes_out(&ctx, der)
            },
        )?,
    )?;
    native.set(
        "sign",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>,
             alg: Option<String>,
             der: Value<'js>,
             data: Value<'js>,
             opts: Option<Object<'js>>|
             -> rquickjs::Result<Value<'js>> {
                let o = options_in(&opts);
                let data = bytes_in(&data)?;
                let sig = key_in(true, bytes_in(&der)?)
                    .and_then(|k| sign(alg.as_deref(), &k, &data, o))
                    .map_err(|e| throw(&ctx, e))?;
                bytes_out(&ctx, sig)
            },
        )?,
    )?;
    native.set(
        "verify",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>,
             alg: Option<String>,
             private: bool,
             der: Value<'js>,
             data: Value<'js>,
             sig: Value<'js>,
             opts: Option<Object<'js>>|
             -> rquickjs::Result<bool> {
                let o = options_in(&opts);
                let (data, sig) = (bytes_in(&data)?, bytes_in(&sig)?);
                key_in(private, bytes_in(&der)?)
                    .and_then(|k| verify(alg.as_deref(), &k, &data, &sig, o))
                    .map_err(|e| throw(&ctx, e))
            },
        )?,
    )?;
    native.set(
        "aes",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>,
             mode: String,
             encrypt: bool,
             key: Value<'js>,
             iv: Value<'js>,
             data: Value<'js>|
             -> rquickjs::Result<Value<'js>> {
                let out = aes(
                    &mode,
                    encrypt,
                    &bytes_in(&key)?,
                    &bytes_in(&iv)?,
                    &bytes_in(&data)?,
                )
                .map_err(|e| throw(&ctx, e))?;
                bytes_out(&ctx, out)
            },
        )?,
    )?;
    native.set(
        "gcmTag",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>,
             key: Value<'js>,
             iv: Value<'js>,
             aad: Value<'js>,
             plaintext: Value<'js>|
             -> rquickjs::Result<Value<'js>> {
                let tag = gcm_tag(
                    &bytes_in(&key)?,
                    &bytes_in(&iv)?,
                    &bytes_in(&aad)?,
                    &bytes_in(&plaintext)?,
                )
                .map_err(|e| throw(&ctx, e))?;
                bytes_out(&ctx, tag)
            },
        )?,
    )?;
    native.set(
        "pbkdf2",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>,
             digest: String,
             password: Value<'js>,
             salt: Value<'js>,
             iterations: f64,
             keylen: f64|
             -> rquickjs::Result<Value<'js>> {
                let out = pbkdf2(
                    &digest,
                    &bytes_in(&password)?,
                    &bytes_in(&salt)?,
                    iterations as u32,
                    keylen as usize,
                )
                .map_err(|e| throw(&ctx, e))?;
                bytes_out(&ctx, out)
            },
        )?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The P-256 key of `tests/node-compat/payloads/jwt-jsonwebtoken.json`, as JWK members.
    fn ec_jwk(name: &str) -> Option<String> {
        match name {
            "kty" => Some("EC".into()),
            "crv" => Some("P-256".into()),
            "x" => Some("PKWaID61msRAFg-hb1-ttuoQ1MHJiPavP2qKW0f4SmQ".into()),
            "y" => Some("ju_9ZoHuSVrGAjGBql0IZY-NE5Hf_jlljNNx4OkipVk".into()),
            "d" => Some("7AmLu5NEKPykL5OYFkzJyI4T7zsEZehqln35y9fCpjo".into()),
            _ => None,
        }
    }

    #[test]
    fn der_integers_are_minimal_and_long_lengths_read_back() {
        assert_eq!(int(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(int(&[0, 0, 1]), vec![0x02, 0x01, 0x01]);
        assert_eq!(int(&[]), vec![0x02, 0x01, 0x00]);
        let long = enc(0x04, &[7u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (tag, body, rest) = tlv(&long).unwrap();
        assert_eq!((tag, body.len(), rest.len()), (0x04, 300, 0));
        assert!(tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(tlv(&[0x30, 0x05, 1]).is_none());
    }

    #[test]
    fn an_ec_key_survives_every_format_and_signs() {
        let key = from_jwk(&ec_jwk).unwrap();
        assert!(key.private);
        assert_eq!(key.kind, Kind::Ec(Curve::P256));
        let sec1_der = export_der(&key, "sec1").unwrap();
        assert_eq!(parse_key(&sec1_der, false, "sec1", "any").unwrap(), key);
        assert_eq!(from_pkcs8(&key.der).unwrap(), key);
        let public = public_of(&key).unwrap();
        assert_eq!(from_spki(&public.der).unwrap(), public);
        let jwk = to_jwk(&key).unwrap();
        assert!(jwk
            .iter()
            .any(|(k, v)| *k == "d" && Some(v.clone()) == ec_jwk("d")));
        let o = SignOptions {
            pss: false,
            salt_length: None,
            p1363: true,
        };
        let sig = sign(Some("sha256"), &key, b"data", o).unwrap();
        assert_eq!(sig.len(), 64);
        assert!(verify(Some("RSA-SHA256"), &public, b"data", &sig, o).unwrap());
        assert!(!verify(Some("sha256"), &public, b"other", &sig, o).unwrap());
        assert!(sign(Some("sha256"), &public, b"data", o).is_err());
    }

    /// Key bytes come from hooks: cut short or with a byte changed anywhere, they are an error or
    /// a key, never a panic.
    #[test]
    fn truncated_and_corrupted_keys_are_errors_not_panics() {
        let key = from_jwk(&ec_jwk).unwrap();
        let public = public_of(&key).unwrap();
        let rsa_public = rsa_public_key(&[0xc3; 256], &[1, 0, 1]);
        for (der, kind) in [
            (key.der.clone(), "pkcs8"),
            (export_der(&key, "sec1").unwrap(), "sec1"),
            (public.der.clone(), "spki"),
            (rsa_public.der.clone(), "spki"),
            (export_der(&rsa_public, "pkcs1").unwrap(), "pkcs1"),
        ] {
            for cut in 0..der.len() {
                let _ = parse_key(&der[..cut], false, kind, "any");
            }
            for i in 0..der.len() {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut bad = der.clone();
                    bad[i] ^= flip;
                    if let Ok(k) = parse_key(&bad, false, kind, "any") {
                        let _ = to_jwk(&k);
                        let _ = rsa_details(&k);
                    }
                }
            }
        }
        assert!(parse_key(b"not a key", true, "", "any").is_err());
        assert_eq!(rsa_details(&rsa_public_key(&[], &[])).map(|d| d.0), Some(0));
    }

    #[test]
    fn aes_and_pbkdf2_match_published_vectors() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        // SP 800-38A F.2.1.
        let key = hex("2b7e151628aed2a6abf7158809cf4f3c");
        let iv = hex("000102030405060708090a0b0c0d0e0f");
        let ct = aes(
            "cbc",
            true,
            &key,
            &iv,
            &hex("6bc1bee22e409f96e93d7e117393172a"),
        )
        .unwrap();
        assert_eq!(ct, hex("7649abac8119b246cee98e9b12e9197d"));
        assert_eq!(
            aes("cbc", false, &key, &iv, &ct).unwrap(),
            hex("6bc1bee22e409f96e93d7e117393172a")
        );
        assert_eq!(
            aes("cbc", true, &key, &iv[..8], &ct).unwrap_err().code,
            "ERR_CRYPTO_INVALID_IV"
        );
        assert_eq!(
            aes("cbc", true, &key[..5], &iv, &ct).unwrap_err().code,
            "ERR_CRYPTO_INVALID_KEYLEN"
        );
        // RFC 6070.
        assert_eq!(
            pbkdf2("sha1", b"password", b"salt", 2, 20).unwrap(),
            hex("ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957")
        );
        assert!(pbkdf2("md5", b"p", b"s", 1, 8).is_err());
        assert!(pbkdf2("sha1", b"p", b"s", 0, 8).is_err());
    }
}
