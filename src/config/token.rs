//! `[token]`: hookgate's signing keys, the JWKS and discovery paths it answers, where the
//! identity server's keys are, and the public URL in the rewritten `jwks_uri`.
//!
//! Owns: the section's shape, defaults and validation (including what a public URL and a host
//! may look like, [`check_public_url`] and [`valid_host`]), and which of its settings need a
//! restart. Must not: read key files or fetch anything; the token module does, from this model.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{keep, path, Validator};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawToken {
    signing_key: Option<Spanned<PathBuf>>,
    #[serde(default)]
    previous_keys: Vec<Spanned<PathBuf>>,
    #[serde(default = "default_jwks_path")]
    jwks_path: String,
    /// The older, single-path spelling of `discovery_paths` (it replaces the OpenID default).
    discovery_path: Option<String>,
    discovery_paths: Option<Vec<String>>,
    upstream_jwks_url: Option<String>,
    public_url: Option<Spanned<String>>,
    #[serde(default)]
    trust_forwarded_headers: bool,
    #[serde(default)]
    opaque_tokens: OpaqueTokens,
}

fn default_jwks_path() -> String {
    "/.well-known/jwks.json".into()
}
/// The discovery documents hookgate rewrites by default: OpenID's and RFC 8414's.
pub const DEFAULT_DISCOVERY_PATHS: [&str; 2] = [
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
];

/// What to do with an opaque (non-JWT) upstream token when hooks would change it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpaqueTokens {
    /// Answer 500 `server_error`: the hooks' changes cannot be applied to an opaque token.
    #[default]
    Deny,
    /// Pass the upstream's answer through unchanged (with a log line).
    Pass,
}

/// `[token]`: hookgate's signing keys and where the upstream's are.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub signing_key: Option<PathBuf>,
    pub previous_keys: Vec<PathBuf>,
    pub jwks_path: String,
    /// Canonical paths of the discovery documents whose `jwks_uri` is rewritten; each also
    /// covers the paths under it (RFC 8414's `/.well-known/oauth-authorization-server/<issuer
    /// path>`). The first ones are also where the upstream's `jwks_uri` is looked up.
    pub discovery_paths: Vec<String>,
    /// Default: the `jwks_uri` of the upstream's discovery document.
    pub upstream_jwks_url: Option<String>,
    /// hookgate's public base URL (`https://id.example.com`, no trailing slash), for the
    /// rewritten `jwks_uri`. Default: see [`Self::trust_forwarded_headers`], then the request's
    /// (validated) `Host`, then the address the request arrived on.
    pub public_url: Option<String>,
    /// Whether the request's `X-Forwarded-Proto`/`X-Forwarded-Host` (validated: http or https,
    /// a well-formed host[:port]) build the public base URL when `public_url` is not set. Only
    /// behind a proxy that sets them: otherwise any client chooses the `jwks_uri` it is served.
    pub trust_forwarded_headers: bool,
    pub opaque_tokens: OpaqueTokens,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            signing_key: None,
            previous_keys: Vec::new(),
            jwks_path: default_jwks_path(),
            discovery_paths: DEFAULT_DISCOVERY_PATHS.map(str::to_string).to_vec(),
            upstream_jwks_url: None,
            public_url: None,
            trust_forwarded_headers: false,
            opaque_tokens: OpaqueTokens::Deny,
        }
    }
}

impl TokenConfig {
    /// Keep the running `upstream_jwks_url`: the upstream's JWKS cache is built once from it.
    /// The keys and the paths apply live.
    pub fn pin_boot(&mut self, running: &Self, changed: &mut Vec<String>) {
        keep(
            changed,
            "token.upstream_jwks_url",
            &mut self.upstream_jwks_url,
            &running.upstream_jwks_url,
        );
    }
}

/// Whether `text` is `host[:port]` as a URL's authority may hold it: a DNS name, an IPv4
/// address, or a bracketed IPv6 address; the port 1-65535. Nothing else (no user information,
/// path, spaces or other characters) can reach a URL hookgate builds.
pub fn valid_host(text: &str) -> bool {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    if !port_ok {
        return false;
    }
    if host.is_empty() {
        // Only a bracketed IPv6 address leaves no name to check.
        return text.starts_with('[');
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `token.public_url`: `http(s)://host[:port]` and an optional path, nothing else.
pub fn check_public_url(url: &str) -> std::result::Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return Err(format!(
            "`{url}` must start with http:// or https://, e.g. \"https://id.example.com\""
        ));
    };
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if !valid_host(host) {
        return Err(format!("`{host}` is not a host[:port]"));
    }
    if path.contains(['?', '#', '\\', ' ']) {
        return Err(format!("`{url}`: a base URL, without query or fragment"));
    }
    Ok(())
}

impl Validator<'_> {
    /// `[token]`; key paths are resolved against `base`, the configuration's folder.
    pub(super) fn token(&mut self, raw: Option<Spanned<RawToken>>, base: &Path) -> TokenConfig {
        match raw {
            None => TokenConfig::default(),
            Some(t) => {
                let t = t.into_inner();
                let mut canonical = |p: &str| {
                    if !p.starts_with('/') {
                        self.error(0..0, "token", format!("`{p}` must start with `/`"));
                        return p.to_string();
                    }
                    path::normalize(p).map(|(p, _)| p).unwrap_or_else(|why| {
                        self.error(0..0, "token", format!("`{p}`: {why}"));
                        p.to_string()
                    })
                };
                let jwks_path = canonical(&t.jwks_path);
                let mut listed: Vec<String> = match (&t.discovery_paths, &t.discovery_path) {
                    (Some(list), _) => list.clone(),
                    (None, Some(one)) => {
                        vec![one.clone(), DEFAULT_DISCOVERY_PATHS[1].to_string()]
                    }
                    (None, None) => DEFAULT_DISCOVERY_PATHS.map(str::to_string).to_vec(),
                };
                if let (Some(_), Some(one)) = (&t.discovery_paths, &t.discovery_path) {
                    listed.insert(0, one.clone());
                }
                let mut discovery_paths: Vec<String> = Vec::new();
                for p in listed {
                    let p = canonical(&p);
                    if !discovery_paths.iter().any(|d| d.eq_ignore_ascii_case(&p)) {
                        discovery_paths.push(p);
                    }
                }
                if discovery_paths.is_empty() && t.upstream_jwks_url.is_none() {
                    self.error(
                        0..0,
                        "token.discovery_paths",
                        "list at least one discovery document (e.g. \"/.well-known/openid-configuration\"), \
                         or set token.upstream_jwks_url: hookgate finds the identity server's keys through it",
                    );
                }
                if discovery_paths
                    .iter()
                    .any(|d| path::under(&jwks_path, d, false).is_some())
                {
                    self.error(
                        0..0,
                        "token.jwks_path",
                        format!("`{jwks_path}` lies under a discovery path: the JWKS and the discovery documents need paths of their own"),
                    );
                }
                let public_url = t.public_url.map(|u| {
                    let span = u.span();
                    let u = u.into_inner().trim_end_matches('/').to_string();
                    if let Err(why) = check_public_url(&u) {
                        self.error(span, "token.public_url", why);
                    }
                    u
                });
                TokenConfig {
                    signing_key: t.signing_key.map(|p| base.join(p.into_inner())),
                    previous_keys: t
                        .previous_keys
                        .into_iter()
                        .map(|p| base.join(p.into_inner()))
                        .collect(),
                    jwks_path,
                    discovery_paths,
                    upstream_jwks_url: t.upstream_jwks_url,
                    public_url,
                    trust_forwarded_headers: t.trust_forwarded_headers,
                    opaque_tokens: t.opaque_tokens,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse, MINIMAL};
    use super::*;

    #[test]
    fn hosts_are_names_addresses_and_ports_only() {
        for ok in [
            "idp.example.com",
            "idp.example.com:8443",
            "localhost",
            "127.0.0.1:8080",
            "[::1]",
            "[::1]:8080",
            "xn--bcher-kva.example.",
        ] {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in [
            "",
            "attacker.example/x",
            "attacker.example#",
            "user@idp.example",
            "idp.example:0",
            "idp.example:99999",
            "idp.example:",
            "idp example",
            "[::1",
            "[nope]:1",
            "[::1]x",
            "-idp.example",
            "idp..example",
            "javascript:alert(1)",
            "idp.example:80:80",
            "\u{e9}.example",
        ] {
            assert!(!valid_host(bad), "{bad}");
        }
    }

    #[test]
    fn discovery_documents_default_to_openid_and_rfc8414_and_are_a_list() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(
            c.token.discovery_paths,
            DEFAULT_DISCOVERY_PATHS.map(str::to_string).to_vec()
        );
        let c = parse(&format!(
            "{MINIMAL}[token]\ndiscovery_paths = [\"/realms/x/.well-known/openid-configuration/\", \"/.well-known/oauth-authorization-server\"]\n"
        ))
        .unwrap();
        assert_eq!(
            c.token.discovery_paths,
            vec![
                "/realms/x/.well-known/openid-configuration".to_string(),
                "/.well-known/oauth-authorization-server".to_string()
            ]
        );
        // The older single-path key replaces the OpenID default.
        let c = parse(&format!(
            "{MINIMAL}[token]\ndiscovery_path = \"/oidc/.well-known/openid-configuration\"\n"
        ))
        .unwrap();
        assert_eq!(
            c.token.discovery_paths,
            vec![
                "/oidc/.well-known/openid-configuration".to_string(),
                DEFAULT_DISCOVERY_PATHS[1].to_string()
            ]
        );
        let err = parse(&format!("{MINIMAL}[token]\ndiscovery_paths = []\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("token.discovery_paths"), "{err}");
        assert!(parse(&format!(
            "{MINIMAL}[token]\ndiscovery_paths = []\nupstream_jwks_url = \"http://idp/jwks\"\n"
        ))
        .is_ok());
        let err = parse(&format!(
            "{MINIMAL}[token]\njwks_path = \"/.well-known/oauth-authorization-server/jwks\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("token.jwks_path"), "{err}");
    }
}
