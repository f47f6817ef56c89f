//! The request target, normalised once, before routing.
//!
//! Owns: splitting a raw request-target (origin-, absolute- or asterisk-form) into its canonical
//! path (the spelling routes share: `crate::config::path`, which says why) and its query.
//! Must not: know routes, methods or what a refusal looks like on the wire (`super::routing`
//! decides that).

use crate::config::path::raw_pchar;
use crate::config::path::{normalize, Refusal, Target};

/// Split a raw request-target (as received) and normalise its path. `Ok(None)` for the
/// asterisk-form `*` (`OPTIONS *`), which names no path.
pub fn parse_target(raw: &[u8]) -> Result<Option<Target>, Refusal> {
    let raw = std::str::from_utf8(raw).map_err(|_| Refusal::NotUtf8)?;
    if raw == "*" {
        return Ok(None);
    }
    // A fragment is never part of a request-target; servers that see one cut it off.
    let raw = raw.split('#').next().unwrap_or("");
    let path_and_query = if raw.starts_with('/') {
        raw
    } else {
        // Absolute-form (RFC 9112 §3.2.2): route by its path, whatever the authority says.
        let lower = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
        let rest = if lower.starts_with("http://") {
            &raw[7..]
        } else if lower.starts_with("https://") {
            &raw[8..]
        } else {
            return Err(Refusal::Form);
        };
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..end];
        // User information is deprecated (RFC 9110 §4.2.4) and only confuses who the host is.
        if authority.is_empty() || authority.contains('@') {
            return Err(Refusal::Form);
        }
        &rest[end..]
    };
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(escape_query(q))),
        None => (path_and_query, None),
    };
    let (path, trailing_slash) = normalize(if path.is_empty() { "/" } else { path })?;
    Ok(Some(Target {
        path,
        trailing_slash,
        query,
    }))
}

/// A query as received, with the bytes that may not stand raw in one escaped (as in a path);
/// its escapes, `?` and `/` stay as they are.
fn escape_query(q: &str) -> String {
    if q.bytes()
        .all(|b| raw_pchar(b) || matches!(b, b'%' | b'/' | b'?' | b';'))
    {
        return q.to_string();
    }
    let mut out = String::with_capacity(q.len() + 8);
    for b in q.bytes() {
        if raw_pchar(b) || matches!(b, b'%' | b'/' | b'?' | b';') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_canonical_path_and_query() {
        let t = |raw: &str| parse_target(raw.as_bytes());
        let target = |path: &str, trailing_slash: bool, query: Option<&str>| {
            Ok(Some(Target {
                path: path.into(),
                trailing_slash,
                query: query.map(str::to_string),
            }))
        };
        assert_eq!(
            t("/oauth/token?a=%2F&b"),
            target("/oauth/token", false, Some("a=%2F&b"))
        );
        assert_eq!(t("/oauth/token#frag"), target("/oauth/token", false, None));
        assert_eq!(
            t("http://idp.example/oauth/token"),
            target("/oauth/token", false, None)
        );
        assert_eq!(
            t("HTTPS://idp.example:8443/oauth/./token/?x=1"),
            target("/oauth/token", true, Some("x=1"))
        );
        assert_eq!(t("http://idp.example"), target("/", false, None));
        assert_eq!(t("http://idp.example?x"), target("/", false, Some("x")));
        assert_eq!(t("*"), Ok(None));
        assert_eq!(
            t("/p?q=caf\u{e9} x&r=/a?b;c%20"),
            target("/p", false, Some("q=caf%C3%A9%20x&r=/a?b;c%20"))
        );
        for bad in [
            "idp.example:443",
            "token",
            "foo:bar://host/token",
            "http:///token",
            "http://u@idp/token",
        ] {
            assert_eq!(t(bad), Err(Refusal::Form), "{bad}");
        }
        assert_eq!(parse_target(b"/a\xff"), Err(Refusal::NotUtf8));
    }

    #[test]
    fn forwarding_keeps_the_trailing_slash_and_query() {
        let t = parse_target(b"/a/./b/?q=1").unwrap().unwrap();
        assert_eq!(t.forward(&t.path), "/a/b/?q=1");
        assert_eq!(t.forward("/"), "/?q=1");
    }
}
