//! The one request-body parser of the exchange routes: RFC 6749 form bodies and Auth0-style JSON
//! bodies into one ordered parameter map, and back out in whichever shape the upstream wants.
//!
//! Must not: interpret any parameter; that is the points' business.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::respond::OAuthError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    Form,
    Json,
}

impl BodyFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Form => "application/x-www-form-urlencoded",
            BodyFormat::Json => "application/json",
        }
    }
}

/// Request parameters in their original order, with the shape they arrived in.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub format: BodyFormat,
    pub values: Map<String, Value>,
}

impl Params {
    /// Parse by `Content-Type`; without one, a body that starts with `{` is JSON, any other a form.
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Params, OAuthError> {
        let mime = content_type
            .map(|c| {
                c.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let format = match mime.as_str() {
            "application/json" => BodyFormat::Json,
            "application/x-www-form-urlencoded" => BodyFormat::Form,
            "" if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') => BodyFormat::Json,
            "" => BodyFormat::Form,
            m if m.ends_with("+json") => BodyFormat::Json,
            other => {
                return Err(OAuthError::invalid_request(format!(
                    "unsupported content type `{other}`: send application/x-www-form-urlencoded or application/json"
                )))
            }
        };
        let values = match format {
            BodyFormat::Json => match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(OAuthError::invalid_request(
                        "the JSON body must be an object",
                    ))
                }
                Err(e) => {
                    return Err(OAuthError::invalid_request(format!(
                        "malformed JSON body: {e}"
                    )))
                }
            },
            BodyFormat::Form => {
                let pairs: Vec<(String, String)> =
                    serde_urlencoded::from_bytes(body).map_err(|e| {
                        OAuthError::invalid_request(format!("malformed form body: {e}"))
                    })?;
                let mut m = Map::new();
                for (k, v) in pairs {
                    // RFC 6749 §3.2: request parameters must not be included more than once.
                    if m.insert(k.clone(), Value::String(v)).is_some() {
                        return Err(OAuthError::invalid_request(format!(
                            "the parameter `{k}` is repeated"
                        )));
                    }
                }
                m
            }
        };
        Ok(Params { format, values })
    }

    /// A parameter as a string (JSON numbers and booleans included, as they would be in a form).
    pub fn get(&self, key: &str) -> Option<String> {
        match self.values.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// Encode for the upstream. Form bodies carry only flat values; nested JSON values are sent
    /// as their JSON text, which is what a form-only server would have to be sent anyway.
    pub fn encode(&self, format: BodyFormat) -> Vec<u8> {
        match format {
            BodyFormat::Json => serde_json::to_vec(&self.values).expect("a JSON map serialises"),
            BodyFormat::Form => {
                let mut s = form_urlencoded::Serializer::new(String::new());
                for (k, v) in &self.values {
                    match v {
                        Value::String(x) => s.append_pair(k, x),
                        Value::Null => s.append_pair(k, ""),
                        other => s.append_pair(k, &other.to_string()),
                    };
                }
                s.finish().into_bytes()
            }
        }
    }
}

/// A request header as text (`None` when absent or not visible ASCII).
pub fn header(req: &pingora::http::RequestHeader, name: &str) -> Option<String> {
    req.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
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
/// `hooks::credentials_exchange`.)
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

/// One `application/x-www-form-urlencoded` component: `+` is a space, `%XX` a byte; a `%` not
/// followed by two hex digits stays as it is (as the WHATWG URL parser leaves it).
pub fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && hex(bytes[i + 1]).is_some()
                && hex(bytes[i + 2]).is_some() =>
            {
                out.push(hex(bytes[i + 1]).unwrap() << 4 | hex(bytes[i + 2]).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};

    #[test]
    fn form_and_json_parse_to_the_same_parameters() {
        let form = Params::parse(
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            b"grant_type=client_credentials&audience=https%3A%2F%2Fapi&scope=a+b",
        )
        .unwrap();
        let json = Params::parse(
            Some("application/json"),
            br#"{"grant_type":"client_credentials","audience":"https://api","scope":"a b"}"#,
        )
        .unwrap();
        assert_eq!(form.values, json.values);
        assert_eq!(form.format, BodyFormat::Form);
        assert_eq!(json.format, BodyFormat::Json);
        assert_eq!(json.get("audience").as_deref(), Some("https://api"));
    }

    #[test]
    fn missing_content_type_is_sniffed() {
        assert_eq!(
            Params::parse(None, b" {\"a\":1}").unwrap().format,
            BodyFormat::Json
        );
        assert_eq!(
            Params::parse(None, b"a=1").unwrap().format,
            BodyFormat::Form
        );
    }

    #[test]
    fn bad_bodies_are_invalid_requests() {
        for (ct, body) in [
            (Some("application/json"), &b"{nope"[..]),
            (Some("application/json"), b"[1,2]"),
            (Some("text/plain"), b"a=1"),
            (Some("application/x-www-form-urlencoded"), b"a=1&a=2"),
        ] {
            let e = Params::parse(ct, body).unwrap_err();
            assert_eq!((e.status, e.error), (400, "invalid_request"), "{ct:?} {e}");
        }
    }

    #[test]
    fn encodes_json_as_form_and_back() {
        let p = Params::parse(
            Some("application/json"),
            br#"{"grant_type":"client_credentials","resource":"https://api/","n":5}"#,
        )
        .unwrap();
        let form = String::from_utf8(p.encode(BodyFormat::Form)).unwrap();
        assert_eq!(
            form,
            "grant_type=client_credentials&resource=https%3A%2F%2Fapi%2F&n=5"
        );
        let back =
            Params::parse(Some("application/x-www-form-urlencoded"), form.as_bytes()).unwrap();
        assert_eq!(back.get("resource").as_deref(), Some("https://api/"));
    }

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
    fn form_decode_leaves_broken_escapes() {
        assert_eq!(form_decode("a+b%20c%2"), "a b c%2");
        assert_eq!(form_decode("%zz%41"), "%zzA");
        assert_eq!(form_decode("%"), "%");
    }
}
