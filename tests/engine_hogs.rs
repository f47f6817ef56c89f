//! Hooks that hog the CPU run at the lowest CPU priority: a hook stopped in a CPU loop, or one
//! whose call burns more than `[hooks] call_cpu_ms` of CPU, is marked hogged; its later
//! calls run on the low-priority workers (`hookgate-hog-N` threads, nice 10), what it left after
//! cb on the shared workers stops, and good hooks beside it keep answering. Engine-level; no
//! timing is asserted: every wait is bounded and checks a state, never a duration.

mod engine_support;

use std::sync::Arc;
use std::time::Duration;

use engine_support::*;
use hookgate::engine::{Engine, HookError};
use hookgate::hooks::Hook;
use serde_json::{json, Value};

const GOOD: &str = "module.exports = function (client, scope, audience, context, cb) { cb(null, { n: client.n }); };";

fn args(n: u64) -> Vec<Value> {
    vec![
        json!({"id": "c", "n": n}),
        json!(["read"]),
        json!("api"),
        json!({"webtask": {"secrets": {}}}),
    ]
}

async fn good_calls_all_answer(engine: &Engine, good: &Arc<Hook>, count: u64) {
    let calls = async {
        for n in 0..count {
            assert_eq!(
                engine.call(good, args(n), "good").await,
                Ok(json!({ "n": n })),
                "good call {n}"
            );
        }
    };
    tokio::time::timeout(Duration::from_secs(60), calls)
        .await
        .expect("the good calls did not all answer within a minute");
}

/// Wait (bounded) until `what` holds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..600 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within 30 s");
}

/// `(thread name, nice value)` of this process's threads whose name starts with `prefix`.
fn threads(prefix: &str) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        // `pid (comm) state ppid ...`: comm may hold spaces, so split after its last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        // Fields after comm start at field 3 (state); nice is field 19.
        let nice: i64 = stat[close + 2..]
            .split(' ')
            .nth(19 - 3)
            .unwrap()
            .parse()
            .unwrap();
        if name.starts_with(prefix) {
            out.push((name, nice));
        }
    }
    out
}

#[test]
fn a_hook_stopped_in_a_cpu_loop_runs_its_later_calls_on_low_priority_workers() {
    let cpu_loop = "module.exports = function (c, s, a, ctx, cb) { for (;;) {} };";
    let (_dir, generation, engine) = engine_with(
        &[("good", GOOD), ("loop", cpu_loop)],
        "workers = 1\nqueue_timeout_ms = 5000\n[[hook]]\nfile = 'credentials-exchange/loop.js'\ntimeout_ms = 300\n",
    );
    let (good, spin) = (named(&generation, "good"), named(&generation, "loop"));
    assert!(!spin.is_hogged());
    rt().block_on(async {
        assert_eq!(
            engine.call(&spin, args(0), "loop").await,
            Err(HookError::Timeout)
        );
        eventually("the loop hook being marked hogged", || spin.is_hogged()).await;
        assert_eq!(
            engine.low_priority_calls(),
            0,
            "its first call ran on a shared worker"
        );
        assert!(hookgate::engine::metrics().contains("hookgate_hook_hogged_total "));

        let again = {
            let (engine, spin) = (engine.clone(), spin.clone());
            tokio::spawn(async move { engine.call(&spin, args(0), "loop").await })
        };
        // The good hook keeps its shared worker while the loop runs again.
        good_calls_all_answer(&engine, &good, 50).await;
        assert_eq!(again.await.unwrap(), Err(HookError::Timeout));
        assert_eq!(
            engine.low_priority_calls(),
            1,
            "its later call went to the low-priority pool"
        );
        let hogs = threads("hookgate-hog-");
        assert!(!hogs.is_empty(), "a low-priority worker runs: {hogs:?}");
        assert!(
            hogs.iter().all(|(_, nice)| *nice == 10),
            "low-priority workers run at nice 10: {hogs:?}"
        );
        let shared = threads("hookgate-js-");
        assert!(
            !shared.is_empty() && shared.iter().all(|(_, nice)| *nice == 0),
            "shared workers keep the normal priority: {shared:?}"
        );
        assert!(hookgate::engine::metrics().contains("hookgate_hook_low_priority_workers "));
    });
}

#[test]
fn a_hook_whose_timers_burn_cpu_after_cb_is_marked_and_its_leftover_work_stops() {
    let logs = global_logs();
    // The stem names this test's log lines.
    let interval = "module.exports = function (c, s, a, ctx, cb) { cb(null, 'answered'); setInterval(function () { Math.sqrt(2); }, 0); };";
    let (_dir, generation, engine) = engine_with(
        &[("good", GOOD), ("burn-after-cb", interval)],
        "workers = 1\ncall_cpu_ms = 20\nqueue_timeout_ms = 5000\n[[hook]]\nfile = 'credentials-exchange/burn-after-cb.js'\ntimeout_ms = 120000\n",
    );
    let (good, burn) = (
        named(&generation, "good"),
        named(&generation, "burn-after-cb"),
    );
    let stopped = || {
        String::from_utf8_lossy(&logs.0.lock().unwrap())
            .lines()
            .any(|l| {
                l.contains("burn-after-cb")
                    && l.contains("the work its call left after cb on a shared worker is stopped")
            })
    };
    rt().block_on(async {
        assert_eq!(
            engine.call(&burn, args(0), "burn").await,
            Ok(json!("answered"))
        );
        // Its interval runs on the only shared worker until it has used the budget (never
        // until its two-minute timeout); good calls answer meanwhile.
        good_calls_all_answer(&engine, &good, 20).await;
        eventually("the interval hook being marked hogged", || burn.is_hogged()).await;
        eventually("its interval on the shared worker being stopped", stopped).await;
        good_calls_all_answer(&engine, &good, 50).await;
        // Its later calls still answer, from a low-priority worker.
        assert_eq!(
            engine.call(&burn, args(1), "burn").await,
            Ok(json!("answered"))
        );
        assert_eq!(engine.low_priority_calls(), 1);
        assert!(!good.is_hogged(), "a good hook beside it is never marked");
    });
}

#[test]
fn a_hook_within_its_cpu_budget_is_not_marked() {
    // Timers and a promise chain after cb that use little CPU: the ordinary after-cb work
    // (a notification, a retry) keeps running on the shared workers to its end.
    let light = r#"module.exports = function (c, s, a, ctx, cb) {
  cb(null, 'answered');
  let n = 0;
  const t = setInterval(function () { if (++n === 20) clearInterval(t); }, 1);
};"#;
    let (_dir, generation, engine) = engine_with(&[("light", light)], "workers = 1\n");
    let h = named(&generation, "light");
    rt().block_on(async {
        for n in 0..20 {
            assert_eq!(
                engine.call(&h, args(n), "light").await,
                Ok(json!("answered"))
            );
        }
    });
    // Let the last intervals run out (the engine finishes held calls before it stops).
    engine.finish();
    assert!(!h.is_hogged());
}

#[test]
fn a_hook_whose_invocation_burns_cpu_is_marked_from_its_second_call_on_a_worker() {
    // A fixed amount of work (no clock): tens of millions of steps, far over a 5 ms budget.
    let heavy = r#"module.exports = function (c, s, a, ctx, cb) {
  let x = 0;
  for (let i = 0; i < 3000000; i++) x = (x + i * 7) % 1000003;
  cb(null, { x: x > -1 });
};"#;
    let (_dir, generation, engine) = engine_with(
        &[("good", GOOD), ("heavy", heavy)],
        "workers = 1\ncall_cpu_ms = 5\nqueue_timeout_ms = 5000\n",
    );
    let (good, h) = (named(&generation, "good"), named(&generation, "heavy"));
    rt().block_on(async {
        assert_eq!(
            engine.call(&h, args(0), "heavy").await,
            Ok(json!({ "x": true }))
        );
        assert!(
            !h.is_hogged(),
            "a worker's first call of a hook (which may load packages) is not counted"
        );
        good_calls_all_answer(&engine, &good, 5).await;
        assert_eq!(
            engine.call(&h, args(1), "heavy").await,
            Ok(json!({ "x": true }))
        );
        // Marked once the entry that answered ends, which may be after the answer arrives.
        eventually("its second call going over the budget", || h.is_hogged()).await;
        // It still answers, from a low-priority worker.
        let (a, b) = tokio::join!(
            engine.call(&h, args(2), "heavy"),
            engine.call(&h, args(3), "heavy")
        );
        assert_eq!((a, b), (Ok(json!({ "x": true })), Ok(json!({ "x": true }))));
        assert_eq!(engine.low_priority_calls(), 2);
        good_calls_all_answer(&engine, &good, 20).await;
        assert!(!good.is_hogged());
    });
}

#[test]
fn a_heavy_hooks_waiting_work_after_cb_still_completes() {
    // A post-event hook's notification sent after cb is its side effect: being marked for the
    // CPU its invocation used must not cut work that only waits (a timer, a request).
    let rt = rt();
    let (url, mut seen) = rt.block_on(echo_server());
    let heavy = format!(
        r#"module.exports = function (c, s, a, ctx, cb) {{
  let x = 0;
  for (let i = 0; i < 3000000; i++) x = (x + i * 7) % 1000003;
  cb(null, {{ x: x > -1 }});
  setTimeout(function () {{ fetch('{url}/later?n=' + c.n); }}, 300);
}};"#
    );
    let (_dir, generation, engine) = engine_with(
        &[("heavy-notify", &heavy)],
        "workers = 1\ncall_cpu_ms = 5\nqueue_timeout_ms = 5000\n",
    );
    let h = named(&generation, "heavy-notify");
    rt.block_on(async {
        for n in 0..2 {
            assert_eq!(
                engine.call(&h, args(n), "heavy").await,
                Ok(json!({ "x": true }))
            );
        }
        // The second call (the worker's context is warm) went over the budget.
        eventually("the hook being marked", || h.is_hogged()).await;
    });
    let mut paths: Vec<String> = (0..2)
        .map(|_| {
            next_request(&rt, &mut seen)["path"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    paths.sort();
    assert_eq!(paths, ["/later?n=0", "/later?n=1"]);
}
