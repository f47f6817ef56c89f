//! `[upstream]`: the identity server hookgate sits in front of, and how it is reached.
//!
//! Owns: the section's shape, defaults, validation (with `HOOKGATE_UPSTREAM` overriding the
//! address; names are resolved once, here) and the fact that all of it needs a restart.
//! Must not: connect to anything; the proxy's upstream client is built from this model.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{keep, Validator};

/// Environment variable that overrides the file, so one file serves in containers.
pub const ENV_UPSTREAM: &str = "HOOKGATE_UPSTREAM";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
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

impl UpstreamConfig {
    /// Keep the running upstream, whole: its connection pool (and the upstream's JWKS cache) is
    /// built once from it, and a sidecar's upstream moves with a deploy anyway.
    pub fn pin_boot(&mut self, running: &Self, changed: &mut Vec<String>) {
        keep(changed, "upstream", self, running);
    }
}

impl Validator<'_> {
    /// `[upstream]`, required; `None` when it is missing or its address is wrong (reported).
    pub(super) fn upstream(
        &mut self,
        raw: Option<Spanned<RawUpstream>>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<UpstreamConfig> {
        match raw {
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
        }
    }
}
