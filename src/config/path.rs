//! The canonical spelling of a path: the one spelling routes (in the file) and requests (on the
//! wire) are compared in.
//!
//! Servers disagree on what a path means: one decodes `%74` to `t`, one resolves `/./` and
//! `/../`, one ignores `;jsessionid=…` parameters, one folds `//` into `/`, one ignores case or a
//! trailing slash. A proxy that routes on the bytes it received while its upstream routes on a
//! cleaned-up spelling can be walked around: `/oauth/%74oken` misses hookgate's route and reaches
//! the upstream's token endpoint. So hookgate computes one canonical spelling, routes on it, and
//! sends the upstream that spelling, so that both sides decide on the same path. Spellings that
//! servers read in incompatible ways (an encoded `/` or `\`, a NUL, a raw `\`, a malformed
//! escape, a path that is not UTF-8) are refused instead of guessed.
//!
//! Owns: the canonical path ([`normalize`]), the normalised request-target ([`Target`]), why a
//! spelling is refused ([`Refusal`]), and comparing canonical paths (whole or segment-wise
//! prefix, with or without case). Pure functions only. Must not: read a raw request-target (the
//! proxy splits it, `parse_target`), know methods, or what a refusal looks like on the wire.

use std::borrow::Cow;
use std::fmt;

/// A request-target, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The canonical path: starts with `/`, has no empty, `.` or `..` segments, no `;`
    /// parameters, only the percent-escapes that must stay escaped (upper-case hex), and no
    /// trailing slash (the root is `/`).
    pub path: String,
    /// Whether the client's path ended with `/`. Routing ignores it; what is forwarded keeps it,
    /// because some servers (Django's `APPEND_SLASH`) tell `/x/` from `/x`.
    pub trailing_slash: bool,
    /// The query as received, without the `?`.
    pub query: Option<String>,
}

impl Target {
    /// Path and query for the upstream, from a (canonical) path: the client's trailing slash
    /// and query are kept.
    pub fn forward(&self, path: &str) -> String {
        let mut out = String::with_capacity(path.len() + 2);
        out.push_str(path);
        if self.trailing_slash && !path.ends_with('/') {
            out.push('/');
        }
        if let Some(q) = &self.query {
            out.push('?');
            out.push_str(q);
        }
        out
    }
}

/// Why a request-target is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `%2F`: one server reads a separator, another a character of a segment.
    EncodedSlash,
    /// `%5C`: Windows and some Java servers read it as a separator.
    EncodedBackslash,
    /// `%00`: C servers cut the path there.
    EncodedNul,
    /// A raw `\`: some servers read it as `/`.
    Backslash,
    /// `%` not followed by two hex digits: servers disagree on what it means.
    BadEscape,
    /// A path that is not UTF-8.
    NotUtf8,
    /// Not an origin-form (`/p`), absolute-form (`http://host/p`) or asterisk-form target.
    Form,
}

impl Refusal {
    pub fn description(self) -> &'static str {
        match self {
            Refusal::EncodedSlash => {
                "the path contains an encoded '/' (%2F), which servers read differently"
            }
            Refusal::EncodedBackslash => {
                "the path contains an encoded '\\' (%5C), which servers read differently"
            }
            Refusal::EncodedNul => "the path contains an encoded NUL (%00)",
            Refusal::Backslash => "the path contains a '\\', which some servers read as '/'",
            Refusal::BadEscape => "the path contains a '%' that is not followed by two hex digits",
            Refusal::NotUtf8 => "the request target is not UTF-8",
            Refusal::Form => "the request target must be a path (/...) or an http(s) URL",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// The canonical spelling of a path (see [`Target::path`]), and whether it ended with `/`.
///
/// In this order, per segment: a `;` parameter is cut (before decoding, so an encoded `%3B` is
/// data, as servers that strip parameters read it), escapes of unreserved characters
/// (RFC 3986 §2.3) are decoded, so that `%2e%2e` is a `..` segment, then empty and dot segments
/// are resolved. Every other escape stays, in upper-case hex.
pub fn normalize(path: &str) -> Result<(String, bool), Refusal> {
    // Most paths are already canonical: nothing to decode, cut or resolve.
    if already_canonical(path) {
        let trailing_slash = path.len() > 1 && path.ends_with('/');
        let end = path.len() - usize::from(trailing_slash);
        return Ok((path[..end].to_string(), trailing_slash));
    }
    normalize_in_full(path)
}

/// A path [`normalize`] would give back as it is (less a trailing slash): absolute, no empty,
/// `.` or `..` segment before the end, and no byte that is escaped, cut (`;`) or refused.
fn already_canonical(path: &str) -> bool {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    // One pass: each segment ends at a '/' or at the end of the path.
    let mut start = 1;
    for i in 1..=b.len() {
        if i < b.len() && b[i] != b'/' {
            if !raw_pchar(b[i]) {
                return false;
            }
            continue;
        }
        let segment = &b[start..i];
        if (segment.is_empty() && i < b.len()) || segment == b"." || segment == b".." {
            return false;
        }
        start = i + 1;
    }
    true
}

fn normalize_in_full(path: &str) -> Result<(String, bool), Refusal> {
    if path.contains('\\') {
        return Err(Refusal::Backslash);
    }
    let mut segments: Vec<Cow<str>> = Vec::new();
    let mut last_was_segment = false;
    for raw in path.split('/') {
        let raw = raw.split(';').next().unwrap_or("");
        let seg = decode_unreserved(raw)?;
        match seg.as_ref() {
            "" => last_was_segment = false,
            "." => last_was_segment = false,
            ".." => {
                segments.pop();
                last_was_segment = false;
            }
            _ => {
                segments.push(seg);
                last_was_segment = true;
            }
        }
    }
    // `/a/` and `/a/.` end with a slash; `/a` and `/a;x` do not.
    let trailing_slash = !segments.is_empty() && !last_was_segment;
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok((out, trailing_slash))
}

/// Whether `b` may stand unescaped in a path segment (RFC 3986 `pchar` less `%`, which is
/// handled apart, and `;`, which [`normalize`] cuts before this is asked).
pub fn raw_pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'='
                | b':'
                | b'@'
        )
}

fn decode_unreserved(seg: &str) -> Result<Cow<'_, str>, Refusal> {
    if seg.bytes().all(raw_pchar) {
        return Ok(Cow::Borrowed(seg));
    }
    let bytes = seg.as_bytes();
    let mut out = String::with_capacity(seg.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            // A byte that may not stand raw in a request-target (non-ASCII: the UTF-8 of an
            // IRI; a control; `"`, `<`, `{` and the like) is escaped, as RFC 3987 §3.1 maps an
            // IRI to a URI: the same path, in a spelling every HTTP parser accepts. Node's
            // llhttp answers a raw one with 400 and a reset.
            if raw_pchar(bytes[i]) {
                out.push(bytes[i] as char);
            } else {
                out.push_str(&format!("%{:02X}", bytes[i]));
            }
            i += 1;
            continue;
        }
        let hex = |b: u8| (b as char).to_digit(16);
        let (Some(hi), Some(lo)) = (
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) else {
            return Err(Refusal::BadEscape);
        };
        let b = (hi * 16 + lo) as u8;
        match b {
            b'/' => return Err(Refusal::EncodedSlash),
            b'\\' => return Err(Refusal::EncodedBackslash),
            0 => return Err(Refusal::EncodedNul),
            b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') => {
                out.push(b as char)
            }
            b => out.push_str(&format!("%{b:02X}")),
        }
        i += 3;
    }
    Ok(Cow::Owned(out))
}

/// Whether two canonical paths are the same path.
pub fn same(path: &str, key: &str, case_sensitive: bool) -> bool {
    if case_sensitive {
        path == key
    } else {
        path.eq_ignore_ascii_case(key)
    }
}

/// If `path` is `prefix` or lies under it, segment-wise (`/api` covers `/api` and `/api/x`, not
/// `/apix`), what follows the prefix: `""` or `/…`. Both are canonical paths.
pub fn under<'a>(path: &'a str, prefix: &str, case_sensitive: bool) -> Option<&'a str> {
    if prefix == "/" {
        return Some(if path == "/" { "" } else { path });
    }
    let head = path.as_bytes().get(..prefix.len())?;
    let equal = if case_sensitive {
        head == prefix.as_bytes()
    } else {
        head.eq_ignore_ascii_case(prefix.as_bytes())
    };
    let rest = path.get(prefix.len()..)?;
    (equal && (rest.is_empty() || rest.starts_with('/'))).then_some(rest)
}

/// A canonical prefix followed by what [`under`] returned.
pub fn join(prefix: &str, rest: &str) -> String {
    match (prefix, rest) {
        ("/", "") => "/".to_string(),
        ("/", rest) => rest.to_string(),
        (prefix, rest) => format!("{prefix}{rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The shortcut for canonical paths gives what the full normalisation gives.
        #[test]
        fn the_canonical_shortcut_agrees_with_the_full_normalisation(
            path in "[/a.;%2e\\\\]{0,12}"
        ) {
            proptest::prop_assert_eq!(normalize(&path), normalize_in_full(&path));
        }
    }

    #[test]
    fn spellings_of_one_path_normalise_to_it() {
        for (raw, path, trailing) in [
            ("/oauth/token", "/oauth/token", false),
            ("/oauth/token/", "/oauth/token", true),
            ("//oauth/token", "/oauth/token", false),
            ("/oauth//token", "/oauth/token", false),
            ("/oauth/./token", "/oauth/token", false),
            ("/oauth/x/../token", "/oauth/token", false),
            ("/../../oauth/token", "/oauth/token", false),
            ("/oauth/%74oken", "/oauth/token", false),
            ("/%6F%61%75%74%68/%74%6f%6b%65%6e", "/oauth/token", false),
            ("/oauth/%2e/token", "/oauth/token", false),
            ("/oauth/x/%2E%2e/token", "/oauth/token", false),
            ("/oauth/x/.%2e/token", "/oauth/token", false),
            ("/oauth/token;x", "/oauth/token", false),
            ("/oauth/token;jsessionid=1/", "/oauth/token", true),
            ("/oauth;a=b/token", "/oauth/token", false),
            ("/oauth/x/..;/token", "/oauth/token", false),
            ("/oauth/;/token", "/oauth/token", false),
            ("/oauth/token/.", "/oauth/token", true),
            ("/oauth/token/x/..", "/oauth/token", true),
            // Case is kept: matching decides whether it matters.
            ("/OAuth/TOKEN", "/OAuth/TOKEN", false),
            ("/", "/", false),
            ("", "/", false),
            ("//", "/", false),
            ("/..", "/", false),
            // Escapes that are data stay escaped, in one spelling.
            ("/a%20b", "/a%20b", false),
            ("/a%3bb", "/a%3Bb", false),
            ("/a%252e", "/a%252e", false),
            ("/caf%C3%A9", "/caf%C3%A9", false),
            // A raw byte that may not stand in a request-target is escaped (RFC 3987 §3.1).
            ("/café", "/caf%C3%A9", false),
            ("/to\u{212A}en", "/to%E2%84%AAen", false),
            ("/a b\"<>^`{|}", "/a%20b%22%3C%3E%5E%60%7B%7C%7D", false),
            ("/a\u{7f}\t", "/a%7F%09", false),
            ("/!$&'()*+,=:@", "/!$&'()*+,=:@", false),
            ("/...", "/...", false),
        ] {
            assert_eq!(normalize(raw), Ok((path.to_string(), trailing)), "{raw:?}");
        }
    }

    #[test]
    fn ambiguous_spellings_are_refused() {
        for (raw, why) in [
            ("/oauth%2Ftoken", Refusal::EncodedSlash),
            ("/oauth%2ftoken", Refusal::EncodedSlash),
            ("/oauth%5Ctoken", Refusal::EncodedBackslash),
            ("/oauth\\token", Refusal::Backslash),
            ("/oauth/token%00", Refusal::EncodedNul),
            ("/oauth/token%", Refusal::BadEscape),
            ("/oauth/token%4", Refusal::BadEscape),
            ("/oauth/%zztoken", Refusal::BadEscape),
            // A parameter does not hide a refusal: it is cut after the check of `\`.
            ("/oauth/token;\\", Refusal::Backslash),
        ] {
            assert_eq!(normalize(raw), Err(why), "{raw:?}");
        }
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert_eq!(under("/api", "/api", true), Some(""));
        assert_eq!(under("/api/x/y", "/api", true), Some("/x/y"));
        assert_eq!(under("/apix", "/api", true), None);
        assert_eq!(under("/API/x", "/api", true), None);
        assert_eq!(under("/API/x", "/api", false), Some("/x"));
        assert_eq!(under("/x", "/", true), Some("/x"));
        assert_eq!(under("/", "/", true), Some(""));
        assert_eq!(under("/a", "/api", false), None);
        assert_eq!(join("/v2", "/x"), "/v2/x");
        assert_eq!(join("/", "/x"), "/x");
        assert_eq!(join("/", ""), "/");
        assert!(same("/OAuth/Token", "/oauth/token", false));
        assert!(!same("/OAuth/Token", "/oauth/token", true));
    }
}
