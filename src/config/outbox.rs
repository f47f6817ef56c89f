//! `[outbox]`: where the durable queue of post-events lives and its delivery policy's numbers.
//!
//! Owns: the section's shape, defaults and validation, and the fact that all of it needs a
//! restart. Must not: open the file or schedule anything; the outbox does, from this model (its
//! retry policy, `OutboxConfig::backoff`, stays with it).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{keep, Validator};

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
        }
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
    /// `[outbox]`; its `path` is resolved against `base`, the configuration's folder.
    pub(super) fn outbox(
        &mut self,
        raw: Option<Spanned<OutboxConfig>>,
        base: &Path,
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
                        span,
                        "outbox.retry_base_ms",
                        "must be greater than 0 and at most outbox.retry_max_ms",
                    );
                }
                o
            }
        };
        OutboxConfig {
            path: base.join(&outbox.path),
            ..outbox
        }
    }
}
