//! `[runs]`: the run records kept of every hook call (what the management API's runs routes and
//! live tail serve).
//!
//! Owns: the section's shape, defaults and validation, and the fact that all of it needs a
//! restart. Must not: open the store or record anything (the run records layer does, from this model).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{keep, Validator};

/// `[runs]` of hookgate.toml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunsConfig {
    /// Record every hook call. Default true; false records nothing (and captures nothing).
    pub enabled: bool,
    /// The newest records kept. Default 1000.
    pub max_records: usize,
    /// What the records kept may take, in MiB (console lines count). Default 16.
    pub max_mb: u64,
    /// A folder for `hookgate-runs.redb`, so records survive restarts (same bounds), relative to
    /// the configuration file's folder. Default: none, memory only.
    pub dir: Option<PathBuf>,
}

impl Default for RunsConfig {
    fn default() -> Self {
        RunsConfig {
            enabled: true,
            max_records: 1000,
            max_mb: 16,
            dir: None,
        }
    }
}

impl RunsConfig {
    /// Keep the running store's settings: it is opened once, at start.
    pub fn pin_boot(&mut self, running: &Self, changed: &mut Vec<String>) {
        keep(changed, "runs", self, running);
    }
}

impl Validator<'_> {
    /// `[runs]`; its `dir` is resolved against `base`, the configuration's folder.
    pub(super) fn runs(&mut self, raw: Option<Spanned<RunsConfig>>, base: &Path) -> RunsConfig {
        let runs = match raw {
            None => RunsConfig::default(),
            Some(r) => {
                let span = r.span();
                let r = r.into_inner();
                if r.max_records == 0 {
                    self.error(
                        span.clone(),
                        "runs.max_records",
                        "must be at least 1 (to record nothing, set `enabled = false`)",
                    );
                }
                if r.max_mb == 0 {
                    self.error(span, "runs.max_mb", "must be at least 1");
                }
                r
            }
        };
        RunsConfig {
            dir: runs.dir.as_ref().map(|d| base.join(d)),
            ..runs
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(
            Path::new("/etc/hg/hookgate.toml"),
            &format!("[upstream]\naddress = \"127.0.0.1:1\"\n{text}"),
            &|_| None,
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn runs_settings_are_read_and_checked_and_dir_is_relative_to_the_file() {
        assert_eq!(parse("").unwrap().runs, RunsConfig::default());
        let c = parse("[runs]\nenabled = false\nmax_records = 5\ndir = \"data/runs\"\n").unwrap();
        assert_eq!(
            c.runs,
            RunsConfig {
                enabled: false,
                max_records: 5,
                max_mb: 16,
                dir: Some(PathBuf::from("/etc/hg/data/runs")),
            }
        );
        let err = parse("[runs]\nmax_records = 0\n").unwrap_err();
        assert!(err.contains("runs.max_records"), "{err}");
        let err = parse("[runs]\nmax_rcords = 5\n").unwrap_err();
        assert!(err.contains("max_rcords"), "{err}");
    }
}
