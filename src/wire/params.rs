//! The one request-body parser of the exchange routes: RFC 6749 form bodies and Auth0-style JSON
//! bodies into one ordered parameter map, and back out in whichever shape the upstream wants;
//! `application/x-www-form-urlencoded` components; locations in a body (a name or a JSON pointer).
//!
//! Must not: interpret any parameter (that is the points' business), or know how a bad body is
//! answered: it says what is wrong ([`BadRequest`]) and the caller decides.

use serde_json::{Map, Value};

/// A body that cannot be read as parameters; the text says why, for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest(pub String);

impl std::fmt::Display for BadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

use crate::config::BodyFormat;

/// Request parameters in their original order, with the shape they arrived in.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub format: BodyFormat,
    pub values: Map<String, Value>,
}

impl Params {
    /// Parse by `Content-Type`; without one, a body that starts with `{` is JSON, any other a form.
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Params, BadRequest> {
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
                return Err(BadRequest(format!(
                    "unsupported content type `{other}`: send application/x-www-form-urlencoded or application/json"
                )))
            }
        };
        let values = match format {
            BodyFormat::Json => match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err(BadRequest("the JSON body must be an object".into())),
                Err(e) => return Err(BadRequest(format!("malformed JSON body: {e}"))),
            },
            BodyFormat::Form => {
                let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
                    .map_err(|e| BadRequest(format!("malformed form body: {e}")))?;
                let mut m = Map::new();
                for (k, v) in pairs {
                    // RFC 6749 §3.2: request parameters must not be included more than once.
                    if m.insert(k.clone(), Value::String(v)).is_some() {
                        return Err(BadRequest(format!("the parameter `{k}` is repeated")));
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

/// A location in a body: a top-level name, or a JSON pointer (`/user/email`).
pub fn get_at<'a>(values: &'a Map<String, Value>, loc: &str) -> Option<&'a Value> {
    match loc.strip_prefix('/') {
        None => values.get(loc),
        Some(_) => {
            let (first, rest) = split_pointer(loc);
            let v = values.get(&first)?;
            if rest.is_empty() {
                Some(v)
            } else {
                v.pointer(&rest)
            }
        }
    }
}

/// Remove the value at a location (see [`get_at`]) and return it.
pub fn take_at(values: &mut Map<String, Value>, loc: &str) -> Option<Value> {
    if !loc.starts_with('/') {
        return values.remove(loc);
    }
    let (parent, last) = loc.rsplit_once('/')?;
    let last = unescape(last);
    if parent.is_empty() {
        return values.remove(&last);
    }
    let (first, rest) = split_pointer(parent);
    let mut v = values.get_mut(&first)?;
    if !rest.is_empty() {
        v = v.pointer_mut(&rest)?;
    }
    v.as_object_mut()?.remove(&last)
}

/// Set a value, creating the objects on the way (a non-object on the way is replaced).
pub fn set_at(values: &mut Map<String, Value>, loc: &str, value: Value) {
    if !loc.starts_with('/') {
        values.insert(loc.to_string(), value);
        return;
    }
    let parts: Vec<String> = loc[1..].split('/').map(unescape).collect();
    let mut here = values;
    for part in &parts[..parts.len() - 1] {
        let next = here
            .entry(part.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        here = next.as_object_mut().expect("made an object above");
    }
    here.insert(parts[parts.len() - 1].clone(), value);
}

/// `/a/b/c` → (`a`, `/b/c`).
fn split_pointer(loc: &str) -> (String, String) {
    let body = &loc[1..];
    match body.split_once('/') {
        Some((first, rest)) => (unescape(first), format!("/{rest}")),
        None => (unescape(body), String::new()),
    }
}

/// One JSON-pointer reference token, unescaped (`~1` is `/`, `~0` is `~`).
pub fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
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
            let e = crate::proxy::respond::render(&e.into(), crate::points::Shape::OAuth);
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
    fn locations_are_names_or_pointers() {
        let mut m = serde_json::json!({"user": {"mail": "a@b", "x": 1}, "email": "top"})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(get_at(&m, "email"), Some(&serde_json::json!("top")));
        assert_eq!(get_at(&m, "/user/mail"), Some(&serde_json::json!("a@b")));
        assert_eq!(get_at(&m, "/user/nope"), None);
        assert_eq!(take_at(&mut m, "/user/x"), Some(serde_json::json!(1)));
        set_at(&mut m, "/profile/meta", serde_json::json!({"k": 1}));
        set_at(&mut m, "flat", serde_json::json!(2));
        assert_eq!(
            Value::Object(m),
            serde_json::json!({"user": {"mail": "a@b"}, "email": "top", "profile": {"meta": {"k": 1}}, "flat": 2})
        );
    }

    #[test]
    fn form_decode_leaves_broken_escapes() {
        assert_eq!(form_decode("a+b%20c%2"), "a b c%2");
        assert_eq!(form_decode("%zz%41"), "%zzA");
        assert_eq!(form_decode("%"), "%");
    }
}
