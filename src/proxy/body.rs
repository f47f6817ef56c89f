//! The one request-body parser of the exchange routes: RFC 6749 form bodies and Auth0-style JSON
//! bodies into one ordered parameter map, and back out in whichever shape the upstream wants.
//!
//! Must not: interpret any parameter; that is the points' business.

use base64::engine::general_purpose::STANDARD as B64;
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

/// Client credentials from an HTTP Basic `Authorization` header (RFC 6749 §2.3.1: both parts
/// are form-urlencoded before base64). `None` when the header is absent or not Basic.
pub fn basic_credentials(authorization: Option<&str>) -> Option<(String, String)> {
    let value = authorization?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = B64.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(basic_credentials(Some("Basic !!!")), None);
        assert_eq!(basic_credentials(None), None);
    }
}
