//! State between requests: one context per (worker, hook). Hooks never see each other's globals;
//! a hook's module scope persists on a worker (token caches); arguments are fresh every call;
//! a recycled worker starts clean.

mod engine_support;

use engine_support::*;
use hookgate::engine::{Engine, HookError};
use serde_json::json;

#[test]
fn hooks_never_see_each_others_globals_or_prototype_changes() {
    let dir = hooks_dir(&[
        (
            "credentials-exchange/a-writer.js",
            "module.exports = function (cb) { globalThis.leak = 'from a'; Object.prototype.polluted = 'yes'; Array.prototype.extra = 1; cb(null, 'written'); };",
        ),
        (
            "credentials-exchange/b-reader.js",
            "module.exports = function (cb) { cb(null, [typeof leak, ({}).polluted === undefined, [].extra === undefined]); };",
        ),
    ]);
    let mut cfg = config("");
    cfg.workers = Some(1);
    let generation = load(dir.path(), &cfg);
    let engine = Engine::start(&cfg).unwrap();
    let a = hook(&generation, "credentials-exchange/a-writer");
    let b = hook(&generation, "credentials-exchange/b-reader");
    assert_eq!(engine.call_blocking(&a, vec![], "1"), Ok(json!("written")));
    assert_eq!(
        engine.call_blocking(&b, vec![], "2"),
        Ok(json!(["undefined", true, true]))
    );
}

#[test]
fn module_scope_persists_between_calls_on_a_worker_like_a_warm_container() {
    let (_dir, h, engine) = single(
        "var calls = 0; var token = null; module.exports = function (cb) { calls++; if (!token) token = 'tok-' + calls; cb(null, [calls, token]); };",
        "",
        1,
    );
    assert_eq!(
        engine.call_blocking(&h, vec![], "1"),
        Ok(json!([1, "tok-1"]))
    );
    assert_eq!(
        engine.call_blocking(&h, vec![], "2"),
        Ok(json!([2, "tok-1"]))
    );
}

#[test]
fn arguments_are_fresh_objects_on_every_call() {
    let (_dir, h, engine) = single(
        "var seen = []; module.exports = function (user, cb) { var before = user.tag; user.tag = 'mutated'; seen.push(user); cb(null, [before, seen.length, seen.length > 1 ? seen[0] !== seen[1] : null]); };",
        "",
        1,
    );
    assert_eq!(
        engine.call_blocking(&h, vec![json!({"tag": "orig"})], "1"),
        Ok(json!(["orig", 1, null]))
    );
    assert_eq!(
        engine.call_blocking(&h, vec![json!({"tag": "orig"})], "2"),
        Ok(json!(["orig", 2, true]))
    );
}

#[test]
fn a_recycled_worker_starts_from_a_clean_module_scope() {
    let (_dir, h, engine) = single(
        "var calls = 0; module.exports = function (spin, cb) { calls++; if (spin) { for (;;) {} } cb(null, calls); };",
        "timeout_ms = 300",
        1,
    );
    assert_eq!(
        engine.call_blocking(&h, vec![json!(false)], "1"),
        Ok(json!(1))
    );
    assert_eq!(
        engine.call_blocking(&h, vec![json!(false)], "2"),
        Ok(json!(2))
    );
    assert_eq!(
        engine.call_blocking(&h, vec![json!(true)], "3"),
        Err(HookError::Timeout)
    );
    assert_eq!(
        engine.call_blocking(&h, vec![json!(false)], "4"),
        Ok(json!(1))
    );
}

#[test]
fn timers_of_one_call_do_not_fire_in_the_next() {
    let (_dir, h, engine) = single(
        "var fired = 0; module.exports = function (cb) { setTimeout(function () { fired++; }, 60000).unref(); cb(null, fired); };",
        "",
        1,
    );
    assert_eq!(engine.call_blocking(&h, vec![], "1"), Ok(json!(0)));
    assert_eq!(engine.call_blocking(&h, vec![], "2"), Ok(json!(0)));
}
