//! The outbox on its own: how long storing one event durably takes (the part of a signup's
//! answer the post-event path adds), and how many events per second the dispatcher delivers to
//! a no-op post-user-registration hook. The file lives in a temporary folder on the same disk as
//! the target folder (`BENCH_DIR` overrides), since fsync cost is the disk's.
//!
//!   cargo bench --bench outbox                  # 20000 events
//!   EVENTS=100000 cargo bench --bench outbox

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use hookgate::config::Config;
use hookgate::config::OutboxConfig;
use hookgate::config::{HooksConfig, Trigger};
use hookgate::hooks::Generation;
use hookgate::outbox::dispatch::Dispatcher;
use hookgate::outbox::{Event, Outbox};
use hookgate::reload::{Live, LiveHooks, Loaded};
use serde_json::json;

fn event(i: usize) -> Event {
    Event::new(
        Trigger::PostUserRegistration,
        "signup",
        Some("spa".into()),
        vec![
            json!({ "id": format!("auth0|{i:024}"), "tenant": "bench", "username": "bench",
                    "email": "bench@example.com", "emailVerified": false, "phoneNumber": null,
                    "phoneNumberVerified": false, "user_metadata": { "plan": "trial" },
                    "app_metadata": { "tier": "gold" } }),
            json!({ "requestLanguage": "en-us",
                    "connection": { "id": "con_1", "name": "Username-Password-Authentication", "tenant": "bench" } }),
        ],
    )
}

fn main() {
    let events: usize = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let base = std::env::var("BENCH_DIR").unwrap_or_else(|_| "target".into());
    let dir = tempfile::tempdir_in(base).unwrap();
    let outbox = Arc::new(Outbox::open(&dir.path().join("outbox.redb")).unwrap());

    // 1. One event per fsync'd transaction, as a signup stores it.
    let mut lat = Vec::with_capacity(2000);
    for i in 0..2000 {
        let t = Instant::now();
        outbox.append(&[event(i)]).unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "append one event (fsync'd): p50 {:.3} ms, p99 {:.3} ms",
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100]
    );

    // 2. The backlog, then the dispatcher drains it through a no-op hook.
    for chunk in (2000..events).collect::<Vec<_>>().chunks(1000) {
        let batch: Vec<_> = chunk.iter().map(|&i| event(i)).collect();
        outbox.append(&batch).unwrap();
    }
    let hooks_dir = dir.path().join("hooks/post-user-registration");
    std::fs::create_dir_all(&hooks_dir).unwrap();
    std::fs::write(
        hooks_dir.join("noop.js"),
        "module.exports = function (user, context, cb) { cb(); };",
    )
    .unwrap();
    let cfg = HooksConfig {
        dir: dir.path().join("hooks"),
        ..HooksConfig::default()
    };
    let generation = Generation::load(&cfg, dir.path()).unwrap();
    let engine = hookgate::engine::Engine::start(&cfg).unwrap();
    let dispatcher = Dispatcher {
        outbox: outbox.clone(),
        hooks: Arc::new(LiveHooks {
            engine: engine.clone(),
            runs: hookgate::runs::Runs::disabled(),
            live: Arc::new(ArcSwap::from_pointee(Live::new(
                1,
                Arc::new(
                    Config::parse(
                        &dir.path().join("hookgate.toml"),
                        "[upstream]\naddress = \"127.0.0.1:1\"\n",
                        &|_| None,
                    )
                    .unwrap(),
                ),
                Loaded {
                    generation,
                    keys: None,
                },
            ))),
        }),
        config: OutboxConfig::default(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let total = events.max(2000);
    let t = Instant::now();
    let mut delivered = 0;
    rt.block_on(async {
        loop {
            let n = dispatcher.run_once().await.unwrap();
            if n == 0 {
                break;
            }
            delivered += n;
        }
    });
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(delivered, total, "every event delivered");
    assert!(outbox.list().unwrap().is_empty());
    println!(
        "dispatcher, no-op hook, {} workers: {delivered} events in {secs:.2} s = {:.0} events/s",
        engine.workers(),
        delivered as f64 / secs
    );
}
