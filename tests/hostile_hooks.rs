//! One hook cannot starve the rest: a worker serves other calls while one waits on its API or
//! its timers, a call nobody starts in time gets 503 (Overloaded, counted), one hook cannot take
//! every slot, one call cannot open unbounded requests, and a hook that replaces built-ins
//! cannot break hookgate's own invocation code. Engine-level; no timing is asserted: good calls
//! are counted while hostile ones are held (by a gate server the test opens), and every wait is
//! bounded.

mod common;
mod engine_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::hookgate::Hookgate;
use common::oidc::{self, OidcServer};
use engine_support::*;
use hookgate::engine::{Engine, HookError};
use hookgate::hooks::Hook;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Answers nothing until [`Gate::open`]: each request waits, counted, then gets `200 ok`.
struct Gate {
    url: String,
    open: watch::Sender<bool>,
    seen: Arc<AtomicUsize>,
}

impl Gate {
    async fn start() -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/slow", listener.local_addr().unwrap());
        let (open, opened) = watch::channel(false);
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (mut opened, counter) = (opened.clone(), counter.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    if opened.wait_for(|o| *o).await.is_err() {
                        return;
                    }
                    let _ = sock
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                });
            }
        });
        Gate { url, open, seen }
    }

    fn open(&self) {
        self.open.send_replace(true);
    }

    /// Wait (bounded) until the server holds `n` requests.
    async fn holding(&self, n: usize) {
        for _ in 0..2000 {
            if self.seen.load(Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!(
            "the gate server got {} requests, expected {n}",
            self.seen.load(Ordering::SeqCst)
        );
    }
}

const GOOD: &str = "module.exports = function (client, scope, audience, context, cb) { cb(null, { n: client.n }); };";

/// Waits on `context.gate` (the gate server's URL), then answers.
const SLOW_API: &str = r#"module.exports = function (client, scope, audience, context, cb) {
    fetch(context.gate).then(function (r) { return r.text(); })
      .then(function (t) { cb(null, { slow: t, n: client.n }); }, cb);
};"#;

fn args(n: u64, gate: &str) -> Vec<Value> {
    vec![
        json!({"id": "c", "n": n}),
        json!(["read"]),
        json!("api"),
        json!({"gate": gate, "webtask": {"secrets": {}}}),
    ]
}

/// `fut`, or a panic after a minute: a regression must fail the test, not hang it (the gate
/// opens only after the good calls answered).
async fn bounded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within a minute"))
}

/// `count` calls of the good hook, all answered correctly (within a bounded wait).
async fn good_calls_all_answer(engine: &Engine, good: &Arc<Hook>, count: u64) {
    bounded("every good call answering", good_calls(engine, good, count)).await
}

async fn good_calls(engine: &Engine, good: &Arc<Hook>, count: u64) {
    let mut calls = Vec::new();
    for n in 0..count {
        let (engine, good) = (engine.clone(), good.clone());
        calls.push(tokio::spawn(async move {
            (n, engine.call(&good, args(n, ""), "good").await)
        }));
    }
    for c in calls {
        let (n, r) = c.await.unwrap();
        assert_eq!(r, Ok(json!({ "n": n })), "good call {n}");
    }
}

#[test]
fn a_worker_serves_other_calls_while_calls_wait_on_a_slow_api() {
    // One worker, four calls waiting on their API: before, each held the worker to the end.
    let (_dir, generation, engine) =
        engine_with(&[("good", GOOD), ("slow", SLOW_API)], "workers = 1\n");
    let (good, slow) = (named(&generation, "good"), named(&generation, "slow"));
    rt().block_on(async {
        let gate = Gate::start().await;
        let mut waiting = Vec::new();
        for n in 0..4 {
            let (engine, slow, url) = (engine.clone(), slow.clone(), gate.url.clone());
            waiting.push(tokio::spawn(async move {
                engine.call(&slow, args(n, &url), "slow").await
            }));
        }
        gate.holding(4).await;
        good_calls_all_answer(&engine, &good, 200).await;
        assert!(
            waiting.iter().all(|w| !w.is_finished()),
            "the slow calls are still waiting on their API"
        );
        gate.open();
        for (n, w) in waiting.into_iter().enumerate() {
            assert_eq!(w.await.unwrap(), Ok(json!({ "slow": "ok", "n": n })));
        }
    });
}

#[test]
fn a_call_past_its_deadline_while_waiting_is_ended_alone() {
    let (_dir, generation, engine) = engine_with(
        &[("short", SLOW_API), ("slow", SLOW_API)],
        "workers = 1\n[[hook]]\nfile = 'credentials-exchange/short.js'\ntimeout_ms = 200\n",
    );
    let (short, slow) = (named(&generation, "short"), named(&generation, "slow"));
    rt().block_on(async {
        let gate = Gate::start().await;
        let waiting = {
            let (engine, slow, url) = (engine.clone(), slow.clone(), gate.url.clone());
            tokio::spawn(async move { engine.call(&slow, args(1, &url), "slow").await })
        };
        gate.holding(1).await;
        assert_eq!(
            bounded(
                "the short call's timeout",
                engine.call(&short, args(2, &gate.url), "short")
            )
            .await,
            Err(HookError::Timeout)
        );
        // The worker's runtime was not recycled under the other call: it still gets its answer.
        gate.open();
        assert_eq!(
            bounded("the slow call's answer", waiting).await.unwrap(),
            Ok(json!({ "slow": "ok", "n": 1 }))
        );
    });
}

#[test]
fn timers_left_after_cb_do_not_keep_the_worker_from_other_calls() {
    let leftover_interval = "module.exports = function (c, s, a, ctx, cb) { cb(null, 'answered'); setInterval(function () {}, 0); };";
    let leftover_chain = "module.exports = function (c, s, a, ctx, cb) { cb(null, 'answered'); (function again() { setTimeout(again, 0); })(); };";
    let (_dir, generation, engine) = engine_with(
        &[
            ("good", GOOD),
            ("interval", leftover_interval),
            ("chain", leftover_chain),
        ],
        "workers = 1\n[[hook]]\nfile = 'credentials-exchange/interval.js'\ntimeout_ms = 60000\n[[hook]]\nfile = 'credentials-exchange/chain.js'\ntimeout_ms = 60000\n",
    );
    let good = named(&generation, "good");
    rt().block_on(async {
        for stem in ["interval", "chain"] {
            let h = named(&generation, stem);
            assert_eq!(
                engine.call(&h, args(0, ""), stem).await,
                Ok(json!("answered"))
            );
        }
        // Both keep firing on the only worker until their 60 s timeout; good calls still run.
        good_calls_all_answer(&engine, &good, 300).await;
    });
}

#[test]
fn good_calls_keep_answering_while_every_kind_of_hostile_hook_runs() {
    let cpu_loop = "module.exports = function (c, s, a, ctx, cb) { for (;;) {} };";
    let interval = "module.exports = function (c, s, a, ctx, cb) { cb(null, 'answered'); setInterval(function () {}, 0); };";
    let (_dir, generation, engine) = engine_with(
        &[
            ("good", GOOD),
            ("slow", SLOW_API),
            ("loop", cpu_loop),
            ("interval", interval),
            ("overrides", OVERRIDES),
        ],
        // The queue deadline is far off: this is about workers being free, not about overload.
        "workers = 2\nqueue_timeout_ms = 120000\n[[hook]]\nfile = 'credentials-exchange/loop.js'\ntimeout_ms = 300\n[[hook]]\nfile = 'credentials-exchange/interval.js'\ntimeout_ms = 60000\n",
    );
    let good = named(&generation, "good");
    rt().block_on(async {
        let gate = Gate::start().await;
        let mut hostile = Vec::new();
        // Slow API calls at a concurrency above the worker count.
        for n in 0..6 {
            let (engine, h, url) = (engine.clone(), named(&generation, "slow"), gate.url.clone());
            hostile.push(tokio::spawn(async move {
                ("slow", engine.call(&h, args(n, &url), "slow").await)
            }));
        }
        for stem in ["loop", "loop", "interval", "overrides"] {
            let (engine, h) = (engine.clone(), named(&generation, stem));
            hostile.push(tokio::spawn(async move {
                (stem, engine.call(&h, args(0, ""), stem).await)
            }));
        }
        good_calls_all_answer(&engine, &good, 300).await;
        gate.open();
        for h in hostile {
            let (stem, r) = h.await.unwrap();
            let expected = match stem {
                "loop" => r == Err(HookError::Timeout),
                // A slow call shares its worker with the loop when the loop is stopped: then it
                // is answered at once with the reason, never left hanging.
                "slow" => {
                    matches!(&r, Ok(v) if v["slow"] == "ok")
                        || matches!(&r, Err(HookError::Crashed(m)) if m.contains("recycled"))
                }
                "interval" => r == Ok(json!("answered")),
                "overrides" => {
                    r == Ok(json!({ "ok": true, "later": "timer", "then": "promise" }))
                        || matches!(&r, Err(HookError::Crashed(m)) if m.contains("recycled"))
                }
                _ => unreachable!(),
            };
            assert!(expected, "{stem}: {r:?}");
        }
    });
}

/// Replaces every built-in hookgate's glue used to call through, then uses cb, a timer and a
/// promise: all must still work, call after call.
const OVERRIDES: &str = r#"
Function.prototype.apply = function () { throw new Error('apply replaced'); };
Function.prototype.call = function () { throw new Error('call replaced'); };
Array.prototype.push = function () { throw new Error('push replaced'); };
Array.prototype.slice = function () { throw new Error('slice replaced'); };
Promise.prototype.then = function () { throw new Error('then replaced'); };
Promise.resolve = function () { throw new Error('resolve replaced'); };
JSON.stringify = function () { throw new Error('stringify replaced'); };
JSON.parse = function () { throw new Error('parse replaced'); };
Map.prototype.get = function () { throw new Error('get replaced'); };
Map.prototype.set = function () { throw new Error('set replaced'); };
Map.prototype.delete = function () { throw new Error('delete replaced'); };
Reflect.apply = function () { throw new Error('Reflect.apply replaced'); };
String.prototype.startsWith = function () { throw new Error('startsWith replaced'); };
module.exports = async function (client, scope, audience, context, cb) {
  const later = await new Promise(function (resolve) { setTimeout(resolve, 1, 'timer'); });
  process.nextTick(function () {});
  console.log('still logging');
  return { ok: true, later: later, then: 'promise' };
};
"#;

#[test]
fn a_hook_that_replaces_built_ins_cannot_break_the_invocation_code() {
    let (_dir, generation, engine) =
        engine_with(&[("overrides", OVERRIDES), ("good", GOOD)], "workers = 1\n");
    let (h, good) = (named(&generation, "overrides"), named(&generation, "good"));
    for _ in 0..3 {
        assert_eq!(
            engine.call_blocking(&h, args(0, ""), "overrides"),
            Ok(json!({ "ok": true, "later": "timer", "then": "promise" }))
        );
        assert_eq!(
            engine.call_blocking(&good, args(7, ""), "good"),
            Ok(json!({ "n": 7 }))
        );
    }
}

#[test]
fn hook_paths_show_the_virtual_hooks_folder_not_the_disk() {
    let (dir, generation, engine) = engine_with(
        &[(
            "where",
            "module.exports = function (c, s, a, ctx, cb) { cb(null, { dir: __dirname, file: __filename, stack: new Error('x').stack }); };",
        )],
        "",
    );
    let r = engine
        .call_blocking(&named(&generation, "where"), args(0, ""), "where")
        .unwrap();
    assert_eq!(r["dir"], "/hooks/credentials-exchange");
    assert_eq!(r["file"], "/hooks/credentials-exchange/where.js");
    let real = dir.path().canonicalize().unwrap();
    assert!(
        !r.to_string().contains(real.to_str().unwrap()),
        "the real path leaks: {r}"
    );
}

#[test]
fn a_call_no_worker_starts_in_time_is_overloaded_counted_and_never_runs() {
    // One slot in the whole pool, held by a call waiting on its API.
    let counting = r#"let n = 0;
module.exports = function (client, scope, audience, context, cb) {
  n += 1;
  if (client.n === 0) fetch(context.gate).then(function () { cb(null, n); }, cb);
  else cb(null, n);
};"#;
    let (_dir, generation, engine) = engine_with(
        &[("counting", counting)],
        // The hook's own cap is above the pool's one slot: the call waits for a worker.
        "workers = 1\nmax_workers = 1\ncalls_per_worker = 1\nqueue_timeout_ms = 500\nmax_concurrency_per_hook = 8\n",
    );
    let h = named(&generation, "counting");
    let before = engine.overloaded_total();
    rt().block_on(async {
        let gate = Gate::start().await;
        let held = {
            let (engine, h, url) = (engine.clone(), h.clone(), gate.url.clone());
            tokio::spawn(async move { engine.call(&h, args(0, &url), "held").await })
        };
        gate.holding(1).await;
        assert_eq!(
            bounded(
                "the refused answer",
                engine.call(&h, args(1, ""), "refused")
            )
            .await,
            Err(HookError::Overloaded)
        );
        assert_eq!(engine.overloaded_total(), before + 1);
        assert!(hookgate::engine::metrics().contains("hookgate_hook_overloaded_total "));
        gate.open();
        assert_eq!(held.await.unwrap(), Ok(json!(1)));
        // The refused call was skipped when the worker reached it: the next call is the 2nd run.
        assert_eq!(engine.call(&h, args(2, ""), "next").await, Ok(json!(2)));
    });
    // The blocking caller is bounded the same way.
    assert_eq!(
        engine.call_blocking(&h, args(3, ""), "blocking"),
        Ok(json!(3))
    );
}

#[test]
fn background_calls_wait_for_a_worker_past_the_queue_deadline_instead_of_failing() {
    let (_dir, generation, engine) = engine_with(
        &[("slow", SLOW_API), ("good", GOOD)],
        "workers = 1\nmax_workers = 1\ncalls_per_worker = 1\nqueue_timeout_ms = 100\nmax_concurrency_per_hook = 8\n",
    );
    let (slow, good) = (named(&generation, "slow"), named(&generation, "good"));
    rt().block_on(async {
        let gate = Gate::start().await;
        let held = {
            let (engine, slow, url) = (engine.clone(), slow.clone(), gate.url.clone());
            tokio::spawn(async move { engine.call(&slow, args(0, &url), "held").await })
        };
        gate.holding(1).await;
        // The outbox's way: queued behind the held call, with no deadline.
        let patient = {
            let (engine, good) = (engine.clone(), good.clone());
            tokio::spawn(async move { engine.call_patiently(&good, args(5, ""), "event").await })
        };
        // A request-path call queued after it is refused: the deadline has passed for both.
        assert_eq!(
            bounded(
                "the refused answer",
                engine.call(&good, args(6, ""), "request")
            )
            .await,
            Err(HookError::Overloaded)
        );
        assert!(!patient.is_finished(), "the background call still waits");
        gate.open();
        assert_eq!(
            bounded("the held answer", held).await.unwrap(),
            Ok(json!({ "slow": "ok", "n": 0 }))
        );
        assert_eq!(
            bounded("the patient answer", patient).await.unwrap(),
            Ok(json!({ "n": 5 }))
        );
    });
}

#[test]
fn one_hook_at_its_max_concurrency_leaves_the_other_slots_to_other_hooks() {
    let (_dir, generation, engine) = engine_with(
        &[("good", GOOD), ("slow", SLOW_API)],
        "workers = 1\ncalls_per_worker = 8\nqueue_timeout_ms = 2000\nmax_concurrency_per_hook = 64\n[[hook]]\nfile = 'credentials-exchange/slow.js'\nmax_concurrency = 2\n",
    );
    let (good, slow) = (named(&generation, "good"), named(&generation, "slow"));
    rt().block_on(async {
        let gate = Gate::start().await;
        let mut calls = Vec::new();
        for n in 0..3 {
            let (engine, slow, url) = (engine.clone(), slow.clone(), gate.url.clone());
            calls.push(tokio::spawn(async move {
                engine.call(&slow, args(n, &url), "slow").await
            }));
        }
        gate.holding(2).await;
        good_calls_all_answer(&engine, &good, 50).await;
        // The third slow call waited for a slot past the queue deadline.
        let mut results = Vec::new();
        let mut overloaded = 0;
        for _ in 0..1000 {
            if calls.iter().any(|c| c.is_finished()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        gate.open();
        for c in calls {
            match c.await.unwrap() {
                Err(HookError::Overloaded) => overloaded += 1,
                r => results.push(r),
            }
        }
        assert_eq!(overloaded, 1, "{results:?}");
        assert!(results
            .iter()
            .all(|r| matches!(r, Ok(v) if v["slow"] == "ok")));
        assert_eq!(
            gate.seen.load(Ordering::SeqCst),
            2,
            "the refused call never ran"
        );
    });
}

#[test]
fn one_call_cannot_have_more_outbound_requests_in_flight_than_its_cap() {
    // Over its cap, a call's requests wait for a slot (as behind an agent's maxSockets): the
    // server never holds more than the cap, and every request completes once slots free up.
    let flood = r#"module.exports = async function (client, scope, audience, context, cb) {
  const all = [];
  for (let i = 0; i < 6; i++) all.push(fetch(context.gate).then(function (r) { return r.text(); }));
  const bodies = await Promise.all(all);
  cb(null, { ok: bodies.filter(function (b) { return b === 'ok'; }).length });
};"#;
    let (_dir, generation, engine) = engine_with(
        &[("flood", flood)],
        "workers = 1\nmax_requests_per_call = 4\n",
    );
    let h = named(&generation, "flood");
    rt().block_on(async {
        let gate = Gate::start().await;
        let call = engine.call(&h, args(0, &gate.url), "flood");
        let held = async {
            gate.holding(4).await;
            // Room for a fifth request to arrive, were the cap not holding it back.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let held = gate.seen.load(Ordering::SeqCst);
            gate.open();
            held
        };
        let (r, held) = tokio::join!(call, held);
        assert_eq!(held, 4, "the server held more requests than the call's cap");
        assert_eq!(r.unwrap()["ok"], 6);
        assert_eq!(gate.seen.load(Ordering::SeqCst), 6);
    });
}

/// Every log line of this test binary (see `engine_support::global_logs`).
fn logs() -> &'static LogBuffer {
    global_logs()
}

#[test]
fn concurrent_calls_on_one_worker_each_get_their_own_result_and_console_lines() {
    let logs = logs();
    let interleaved = r#"module.exports = function (client, scope, audience, context, cb) {
  console.log('start of call ' + client.n);
  fetch(context.gate).then(function () {
    setTimeout(function () {
      console.log('end of call ' + client.n);
      cb(null, { n: client.n, env: process.env.MINE || null });
    }, 1);
  });
  process.env.MINE = 'call ' + client.n;
};"#;
    let (_dir, generation, engine) = engine_with(&[("interleaved", interleaved)], "workers = 1\n");
    let h = named(&generation, "interleaved");
    rt().block_on(async {
        let gate = Gate::start().await;
        let mut calls = Vec::new();
        for n in 0..5u64 {
            let (engine, h, url) = (engine.clone(), h.clone(), gate.url.clone());
            calls.push(tokio::spawn(async move {
                engine
                    .call(&h, args(n, &url), &format!("attr-req-{n}"))
                    .await
            }));
        }
        gate.holding(5).await;
        gate.open();
        for (n, c) in calls.into_iter().enumerate() {
            assert_eq!(
                c.await.unwrap(),
                Ok(json!({ "n": n, "env": format!("call {n}") }))
            );
        }
    });
    drop(engine);
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    for n in 0..5 {
        for what in ["start of call", "end of call"] {
            let line = text
                .lines()
                .find(|l| l.contains(&format!("{what} {n}")))
                .unwrap_or_else(|| panic!("no line {what} {n} in:\n{text}"));
            assert!(line.contains(&format!("request_id=attr-req-{n}")), "{line}");
        }
    }
}

/// Holds its call on the gate server when the request asks (`hold`), else answers at once.
const HOLDING_CLAIMS: &str = r#"module.exports = function (client, scope, audience, context, cb) {
  if (context.body.hold) return fetch(context.body.hold).then(function () { cb(null, {}); }, cb);
  cb(null, {});
};"#;

#[test]
fn a_token_request_no_worker_can_start_gets_503_in_the_oauth_shape_and_is_counted() {
    let rt = rt();
    let gate = rt.block_on(Gate::start());
    let idp = OidcServer::start();
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks").join("credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("claims.js"), HOLDING_CLAIMS).unwrap();
    // One call slot in the whole pool: a held request takes it.
    let hg = Hookgate::start_in(
        dir,
        &idp.addr(),
        "",
        "",
        "[[route]]\nname = \"token\"\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\n\
         upstream_path = \"/token\"\naudience_param = \"resource\"\n\
         [hooks]\ndir = \"hooks\"\nworkers = 1\nmax_workers = 1\ncalls_per_worker = 1\nqueue_timeout_ms = 300\n\
         max_concurrency_per_hook = 8\n",
    );
    let form = |hold: Option<&str>| {
        let mut p = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", oidc::POST_CLIENT_ID.to_owned()),
            ("client_secret", oidc::POST_CLIENT_SECRET.to_owned()),
            ("audience", oidc::AUDIENCE.to_owned()),
        ];
        if let Some(url) = hold {
            p.push(("hold", url.to_owned()));
        }
        p
    };
    let url = hg.url("/oauth/token");
    rt.block_on(async {
        let client = reqwest::Client::new();
        let held = tokio::spawn(client.post(&url).form(&form(Some(&gate.url))).send());
        gate.holding(1).await;
        let refused = bounded(
            "the refused answer",
            client.post(&url).form(&form(None)).send(),
        )
        .await
        .unwrap();
        assert_eq!(refused.status(), 503);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable", "{body}");
        assert!(body["error_description"].is_string(), "{body}");
        let metrics = reqwest::get(hg.admin_url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("hookgate_hook_overloaded_total 1\n"),
            "{metrics}"
        );
        gate.open();
        let held = bounded("the held answer", held).await.unwrap().unwrap();
        assert_eq!(held.status(), 200);
    });
}

#[test]
fn cpu_loops_on_every_worker_do_not_starve_good_calls_and_a_hog_runs_one_call_at_a_time() {
    // One worker, and a hook that loops on three calls at once: before, the good calls waited
    // behind the loops until the queue deadline and were refused (503). The pool grows when
    // every worker is held by running JS, and once a call of the loop was stopped the hook
    // runs one call at a time.
    let cpu_loop = "module.exports = function (c, s, a, ctx, cb) { for (;;) {} };";
    let (_dir, generation, engine) = engine_with(
        &[("good", GOOD), ("loop", cpu_loop)],
        "workers = 1\nqueue_timeout_ms = 800\n[[hook]]\nfile = 'credentials-exchange/loop.js'\ntimeout_ms = 3000\n",
    );
    let (good, spin) = (named(&generation, "good"), named(&generation, "loop"));
    rt().block_on(async {
        let loops: Vec<_> = (0..3)
            .map(|_| {
                let (engine, h) = (engine.clone(), spin.clone());
                tokio::spawn(async move { engine.call(&h, args(0, ""), "loop").await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        good_calls_all_answer(&engine, &good, 50).await;
        assert_eq!(engine.overloaded_total(), 0, "a good call was refused");
        for l in loops {
            assert_eq!(l.await.unwrap(), Err(HookError::Timeout));
        }
        // The loop hook has hogged a worker: two more calls of it do not run side by side,
        // so the second waits past the queue deadline and is refused.
        let (a, b) = tokio::join!(
            engine.call(&spin, args(0, ""), "loop"),
            engine.call(&spin, args(0, ""), "loop")
        );
        let mut outcomes = [a, b];
        outcomes.sort_by_key(|r| r == &Err(HookError::Overloaded));
        assert_eq!(
            outcomes,
            [Err(HookError::Timeout), Err(HookError::Overloaded)]
        );
        good_calls_all_answer(&engine, &good, 20).await;
    });
}
