//! Hostile hooks are stopped or contained while good calls on the same engine keep succeeding.

mod engine_support;

use std::sync::Arc;

use engine_support::*;
use hookgate::engine::{Engine, HookError, HookFailure};
use hookgate::hooks::Hook;
use serde_json::{json, Value};

const GOOD: &str = "module.exports = function (client, scope, audience, context, cb) { cb(null, { scope: scope, 'https://x.example/n': client.n }); };";

const HOSTILE: &[(&str, &str)] = &[
    ("credentials-exchange/infinite-loop.js", "module.exports = function (c, s, a, ctx, cb) { for (;;) {} };"),
    ("credentials-exchange/memory-bomb.js", "module.exports = function (c, s, a, ctx, cb) { var a = []; for (;;) { a.push(new Array(100000).fill('x')); } };"),
    ("credentials-exchange/deep-recursion.js", "module.exports = function (c, s, a, ctx, cb) { function f(n) { return f(n + 1) + 1; } cb(null, f(0)); };"),
    ("credentials-exchange/huge-output.js", "module.exports = function (c, s, a, ctx, cb) { cb(null, { big: 'x'.repeat(8 * 1024 * 1024) }); };"),
    ("credentials-exchange/log-flood.js", "module.exports = function (c, s, a, ctx, cb) { for (var i = 0; i < 100000; i++) console.log('spam ' + i + ' ' + 'y'.repeat(100)); cb(null, 'flooded'); };"),
    ("credentials-exchange/never-calls-cb.js", "module.exports = function (c, s, a, ctx, cb) { setTimeout(function () {}, 600000); };"),
    ("credentials-exchange/calls-cb-twice.js", "module.exports = function (c, s, a, ctx, cb) { cb(null, 'once'); cb(null, 'twice'); };"),
    ("credentials-exchange/throws.js", "module.exports = function (c, s, a, ctx, cb) { throw new Error('boom'); };"),
    ("credentials-exchange/string-error.js", "module.exports = function (c, s, a, ctx, cb) { cb('plain string failure'); };"),
    ("credentials-exchange/busy-after-cb.js", "module.exports = function (c, s, a, ctx, cb) { cb(null, 'answered'); setTimeout(function () { for (;;) {} }, 0); };"),
];

fn setup() -> (tempfile::TempDir, hookgate::hooks::Generation, Engine) {
    let mut files = vec![("credentials-exchange/good.js", GOOD)];
    files.extend_from_slice(HOSTILE);
    let dir = hooks_dir(&files);
    let mut hooks_toml = String::from(
        // A queue deadline far above what the hostile hooks hold workers for (a log flood takes
        // seconds in a debug build): these tests are about containment, not overload.
        "workers = 2\nmemory_limit_mb = 64\nstack_limit_kb = 512\nmax_log_bytes = 4096\nqueue_timeout_ms = 120000\n",
    );
    for (file, _) in HOSTILE {
        // Short timeouts only where the timeout is the expected end; no timing is asserted.
        let timeout = if file.contains("loop") || file.contains("never") || file.contains("busy") {
            300
        } else {
            20_000
        };
        hooks_toml.push_str(&format!(
            "[[hook]]\nfile = \"{file}\"\ntimeout_ms = {timeout}\n"
        ));
    }
    let cfg = config(&hooks_toml);
    let generation = load(dir.path(), &cfg);
    let engine = Engine::start(&cfg).unwrap();
    (dir, generation, engine)
}

fn good_args(n: u64) -> Vec<Value> {
    vec![
        json!({"id": "c", "n": n}),
        json!(["read"]),
        json!("api"),
        json!({"webtask": {"secrets": {}}}),
    ]
}

fn expect(name: &str, r: &Result<Value, HookError>) {
    let ok = match name {
        "infinite-loop" | "never-calls-cb" => matches!(r, Err(HookError::Timeout)),
        "memory-bomb" => matches!(r, Err(HookError::Crashed(m)) if m.contains("out of memory")),
        "deep-recursion" => matches!(r, Err(HookError::Crashed(m)) if m.contains("stack overflow")),
        "huge-output" => {
            matches!(r, Err(HookError::Crashed(m)) if m.contains("max_response_bytes"))
        }
        "log-flood" => r == &Ok(json!("flooded")),
        "calls-cb-twice" => r == &Ok(json!("once")),
        "throws" => {
            r == &Err(HookError::Failed(HookFailure {
                class: "Error".into(),
                message: "boom".into(),
                user_message: None,
            }))
        }
        "string-error" => {
            r == &Err(HookError::Failed(HookFailure {
                class: "string".into(),
                message: "plain string failure".into(),
                user_message: None,
            }))
        }
        "busy-after-cb" => r == &Ok(json!("answered")),
        _ => unreachable!(),
    };
    assert!(ok, "{name}: unexpected result {r:?}");
}

#[test]
fn each_hostile_hook_gets_its_contained_result() {
    let (_dir, generation, engine) = setup();
    let good = hook(&generation, "credentials-exchange/good");
    for (file, _) in HOSTILE {
        let name = file
            .trim_start_matches("credentials-exchange/")
            .trim_end_matches(".js");
        let h = hook(&generation, &format!("credentials-exchange/{name}"));
        let r = engine.call_blocking(&h, good_args(0), name);
        expect(name, &r);
        // The worker that ran it (recycled or not) still serves good calls.
        for n in 0..4 {
            assert_eq!(
                engine.call_blocking(&good, good_args(n), "good").unwrap()["https://x.example/n"],
                json!(n)
            );
        }
    }
}

#[test]
fn good_calls_keep_succeeding_while_hostile_hooks_run_concurrently() {
    let (_dir, generation, engine) = setup();
    let good = hook(&generation, "credentials-exchange/good");
    let hostile: Vec<(String, Arc<Hook>)> = HOSTILE
        .iter()
        .map(|(file, _)| {
            let name = file
                .trim_start_matches("credentials-exchange/")
                .trim_end_matches(".js")
                .to_owned();
            let h = hook(&generation, &format!("credentials-exchange/{name}"));
            (name, h)
        })
        .collect();
    rt().block_on(async {
        let mut bad = Vec::new();
        for round in 0..2 {
            for (name, h) in &hostile {
                let (engine, h, name) = (engine.clone(), h.clone(), name.clone());
                bad.push(tokio::spawn(async move {
                    let r = engine
                        .call(&h, good_args(0), &format!("{name}-{round}"))
                        .await;
                    (name, r)
                }));
            }
        }
        let mut good_calls = Vec::new();
        for n in 0..300u64 {
            let (engine, good) = (engine.clone(), good.clone());
            good_calls.push(tokio::spawn(async move {
                engine.call(&good, good_args(n), "good").await
            }));
        }
        for (n, g) in good_calls.into_iter().enumerate() {
            let v = g
                .await
                .unwrap()
                .expect("a good call failed while hostile hooks ran");
            assert_eq!(v, json!({"scope": ["read"], "https://x.example/n": n}));
        }
        for b in bad {
            let (name, r) = b.await.unwrap();
            // A worker holds several calls: a hostile call that shared its worker with one that
            // crashed or looped is ended with it, with that reason (a good call never waits on
            // a worker, so never shares one this way).
            if matches!(&r, Err(HookError::Crashed(m)) if m.contains("recycled")) {
                continue;
            }
            expect(&name, &r);
        }
    });
}

#[test]
fn hooks_have_no_filesystem_process_or_environment_access() {
    // `process` and `require('fs')` exist, as packages need them, but describe no machine: the
    // environment is empty and every filesystem or process function throws.
    let (_dir, h, engine) = single(
        r#"module.exports = function (cb) {
          let fsError, exitError;
          try { require('fs').readFileSync('/etc/passwd'); } catch (e) { fsError = e.code; }
          try { process.exit(0); } catch (e) { exitError = e.code; }
          cb(null, [typeof std, typeof os, typeof Deno, typeof require, typeof fetch, typeof setTimeout, typeof console.log,
            Object.keys(process.env), process.cwd(), fsError, exitError]);
        };"#,
        "",
        1,
    );
    let r = engine.call_blocking(&h, vec![], "r").unwrap();
    assert_eq!(
        r,
        json!([
            "undefined",
            "undefined",
            "undefined",
            "function",
            "function",
            "function",
            "function",
            [],
            "/",
            "ERR_HOOKGATE_UNSUPPORTED",
            "ERR_HOOKGATE_UNSUPPORTED"
        ])
    );
}
