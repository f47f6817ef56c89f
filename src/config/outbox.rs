//! `[outbox]`: where the durable queue of post-events lives (a redb file, or a Redis stream shared
//! by replicas: `backend`) and its delivery policy's numbers.
//!
//! Owns: the section's shape, defaults and validation (`claim_idle_ms` against the hook timeouts,
//! `redis_url` read from a secret source), and the fact that all of it needs a restart. Must not: open the file or schedule anything; the outbox does, from this model (its
//! retry policy, `OutboxConfig::backoff`, stays with it).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::secrets::{read_secret, Secret, SecretSource};
use super::{keep, HooksConfig, Validator};

/// Where events are stored and dispatched from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// One embedded file per hookgate (single node).
    #[default]
    Redb,
    /// A Redis stream and consumer group shared by every replica.
    Redis,
}

/// `redis_url`: the URL itself, or `{ env = "VAR" }` / `{ file = "path" }` (it may hold a
/// password).
#[derive(Clone, Deserialize)]
#[serde(untagged)]
pub enum RedisUrl {
    Plain(String),
    From(SecretSource),
}

impl std::fmt::Debug for RedisUrl {
    // Never printed: a URL may carry a password. Still compared (`keep` compares Debug forms),
    // so its source is shown and a plain URL by a hash of it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisUrl::Plain(u) => {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                u.hash(&mut h);
                write!(f, "RedisUrl(#{:x})", h.finish())
            }
            RedisUrl::From(s) => write!(f, "RedisUrl({s:?})"),
        }
    }
}

/// `[outbox]` of hookgate.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// The redb file, relative to the configuration file's folder. Default `hookgate-outbox.redb`.
    pub path: PathBuf,
    /// Deliveries tried before an event becomes a dead letter. Default 10.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time, with jitter. Default 1000.
    pub retry_base_ms: u64,
    /// Longest wait between two attempts. Default 300000 (5 min).
    pub retry_max_ms: u64,
    /// Events the dispatcher runs at once. Default 256.
    pub batch: usize,
    /// Free space (MiB) the outbox's disk must keep: below it, signups and password changes with
    /// post hooks are refused (503) before the upstream is called, instead of failing to store
    /// their event after it. 0 turns the check off. Default 1.
    pub min_free_mb: u64,
    /// `"redb"` (default) or `"redis"`: a stream shared by replicas (the settings below).
    pub backend: Backend,
    /// `redis://` or `rediss://` (TLS) URL, or `{ env = "VAR" }` / `{ file = "path" }`. Required
    /// with `backend = "redis"`.
    pub redis_url: Option<RedisUrl>,
    /// `redis_url`'s value, read at load (never printed).
    #[serde(skip)]
    pub redis_url_value: Option<Secret>,
    /// The stream events are added to. Default `hookgate:outbox`.
    pub stream: String,
    /// The consumer group every replica reads through. Default `hookgate`.
    pub group: String,
    /// This replica's consumer name, unique per replica. Default `<hostname>-<pid>`.
    pub consumer: Option<String>,
    /// An entry another consumer read and has not acknowledged for this long is claimed (its
    /// replica is taken as dead). Default and minimum: twice the largest hook timeout.
    pub claim_idle_ms: Option<u64>,
    /// Where dead letters go. Default `<stream>:dead`.
    pub dead_stream: Option<String>,
    /// Replicas of Redis that must have each accepted event (`WAIT`) before the client is
    /// answered. Default 0 (the primary's acknowledgement, and its fsync policy, only).
    pub wait_replicas: u32,
    /// How long `WAIT` waits for them. Default 100.
    pub wait_timeout_ms: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            path: PathBuf::from("hookgate-outbox.redb"),
            max_attempts: 10,
            retry_base_ms: 1000,
            retry_max_ms: 300_000,
            batch: 256,
            min_free_mb: 1,
            backend: Backend::Redb,
            redis_url: None,
            redis_url_value: None,
            stream: "hookgate:outbox".into(),
            group: "hookgate".into(),
            consumer: None,
            claim_idle_ms: None,
            dead_stream: None,
            wait_replicas: 0,
            wait_timeout_ms: 100,
        }
    }
}

/// The largest timeout a hook of this configuration can run for.
fn largest_hook_timeout(hooks: &HooksConfig) -> u64 {
    hooks
        .hook
        .iter()
        .filter_map(|h| h.timeout_ms)
        .fold(hooks.timeout_ms, u64::max)
}

impl OutboxConfig {
    /// The dead-letter stream's name.
    pub fn dead_stream(&self) -> String {
        self.dead_stream
            .clone()
            .unwrap_or_else(|| format!("{}:dead", self.stream))
    }

    /// This replica's consumer name.
    pub fn consumer(&self) -> String {
        self.consumer.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_else(|| "hookgate".into());
            format!("{host}-{}", std::process::id())
        })
    }

    /// `claim_idle_ms` as validated (a default is filled in at load).
    pub fn claim_idle(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.claim_idle_ms.unwrap_or(40_000))
    }
}

impl OutboxConfig {
    /// Keep the running outbox, whole: its file and its dispatcher's settings are fixed at start
    /// (a reload that adds the first signup route opens that file).
    pub fn pin_boot(&mut self, running: &Self, changed: &mut Vec<String>) {
        keep(changed, "outbox", self, running);
    }
}

impl Validator<'_> {
    /// The Redis settings of `[outbox]` (checked only with `backend = "redis"`).
    fn outbox_redis(
        &mut self,
        mut o: OutboxConfig,
        span: std::ops::Range<usize>,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        hooks: &HooksConfig,
    ) -> OutboxConfig {
        if o.backend != Backend::Redis {
            return o;
        }
        let url = match &o.redis_url {
            None => {
                self.error(
                    span.clone(),
                    "outbox.redis_url",
                    "backend = \"redis\" needs redis_url = \"redis://host:6379\" (or rediss:// for TLS, or { env = \"VAR\" } / { file = \"path\" })",
                );
                None
            }
            Some(RedisUrl::Plain(u)) => Some(u.clone()),
            Some(RedisUrl::From(source)) => match read_secret(source, base, env) {
                Ok(u) => Some(u),
                Err(e) => {
                    self.error(span.clone(), "outbox.redis_url", e);
                    None
                }
            },
        };
        if let Some(url) = url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                self.error(
                    span.clone(),
                    "outbox.redis_url",
                    "must start with redis:// or rediss:// (TLS)",
                );
            } else if let Err(e) = redis::Client::open(url.as_str()) {
                self.error(
                    span.clone(),
                    "outbox.redis_url",
                    format!("not a Redis URL: {e}"),
                );
            } else {
                o.redis_url_value = Some(Secret(url));
            }
        }
        for (key, value) in [("outbox.stream", &o.stream), ("outbox.group", &o.group)] {
            if value.trim().is_empty() {
                self.error(span.clone(), key, "must not be empty");
            }
        }
        if o.dead_stream.as_deref() == Some(o.stream.as_str()) {
            self.error(
                span.clone(),
                "outbox.dead_stream",
                "must differ from outbox.stream",
            );
        }
        // `WAIT n 0` blocks forever, and with it every command on the shared connection.
        if o.wait_replicas > 0 && o.wait_timeout_ms == 0 {
            self.error(
                span.clone(),
                "outbox.wait_timeout_ms",
                "must be at least 1 when outbox.wait_replicas is set (0 would wait forever)",
            );
        }
        // A replica that is alive but slow must not have its entries claimed while their hooks
        // still run: that would run them twice for nothing.
        let least = largest_hook_timeout(hooks).saturating_mul(2);
        match o.claim_idle_ms {
            None => o.claim_idle_ms = Some(least),
            Some(ms) if ms < least => self.error(
                span,
                "outbox.claim_idle_ms",
                format!("must be at least twice the largest hook timeout ({least} ms here): an entry is claimed from a replica that may still be running its hooks"),
            ),
            Some(_) => {}
        }
        o
    }

    /// `[outbox]`; its `path` is resolved against `base`, the configuration's folder, its
    /// `redis_url` read (`env` answers look-ups), and `claim_idle_ms` checked against `hooks`'
    /// timeouts.
    pub(super) fn outbox(
        &mut self,
        raw: Option<Spanned<OutboxConfig>>,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        hooks: &HooksConfig,
    ) -> OutboxConfig {
        let outbox = match raw {
            None => OutboxConfig::default(),
            Some(o) => {
                let span = o.span();
                let o = o.into_inner();
                if o.max_attempts == 0 {
                    self.error(span.clone(), "outbox.max_attempts", "must be at least 1");
                }
                if o.retry_base_ms == 0 || o.retry_base_ms > o.retry_max_ms {
                    self.error(
                        span.clone(),
                        "outbox.retry_base_ms",
                        "must be greater than 0 and at most outbox.retry_max_ms",
                    );
                }
                self.outbox_redis(o, span, base, env, hooks)
            }
        };
        OutboxConfig {
            path: base.join(&outbox.path),
            ..outbox
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::Backend;
    use crate::config::tests::MINIMAL;
    use crate::config::Config;

    fn parse(outbox: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
        Config::parse(
            Path::new("/etc/hg/h.toml"),
            &format!("{MINIMAL}{outbox}"),
            env,
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn redis_backend_gets_its_defaults_and_a_claim_time_of_twice_the_largest_hook_timeout() {
        let c = parse(
            "[hooks]\ntimeout_ms = 3000\n[[hooks.hook]]\nfile = \"a.js\"\ntimeout_ms = 7000\n\
             [outbox]\nbackend = \"redis\"\nredis_url = \"redis://:pw@127.0.0.1:6390/2\"\n",
            &|_| None,
        )
        .unwrap();
        let o = &c.outbox;
        assert_eq!(o.backend, Backend::Redis);
        assert_eq!(o.stream, "hookgate:outbox");
        assert_eq!(o.group, "hookgate");
        assert_eq!(o.dead_stream(), "hookgate:outbox:dead");
        assert_eq!(o.claim_idle_ms, Some(14_000));
        assert_eq!(o.wait_replicas, 0);
        assert!(o.consumer().ends_with(&format!("-{}", std::process::id())));
        assert_eq!(
            o.redis_url_value.as_ref().unwrap().0,
            "redis://:pw@127.0.0.1:6390/2"
        );
        assert!(
            !format!("{o:?}").contains("pw@"),
            "the URL's password is never printed: {o:?}"
        );
        let redb = parse("[outbox]\nmax_attempts = 2\n", &|_| None).unwrap();
        assert_eq!(redb.outbox.backend, Backend::Redb, "redb stays the default");
    }

    #[test]
    fn redis_url_can_come_from_the_environment_or_a_file() {
        let c = parse(
            "[outbox]\nbackend = \"redis\"\nredis_url = { env = \"OUTBOX_REDIS\" }\n",
            &|k| (k == "OUTBOX_REDIS").then(|| "rediss://redis.internal:6380".into()),
        )
        .unwrap();
        assert_eq!(
            c.outbox.redis_url_value.unwrap().0,
            "rediss://redis.internal:6380"
        );
        let err = parse(
            "[outbox]\nbackend = \"redis\"\nredis_url = { env = \"OUTBOX_REDIS\" }\n",
            &|_| None,
        )
        .unwrap_err();
        assert!(
            err.contains("outbox.redis_url") && err.contains("OUTBOX_REDIS"),
            "{err}"
        );
    }

    #[test]
    fn bad_redis_settings_are_refused_by_key() {
        let err = parse("[outbox]\nbackend = \"redis\"\n", &|_| None).unwrap_err();
        assert!(err.contains("outbox.redis_url"), "{err}");
        let err = parse(
            "[outbox]\nbackend = \"redis\"\nredis_url = \"http://127.0.0.1:6379\"\n",
            &|_| None,
        )
        .unwrap_err();
        assert!(err.contains("redis:// or rediss://"), "{err}");
        let err = parse(
            "[hooks]\ntimeout_ms = 5000\n[outbox]\nbackend = \"redis\"\n\
             redis_url = \"redis://127.0.0.1\"\nclaim_idle_ms = 9999\n",
            &|_| None,
        )
        .unwrap_err();
        assert!(
            err.contains("outbox.claim_idle_ms") && err.contains("10000 ms"),
            "{err}"
        );
        let err = parse(
            "[outbox]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1\"\n\
             stream = \"s\"\ndead_stream = \"s\"\ngroup = \" \"\n",
            &|_| None,
        )
        .unwrap_err();
        assert!(err.contains("outbox.dead_stream"), "{err}");
        assert!(err.contains("outbox.group"), "{err}");
        let err = parse("[outbox]\nbackend = \"kafka\"\n", &|_| None).unwrap_err();
        assert!(err.contains("backend"), "{err}");
        let err = parse(
            "[outbox]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1\"\n\
             wait_replicas = 1\nwait_timeout_ms = 0\n",
            &|_| None,
        )
        .unwrap_err();
        assert!(err.contains("outbox.wait_timeout_ms"), "{err}");
    }
}
