//! Shared helpers of the engine tests: hook folders in a tempdir, loading, a small HTTP server.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use hookgate::engine::Engine;
use hookgate::hooks::{Generation, Hook, HooksConfig, Trigger};
use tempfile::TempDir;

/// A hooks folder with `files` (paths relative to it).
pub fn hooks_dir(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

/// `[hooks]` parsed from TOML, with `dir = "."`.
pub fn config(toml_text: &str) -> HooksConfig {
    let mut cfg: HooksConfig = toml::from_str(toml_text).unwrap();
    cfg.dir = ".".into();
    cfg
}

pub fn load(dir: &Path, cfg: &HooksConfig) -> Generation {
    match Generation::load(cfg, dir) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

/// The loaded hook called `name` (`trigger-id/stem`).
pub fn hook(generation: &Generation, name: &str) -> Arc<Hook> {
    let trigger: Trigger = name.split('/').next().unwrap().parse().unwrap();
    generation
        .hooks_for(trigger, None, None)
        .into_iter()
        .find(|h| h.name == name)
        .unwrap_or_else(|| panic!("no hook {name}"))
}

/// One hook file as `credentials-exchange/<stem>.js`, loaded, plus an engine with `workers`.
pub fn single(source: &str, toml_text: &str, workers: usize) -> (TempDir, Arc<Hook>, Engine) {
    let dir = hooks_dir(&[("credentials-exchange/h.js", source)]);
    let mut cfg = config(toml_text);
    cfg.workers = Some(workers);
    let generation = load(dir.path(), &cfg);
    let h = hook(&generation, "credentials-exchange/h");
    let engine = Engine::start(&cfg).unwrap();
    (dir, h, engine)
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
