//! `[cluster]`: several hookgate replicas sharing one set of hooks (and their run records)
//! through Redis. Absent: one replica, the files are the store of record (the default).
//!
//! Owns: the section's shape, defaults and validation, and the fact that all of it needs a
//! restart. Must not: connect anywhere (the cluster layer does, from this model).

use serde::Deserialize;
use toml::Spanned;

use super::{keep, Validator};

/// The environment variable that overrides `[cluster] redis_url` (so a password in the URL can
/// come from a Secret rather than the file).
pub const ENV_REDIS_URL: &str = "HOOKGATE_CLUSTER_REDIS_URL";

/// `[cluster]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    #[serde(default)]
    pub redis_url: String,
    pub name: Option<String>,
    pub replica: Option<String>,
    pub runs_max: Option<usize>,
}

/// `[cluster]`, validated.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `redis://` or `rediss://` (TLS). May carry a password: never logged.
    pub redis_url: String,
    /// The key namespace: `<name>:changes`, `<name>:files`, `<name>:rev`, `<name>:runs`.
    /// Default `hookgate`.
    pub name: String,
    /// This replica's name in run records and change entries. Default: `$HOSTNAME` (a pod's
    /// name), else `hookgate-<pid>`.
    pub replica: String,
    /// The shared run-records stream is capped at about this many entries. Default 10000.
    pub runs_max: usize,
}

impl std::fmt::Debug for ClusterConfig {
    /// Without the URL's password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("redis_url", &redacted(&self.redis_url))
            .field("name", &self.name)
            .field("replica", &self.replica)
            .field("runs_max", &self.runs_max)
            .finish()
    }
}

/// The URL with any `user:password@` replaced by `***@`.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

impl ClusterConfig {
    /// Keep the running cluster settings: the connection and the namespace are made once.
    pub fn pin_boot(this: &mut Option<Self>, running: &Option<Self>, changed: &mut Vec<String>) {
        keep(changed, "cluster", this, running);
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_-.:".contains(&c))
}

impl Validator<'_> {
    pub(super) fn cluster(
        &mut self,
        raw: Option<Spanned<RawCluster>>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<ClusterConfig> {
        let raw = raw?;
        let span = raw.span();
        let raw = raw.into_inner();
        let url = env(ENV_REDIS_URL).unwrap_or(raw.redis_url);
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            self.error(
                span.clone(),
                "cluster.redis_url",
                "must be a redis:// or rediss:// URL (rediss:// for TLS: hook scripts and secrets travel through it)",
            );
        }
        let name = raw.name.unwrap_or_else(|| "hookgate".into());
        if !valid_name(&name) {
            self.error(
                span.clone(),
                "cluster.name",
                "must be 1 to 64 letters, digits, `_`, `-`, `.` or `:`",
            );
        }
        let replica = raw
            .replica
            .or_else(|| env("HOSTNAME").filter(|h| !h.is_empty()))
            .unwrap_or_else(|| format!("hookgate-{}", std::process::id()));
        if !valid_name(&replica) {
            self.error(
                span.clone(),
                "cluster.replica",
                "must be 1 to 64 letters, digits, `_`, `-`, `.` or `:`",
            );
        }
        let runs_max = raw.runs_max.unwrap_or(10_000);
        if runs_max == 0 {
            self.error(span, "cluster.runs_max", "must be at least 1");
        }
        Some(ClusterConfig {
            redis_url: url,
            name,
            replica,
            runs_max,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(
            Path::new("/etc/hg/hookgate.toml"),
            &format!("[upstream]\naddress = \"127.0.0.1:1\"\n{text}"),
            &|k| (k == "HOSTNAME").then(|| "pod-7".to_string()),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn cluster_mode_is_off_by_default_and_takes_a_redis_url() {
        assert!(parse("").unwrap().cluster.is_none());
        let c = parse("[cluster]\nredis_url = \"redis://127.0.0.1:6400\"\n")
            .unwrap()
            .cluster
            .unwrap();
        assert_eq!((c.name.as_str(), c.replica.as_str()), ("hookgate", "pod-7"));
        assert_eq!(c.runs_max, 10_000);
        let err = parse("[cluster]\nredis_url = \"http://x\"\n").unwrap_err();
        assert!(err.contains("cluster.redis_url"), "{err}");
        let err = parse("[cluster]\nredis_url = \"redis://x\"\nname = \"a b\"\n").unwrap_err();
        assert!(err.contains("cluster.name"), "{err}");
    }

    #[test]
    fn the_url_password_is_not_shown() {
        assert_eq!(
            super::redacted("rediss://default:hunter2@redis:6380/0"),
            "rediss://***@redis:6380/0"
        );
        let c = parse("[cluster]\nredis_url = \"redis://u:pw@h:1\"\n").unwrap();
        assert!(!format!("{:?}", c.cluster).contains("pw"));
    }
}
