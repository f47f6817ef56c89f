//! `[server]`: the listeners, the proxy threads, request limits, shutdown and logging.
//!
//! Owns: the section's shape, defaults and validation (with `HOOKGATE_LISTEN` and
//! `HOOKGATE_ADMIN_LISTEN` overriding the file), and which of its settings need a restart.
//! Must not: bind, spawn or log anything; the server builds those from this model.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{keep, Validator};

/// Environment variables that override the file, so one file serves in containers.
pub const ENV_LISTEN: &str = "HOOKGATE_LISTEN";
pub const ENV_ADMIN_LISTEN: &str = "HOOKGATE_ADMIN_LISTEN";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: Vec<SocketAddr>,
    pub admin_listen: SocketAddr,
    pub threads: usize,
    pub max_body_bytes: usize,
    pub body_read_timeout: Duration,
    /// A client must send a whole request head within this time (the proxy's transport
    /// enforces it).
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
    /// per request, no pooled connection handed across threads; the server sets this up).
    pub work_stealing: bool,
}

impl ServerConfig {
    /// Keep the running values of the settings that something was built from once at start:
    /// listeners and threads (pingora's services are set up before serving), the shutdown grace
    /// period and the log format (the logger). The request limits and `access_log` apply live.
    pub fn pin_boot(&mut self, running: &Self, changed: &mut Vec<String>) {
        keep(changed, "server.listen", &mut self.listen, &running.listen);
        keep(
            changed,
            "server.admin_listen",
            &mut self.admin_listen,
            &running.admin_listen,
        );
        keep(
            changed,
            "server.threads",
            &mut self.threads,
            &running.threads,
        );
        keep(
            changed,
            "server.grace_period_secs",
            &mut self.grace_period,
            &running.grace_period,
        );
        keep(
            changed,
            "server.log_format",
            &mut self.log_format,
            &running.log_format,
        );
        keep(
            changed,
            "server.work_stealing",
            &mut self.work_stealing,
            &running.work_stealing,
        );
    }
}

impl Validator<'_> {
    /// `[server]`; `None` when an address is wrong (reported).
    pub(super) fn server(
        &mut self,
        s: RawServer,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<ServerConfig> {
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
        Some(ServerConfig {
            listen,
            admin_listen: admin_listen?,
            threads,
            max_body_bytes: s.max_body_bytes,
            body_read_timeout: Duration::from_millis(s.body_read_timeout_ms),
            header_read_timeout: Duration::from_millis(s.header_read_timeout_ms),
            max_header_bytes: s.max_header_bytes,
            grace_period: Duration::from_secs(s.grace_period_secs),
            log_format: s.log_format,
            access_log: s.access_log,
            work_stealing: s.work_stealing,
        })
    }
}
