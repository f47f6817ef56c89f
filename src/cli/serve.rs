//! `hookgate serve`: load what `check` loads, then hand it to the server.
//!
//! Owns: the order of a start (everything loaded and checked before logging starts in the
//! configured format, and before anything listens). Must not: assemble the server (`crate::server`
//! does) or validate anything itself.

use std::path::Path;

use super::{check, init_logging, Failure};
use crate::server;

pub fn run(config: &Path) -> Result<(), Failure> {
    let (config, loaded) = check::load(config)?;
    init_logging(config.server.log_format);
    server::run(config, loaded).map_err(|e| Failure::failed(format!("{e:#}")))
}
