//! Engine benchmarks: a warm credentials-exchange call adding two claims, throughput at pool
//! sizes 1 and 2, and the memory each worker uses (RSS delta, printed).

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hookgate::config::{HooksConfig, Trigger};
use hookgate::engine::{Engine, Wait};
use hookgate::hooks::{Generation, Hook};
use support::{args, rss_kib};

const ADD_TWO_CLAIMS: &str = r#"module.exports = function (client, scope, audience, context, cb) {
  var access_token = {};
  access_token.scope = scope;
  access_token['https://example.com/tenant'] = client.tenant;
  access_token['https://example.com/tier'] = client.metadata.tier || 'free';
  cb(null, access_token);
};"#;

/// The same as an Auth0 Action (run behind hookgate's adapter).
const ADD_TWO_CLAIMS_ACTION: &str = r#"exports.onExecuteCredentialsExchange = async (event, api) => {
  api.accessToken.setCustomClaim('https://example.com/tenant', event.tenant.id);
  api.accessToken.setCustomClaim('https://example.com/tier', event.client.metadata.tier || 'free');
};"#;

fn setup(workers: usize) -> (tempfile::TempDir, Arc<Hook>, Engine) {
    setup_with(workers, ADD_TWO_CLAIMS)
}

fn setup_with(workers: usize, source: &str) -> (tempfile::TempDir, Arc<Hook>, Engine) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("credentials-exchange")).unwrap();
    std::fs::write(
        dir.path().join("credentials-exchange/add-claims.js"),
        source,
    )
    .unwrap();
    let cfg = HooksConfig {
        dir: dir.path().to_path_buf(),
        workers: Some(workers),
        ..HooksConfig::default()
    };
    let generation = Generation::load(&cfg, Path::new("/")).unwrap();
    let hook = generation
        .hooks_for(Trigger::CredentialsExchange, None, None)
        .remove(0);
    let engine = Engine::start(&cfg).unwrap();
    (dir, hook, engine)
}

/// One call at a time, as a request on an otherwise idle proxy makes it: the proxy spins on the
/// answer first then (`Wait::SpinFirst`); a caller with other work sleeps (`Wait::Sleep`) and
/// pays a thread wake-up per call.
fn warm_call(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (_dir, hook, engine) = setup(1);
    rt.block_on(engine.call(&hook, args(), "warm-up")).unwrap();
    for (name, wait) in [
        (
            "warm call: credentials-exchange adding two claims (pool 1)",
            Wait::SpinFirst,
        ),
        (
            "warm call: credentials-exchange adding two claims (pool 1), caller sleeps",
            Wait::Sleep,
        ),
    ] {
        c.bench_function(name, |b| {
            // One block_on per sample, not per call: the measured time is the call itself.
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        engine
                            .call_with(&hook, args(), "bench", wait)
                            .await
                            .unwrap();
                    }
                    start.elapsed()
                })
            })
        });
    }
}

/// A warm call of the Action that does what ADD_TWO_CLAIMS does: the adapter's cost (building
/// `event` and `api`, a promise, mapping the result) on top of the Hook's.
fn warm_action_call(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (_dir, hook, engine) = setup_with(1, ADD_TWO_CLAIMS_ACTION);
    assert_eq!(hook.kind, hookgate::hooks::Kind::Action);
    rt.block_on(engine.call(&hook, args(), "warm-up")).unwrap();
    c.bench_function(
        "warm call: the same two claims as an Action (pool 1)",
        |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        engine
                            .call_with(&hook, args(), "bench", Wait::SpinFirst)
                            .await
                            .unwrap();
                    }
                    start.elapsed()
                })
            })
        },
    );
}

fn throughput(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("throughput: 64 concurrent calls");
    const BATCH: u64 = 64;
    group.throughput(Throughput::Elements(BATCH));
    for workers in [1usize, 2] {
        let (_dir, hook, engine) = setup(workers);
        rt.block_on(engine.call(&hook, args(), "warm-up")).unwrap();
        group.bench_function(format!("pool {workers}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let calls: Vec<_> = (0..BATCH)
                            .map(|_| {
                                let (engine, hook) = (engine.clone(), hook.clone());
                                tokio::spawn(async move {
                                    engine.call(&hook, args(), "bench").await.unwrap()
                                })
                            })
                            .collect();
                        for c in calls {
                            c.await.unwrap();
                        }
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

/// Not a criterion measurement: start pools of 1 and 9 workers, warm every worker, and print
/// the RSS growth per extra worker.
fn memory_per_worker(_c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let measure = |workers: usize| {
        let before = rss_kib();
        let (dir, hook, engine) = setup(workers);
        // Enough concurrent calls that every worker runs the hook (and builds its context).
        // Spawned, so every call is queued before any is awaited (a bare `engine.call` future
        // submits nothing until polled, which would feed one worker at a time).
        rt.block_on(async {
            for _ in 0..200 {
                let calls: Vec<_> = (0..workers * 4)
                    .map(|_| {
                        let (engine, hook) = (engine.clone(), hook.clone());
                        tokio::spawn(async move { engine.call(&hook, args(), "mem").await })
                    })
                    .collect();
                for c in calls {
                    c.await.unwrap().unwrap();
                }
            }
        });
        std::thread::sleep(Duration::from_millis(200));
        let after = rss_kib();
        (after.saturating_sub(before), (dir, engine))
    };
    let (one, keep1) = measure(1);
    let (nine, keep9) = measure(9);
    let per_worker = nine.saturating_sub(one) as f64 / 8.0;
    println!("memory: pool of 1 = {one} KiB RSS delta; pool of 9 = {nine} KiB RSS delta; ~{per_worker:.0} KiB per warm worker (runtime + one hook context + 16 MiB reserved, mostly untouched, thread stack)");
    drop((keep1, keep9));
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = memory_per_worker, warm_call, warm_action_call, throughput
}
criterion_main!(benches);
