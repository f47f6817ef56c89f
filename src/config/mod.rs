//! The configuration file (`hookgate.toml`) and the validated model the rest of hookgate uses.
//!
//! Owns: parsing TOML into [`Config`], rejecting unknown keys, environment overrides for the
//! addresses, and semantic validation. Every error names the file, the line and the key, so a
//! user can go straight to the mistake. Nothing outside this module reads the raw TOML.
//!
//! One file per section, each owning its shape, defaults, validation (a `Validator` method
//! called from [`Config::parse`], in file order) and which of its settings need a restart (a
//! `pin_boot` method next to the fields, called from [`Config::pin_boot`]): [`server`],
//! [`upstream`], [`routes`], [`clients`] (`[tenant]` and `[clients]`), [`token`], [`hooks`],
//! [`outbox`], [`runs`]. Shared by them: [`secrets`] (the one secret reader), [`path`] (the canonical
//! path spelling routes and requests share), [`trigger`] (the extensibility points' ids), `addr`
//! (`host:port` resolution). This file keeps what spans sections: the entry points, the error
//! type with its file:line:key, and the checks between sections.
//!
//! Must not: start anything, touch the network, read hook files, or import anything else of
//! hookgate: the configuration is the bottom layer, which every other module reads.

mod addr;
pub mod admin;
pub mod clients;
pub mod cluster;
pub mod hooks;
pub mod outbox;
pub mod path;
pub mod routes;
pub mod runs;
pub mod secrets;
pub mod server;
pub mod token;
pub mod trigger;
pub mod upstream;

use std::fmt;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub use clients::{ClientAuth, ClientConfig, TenantConfig};
pub use cluster::ClusterConfig;
pub use hooks::{
    is_module_name, EgressConfig, HookSettings, HooksConfig, ModuleSettings, OnError,
    RedirectTarget,
};
pub use outbox::OutboxConfig;
pub use routes::{
    BodyFormat, ChangePasswordMapping, Location, PathMatch, PhoneRoute, Route, RouteKind,
    SignupMapping, SignupRoute, TokenRoute, UpstreamBody,
};
pub use runs::RunsConfig;
pub use secrets::{Secret, SecretSource};
pub use server::{LogFormat, ServerConfig, ENV_ADMIN_LISTEN, ENV_LISTEN};
pub use token::{OpaqueTokens, TokenConfig, DEFAULT_DISCOVERY_PATHS};
pub use trigger::{Trigger, UnknownTrigger};
pub use upstream::{UpstreamConfig, ENV_UPSTREAM};

/// A configuration problem, located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no place in the file (e.g. an environment override).
    pub line: usize,
    pub column: usize,
    /// Dotted path of the key, e.g. `route[2].point`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.key,
                self.message
            )
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one configuration file.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The file's format. Private, as each section's raw part: the rest of hookgate sees only the
/// validated model.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: server::RawServer,
    upstream: Option<Spanned<upstream::RawUpstream>>,
    #[serde(default)]
    route: Vec<Spanned<routes::RawRoute>>,
    #[serde(default)]
    tenant: TenantConfig,
    #[serde(default)]
    clients: BTreeMap<String, ClientConfig>,
    token: Option<Spanned<token::RawToken>>,
    #[serde(default)]
    hooks: HooksConfig,
    outbox: Option<Spanned<OutboxConfig>>,
    admin: Option<Spanned<admin::AdminConfig>>,
    runs: Option<Spanned<RunsConfig>>,
    cluster: Option<Spanned<cluster::RawCluster>>,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from; relative paths in it are relative to its folder.
    pub path: PathBuf,
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub routes: Vec<Route>,
    pub tenant: TenantConfig,
    pub clients: BTreeMap<String, ClientConfig>,
    pub token: TokenConfig,
    /// `[hooks]`: where hook files live, the sandbox, and per-hook settings.
    pub hooks: HooksConfig,
    /// `[outbox]`: the durable queue of post-events; `path` is resolved against the file's folder.
    pub outbox: OutboxConfig,
    /// `[admin]`: the management API (listener, certificate, tokens, secrets folder).
    pub admin: admin::Admin,
    outbox_configured: bool,
    /// `[runs]`: the run records; `dir` is resolved against the file's folder.
    pub runs: RunsConfig,
    /// `[cluster]`: replicas sharing hooks and run records through Redis; `None`: one replica.
    pub cluster: Option<ClusterConfig>,
}

impl Config {
    /// Whether hookgate must open the outbox: a route produces post-events, or `[outbox]` is set
    /// (so a configuration without signup routes never creates the file).
    pub fn outbox_needed(&self) -> bool {
        self.outbox_configured
            || self
                .routes
                .iter()
                .any(|r| matches!(r.kind, RouteKind::Signup(_) | RouteKind::ChangePassword(_)))
    }

    /// The folder relative paths in the file are relative to.
    pub fn base_dir(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// Keep in this (new) configuration `running`'s value of every setting that needs a restart,
    /// because something was built from it once at start; the names of those that differed. Each
    /// section says which of its settings these are (`pin_boot`, next to its fields); routes,
    /// `[tenant]` and `[clients]` apply live whole.
    pub fn pin_boot(&mut self, running: &Config) -> Vec<String> {
        let mut changed = Vec::new();
        self.server.pin_boot(&running.server, &mut changed);
        self.upstream.pin_boot(&running.upstream, &mut changed);
        self.token.pin_boot(&running.token, &mut changed);
        self.outbox.pin_boot(&running.outbox, &mut changed);
        self.hooks.pin_boot(&running.hooks, &mut changed);
        self.admin.pin_boot(&running.admin, &mut changed);
        self.runs.pin_boot(&running.runs, &mut changed);
        ClusterConfig::pin_boot(&mut self.cluster, &running.cluster, &mut changed);
        changed
    }
}

/// Keep `running`'s value of one restart-only setting in `new`, noting `name` if they differed.
/// Compared through `Debug`: these types are plain data, and it keeps `PartialEq` out of the
/// configuration model for one comparison.
fn keep<T: fmt::Debug + Clone>(changed: &mut Vec<String>, name: &str, new: &mut T, running: &T) {
    if format!("{new:?}") != format!("{running:?}") {
        changed.push(name.to_string());
        *new = running.clone();
    }
}

impl Config {
    /// The first route that takes a request, in file order (`path` as received, normalised
    /// here). For tests and tools; the proxy routes with its own routing, which also guards
    /// hooked routes.
    pub fn route_for(&self, method: &str, path: &str) -> Option<&Route> {
        let (path, _) = path::normalize(path).ok()?;
        self.routes
            .iter()
            .find(|r| r.allows(method) && r.take(&path).is_some())
    }

    /// Read, parse and validate a configuration file, applying environment overrides.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                key: "(file)".into(),
                message: format!("cannot read the configuration: {e}"),
            }])
        })?;
        Config::parse(path, &text, &|k| std::env::var(k).ok())
    }

    /// Parse and validate configuration text; `env` answers environment look-ups (a parameter so
    /// tests need not touch the process environment).
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line,
                column,
                key: key_at(text, e.span().map(|s| s.start).unwrap_or(0)),
                message: e.message().trim().to_string(),
            }])
        })?;
        Validator {
            path,
            text,
            errors: Vec::new(),
        }
        .validate(raw, env)
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, column)
}

/// The key at (or whose line contains) an offset, with its table: `server.listen`, `route.point`.
fn key_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let key = if line.starts_with('[') {
        None
    } else {
        line.split('=').next().map(|k| k.trim().to_string())
    };
    match (table, key) {
        (Some(t), Some(k)) if !k.is_empty() => format!("{t}.{k}"),
        (Some(t), _) => t,
        (None, Some(k)) if !k.is_empty() => k,
        _ => "(document)".into(),
    }
}

struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Validator<'_> {
    fn error(
        &mut self,
        span: std::ops::Range<usize>,
        key: impl Into<String>,
        msg: impl Into<String>,
    ) {
        let (line, column) = if span.is_empty() && span.start == 0 {
            (0, 0)
        } else {
            line_col(self.text, span.start)
        };
        self.errors.push(ConfigError {
            file: self.path.to_path_buf(),
            line,
            column,
            key: key.into(),
            message: msg.into(),
        });
    }

    fn validate(
        mut self,
        raw: RawConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        // Section by section, in the order of the file's usual layout, so that the problems are
        // listed in that order.
        let server = self.server(raw.server, env);
        let upstream = self.upstream(raw.upstream, env);
        let routes = self.routes(raw.route, env);
        let base = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let token = self.token(raw.token, base);
        if token.signing_key.is_none()
            && routes
                .iter()
                .any(|r| matches!(r.kind, RouteKind::CredentialsExchange(_)))
        {
            self.error(
                0..0,
                "token.signing_key",
                "a credentials-exchange route re-signs tokens: add `[token]` with `signing_key = \"keys/hookgate.pem\"` \
                 (create one with `hookgate keys generate --out keys/hookgate.pem`)",
            );
        }

        let outbox_configured = raw.outbox.is_some();
        let outbox = self.outbox(raw.outbox, base);
        let admin = self.admin(raw.admin, base, env);
        let runs = self.runs(raw.runs, base);
        let cluster = self.cluster(raw.cluster, env);

        if !self.errors.is_empty() {
            return Err(ConfigErrors(self.errors));
        }
        Ok(Config {
            path: self.path.to_path_buf(),
            server: server.expect("validated above"),
            upstream: upstream.expect("validated above"),
            routes,
            tenant: raw.tenant,
            clients: raw.clients,
            token,
            hooks: raw.hooks,
            outbox,
            admin,
            outbox_configured,
            runs,
            cluster,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    pub(super) fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::parse(Path::new("test.toml"), text, &|_| None)
    }

    pub(super) const MINIMAL: &str = "[upstream]\naddress = \"127.0.0.1:3000\"\n";

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.server.listen, vec!["0.0.0.0:8080".parse().unwrap()]);
        assert_eq!(c.server.admin_listen, "127.0.0.1:9901".parse().unwrap());
        assert_eq!(c.server.grace_period, Duration::from_secs(10));
        assert_eq!(c.server.max_body_bytes, 65536);
        assert!(c.routes.is_empty());
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err =
            parse("[upstream]\naddress = \"127.0.0.1:3000\"\nconect_timeout_ms = 5\n").unwrap_err();
        let e = &err.0[0];
        assert_eq!(e.line, 3);
        assert_eq!(e.key, "upstream.conect_timeout_ms");
        assert!(
            e.message.contains("unknown field `conect_timeout_ms`"),
            "{}",
            e.message
        );
        assert!(err.to_string().starts_with("test.toml:3:"), "{err}");
    }

    #[test]
    fn all_semantic_errors_are_reported_together() {
        let text = "[server]\nlisten = [\"nowhere\"]\n[upstream]\naddress = \"127.0.0.1\"\n[[route]]\npath = \"relative\"\n";
        let err = parse(text).unwrap_err();
        let keys: Vec<_> = err.0.iter().map(|e| (e.key.as_str(), e.line)).collect();
        assert_eq!(
            keys,
            vec![
                ("server.listen", 2),
                ("upstream.address", 4),
                ("route[0].path", 6)
            ]
        );
    }

    #[test]
    fn missing_upstream_says_what_to_add() {
        let err = parse("").unwrap_err();
        assert!(err.to_string().contains("[upstream]"));
    }

    #[test]
    fn token_routes_need_a_signing_key_and_options_stay_on_token_routes() {
        let text = format!(
            "{MINIMAL}[[route]]\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\n\
             [[route]]\npath = \"/signup\"\npoint = \"pre-user-registration\"\naudience_param = \"resource\"\n"
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("route[1].audience_param"), "{err}");
        assert!(err.contains("token.signing_key"), "{err}");
        assert!(err.contains("hookgate keys generate"), "{err}");
    }

    #[test]
    fn token_options_and_client_registry() {
        let text = format!(
            "{MINIMAL}[[route]]\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\n\
             upstream_body = \"json\"\naudience_param = \"resource\"\n\
             [token]\nsigning_key = \"k.pem\"\nopaque_tokens = \"pass\"\n\
             [clients.m2m]\nname = \"Billing\"\nmetadata = {{ tier = \"gold\" }}\n[tenant]\nname = \"acme\"\n"
        );
        let c = Config::parse(Path::new("/etc/hg/h.toml"), &text, &|_| None).unwrap();
        let r = &c.routes[0];
        assert_eq!(r.kind.token().upstream_body, UpstreamBody::Json);
        assert_eq!(r.kind.token().audience_param, "resource");
        assert_eq!(
            c.token.signing_key.as_deref(),
            Some(Path::new("/etc/hg/k.pem"))
        );
        assert_eq!(c.token.opaque_tokens, OpaqueTokens::Pass);
        assert_eq!(c.clients["m2m"].metadata["tier"], "gold");
        assert_eq!(c.tenant.name, "acme");
    }

    #[test]
    fn client_authentication_and_default_audience_per_route_and_client() {
        let text = format!(
            "{MINIMAL}[[route]]\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\n\
             upstream_client_auth = \"basic\"\ndefault_audience = \"https://api.example.com/\"\n\
             [token]\nsigning_key = \"k.pem\"\n\
             [clients.m2m]\nupstream_client_auth = \"post\"\ndefault_audience = \"urn:billing\"\n\
             [clients.other]\nname = \"Other\"\n"
        );
        let c = parse(&text).unwrap();
        let r = &c.routes[0];
        assert_eq!(r.kind.token().upstream_client_auth, ClientAuth::Basic);
        assert_eq!(
            r.kind.token().default_audience.as_deref(),
            Some("https://api.example.com/")
        );
        assert_eq!(
            c.clients["m2m"].upstream_client_auth,
            Some(ClientAuth::Post)
        );
        assert_eq!(
            c.clients["m2m"].default_audience.as_deref(),
            Some("urn:billing")
        );
        assert_eq!(c.clients["other"].upstream_client_auth, None);

        let plain = parse(&format!(
            "{MINIMAL}[[route]]\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\n\
             [token]\nsigning_key = \"k.pem\"\n"
        ))
        .unwrap();
        assert_eq!(
            plain.routes[0].kind.token().upstream_client_auth,
            ClientAuth::Same
        );
        assert_eq!(plain.routes[0].kind.token().default_audience, None);

        let err = parse(&format!(
            "{MINIMAL}[[route]]\npath = \"/signup\"\npoint = \"pre-user-registration\"\n\
             upstream_client_auth = \"post\"\ndefault_audience = \"x\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("route[0].upstream_client_auth"), "{err}");
        assert!(err.contains("route[0].default_audience"), "{err}");
        let err = parse(&format!(
            "{MINIMAL}[[route]]\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\n\
             upstream_client_auth = \"jwt\"\n[token]\nsigning_key = \"k.pem\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("upstream_client_auth"), "{err}");
    }

    #[test]
    fn signup_mapping_defaults_to_auth0_and_stays_on_signup_routes() {
        let text = format!(
            "{MINIMAL}[[route]]\nname = \"signup\"\npath = \"/dbconnections/signup\"\npoint = \"pre-user-registration\"\n\
             [[route]]\npath = \"/legacy\"\npoint = \"pre-user-registration\"\nupstream_body = \"json\"\n\
             [route.signup]\nemail = \"mail\"\nuser_metadata = \"/profile/meta\"\nuser_id = \"/user/id\"\n\
             [outbox]\npath = \"data/o.redb\"\nmax_attempts = 3\n"
        );
        let c = Config::parse(Path::new("/etc/hg/h.toml"), &text, &|_| None).unwrap();
        assert_eq!(c.routes[0].kind.signup().signup, SignupMapping::default());
        assert_eq!(c.routes[0].kind.signup().upstream_body, UpstreamBody::Same);
        assert_eq!(c.routes[1].kind.signup().signup.email, "mail");
        assert_eq!(c.routes[1].kind.signup().signup.username, "username");
        assert_eq!(c.routes[1].kind.signup().upstream_body, UpstreamBody::Json);
        assert_eq!(c.outbox.path, Path::new("/etc/hg/data/o.redb"));
        assert_eq!(c.outbox.max_attempts, 3);
        assert!(c.outbox_needed());
        assert!(
            !parse(MINIMAL).unwrap().outbox_needed(),
            "no signup route, no outbox file"
        );

        let text = format!(
            "{MINIMAL}[[route]]\npath = \"/x\"\n[route.signup]\nemail = \"mail\"\n\
             [[route]]\npath = \"/s\"\npoint = \"pre-user-registration\"\n[route.signup]\nuser_id = \"id\"\nemial = \"x\"\n"
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("unknown field `emial`"), "{err}");
        let text = format!(
            "{MINIMAL}[[route]]\npath = \"/x\"\n[route.signup]\nemail = \"mail\"\n\
             [[route]]\npath = \"/s\"\npoint = \"pre-user-registration\"\n[route.signup]\nuser_id = \"id\"\n\
             [outbox]\nmax_attempts = 0\n"
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("route[0].signup"), "{err}");
        assert!(err.contains("route[1].signup.user_id"), "{err}");
        assert!(err.contains("outbox.max_attempts"), "{err}");
    }

    #[test]
    fn every_restart_only_setting_is_kept_and_named_by_its_key() {
        let running = parse(
            "[server]\nthreads = 1\n[upstream]\naddress = \"127.0.0.1:1\"\n[[route]]\npath = \"/a\"\n",
        )
        .unwrap();
        let text = "[server]\nlisten = [\"127.0.0.1:9090\"]\nadmin_listen = \"127.0.0.1:9902\"\nthreads = 3\n\
             grace_period_secs = 4\nlog_format = \"json\"\nwork_stealing = true\naccess_log = true\n\
             [upstream]\naddress = \"127.0.0.1:2\"\n[[route]]\npath = \"/b\"\n\
             [token]\nupstream_jwks_url = \"http://idp/jwks\"\n[outbox]\nbatch = 7\n\
             [hooks]\ndir = \"h2\"\nworkers = 2\nmemory_limit_mb = 128\nstack_limit_kb = 512\n\
             max_response_bytes = 1000\nmax_log_bytes = 1000\nqueue_timeout_ms = 5\ncalls_per_worker = 3\n\
             max_workers = 9\ncall_cpu_ms = 7\nmax_concurrency_per_hook = 2\nmax_requests_per_call = 4\nwatch = false\n\
             rescan_secs = 1\ndebounce_ms = 1\nnode_version = \"v12.22.12\"\ntimeout_ms = 5\n\
             [hooks.egress]\nmax_concurrent = 3\n";
        let mut new = parse(text).unwrap();
        let changed = new.pin_boot(&running);
        assert_eq!(
            changed,
            [
                "server.listen",
                "server.admin_listen",
                "server.threads",
                "server.grace_period_secs",
                "server.log_format",
                "server.work_stealing",
                "upstream",
                "token.upstream_jwks_url",
                "outbox",
                "hooks.dir",
                "hooks.workers",
                "hooks.memory_limit_mb",
                "hooks.stack_limit_kb",
                "hooks.max_response_bytes",
                "hooks.max_log_bytes",
                "hooks.queue_timeout_ms",
                "hooks.calls_per_worker",
                "hooks.max_workers",
                "hooks.call_cpu_ms",
                "hooks.max_concurrency_per_hook",
                "hooks.max_requests_per_call",
                "hooks.egress",
                "hooks.watch",
                "hooks.rescan_secs",
                "hooks.debounce_ms",
                "hooks.node_version",
            ]
        );
        for name in &changed {
            let (table, key) = name.split_once('.').unwrap_or((name, ""));
            assert!(text.contains(&format!("[{table}]")), "{name}");
            assert!(
                key.is_empty()
                    || text.contains(&format!("{key} ="))
                    || text.contains(&format!("[{name}]")),
                "{name}"
            );
        }
        assert!(new.pin_boot(&running).is_empty(), "all kept");
        assert_eq!(new.routes[0].path, "/b", "routes apply live");
        assert!(new.server.access_log, "access_log applies live");
        assert_eq!(new.hooks.timeout_ms, 5, "hook timeouts apply live");
    }

    #[test]
    fn environment_overrides_addresses() {
        let env = |k: &str| match k {
            ENV_UPSTREAM => Some("127.0.0.1:4000".to_string()),
            ENV_LISTEN => Some("127.0.0.1:1, 127.0.0.1:2".to_string()),
            ENV_ADMIN_LISTEN => Some("127.0.0.1:3".to_string()),
            _ => None,
        };
        let c = Config::parse(Path::new("t.toml"), MINIMAL, &env).unwrap();
        assert_eq!(c.upstream.socket_addr, "127.0.0.1:4000".parse().unwrap());
        assert_eq!(c.server.listen.len(), 2);
        assert_eq!(c.server.admin_listen.port(), 3);
    }

    #[test]
    fn bad_environment_override_names_the_variable() {
        let env = |k: &str| (k == ENV_UPSTREAM).then(|| "nope".to_string());
        let err = Config::parse(Path::new("t.toml"), MINIMAL, &env).unwrap_err();
        assert!(err.to_string().contains("$HOOKGATE_UPSTREAM"), "{err}");
    }
}
