//! Request headers as text, and what the points read from them: the claims of a bearer JWT, HTTP
//! Basic client credentials, the request's language.
//!
//! Must not: know any transport's header types (the proxy turns its request head into
//! [`Headers`]), or decide what a header means for a request: the points do.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::params::form_decode;

/// A request's headers, as text: names in lower case, in the order received. A value that is not
/// visible ASCII is kept as `None` (its name still counts), as `HeaderValue::to_str` would refuse it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, Option<String>)>);

impl Headers {
    pub fn new() -> Headers {
        Headers(Vec::new())
    }

    /// Add one header line (`name` is lower-cased).
    pub fn push(&mut self, name: &str, value: Option<&str>) {
        self.0
            .push((name.to_ascii_lowercase(), value.map(str::to_string)));
    }

    /// The first value of a header, as text (`None` when absent or not visible ASCII).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_deref())
    }

    /// Each header name once, in the order first received.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .enumerate()
            .filter(|(i, (n, _))| !self.0[..*i].iter().any(|(m, _)| m == n))
            .map(|(_, (n, _))| n.as_str())
    }
}

/// Auth0's `context.requestLanguage` from `Accept-Language`: the first tag, lower-cased
/// (`en-US,en;q=0.9` → `en-us`); `None` for none or `*`.
pub fn request_language(accept: Option<&str>) -> Option<String> {
    let first = accept?.split(',').next()?.split(';').next()?.trim();
    (!first.is_empty() && first != "*").then(|| first.to_ascii_lowercase())
}

/// The claims of an `Authorization: Bearer` JWT, **unverified** (whoever reads them must not
/// trust them for anything a forged token could abuse); empty when absent or not a JWT.
pub fn bearer_claims(authorization: Option<&str>) -> Map<String, Value> {
    authorization
        .map(|a| a.trim_matches(|c: char| c.is_ascii_whitespace()))
        .and_then(|a| a.split_once([' ', '\t']))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|(_, token)| token.trim().split('.').nth(1))
        .and_then(|payload| B64URL_LENIENT.decode(payload.trim_end_matches('=')).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Base64 as lenient servers read it: padding optional, stray low bits ignored (Node's
/// `Buffer.from(x, 'base64')`, Go's and Java's lenient decoders all accept these).
const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const B64_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const B64URL_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Client credentials from an HTTP Basic `Authorization` header (RFC 6749 §2.3.1: both parts
/// are form-urlencoded before base64). `None` when the header is absent, not Basic, or not
/// decodable in any spelling.
///
/// Decoded as leniently as identity servers do, so that hookgate never knows *less* than the
/// server about who is calling: scheme in any case, any run of spaces or tabs after it,
/// surrounding whitespace, the standard or URL-safe alphabet, with or without padding.
/// (Who the client *is* comes from the upstream's verified token, not from here: see
/// `points::credentials_exchange`.)
pub fn basic_credentials(authorization: Option<&str>) -> Option<(String, String)> {
    let value = authorization?.trim_matches(|c: char| c.is_ascii_whitespace());
    let (scheme, rest) = value.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    // Padding is optional, and a wrong amount of it is ignored (as Node's decoder does).
    let token = rest
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .trim_end_matches('=');
    let decoded = B64_LENIENT
        .decode(token)
        .or_else(|_| B64URL_LENIENT.decode(token))
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};

    #[test]
    fn basic_credentials_are_form_decoded() {
        let h = format!("Basic {}", B64.encode("my%20client:s%2Bcr+t"));
        assert_eq!(
            basic_credentials(Some(&h)),
            Some(("my client".to_string(), "s+cr t".to_string()))
        );
        assert_eq!(basic_credentials(Some("Bearer x")), None);
        assert_eq!(basic_credentials(Some("Basic")), None);
        assert_eq!(basic_credentials(Some("Basic Zm9v")), None, "no colon");
        assert_eq!(basic_credentials(Some("Basic !!!")), None);
        assert_eq!(basic_credentials(None), None);
    }

    #[test]
    fn basic_credentials_are_read_in_every_spelling_servers_accept() {
        // Raw `?` and `>` make the standard and URL-safe alphabets differ; escapes are decoded.
        let pair = ("a?> c", "s??>>x");
        let raw = "a?>%20c:s??>>x";
        let standard = B64.encode(raw);
        let url_safe = URL_SAFE_NO_PAD.encode(raw);
        assert!(standard.contains(['+', '/']) && standard.ends_with('='));
        for h in [
            format!("Basic {standard}"),
            format!("basic {}", standard.trim_end_matches('=')),
            format!("BASIC  {url_safe}"),
            format!("Basic\t{url_safe}=="),
            format!("  Basic {standard}  "),
        ] {
            assert_eq!(
                basic_credentials(Some(&h)),
                Some((pair.0.to_string(), pair.1.to_string())),
                "{h}"
            );
        }
    }

    #[test]
    fn bearer_claims_are_read_from_the_payload() {
        let payload = URL_SAFE_NO_PAD.encode(r#"{"sub":"auth0|42","email":"a@b.c"}"#);
        let claims = bearer_claims(Some(&format!("Bearer x.{payload}.sig")));
        assert_eq!(claims["sub"], "auth0|42");
        assert!(bearer_claims(Some("Basic abc")).is_empty());
        assert!(bearer_claims(Some("Bearer opaque")).is_empty());
        assert!(bearer_claims(None).is_empty());
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

    #[test]
    fn headers_are_looked_up_in_any_case_and_named_once() {
        let mut h = Headers::new();
        h.push("X-User", Some("a"));
        h.push("x-user", Some("b"));
        h.push("x-bin", None);
        assert_eq!(h.get("x-USER"), Some("a"));
        assert_eq!(h.get("x-bin"), None);
        assert_eq!(h.names().collect::<Vec<_>>(), ["x-user", "x-bin"]);
    }
}
