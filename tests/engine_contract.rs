//! The cb contract: values, errors of every shape, exactly-once, promises, timeouts.

mod engine_support;

use engine_support::*;
use hookgate::engine::{HookError, HookFailure, Wait};
use serde_json::{json, Value};

fn run(source: &str) -> Result<Value, HookError> {
    run_with(source, "timeout_ms = 2000", vec![json!(1), json!(2)])
}

fn run_with(source: &str, toml_text: &str, args: Vec<Value>) -> Result<Value, HookError> {
    let (_dir, hook, engine) = single(source, toml_text, 1);
    engine.call_blocking(&hook, args, "req-1")
}

/// [`run`] for a hook that never went through `Generation::load`, whose probe refuses a module
/// that cannot work (`tests/hostile_load.rs`): what the worker itself does with one, as for
/// `hookgate test`.
fn run_unprobed(source: &str) -> Result<Value, HookError> {
    let dir = hooks_dir(&[("credentials-exchange/h.js", source)]);
    let file = dir.path().join("credentials-exchange/h.js");
    let program = hookgate::engine::program::ProgramBuilder::new(dir.path())
        .build(&file)
        .unwrap();
    let hook = std::sync::Arc::new(hookgate::hooks::Hook::standalone(
        "credentials-exchange/h".into(),
        hookgate::config::Trigger::CredentialsExchange,
        file,
        std::time::Duration::from_secs(2),
        Default::default(),
        program,
    ));
    let mut cfg = config("");
    cfg.workers = Some(1);
    let engine = hookgate::engine::Engine::start(&cfg).unwrap();
    engine.call_blocking(&hook, vec![json!(1), json!(2)], "req-1")
}

fn failed(class: &str, message: &str) -> Result<Value, HookError> {
    Err(HookError::Failed(HookFailure {
        class: class.into(),
        message: message.into(),
        user_message: None,
    }))
}

#[test]
fn cb_value_is_returned_as_json() {
    assert_eq!(
        run("module.exports = function (a, b, cb) { cb(null, { sum: a + b, list: [a, b] }); };"),
        Ok(json!({"sum": 3, "list": [1, 2]}))
    );
}

/// What only `JSON.stringify` writes exactly (`toJSON`, dates, boxed values) reaches the caller
/// as it would have from Auth0's Node, next to plain data built directly.
#[test]
fn cb_values_are_what_json_stringify_writes() {
    assert_eq!(
        run(r#"module.exports = function (a, b, cb) {
            cb(null, { when: new Date(0), boxed: [new String('s'), new Number(2)], own: { toJSON() { return 'mine'; } },
                       skipped: undefined, f() {}, nan: NaN, list: [undefined, () => 1], n: 6 / 2, f2: 0.5 });
        };"#),
        Ok(
            json!({"when": "1970-01-01T00:00:00.000Z", "boxed": ["s", 2], "own": "mine",
                  "nan": null, "list": [null, null], "n": 3, "f2": 0.5})
        )
    );
    assert!(matches!(
        run("module.exports = function (a, b, cb) { const o = {}; o.o = o; cb(null, o); };"),
        Err(HookError::Failed(f)) if f.class == "TypeError" && f.message.contains("cannot be turned into JSON")
    ));
}

/// A caller spinning on the answer (the proxy with one request in flight) gets what a sleeping
/// one gets: from a hook answering at once, from one answering after the spin (a timer), and
/// from one that fails; with a worker woken ahead of the call (`prewake`) or not, and after a
/// wake-up no call followed.
#[test]
fn a_caller_spinning_first_gets_the_same_answers() {
    let rt = rt();
    for (source, expected) in [
        (
            "module.exports = function (a, b, cb) { cb(null, { sum: a + b }); };",
            Ok(json!({"sum": 3})),
        ),
        (
            "module.exports = function (a, b, cb) { setTimeout(() => cb(null, 'late'), 30); };",
            Ok(json!("late")),
        ),
        (
            "module.exports = function (a, b, cb) { cb(new Error('no')); };",
            failed("Error", "no"),
        ),
    ] {
        let (_dir, hook, engine) = single(source, "timeout_ms = 2000", 1);
        for (wait, prewake) in [
            (Wait::SpinFirst, false),
            (Wait::Sleep, false),
            (Wait::SpinFirst, true),
            (Wait::Sleep, true),
        ] {
            if prewake {
                engine.prewake();
            }
            let got = rt.block_on(engine.call_with(&hook, vec![json!(1), json!(2)], "req-1", wait));
            assert_eq!(got, expected, "{source} with {wait:?}, prewake {prewake}");
        }
        // A wake-up with no call after it leaves the worker serving.
        engine.prewake();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let got = rt.block_on(engine.call_with(
            &hook,
            vec![json!(1), json!(2)],
            "req-2",
            Wait::SpinFirst,
        ));
        assert_eq!(got, expected, "{source} after a stray wake-up");
    }
}

#[test]
fn cb_without_value_gives_null() {
    assert_eq!(
        run("module.exports = function (a, b, cb) { cb(); };"),
        Ok(Value::Null)
    );
    assert_eq!(
        run("module.exports = function (a, b, cb) { cb(null, undefined); };"),
        Ok(Value::Null)
    );
}

#[test]
fn top_level_null_arguments_arrive_as_undefined() {
    let r = run_with(
        "module.exports = function (a, b, cb) { cb(null, [typeof a, b]); };",
        "",
        vec![Value::Null, json!("x")],
    );
    assert_eq!(r, Ok(json!(["undefined", "x"])));
}

#[test]
fn cb_accepts_a_string_error() {
    assert_eq!(
        run("module.exports = function (a, b, cb) { cb('nope'); };"),
        failed("string", "nope")
    );
}

#[test]
fn cb_accepts_plain_errors_and_the_auth0_error_classes() {
    assert_eq!(
        run("module.exports = function (a, b, cb) { cb(new Error('plain')); };"),
        failed("Error", "plain")
    );
    assert_eq!(
        run("module.exports = function (a, b, cb) { cb(new InvalidScopeError('bad scope')); };"),
        failed("InvalidScopeError", "bad scope")
    );
    assert_eq!(
        run("module.exports = function (a, b, cb) { cb(new InvalidRequestError('bad req')); };"),
        failed("InvalidRequestError", "bad req")
    );
    assert_eq!(
        run("module.exports = function (a, b, cb) { cb(new ServerError('down')); };"),
        failed("ServerError", "down")
    );
    assert_eq!(
        run("module.exports = function (a, b, cb) { cb(new TypeError('t')); };"),
        failed("TypeError", "t")
    );
}

#[test]
fn error_classes_are_real_error_subclasses_with_a_name() {
    let r = run(r#"module.exports = function (a, b, cb) {
        var names = ['InvalidScopeError', 'InvalidRequestError', 'ServerError', 'PreUserRegistrationError'];
        cb(null, names.map(function (n) { var e = new global[n]('m'); return [e instanceof Error, e.name, e.message, String(e)]; }));
    };"#);
    assert_eq!(
        r,
        Ok(json!([
            [true, "InvalidScopeError", "m", "InvalidScopeError: m"],
            [true, "InvalidRequestError", "m", "InvalidRequestError: m"],
            [true, "ServerError", "m", "ServerError: m"],
            [
                true,
                "PreUserRegistrationError",
                "m",
                "PreUserRegistrationError: m"
            ]
        ]))
    );
}

#[test]
fn pre_user_registration_error_carries_the_user_message() {
    let r = run("module.exports = function (a, b, cb) { cb(new PreUserRegistrationError('denied: blocked domain', 'Sign-ups from this domain are closed')); };");
    assert_eq!(
        r,
        Err(HookError::Failed(HookFailure {
            class: "PreUserRegistrationError".into(),
            message: "denied: blocked domain".into(),
            user_message: Some("Sign-ups from this domain are closed".into()),
        }))
    );
}

#[test]
fn a_second_cb_call_is_ignored() {
    assert_eq!(run("module.exports = function (a, b, cb) { cb(null, 'first'); cb(null, 'second'); cb(new Error('third')); };"), Ok(json!("first")));
    assert_eq!(
        run("module.exports = function (a, b, cb) { cb('first'); cb(null, 'second'); };"),
        failed("string", "first")
    );
}

#[test]
fn a_synchronous_throw_is_a_failure() {
    assert_eq!(
        run("module.exports = function (a, b, cb) { throw new InvalidRequestError('thrown'); };"),
        failed("InvalidRequestError", "thrown")
    );
    assert_eq!(
        run("module.exports = function (a, b, cb) { null.x; };"),
        failed("TypeError", "cannot read property 'x' of null")
    );
}

#[test]
fn a_throw_after_cb_changes_nothing() {
    assert_eq!(
        run("module.exports = function (a, b, cb) { cb(null, 'ok'); throw new Error('late'); };"),
        Ok(json!("ok"))
    );
    assert_eq!(run("module.exports = function (a, b, cb) { cb(null, 'ok'); setTimeout(function () { throw new Error('later'); }, 1); };"), Ok(json!("ok")));
}

#[test]
fn a_resolved_promise_counts_as_cb() {
    assert_eq!(
        run("module.exports = async function (a, b) { return a * 10 + b; };"),
        Ok(json!(12))
    );
    assert_eq!(
        run("module.exports = function (a, b) { return Promise.resolve({ v: 'p' }); };"),
        Ok(json!({"v": "p"}))
    );
}

#[test]
fn a_rejected_promise_counts_as_cb_err() {
    assert_eq!(
        run("module.exports = async function (a, b) { throw new InvalidScopeError('async'); };"),
        failed("InvalidScopeError", "async")
    );
    assert_eq!(
        run("module.exports = function () { return Promise.reject('str'); };"),
        failed("string", "str")
    );
}

#[test]
fn an_async_hook_calling_cb_is_answered_by_cb() {
    let r = run("module.exports = async function (a, b, cb) { await null; cb(null, 'from cb'); return 'from return'; };");
    assert_eq!(r, Ok(json!("from cb")));
}

#[test]
fn cb_called_from_a_timer_is_answered() {
    assert_eq!(run("module.exports = function (a, b, cb) { setTimeout(function (x) { cb(null, x); }, 5, 'later'); };"), Ok(json!("later")));
}

#[test]
fn cleared_timers_do_not_fire() {
    let r = run("module.exports = function (a, b, cb) { var t = setTimeout(function () { cb(null, 'wrong'); }, 1); clearTimeout(t); setTimeout(function () { cb(null, 'right'); }, 5); };");
    assert_eq!(r, Ok(json!("right")));
}

#[test]
fn intervals_repeat_until_cleared() {
    let r = run("module.exports = function (a, b, cb) { var n = 0; var i = setInterval(function () { if (++n === 3) { clearInterval(i); cb(null, n); } }, 1); };");
    assert_eq!(r, Ok(json!(3)));
}

#[test]
fn cb_never_called_with_a_pending_timer_ends_at_the_timeout() {
    let r = run_with(
        "module.exports = function (a, b, cb) { setTimeout(function () {}, 60000); };",
        "timeout_ms = 200",
        vec![],
    );
    assert_eq!(r, Err(HookError::Timeout));
}

#[test]
fn cb_never_called_and_nothing_pending_is_a_timeout() {
    assert_eq!(
        run("module.exports = function (a, b, cb) { };"),
        Err(HookError::Timeout)
    );
}

#[test]
fn a_module_that_does_not_export_a_function_fails() {
    let r = run_unprobed("module.exports = { not: 'a function' };");
    assert!(
        matches!(&r, Err(HookError::Failed(f)) if f.message.contains("module.exports is not a function")),
        "{r:?}"
    );
}

#[test]
fn module_top_level_errors_fail_the_call() {
    assert_eq!(
        run_unprobed("throw new Error('at load'); module.exports = function () {};"),
        failed("Error", "at load")
    );
}

#[test]
fn the_async_api_answers_on_an_async_runtime() {
    let (_dir, hook, engine) = single(
        "module.exports = function (a, cb) { cb(null, a + 1); };",
        "",
        2,
    );
    let r = rt().block_on(async { engine.call(&hook, vec![json!(41)], "r").await });
    assert_eq!(r, Ok(json!(42)));
}
