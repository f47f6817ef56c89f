//! The [`Live`] snapshot (what a request needs that can change while hookgate runs) and how one
//! is loaded from a configuration: its hooks compiled, its keys parsed ([`load`]). `hookgate
//! check`, `hookgate serve` and every reload load through here, so what `check` accepts is what
//! `serve` starts with and what a reload swaps in.
//!
//! Owns: the snapshot type and loading what a configuration names. Must not: parse the
//! configuration file (`Config::load` does), watch files or swap snapshots (the [`super::Reloader`]
//! does), or run hooks.

use std::sync::Arc;

use crate::config::{Config, Route};
use crate::hooks::Generation;
use crate::token::{KeyRing, SigningKey};

/// Everything a request needs that can change while hookgate runs, swapped as one.
#[derive(Debug)]
pub struct Live {
    /// 1 at start, +1 per reload that was swapped in.
    pub number: u64,
    /// The configuration in force. Settings that need a restart keep their values from start.
    pub config: Arc<Config>,
    pub generation: Arc<Generation>,
    /// hookgate's signing keys (required when a route re-signs tokens).
    pub keys: Option<KeyRing>,
}

impl Live {
    pub fn new(number: u64, config: Arc<Config>, loaded: Loaded) -> Live {
        Live {
            number,
            config,
            generation: Arc::new(loaded.generation),
            keys: loaded.keys,
        }
    }

    /// The route at an index of this snapshot's route list.
    pub fn route(&self, index: Option<usize>) -> Option<&Route> {
        index.map(|i| &self.config.routes[i])
    }
}

/// Everything a configuration needs besides itself: its hooks, compiled, and its keys, parsed.
/// `hookgate check` loads exactly this, so what it accepts is what `serve` will start with.
pub struct Loaded {
    pub generation: Generation,
    pub keys: Option<KeyRing>,
}

/// Load and validate what the configuration names. Every problem is reported, not the first.
pub fn load(config: &Config) -> Result<Loaded, Vec<String>> {
    let mut problems = Vec::new();
    let keys = match &config.token.signing_key {
        None => None,
        Some(path) => {
            let current = SigningKey::load(path).map_err(|e| {
                format!(
                    "token.signing_key: {e} (create one with `hookgate keys generate --out {}`)",
                    path.display()
                )
            });
            let previous: Vec<_> = config
                .token
                .previous_keys
                .iter()
                .filter_map(|p| match SigningKey::load(p) {
                    Ok(k) => Some(k),
                    Err(e) => {
                        problems.push(format!("token.previous_keys: {e}"));
                        None
                    }
                })
                .collect();
            match current {
                Ok(k) => Some(KeyRing::new(k, previous)),
                Err(e) => {
                    problems.push(e);
                    None
                }
            }
        }
    };
    let generation = match Generation::load(&config.hooks, config.base_dir()) {
        Ok(g) => Some(g),
        Err(e) => {
            problems.extend(e.problems);
            None
        }
    };
    match (generation, problems.is_empty()) {
        (Some(generation), true) => Ok(Loaded { generation, keys }),
        _ => Err(problems),
    }
}
