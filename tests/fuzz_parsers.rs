//! Property-based fuzzing of the request parsers every hooked request goes through
//! (`hookgate::wire`): bodies, HTTP Basic credentials, `Accept-Language`.
//!
//! Pinned: arbitrary bytes never panic a parser (a bad request gets an OAuth error, never a
//! crash); a parameter map survives encoding to a form or JSON body and parsing back; any
//! id/secret pair, form-encoded as RFC 6749 §2.3.1 says, comes back from every Basic spelling
//! servers accept.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hookgate::config::BodyFormat;
use hookgate::points::Shape;
use hookgate::proxy::respond::render;
use hookgate::wire::headers::{basic_credentials, bearer_claims, request_language};
use hookgate::wire::params::{form_decode, Params};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/json".to_string())),
        Just(Some(
            "application/x-www-form-urlencoded; charset=utf-8".to_string()
        )),
        Just(Some("application/jwt+json".to_string())),
        any::<String>().prop_map(Some),
    ]
}

/// Bytes that look like a body often enough to reach deep into the parsers.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<Vec<u8>>(),
        "[a-z_\\[\\]%.=&+0-9A-F]{0,64}".prop_map(String::into_bytes),
        "\\{\"[a-z]{0,8}\":(\"[^\"]{0,8}\"|[0-9]{1,4}|\\[\\]|\\{\\}|null)\\}?"
            .prop_map(String::into_bytes),
    ]
}

fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn body_parsing_never_panics(ct in content_type(), body in body()) {
        match Params::parse(ct.as_deref(), &body) {
            Ok(p) => {
                // Whatever parsed can be encoded again in both shapes.
                let _ = p.encode(BodyFormat::Form);
                let _ = p.encode(BodyFormat::Json);
            }
            Err(e) => {
                let e = render(&e.into(), Shape::OAuth);
                prop_assert_eq!((e.status, e.error), (400, "invalid_request"))
            }
        }
    }

    #[test]
    fn header_parsers_never_panic(value in any::<String>()) {
        let _ = basic_credentials(Some(&value));
        let _ = basic_credentials(Some(&format!("Basic {value}")));
        let _ = form_decode(&value);
        let _ = bearer_claims(Some(&value));
        let _ = bearer_claims(Some(&format!("Bearer a.{value}.c")));
        if let Some(lang) = request_language(Some(&value)) {
            prop_assert!(!lang.is_empty() && !lang.contains([',', ';']));
            prop_assert_eq!(lang.to_ascii_lowercase(), lang);
        }
    }

    #[test]
    fn parameters_survive_a_form_or_json_round_trip(
        pairs in proptest::collection::btree_map(any::<String>(), any::<String>(), 0..8)
    ) {
        let values: Map<String, Value> =
            pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        for format in [BodyFormat::Form, BodyFormat::Json] {
            let p = Params { format, values: values.clone() };
            let back = Params::parse(Some(format.content_type()), &p.encode(format));
            prop_assert_eq!(back.ok().map(|b| b.values), Some(values.clone()), "{:?}", format);
        }
    }

    #[test]
    fn basic_credentials_come_back_from_every_accepted_spelling(
        id in any::<String>(),
        secret in any::<String>(),
        scheme in prop_oneof![Just("Basic"), Just("basic"), Just("BASIC")],
        gap in prop_oneof![Just(" "), Just("  "), Just("\t")],
        edge in prop_oneof![Just(""), Just(" "), Just("\t ")],
    ) {
        let raw = format!("{}:{}", form_encode(&id), form_encode(&secret));
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            let header = format!("{edge}{scheme}{gap}{}{edge}", engine.encode(&raw));
            prop_assert_eq!(
                basic_credentials(Some(&header)),
                Some((id.clone(), secret.clone())),
                "{}", header
            );
        }
    }

    #[test]
    fn bearer_claims_come_back_from_any_jwt_payload(
        claims in proptest::collection::btree_map(any::<String>(), any::<String>(), 0..6),
        padded in any::<bool>(),
    ) {
        let claims: Map<String, Value> =
            claims.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        let json = serde_json::to_vec(&claims).unwrap();
        let payload = if padded { URL_SAFE.encode(&json) } else { URL_SAFE_NO_PAD.encode(&json) };
        let header = format!("Bearer eyJhbGciOiJub25lIn0.{payload}.sig");
        prop_assert_eq!(bearer_claims(Some(&header)), claims);
    }
}
