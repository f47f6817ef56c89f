//! `[admin]`: the management API's listener, its certificate, its bearer tokens and their
//! scopes, its rate limit, and where secrets set through it are stored.
//!
//! Owns: the section's shape, defaults and validation (addresses, scope names), and the fact that
//! all of it needs a restart (the listener, its certificate and its tokens are set up once at
//! start). Must not: read a token's value (the API does, through [`super::secrets::read_secret`]),
//! open a socket, or read a certificate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::secrets::SecretSource;
use super::{keep, Validator};

/// Every scope a `[[admin.token]]` may hold: Auth0's hook scopes, and hookgate's own for run
/// records and the outbox.
pub const SCOPES: [&str; 7] = [
    "read:hooks",
    "create:hooks",
    "update:hooks",
    "delete:hooks",
    "read:logs",
    "read:outbox",
    "update:outbox",
];

/// The environment variable that overrides `[admin] api_listen`.
pub const ENV_API_LISTEN: &str = "HOOKGATE_API_LISTEN";

/// `[admin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The management API's address (HTTPS). Default `127.0.0.1:9443`: loopback, as the admin
    /// listener.
    pub api_listen: String,
    /// PEM certificate chain and private key of the API. Both absent: a self-signed certificate
    /// for `localhost` and `127.0.0.1` is made on first start and kept in `.hookgate/` beside
    /// the configuration file. Relative to the configuration file's folder.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Where secrets set through the API are written, one file per secret
    /// (`<secrets_dir>/<hook id>/<NAME>`). Relative to the configuration file's folder.
    /// Default `secrets`.
    pub secrets_dir: PathBuf,
    /// Requests per second one token may make on average. Default 50.
    pub rate_limit_per_sec: u32,
    /// Requests one token may make in a burst. Default 200.
    pub rate_limit_burst: u32,
    /// `[[admin.token]]`: bearer tokens of the API. None: the API is not started.
    pub token: Vec<TokenConfig>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            api_listen: "127.0.0.1:9443".into(),
            tls_cert: None,
            tls_key: None,
            secrets_dir: PathBuf::from("secrets"),
            rate_limit_per_sec: 50,
            rate_limit_burst: 200,
            token: Vec::new(),
        }
    }
}

/// `[[admin.token]]`: one bearer token and what it may do.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Names the token in the log (never its value).
    pub name: String,
    /// `{ env = "VAR" }` or `{ file = "path" }`.
    pub token: SecretSource,
    /// Any of [`SCOPES`].
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// `[admin]` as validated: the address parsed, paths resolved against the configuration's folder.
#[derive(Debug, Clone)]
pub struct Admin {
    pub api_listen: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub secrets_dir: PathBuf,
    pub rate_limit_per_sec: u32,
    pub rate_limit_burst: u32,
    pub tokens: Vec<TokenConfig>,
}

impl Default for Admin {
    fn default() -> Self {
        let raw = AdminConfig::default();
        Admin {
            api_listen: raw.api_listen.parse().expect("the default address parses"),
            tls_cert: None,
            tls_key: None,
            secrets_dir: raw.secrets_dir,
            rate_limit_per_sec: raw.rate_limit_per_sec,
            rate_limit_burst: raw.rate_limit_burst,
            tokens: Vec::new(),
        }
    }
}

impl Admin {
    /// All of `[admin]` is read once at start: the listener, its certificate, its tokens.
    pub fn pin_boot(&mut self, running: &Self, changed: &mut Vec<String>) {
        keep(changed, "admin", self, running);
    }
}

impl Validator<'_> {
    pub(super) fn admin(
        &mut self,
        raw: Option<Spanned<AdminConfig>>,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Admin {
        let (span, raw) = match raw {
            None => (0..0, AdminConfig::default()),
            Some(s) => (s.span(), s.into_inner()),
        };
        let (listen_text, key) = match env(ENV_API_LISTEN) {
            Some(v) => (v, format!("${ENV_API_LISTEN}")),
            None => (raw.api_listen.clone(), "admin.api_listen".to_string()),
        };
        let api_listen = match listen_text.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                self.error(
                    span.clone(),
                    key,
                    format!("`{listen_text}` is not an address (expected e.g. \"127.0.0.1:9443\")"),
                );
                Admin::default().api_listen
            }
        };
        if raw.tls_cert.is_some() != raw.tls_key.is_some() {
            self.error(
                span.clone(),
                "admin.tls_cert",
                "set both tls_cert and tls_key, or neither (a self-signed certificate is made then)",
            );
        }
        if raw.rate_limit_per_sec == 0 || raw.rate_limit_burst == 0 {
            self.error(
                span.clone(),
                "admin.rate_limit_per_sec",
                "rate_limit_per_sec and rate_limit_burst must be at least 1",
            );
        }
        for (i, t) in raw.token.iter().enumerate() {
            if t.name.trim().is_empty() {
                self.error(
                    span.clone(),
                    format!("admin.token[{i}].name"),
                    "a token needs a name",
                );
            }
            for s in &t.scopes {
                if !SCOPES.contains(&s.as_str()) {
                    self.error(
                        span.clone(),
                        format!("admin.token[{i}].scopes"),
                        format!(
                            "unknown scope `{s}`; expected any of: {}",
                            SCOPES.join(", ")
                        ),
                    );
                }
            }
        }
        Admin {
            api_listen,
            tls_cert: raw.tls_cert.map(|p| base.join(p)),
            tls_key: raw.tls_key.map(|p| base.join(p)),
            secrets_dir: raw.secrets_dir,
            rate_limit_per_sec: raw.rate_limit_per_sec,
            rate_limit_burst: raw.rate_limit_burst,
            tokens: raw.token,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{parse, MINIMAL};

    #[test]
    fn admin_defaults_to_loopback_without_tokens() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.admin.api_listen, "127.0.0.1:9443".parse().unwrap());
        assert!(c.admin.tokens.is_empty());
        assert_eq!(c.admin.secrets_dir, std::path::Path::new("secrets"));
    }

    #[test]
    fn tokens_scopes_and_certificate_are_checked() {
        let c = parse(&format!(
            "{MINIMAL}[admin]\napi_listen = \"127.0.0.1:1\"\n[[admin.token]]\nname = \"ci\"\n\
             token = {{ env = \"T\" }}\nscopes = [\"read:hooks\"]\n"
        ))
        .unwrap();
        assert_eq!(c.admin.tokens[0].scopes, ["read:hooks"]);
        let e = parse(&format!(
            "{MINIMAL}[admin]\ntls_cert = \"c.pem\"\n[[admin.token]]\nname = \"ci\"\n\
             token = {{ env = \"T\" }}\nscopes = [\"read:hook\"]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("admin.tls_cert"), "{e}");
        assert!(e.contains("unknown scope `read:hook`"), "{e}");
    }
}
