//! What npm packages cost a hook: for a hook that requires nothing, one that requires request
//! and axios, and one that requires twilio (all from `tests/node-compat/hooks/node_modules`, so
//! run `scripts/setup` first), it prints the load time (resolve + compile the module graph, once
//! per generation), the first call on a fresh worker (evaluating the graph in that worker's
//! context), the worker's extra memory after it (RSS delta), the median and p99 of warm calls,
//! and a reload: the hook built again as a new generation's, evaluated on the worker before it
//! serves (`Engine::warm`), then its first call beside the warm median (issue 24's target: 2×).
//! Every hook does the same work per call (adds two claims), so the warm figures compare what the
//! packages cost per call: nothing, if the graph is really evaluated once per (worker, hook).
//!
//! `cargo bench --bench node_packages` (release build; a few seconds).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookgate::config::{HooksConfig, Trigger};
use hookgate::engine::program::ProgramBuilder;
use hookgate::engine::Engine;
use hookgate::hooks::Hook;
use support::{args, rss_kib};

const BODY: &str = r#"
module.exports = function (client, scope, audience, context, cb) {
  var access_token = {};
  access_token.scope = scope;
  access_token['https://example.com/tenant'] = client.tenant;
  access_token['https://example.com/tier'] = client.metadata.tier || 'free';
  cb(null, access_token);
};"#;

const WARM_CALLS: usize = 3000;

/// One call as the proxy makes it (`Engine::call` awaited on a runtime, not `call_blocking`,
/// whose polling would add its own sleeps to every figure).
fn call(engine: &Engine, hook: &Arc<hookgate::engine::Script>, id: &str) {
    thread_local! {
        static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
    }
    RT.with(|rt| rt.block_on(engine.call(hook, args(), id)))
        .unwrap_or_else(|e| panic!("{id}: {e:?}"));
}

/// `file` built as a generation's credentials-exchange hook (its module graph resolved and
/// compiled), and how many modules that graph has.
fn build(root: &Path, file: &Path, name: &str) -> (Arc<Hook>, usize) {
    let program = ProgramBuilder::new(root)
        .build(file)
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let modules = program.modules.len();
    let hook = Arc::new(Hook::standalone(
        name.to_owned(),
        Trigger::CredentialsExchange,
        file.to_path_buf(),
        Duration::from_secs(20),
        BTreeMap::new(),
        program,
    ));
    (hook, modules)
}

fn measure(root: &Path, dir: &Path, name: &str, requires: &str) {
    let file: PathBuf = dir.join(format!("{name}.js"));
    std::fs::write(&file, format!("{requires}\n{BODY}")).unwrap();
    let started = Instant::now();
    let (hook, modules) = build(root, &file, name);
    let load = started.elapsed();
    let engine = Engine::start(&HooksConfig {
        workers: Some(1),
        ..HooksConfig::default()
    })
    .unwrap();
    let before = rss_kib();
    let started = Instant::now();
    call(&engine, &hook, "first");
    let first = started.elapsed();
    let memory = rss_kib().saturating_sub(before);
    let mut times: Vec<Duration> = (0..WARM_CALLS)
        .map(|_| {
            let started = Instant::now();
            call(&engine, &hook, "warm");
            started.elapsed()
        })
        .collect();
    times.sort();
    // A reload: the same file built again as a new generation's hook, which the worker
    // evaluates before the generation serves (`Engine::warm`, as the reloader does); then its
    // first call.
    let (reloaded, _) = build(root, &file, name);
    let started = Instant::now();
    let warmed = engine.warm(vec![Arc::clone(&*reloaded)], Duration::from_secs(20));
    let warming = started.elapsed();
    assert_eq!(
        warmed, 1,
        "{name}: the worker did not evaluate the new generation"
    );
    // Both timed calls find the worker asleep, as a call after a quiet moment does.
    let pause = Duration::from_millis(50);
    std::thread::sleep(pause);
    let started = Instant::now();
    call(&engine, &reloaded, "after-reload");
    let after_reload = started.elapsed();
    std::thread::sleep(pause);
    let started = Instant::now();
    call(&engine, &reloaded, "second-after-reload");
    let second = started.elapsed();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let median = times[times.len() / 2];
    println!(
        "{name:<22} {modules:>5} modules  load {:>8.1} ms  first call {:>7.1} ms  worker +{:>6} KiB  warm median {:>6.1} µs  p99 {:>6.1} µs  \
         reload: evaluated on the worker in {:>6.1} ms; after 50 ms idle its first call {:>6.1} µs, second {:>6.1} µs: {:.2}×",
        load.as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3,
        memory,
        us(median),
        us(times[times.len() * 99 / 100]),
        warming.as_secs_f64() * 1e3,
        us(after_reload),
        us(second),
        after_reload.as_secs_f64() / second.as_secs_f64(),
    );
    engine.finish();
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node-compat/hooks");
    assert!(
        root.join("node_modules/request").is_dir(),
        "run scripts/setup first: {} has no node_modules",
        root.display()
    );
    // Inside the hooks folder, so `require` finds its node_modules; removed when done.
    let dir = tempfile::Builder::new()
        .prefix(".bench-")
        .tempdir_in(&root)
        .unwrap();
    measure(&root, dir.path(), "requires-nothing", "");
    measure(
        &root,
        dir.path(),
        "requires-request-axios",
        "var request = require('request');\nvar axios = require('axios@0.19.2');",
    );
    measure(
        &root,
        dir.path(),
        "requires-twilio",
        "var twilio = require('twilio');",
    );
}
