//! `hookgate check`: load the configuration and everything it names (hooks compiled, keys
//! parsed) exactly as `serve` would, and say what is wrong, all of it at once.
//!
//! Owns: gathering every problem of a first run into one report ([`load`], which `serve` uses
//! too). Must not: validate anything itself (`Config::load` and `reload::load` do), or start
//! anything.

use std::path::Path;

use super::Failure;
use crate::config::Config;
use crate::reload::{self, Loaded};

pub fn run(config: &Path) -> Result<(), Failure> {
    let (c, loaded) = load(config)?;
    for w in &loaded.generation.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "{}: ok ({} route(s), {} hook(s) compiled, upstream {})",
        config.display(),
        c.routes.len(),
        loaded.generation.all_hooks().count(),
        c.upstream.address
    );
    Ok(())
}

/// The configuration and everything it names (hooks compiled, keys parsed), or exit code 2 with
/// every problem to print, one per line, each saying what to set. A first run meets several at
/// once (an unset variable, a missing key file, secrets), so the check does not stop at the
/// configuration file's own problems: when they leave it readable, what it names is checked too.
pub fn load(path: &Path) -> Result<(Config, Loaded), Failure> {
    let mut problems: Vec<String> = Vec::new();
    let config = match Config::load(path) {
        Ok(c) => Some(c),
        Err(errors) => {
            problems.extend(errors.0.iter().map(ToString::to_string));
            None
        }
    };
    // Only to look further: a copy read with a stand-in for every unset variable (the listen and
    // upstream overrides excepted: a stand-in there would be a problem of its own). Never served.
    let stand_in = match &config {
        Some(_) => None,
        None => std::fs::read_to_string(path).ok().and_then(|text| {
            let env = |k: &str| {
                std::env::var(k)
                    .ok()
                    .or_else(|| (!k.starts_with("HOOKGATE_")).then(|| "unset".to_string()))
            };
            Config::parse(path, &text, &env).ok()
        }),
    };
    match config.as_ref().or(stand_in.as_ref()).map(reload::load) {
        Some(Ok(loaded)) => {
            if let Some(config) = config {
                return Ok((config, loaded));
            }
        }
        Some(Err(more)) => {
            problems.extend(more.iter().map(|p| format!("{}: {p}", path.display())));
        }
        None => {}
    }
    let summary = format!(
        "hookgate: {} problem(s) in {} and what it names; nothing was started",
        problems.len(),
        path.display()
    );
    problems.push(summary);
    Err(Failure::invalid(problems.join("\n")))
}
