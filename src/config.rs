//! The configuration file (`hookgate.toml`) and the validated model the rest of hookgate uses.
//!
//! Owns: parsing TOML into [`Config`], rejecting unknown keys, environment overrides for the
//! addresses, and semantic validation. Every error names the file, the line and the key, so a
//! user can go straight to the mistake. Nothing outside this module reads the raw TOML.
//!
//! Must not: start anything, touch the network, or read hook files.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::hooks::{HooksConfig, SecretSource};
use crate::outbox::OutboxConfig;
use crate::proxy::body::BodyFormat;

/// Environment variables that override the file, so one file serves in containers.
pub const ENV_UPSTREAM: &str = "HOOKGATE_UPSTREAM";
pub const ENV_LISTEN: &str = "HOOKGATE_LISTEN";
pub const ENV_ADMIN_LISTEN: &str = "HOOKGATE_ADMIN_LISTEN";

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

// ---------------------------------------------------------------------------------------------
// The file's format. Private: the rest of hookgate sees only the validated model below.
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    upstream: Option<Spanned<RawUpstream>>,
    #[serde(default)]
    route: Vec<Spanned<RawRoute>>,
    #[serde(default)]
    tenant: TenantConfig,
    #[serde(default)]
    clients: BTreeMap<String, ClientConfig>,
    token: Option<Spanned<RawToken>>,
    #[serde(default)]
    hooks: HooksConfig,
    outbox: Option<Spanned<OutboxConfig>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    #[serde(default = "default_listen")]
    listen: Vec<Spanned<String>>,
    #[serde(default = "default_admin_listen")]
    admin_listen: Spanned<String>,
    threads: Option<usize>,
    #[serde(default = "default_max_body")]
    max_body_bytes: usize,
    #[serde(default = "default_body_timeout")]
    body_read_timeout_ms: u64,
    #[serde(default = "default_header_timeout")]
    header_read_timeout_ms: u64,
    #[serde(default = "default_max_header")]
    max_header_bytes: usize,
    #[serde(default = "default_grace")]
    grace_period_secs: u64,
    #[serde(default)]
    log_format: LogFormat,
    #[serde(default)]
    access_log: bool,
    #[serde(default)]
    work_stealing: bool,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: default_listen(),
            admin_listen: default_admin_listen(),
            threads: None,
            max_body_bytes: default_max_body(),
            body_read_timeout_ms: default_body_timeout(),
            header_read_timeout_ms: default_header_timeout(),
            max_header_bytes: default_max_header(),
            grace_period_secs: default_grace(),
            log_format: LogFormat::default(),
            access_log: false,
            work_stealing: false,
        }
    }
}

fn default_listen() -> Vec<Spanned<String>> {
    vec![Spanned::new(0..0, "0.0.0.0:8080".to_string())]
}
fn default_admin_listen() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:9901".to_string())
}
fn default_max_body() -> usize {
    64 * 1024
}
fn default_body_timeout() -> u64 {
    10_000
}
fn default_header_timeout() -> u64 {
    10_000
}
/// Node's default (`--max-http-header-size`), the tightest common identity-server limit.
fn default_max_header() -> usize {
    16 * 1024
}
fn default_grace() -> u64 {
    10
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    address: Spanned<String>,
    #[serde(default = "default_connect_timeout")]
    connect_timeout_ms: u64,
    #[serde(default = "default_read_timeout")]
    read_timeout_ms: u64,
    #[serde(default = "default_read_timeout")]
    write_timeout_ms: u64,
    #[serde(default = "default_idle_timeout")]
    keepalive_idle_secs: u64,
    #[serde(default = "default_pool")]
    keepalive_pool_size: usize,
}

fn default_connect_timeout() -> u64 {
    2_000
}
fn default_read_timeout() -> u64 {
    15_000
}
fn default_idle_timeout() -> u64 {
    60
}
fn default_pool() -> usize {
    128
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: Option<String>,
    #[serde(default = "default_methods")]
    methods: Vec<Spanned<String>>,
    path: Spanned<String>,
    #[serde(default, rename = "match")]
    match_kind: PathMatch,
    #[serde(default)]
    case_sensitive: bool,
    point: Option<Spanned<String>>,
    upstream_path: Option<Spanned<String>>,
    upstream_body: Option<Spanned<UpstreamBody>>,
    audience_param: Option<Spanned<String>>,
    upstream_client_auth: Option<Spanned<ClientAuth>>,
    default_audience: Option<Spanned<String>>,
    webhook_secret: Option<Spanned<SecretSource>>,
    signup: Option<Spanned<SignupMapping>>,
    change_password: Option<Spanned<RawChangePassword>>,
}

fn default_methods() -> Vec<Spanned<String>> {
    Vec::new()
}

// ---------------------------------------------------------------------------------------------
// The validated model.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathMatch {
    #[default]
    Exact,
    Prefix,
}

/// The extensibility points a route can trigger (Auth0's trigger ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Point {
    CredentialsExchange,
    PreUserRegistration,
    PostChangePassword,
    SendPhoneMessage,
}

impl Point {
    pub const ALL: [Point; 4] = [
        Point::CredentialsExchange,
        Point::PreUserRegistration,
        Point::PostChangePassword,
        Point::SendPhoneMessage,
    ];

    /// The id used in the configuration: the trigger id of the point the route starts.
    /// A signup route is named after its blocking hook; post-user-registration runs after it.
    pub fn id(self) -> &'static str {
        match self {
            Point::CredentialsExchange => "credentials-exchange",
            Point::PreUserRegistration => "pre-user-registration",
            Point::PostChangePassword => "post-change-password",
            Point::SendPhoneMessage => "send-phone-message",
        }
    }

    fn parse(s: &str) -> Option<Point> {
        Point::ALL.into_iter().find(|p| p.id() == s)
    }
}

/// `[tenant]`: what Auth0 called the tenant, passed to hooks as `client.tenant`, `user.tenant`...
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub name: String,
}

impl Default for TenantConfig {
    fn default() -> Self {
        TenantConfig {
            name: "hookgate".into(),
        }
    }
}

/// `[clients.<client_id>]`: the client registry hooks see as `client` (name and metadata).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub name: Option<String>,
    /// Auth0 client metadata is a flat object of strings.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The audience token requests of this client get when they name none (wins over the
    /// route's `default_audience`).
    pub default_audience: Option<String>,
    /// How this client's credentials are presented upstream (wins over the route's
    /// `upstream_client_auth`).
    pub upstream_client_auth: Option<ClientAuth>,
}

/// How a token route presents the client's credentials to the upstream (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// As the client sent them.
    #[default]
    Same,
    /// HTTP Basic (`client_secret_basic`): a body `client_id` + `client_secret` move to the
    /// `Authorization` header.
    Basic,
    /// In the body (`client_secret_post`): Basic credentials move to `client_id` +
    /// `client_secret`.
    Post,
}

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

/// How a token route sends the client's parameters upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamBody {
    /// In the shape the client sent.
    Same,
    Form,
    Json,
}

impl UpstreamBody {
    pub fn format(self, incoming: BodyFormat) -> BodyFormat {
        match self {
            UpstreamBody::Same => incoming,
            UpstreamBody::Form => BodyFormat::Form,
            UpstreamBody::Json => BodyFormat::Json,
        }
    }
}

/// `[route.signup]` of a pre-user-registration route: where a legacy server's signup body keeps
/// what Auth0's `/dbconnections/signup` calls `username`, `email`, ... The defaults are Auth0's
/// names. A location is a top-level field name, or a JSON pointer (`/user/email`) for nested
/// JSON bodies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignupMapping {
    /// In the incoming body.
    pub username: String,
    pub email: String,
    pub password: String,
    pub phone_number: String,
    pub connection: String,
    /// Where the metadata go in the forwarded body.
    pub user_metadata: String,
    pub app_metadata: String,
    /// JSON pointer to the created user's id in the upstream's answer.
    pub user_id: String,
    /// `context.connection.name` when the body names none.
    pub default_connection: String,
    /// `context.connection.id`. Default: the connection's name.
    pub connection_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChangePassword {
    id: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    email: Option<Spanned<String>>,
    client_id: Option<Spanned<String>>,
    connection: Option<Spanned<String>>,
    default_connection: Option<String>,
}

/// Where a value is found for a post-change-password event. Legacy servers identify the user in
/// different places, so each field of the hook's `user` names its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `body:/user/id` or `body:email`: the request's (form or JSON) body.
    Body(String),
    /// `response:/_id`: the upstream's JSON answer.
    Response(String),
    /// `header:x-user-id`: a request header.
    Header(String),
    /// `jwt:sub`: a claim of the request's `Authorization: Bearer` JWT. Read, not verified: the
    /// event exists only after the upstream accepted the request, and the upstream verifies it.
    Jwt(String),
}

impl Location {
    fn parse(text: &str) -> Result<Location, String> {
        let (source, path) = text.split_once(':').ok_or_else(|| {
            format!("`{text}` names no source: write body:NAME, response:/POINTER, header:NAME or jwt:CLAIM")
        })?;
        if path.is_empty() {
            return Err(format!("`{text}` names no field"));
        }
        // What can be checked before any request: a location that could never match anything.
        if source == "header" && http::HeaderName::from_bytes(path.as_bytes()).is_err() {
            return Err(format!(
                "`{path}` is not a header name, so this can never match: write header:X-User-Id"
            ));
        }
        if matches!(source, "body" | "response" | "jwt") && path.starts_with('/') {
            let bad_escape = path
                .split('~')
                .skip(1)
                .any(|rest| !rest.starts_with(['0', '1']));
            if bad_escape {
                return Err(format!(
                    "`{path}` is not a valid JSON pointer (`~` must be `~0` or `~1`), so this can never match"
                ));
            }
        }
        let path = path.to_string();
        Ok(match source {
            "body" => Location::Body(path),
            "response" => Location::Response(path),
            "header" => Location::Header(path.to_ascii_lowercase()),
            "jwt" => Location::Jwt(path),
            other => {
                return Err(format!(
                    "unknown source `{other}`: use body, response, header or jwt"
                ))
            }
        })
    }
}

/// `[route.change_password]`: where a post-change-password route finds the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangePasswordMapping {
    pub id: Location,
    pub username: Location,
    pub email: Location,
    pub client_id: Location,
    pub connection: Location,
    pub default_connection: String,
}

impl Default for ChangePasswordMapping {
    fn default() -> Self {
        ChangePasswordMapping {
            id: Location::Jwt("sub".into()),
            username: Location::Body("username".into()),
            email: Location::Body("email".into()),
            client_id: Location::Body("client_id".into()),
            connection: Location::Body("connection".into()),
            default_connection: "Username-Password-Authentication".into(),
        }
    }
}

impl Default for SignupMapping {
    fn default() -> Self {
        SignupMapping {
            username: "username".into(),
            email: "email".into(),
            password: "password".into(),
            phone_number: "phone_number".into(),
            connection: "connection".into(),
            user_metadata: "user_metadata".into(),
            app_metadata: "app_metadata".into(),
            user_id: "/_id".into(),
            default_connection: "Username-Password-Authentication".into(),
            connection_id: None,
        }
    }
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
    outbox_configured: bool,
}

impl Config {
    /// Whether hookgate must open the outbox: a route produces post-events, or `[outbox]` is set
    /// (so a configuration without signup routes never creates the file).
    pub fn outbox_needed(&self) -> bool {
        self.outbox_configured
            || self.routes.iter().any(|r| {
                matches!(
                    r.point,
                    Some(Point::PreUserRegistration | Point::PostChangePassword)
                )
            })
    }

    /// The folder relative paths in the file are relative to.
    pub fn base_dir(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: Vec<SocketAddr>,
    pub admin_listen: SocketAddr,
    pub threads: usize,
    pub max_body_bytes: usize,
    pub body_read_timeout: Duration,
    /// A client must send a whole request head within this time (see `crate::proxy::transport`).
    pub header_read_timeout: Duration,
    /// Largest request head an exchange route forwards (431 above it).
    pub max_header_bytes: usize,
    pub grace_period: Duration,
    pub log_format: LogFormat,
    /// One log line per request (off by default: a sidecar usually sits behind something that
    /// already logs every request, and the line costs throughput).
    pub access_log: bool,
    /// One work-stealing runtime for all proxy threads (pingora's default), or one single-thread
    /// proxy service per thread, each with its own upstream pool (hookgate's default: less CPU
    /// per request, no pooled connection handed across threads; see `crate::server::run`).
    pub work_stealing: bool,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// `host:port` as written; resolved when the proxy starts.
    pub address: String,
    pub socket_addr: SocketAddr,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub keepalive_idle: Duration,
    pub keepalive_pool_size: usize,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    /// Upper-case method names; empty means any method.
    pub methods: Vec<String>,
    /// Canonical (see `crate::proxy::path`): what requests' canonical paths are compared with.
    pub path: String,
    pub match_kind: PathMatch,
    /// Whether `/OAuth/Token` is another path than `/oauth/token` (default: the same). Requests
    /// in another case never pass a hooked route unhooked either way: they are refused.
    pub case_sensitive: bool,
    /// `None` for passthrough.
    pub point: Option<Point>,
    /// As written: exact routes send the upstream exactly this.
    pub upstream_path: Option<String>,
    /// `upstream_path`, canonical.
    pub upstream_key: Option<String>,
    /// The body shape the upstream wants. Token routes: default form, as RFC 6749 says;
    /// signup routes: default the shape the client sent.
    pub upstream_body: UpstreamBody,
    /// Token routes: the upstream's name for Auth0's `audience` (e.g. RFC 8707 `resource`).
    pub audience_param: String,
    /// Token routes: how the client's credentials go upstream (a registered client's own
    /// setting wins).
    pub upstream_client_auth: ClientAuth,
    /// Token routes: the audience a client-credentials request gets when it names none (a
    /// registered client's own `default_audience` wins).
    pub default_audience: Option<String>,
    /// Signup routes: where the signup fields are (Auth0's names by default).
    pub signup: SignupMapping,
    /// post-change-password routes: where the user's id, username and email are.
    pub change_password: ChangePasswordMapping,
    /// send-phone-message routes: the bearer secret the identity server must present.
    pub webhook_secret: Option<Secret>,
}

/// A secret value from the configuration; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Route {
    /// If this route takes a request for the canonical `path`: what follows the route's path
    /// (`""` for an exact match). A route with a point also takes its `upstream_path`: the
    /// upstream's own spelling of the endpoint reaches it only through the hooks.
    pub fn take<'a>(&self, path: &'a str) -> Option<&'a str> {
        self.at(path, &self.path, self.case_sensitive).or_else(|| {
            let key = self
                .upstream_key
                .as_deref()
                .filter(|_| self.point.is_some())?;
            self.at(path, key, self.case_sensitive)
        })
    }

    fn at<'a>(&self, path: &'a str, key: &str, case_sensitive: bool) -> Option<&'a str> {
        match self.match_kind {
            PathMatch::Exact => crate::proxy::path::same(path, key, case_sensitive).then_some(""),
            PathMatch::Prefix => crate::proxy::path::under(path, key, case_sensitive),
        }
    }

    pub fn allows(&self, method: &str) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| m == method)
    }

    /// Whether the canonical `path` belongs to this route's hooks: a route with a point, at its
    /// path or its `upstream_path` (or under them, for a prefix route), in any case, as an
    /// upstream that ignores case would read it.
    pub fn guards(&self, path: &str) -> bool {
        self.point.is_some()
            && (self.at(path, &self.path, false).is_some()
                || self
                    .upstream_key
                    .as_deref()
                    .is_some_and(|k| self.at(path, k, false).is_some()))
    }

    /// The canonical path the upstream gets for a request this route took (`rest` from
    /// [`Self::take`]), `client` being the request's canonical path.
    pub fn upstream_canonical(&self, client: &str, rest: &str) -> String {
        match (&self.upstream_key, self.match_kind) {
            (None, _) => client.to_string(),
            (Some(to), PathMatch::Exact) => to.clone(),
            (Some(to), PathMatch::Prefix) => crate::proxy::path::join(to, rest),
        }
    }

    /// The path and query to send upstream for a request this route took (`rest` from
    /// [`Self::take`]). An exact route's `upstream_path` is sent as written; a hooked exact
    /// route without one sends its own path, so every spelling gets the same answer.
    pub fn upstream_target(&self, target: &crate::proxy::path::Target, rest: &str) -> String {
        let exact = match (&self.upstream_path, self.match_kind, self.point) {
            (Some(to), PathMatch::Exact, _) => to,
            (None, PathMatch::Exact, Some(_)) => &self.path,
            _ => return target.forward(&self.upstream_canonical(&target.path, rest)),
        };
        match &target.query {
            Some(q) => format!("{exact}?{q}"),
            None => exact.clone(),
        }
    }
}

impl Config {
    /// The first route that takes a request, in file order (`path` as received, normalised
    /// here). For tests and tools; the proxy routes with `crate::proxy::routing`, which also
    /// guards hooked routes.
    pub fn route_for(&self, method: &str, path: &str) -> Option<&Route> {
        let (path, _) = crate::proxy::path::normalize(path).ok()?;
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

    fn socket_addr(
        &mut self,
        value: &Spanned<String>,
        key: &str,
        env_override: Option<(&str, String)>,
    ) -> Option<SocketAddr> {
        let (text, span, key) = match &env_override {
            Some((var, v)) => (v.as_str(), 0..0, format!("{key} (from ${var})")),
            None => (value.get_ref().as_str(), value.span(), key.to_string()),
        };
        match resolve(text) {
            Ok(a) => Some(a),
            Err(msg) => {
                self.error(span, key, msg);
                None
            }
        }
    }

    /// A route's path, canonical (see `crate::proxy::path`): requests are compared with it in
    /// that form, so `/oauth/token/` in the file means `/oauth/token`.
    fn route_path(&mut self, value: &Spanned<String>, key: &str) -> String {
        let text = value.get_ref();
        if !text.starts_with('/') {
            self.error(value.span(), key, "must start with `/`");
            return text.clone();
        }
        if text.contains('?') || text.contains('#') {
            self.error(value.span(), key, "a path, without `?` or `#`");
        }
        match crate::proxy::path::normalize(text) {
            Ok((path, _)) => path,
            Err(why) => {
                self.error(value.span(), key, format!("`{text}`: {why}"));
                text.clone()
            }
        }
    }

    fn validate(
        mut self,
        raw: RawConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        let s = raw.server;
        let listen: Vec<SocketAddr> = match env(ENV_LISTEN) {
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .filter_map(|a| {
                    self.socket_addr(
                        &Spanned::new(0..0, String::new()),
                        "server.listen",
                        Some((ENV_LISTEN, a.to_string())),
                    )
                })
                .collect(),
            None => s
                .listen
                .iter()
                .filter_map(|a| self.socket_addr(a, "server.listen", None))
                .collect(),
        };
        if listen.is_empty() && self.errors.is_empty() {
            self.error(
                0..0,
                "server.listen",
                "at least one listen address is required",
            );
        }
        let admin_listen = self.socket_addr(
            &s.admin_listen,
            "server.admin_listen",
            env(ENV_ADMIN_LISTEN).map(|v| (ENV_ADMIN_LISTEN, v)),
        );
        if s.max_body_bytes == 0 {
            self.error(0..0, "server.max_body_bytes", "must be greater than 0");
        }
        if s.header_read_timeout_ms == 0 {
            self.error(
                0..0,
                "server.header_read_timeout_ms",
                "must be greater than 0",
            );
        }
        if s.max_header_bytes == 0 {
            self.error(0..0, "server.max_header_bytes", "must be greater than 0");
        }
        let threads = s.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });

        let upstream = match raw.upstream {
            None => {
                self.error(
                    0..0,
                    "upstream",
                    "the [upstream] table is required: add `[upstream]` with `address = \"host:port\"` of your identity server",
                );
                None
            }
            Some(u) => {
                let u = u.into_inner();
                let env_addr = env(ENV_UPSTREAM);
                let address = env_addr
                    .clone()
                    .unwrap_or_else(|| u.address.get_ref().clone());
                self.socket_addr(
                    &u.address,
                    "upstream.address",
                    env_addr.map(|v| (ENV_UPSTREAM, v)),
                )
                .map(|socket_addr| UpstreamConfig {
                    address,
                    socket_addr,
                    connect_timeout: Duration::from_millis(u.connect_timeout_ms),
                    read_timeout: Duration::from_millis(u.read_timeout_ms),
                    write_timeout: Duration::from_millis(u.write_timeout_ms),
                    keepalive_idle: Duration::from_secs(u.keepalive_idle_secs),
                    keepalive_pool_size: u.keepalive_pool_size,
                })
            }
        };

        let mut routes = Vec::new();
        for (i, r) in raw.route.into_iter().enumerate() {
            let span = r.span();
            let r = r.into_inner();
            let key = |k: &str| format!("route[{i}].{k}");
            let path = self.route_path(&r.path, &key("path"));
            let point = match &r.point {
                None => None,
                Some(p) => match Point::parse(p.get_ref()) {
                    Some(point) => Some(point),
                    None => {
                        let known: Vec<_> = Point::ALL.iter().map(|p| p.id()).collect();
                        self.error(
                            p.span(),
                            key("point"),
                            format!(
                                "unknown extensibility point `{}`; expected one of: {} (post-user-registration runs after a pre-user-registration route)",
                                p.get_ref(),
                                known.join(", ")
                            ),
                        );
                        None
                    }
                },
            };
            let mut methods = Vec::new();
            for m in &r.methods {
                let up = m.get_ref().to_ascii_uppercase();
                if up.is_empty() || !up.bytes().all(|b| b.is_ascii_alphabetic()) {
                    self.error(
                        m.span(),
                        key("methods"),
                        format!("`{}` is not an HTTP method", m.get_ref()),
                    );
                }
                methods.push(up);
            }
            if point.is_some() && methods.is_empty() {
                methods.push("POST".to_string());
            }
            let upstream_key = r
                .upstream_path
                .as_ref()
                .map(|up| self.route_path(up, &key("upstream_path")));
            if !matches!(
                point,
                Some(Point::CredentialsExchange | Point::PreUserRegistration)
            ) {
                if let Some(b) = &r.upstream_body {
                    self.error(
                        b.span(),
                        key("upstream_body"),
                        "only credentials-exchange and pre-user-registration routes rewrite the body",
                    );
                }
            }
            let mut change_password = ChangePasswordMapping::default();
            match (&r.change_password, point) {
                (Some(m), Some(Point::PostChangePassword)) => {
                    let m = m.get_ref();
                    let fields = [
                        ("id", &m.id, &mut change_password.id),
                        ("username", &m.username, &mut change_password.username),
                        ("email", &m.email, &mut change_password.email),
                        ("client_id", &m.client_id, &mut change_password.client_id),
                        ("connection", &m.connection, &mut change_password.connection),
                    ];
                    for (name, given, slot) in fields {
                        if let Some(text) = given {
                            match Location::parse(text.get_ref()) {
                                Ok(loc) => *slot = loc,
                                Err(e) => self.error(
                                    text.span(),
                                    key(&format!("change_password.{name}")),
                                    e,
                                ),
                            }
                        }
                    }
                    if let Some(c) = &m.default_connection {
                        change_password.default_connection = c.clone();
                    }
                }
                (Some(m), _) => self.error(
                    m.span(),
                    key("change_password"),
                    "only post-change-password routes map change-password fields",
                ),
                (None, _) => {}
            }
            if point != Some(Point::PreUserRegistration) {
                if let Some(m) = &r.signup {
                    self.error(
                        m.span(),
                        key("signup"),
                        "only pre-user-registration (signup) routes map signup fields",
                    );
                }
            }
            if let Some(m) = &r.signup {
                if !m.get_ref().user_id.starts_with('/') {
                    self.error(
                        m.span(),
                        key("signup.user_id"),
                        format!(
                            "`{}` is not a JSON pointer: write it like \"/_id\" or \"/user/id\"",
                            m.get_ref().user_id
                        ),
                    );
                }
            }
            if point != Some(Point::CredentialsExchange) {
                if let Some(a) = &r.audience_param {
                    self.error(
                        a.span(),
                        key("audience_param"),
                        "only credentials-exchange routes map the audience",
                    );
                }
                if let Some(a) = &r.upstream_client_auth {
                    self.error(
                        a.span(),
                        key("upstream_client_auth"),
                        "only credentials-exchange routes present client credentials",
                    );
                }
                if let Some(a) = &r.default_audience {
                    self.error(
                        a.span(),
                        key("default_audience"),
                        "only credentials-exchange routes have an audience",
                    );
                }
            }
            if let Some(a) = &r.default_audience {
                if a.get_ref().trim().is_empty() {
                    self.error(a.span(), key("default_audience"), "the audience is empty");
                }
            }
            let webhook_secret = match (&r.webhook_secret, point) {
                (Some(source), Some(Point::SendPhoneMessage)) => {
                    match read_secret(source.get_ref(), self.path, env) {
                        Ok(v) if !v.is_empty() => Some(Secret(v)),
                        Ok(_) => {
                            self.error(source.span(), key("webhook_secret"), "the secret is empty");
                            None
                        }
                        Err(e) => {
                            self.error(source.span(), key("webhook_secret"), e);
                            None
                        }
                    }
                }
                (Some(source), _) => {
                    self.error(
                        source.span(),
                        key("webhook_secret"),
                        "only send-phone-message routes take a webhook secret",
                    );
                    None
                }
                (None, Some(Point::SendPhoneMessage)) => {
                    self.error(
                        span.clone(),
                        key("webhook_secret"),
                        "a send-phone-message route needs `webhook_secret = { env = \"VAR\" }` (or `{ file = \"path\" }`): \
                         the bearer secret your identity server sends, so that nobody else can send SMS through your hooks",
                    );
                    None
                }
                (None, _) => None,
            };
            let name = r.name.unwrap_or_else(|| format!("route{i}"));
            if routes.iter().any(|x: &Route| x.name == name) {
                self.error(
                    span,
                    key("name"),
                    format!("the route name `{name}` is used twice"),
                );
            }
            routes.push(Route {
                name,
                methods,
                path,
                match_kind: r.match_kind,
                case_sensitive: r.case_sensitive,
                point,
                upstream_path: r.upstream_path.map(Spanned::into_inner),
                upstream_key,
                upstream_body: r.upstream_body.map(Spanned::into_inner).unwrap_or(
                    if point == Some(Point::PreUserRegistration) {
                        UpstreamBody::Same
                    } else {
                        UpstreamBody::Form
                    },
                ),
                audience_param: r
                    .audience_param
                    .map(Spanned::into_inner)
                    .unwrap_or_else(|| "audience".into()),
                upstream_client_auth: r
                    .upstream_client_auth
                    .map(Spanned::into_inner)
                    .unwrap_or_default(),
                default_audience: r.default_audience.map(Spanned::into_inner),
                webhook_secret,
                signup: r.signup.map(Spanned::into_inner).unwrap_or_default(),
                change_password,
            });
        }

        let base = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let token = match raw.token {
            None => TokenConfig::default(),
            Some(t) => {
                let t = t.into_inner();
                let mut canonical = |p: &str| {
                    if !p.starts_with('/') {
                        self.error(0..0, "token", format!("`{p}` must start with `/`"));
                        return p.to_string();
                    }
                    crate::proxy::path::normalize(p)
                        .map(|(p, _)| p)
                        .unwrap_or_else(|why| {
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
                    .any(|d| crate::proxy::path::under(&jwks_path, d, false).is_some())
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
                    if let Err(why) = crate::proxy::local::check_public_url(&u) {
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
        };
        if token.signing_key.is_none()
            && routes
                .iter()
                .any(|r| r.point == Some(Point::CredentialsExchange))
        {
            self.error(
                0..0,
                "token.signing_key",
                "a credentials-exchange route re-signs tokens: add `[token]` with `signing_key = \"keys/hookgate.pem\"` \
                 (create one with `hookgate keys generate --out keys/hookgate.pem`)",
            );
        }

        let outbox_configured = raw.outbox.is_some();
        let outbox = match raw.outbox {
            None => OutboxConfig::default(),
            Some(o) => {
                let span = o.span();
                let o = o.into_inner();
                if o.max_attempts == 0 {
                    self.error(span.clone(), "outbox.max_attempts", "must be at least 1");
                }
                if o.retry_base_ms == 0 || o.retry_base_ms > o.retry_max_ms {
                    self.error(
                        span,
                        "outbox.retry_base_ms",
                        "must be greater than 0 and at most outbox.retry_max_ms",
                    );
                }
                o
            }
        };
        let outbox = OutboxConfig {
            path: base.join(&outbox.path),
            ..outbox
        };

        if !self.errors.is_empty() {
            return Err(ConfigErrors(self.errors));
        }
        Ok(Config {
            path: self.path.to_path_buf(),
            server: ServerConfig {
                listen,
                admin_listen: admin_listen.expect("validated above"),
                threads,
                max_body_bytes: s.max_body_bytes,
                body_read_timeout: Duration::from_millis(s.body_read_timeout_ms),
                header_read_timeout: Duration::from_millis(s.header_read_timeout_ms),
                max_header_bytes: s.max_header_bytes,
                grace_period: Duration::from_secs(s.grace_period_secs),
                log_format: s.log_format,
                access_log: s.access_log,
                work_stealing: s.work_stealing,
            },
            upstream: upstream.expect("validated above"),
            routes,
            tenant: raw.tenant,
            clients: raw.clients,
            token,
            hooks: raw.hooks,
            outbox,
            outbox_configured,
        })
    }
}

/// A secret's value: an environment variable, or a file (relative to the configuration's folder;
/// one trailing newline dropped, as `echo` writes it).
fn read_secret(
    source: &SecretSource,
    config: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    match source {
        SecretSource::Env(var) => {
            env(var).ok_or_else(|| format!("environment variable {var} is not set: `export {var}=…` before starting hookgate, or read it from a file with `{{ file = \"path\" }}`"))
        }
        SecretSource::File(path) => {
            let path = config.parent().unwrap_or(Path::new(".")).join(path);
            std::fs::read_to_string(&path)
                .map(|v| v.strip_suffix('\n').unwrap_or(&v).to_string())
                .map_err(|e| {
                    format!(
                        "cannot read {}: {e}: write the secret into that file (`printf %s '…' > {}`), or read it from `{{ env = \"VAR\" }}`",
                        path.display(),
                        path.display()
                    )
                })
        }
    }
}

/// `host:port` to a socket address; names are resolved once, at load time.
fn resolve(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Ok(a);
    }
    if !text.contains(':') {
        return Err(format!("`{text}` has no port: write it as host:port"));
    }
    text.to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{text}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{text}` resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::parse(Path::new("test.toml"), text, &|_| None)
    }

    const MINIMAL: &str = "[upstream]\naddress = \"127.0.0.1:3000\"\n";

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
    fn unknown_point_is_reported_at_its_line() {
        let text = format!(
            "{MINIMAL}\n[[route]]\npath = \"/oauth/token\"\npoint = \"credential-exchange\"\n"
        );
        let err = parse(&text).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].line, 6);
        assert_eq!(err.0[0].key, "route[0].point");
        assert!(err.0[0].message.contains("credentials-exchange"));
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
        assert_eq!(r.upstream_body, UpstreamBody::Json);
        assert_eq!(r.audience_param, "resource");
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
        assert_eq!(r.upstream_client_auth, ClientAuth::Basic);
        assert_eq!(
            r.default_audience.as_deref(),
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
        assert_eq!(plain.routes[0].upstream_client_auth, ClientAuth::Same);
        assert_eq!(plain.routes[0].default_audience, None);

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

    #[test]
    fn send_phone_message_routes_need_a_webhook_secret() {
        let route = "[[route]]\npath = \"/sms\"\npoint = \"send-phone-message\"\n";
        let err = parse(&format!("{MINIMAL}{route}")).unwrap_err().to_string();
        assert!(err.contains("route[0].webhook_secret"), "{err}");
        let with = format!("{MINIMAL}{route}webhook_secret = {{ env = \"SMS_SECRET\" }}\n");
        let err = parse(&with).unwrap_err().to_string();
        assert!(
            err.contains("environment variable SMS_SECRET is not set"),
            "{err}"
        );
        let env = |k: &str| (k == "SMS_SECRET").then(|| "s3".to_string());
        let c = Config::parse(Path::new("t.toml"), &with, &env).unwrap();
        assert_eq!(c.routes[0].webhook_secret, Some(Secret("s3".into())));
        assert_eq!(
            format!("{:?}", c.routes[0].webhook_secret),
            "Some(Secret(..))",
            "never printed"
        );
        let elsewhere = format!(
            "{MINIMAL}[[route]]\npath = \"/x\"\nwebhook_secret = {{ env = \"SMS_SECRET\" }}\n"
        );
        let err = Config::parse(Path::new("t.toml"), &elsewhere, &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("only send-phone-message routes"), "{err}");
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
        assert_eq!(c.routes[0].signup, SignupMapping::default());
        assert_eq!(c.routes[0].upstream_body, UpstreamBody::Same);
        assert_eq!(c.routes[1].signup.email, "mail");
        assert_eq!(c.routes[1].signup.username, "username");
        assert_eq!(c.routes[1].upstream_body, UpstreamBody::Json);
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
    fn change_password_mapping_names_each_source_and_stays_on_its_routes() {
        let text = format!(
            "{MINIMAL}[[route]]\npath = \"/pw\"\npoint = \"post-change-password\"\n\
             [route.change_password]\nid = \"response:/user/id\"\nusername = \"header:X-User\"\nemail = \"jwt:email\"\n"
        );
        let c = parse(&text).unwrap();
        let m = &c.routes[0].change_password;
        assert_eq!(m.id, Location::Response("/user/id".into()));
        assert_eq!(m.username, Location::Header("x-user".into()));
        assert_eq!(m.email, Location::Jwt("email".into()));
        assert_eq!(
            m.client_id,
            Location::Body("client_id".into()),
            "defaults stay"
        );
        assert!(c.outbox_needed());
        let text = format!(
            "{MINIMAL}[[route]]\npath = \"/pw\"\npoint = \"post-change-password\"\n\
             [route.change_password]\nid = \"cookie:sid\"\nemail = \"email\"\n\
             [[route]]\npath = \"/x\"\n[route.change_password]\nid = \"jwt:sub\"\n"
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("route[0].change_password.id") && err.contains("unknown source `cookie`"),
            "{err}"
        );
        assert!(
            err.contains("route[0].change_password.email") && err.contains("names no source"),
            "{err}"
        );
        assert!(
            err.contains("route[1].change_password")
                && err.contains("only post-change-password routes"),
            "{err}"
        );
    }

    #[test]
    fn a_change_password_mapping_that_can_never_match_is_refused_at_load() {
        let text = format!(
            "{MINIMAL}[[route]]\npath = \"/pw\"\npoint = \"post-change-password\"\n\
             [route.change_password]\nid = \"response:/user~2id\"\nusername = \"header:X User\"\n\
             email = \"body:/a~1b/~0c\"\n"
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("route[0].change_password.id") && err.contains("can never match"),
            "{err}"
        );
        assert!(
            err.contains("route[0].change_password.username") && err.contains("not a header name"),
            "{err}"
        );
        assert!(
            !err.contains("change_password.email"),
            "valid escapes pass: {err}"
        );
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

    #[test]
    fn routes_match_by_method_and_path() {
        let text = format!(
            "{MINIMAL}[[route]]\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\nupstream_path = \"/token\"\n\
             [[route]]\npath = \"/api/\"\nmatch = \"prefix\"\nmethods = [\"get\"]\nupstream_path = \"/v2/\"\n\
             [token]\nsigning_key = \"keys/k.pem\"\n"
        );
        let c = parse(&text).unwrap();
        let token = c.route_for("POST", "/oauth/token").unwrap();
        assert_eq!(token.point, Some(Point::CredentialsExchange));
        assert!(
            c.route_for("GET", "/oauth/token").is_none(),
            "point routes default to POST"
        );
        assert!(c.route_for("POST", "/oauth/token/x").is_none());
        let api = c.route_for("GET", "/api/users").unwrap();
        let target = |raw: &str| {
            crate::proxy::path::parse_target(raw.as_bytes())
                .unwrap()
                .unwrap()
        };
        let upstream = |r: &Route, raw: &str| {
            let t = target(raw);
            r.upstream_target(&t, r.take(&t.path).unwrap())
        };
        assert_eq!(upstream(api, "/api/users?a=1"), "/v2/users?a=1");
        assert_eq!(upstream(api, "/API//users/?a=1"), "/v2/users/?a=1");
        assert_eq!(upstream(api, "/api"), "/v2");
        assert!(
            c.route_for("GET", "/apix").is_none(),
            "prefixes are whole segments"
        );
        assert_eq!(upstream(token, "/oauth/token"), "/token");
        assert_eq!(upstream(token, "/oauth/token/?x"), "/token?x");
        assert_eq!(
            c.route_for("POST", "/token").unwrap().name,
            token.name,
            "a hooked route also takes its upstream_path"
        );
    }

    #[test]
    fn route_paths_are_canonical_and_case_is_a_route_setting() {
        let text = format!(
            "{MINIMAL}[[route]]\npath = \"/a//b/\"\n[[route]]\npath = \"/C\"\ncase_sensitive = true\n\
             [[route]]\npath = \"/x%2Fy\"\n[[route]]\npath = \"/q?x\"\n"
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("route[2].path") && err.contains("%2F"),
            "{err}"
        );
        assert!(err.contains("route[3].path"), "{err}");
        let text = format!(
            "{MINIMAL}[[route]]\npath = \"/a//b/\"\n[[route]]\npath = \"/C\"\ncase_sensitive = true\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.routes[0].path, "/a/b");
        assert!(
            c.route_for("GET", "/A/B").is_some(),
            "case-insensitive by default"
        );
        assert!(c.route_for("GET", "/C").is_some());
        assert!(c.route_for("GET", "/c").is_none());
    }
}
