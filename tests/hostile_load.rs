//! Hooks that cannot work are rejected at load: every module is evaluated once when its
//! generation loads (a scratch runtime, the real globals, a short deadline), so a top-level throw,
//! a top-level endless loop or exports that are not a function fail `hookgate check` (exit 2,
//! located) and hot reload (the previous generation keeps serving) instead of every request.
//! Module-scope side effects stay in the probe: no request is sent, no timer fires, no state
//! reaches the workers.

mod common;
mod engine_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::hookgate::{run_cli, Hookgate};
use common::oidc::{self, OidcServer};
use engine_support::*;
use hookgate::engine::Engine;
use hookgate::hooks::Generation;
use serde_json::{json, Value};

/// Hook files that can never answer a request, with where their rejection points (after the
/// file name) and what it says.
const BAD: &[(&str, &str, &str, &str)] = &[
    (
        "throws",
        "var config = {};\nthrow new Error('no config for ' + config.tenant);\nmodule.exports = function (c, s, a, ctx, cb) { cb(null, {}); };\n",
        ":2:",
        "Error: no config for undefined",
    ),
    (
        "loops",
        "var ready = false;\nwhile (!ready) {}\nmodule.exports = function (c, s, a, ctx, cb) { cb(null, {}); };\n",
        ": ",
        "did not finish evaluating",
    ),
    (
        "number",
        "module.exports = 42;\n",
        ": ",
        "module.exports is a number, not a function",
    ),
];

/// The problems of loading `files` as a generation (panics if it loads).
fn rejected(files: &[(&str, &str)], toml_text: &str) -> String {
    let dir = hooks_dir(files);
    match Generation::load(&config(toml_text), dir.path()) {
        Ok(_) => panic!("the generation loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_top_level_throw_is_rejected_at_load_with_its_file_line_and_error() {
    let e = rejected(&[("credentials-exchange/throws.js", BAD[0].1)], "");
    assert!(e.contains("credentials-exchange/throws.js:2:"), "{e}");
    assert!(e.contains("Error: no config for undefined"), "{e}");
}

#[test]
fn a_top_level_endless_loop_is_rejected_at_load() {
    let e = rejected(&[("credentials-exchange/loops.js", BAD[1].1)], "");
    assert!(e.contains("credentials-exchange/loops.js: "), "{e}");
    assert!(e.contains("did not finish evaluating"), "{e}");
}

#[test]
fn exports_that_are_not_a_function_are_rejected_at_load() {
    for (source, said) in [
        ("module.exports = 42;", "a number"),
        (
            "module.exports = { onExecutePostLogin: function () {} };",
            "an object (keys: onExecutePostLogin)",
        ),
        (
            "exports.handler = function () {};",
            "an object (keys: handler)",
        ),
        ("var unused = 1;", "an empty object"),
        ("module.exports = null;", "null"),
    ] {
        let e = rejected(&[("credentials-exchange/h.js", source)], "");
        assert!(
            e.contains(&format!("h.js: module.exports is {said}, not a function")),
            "{source}: {e}"
        );
    }
}

#[test]
fn a_package_that_throws_when_required_is_rejected_naming_the_package_file() {
    let e = rejected(
        &[
            ("node_modules/fragile/index.js", "module.exports = 1;\nif (!global.window) throw new TypeError('browser only');\n"),
            ("credentials-exchange/h.js", "var f = require('fragile');\nmodule.exports = function (c, s, a, ctx, cb) { cb(null, {}); };\n"),
        ],
        "",
    );
    assert!(e.contains("credentials-exchange/h.js: "), "{e}");
    assert!(e.contains("node_modules/fragile/index.js:2:"), "{e}");
    assert!(e.contains("TypeError: browser only"), "{e}");
}

#[test]
fn every_hook_that_cannot_work_is_reported_at_once_and_good_ones_are_not() {
    let e = rejected(
        &[
            ("credentials-exchange/a.js", BAD[0].1),
            ("credentials-exchange/b.js", BAD[2].1),
            (
                "credentials-exchange/ok.js",
                "module.exports = function (c, s, a, ctx, cb) { cb(null, {}); };",
            ),
        ],
        "",
    );
    assert!(e.contains("a.js:2:"), "{e}");
    assert!(e.contains("b.js: module.exports is a number"), "{e}");
    assert!(!e.contains("ok.js"), "{e}");
}

#[test]
fn module_scope_requests_and_timers_do_not_run_at_load_and_no_state_reaches_the_workers() {
    let rt = rt();
    let (url, mut seen) = rt.block_on(echo_server());
    let source = format!(
        "var loads = (global.__loads = (global.__loads || 0) + 1);\n\
         fetch('{url}/at-load').catch(function () {{}});\n\
         require('http').get('{url}/http-at-load').on('error', function () {{}});\n\
         setTimeout(function () {{ fetch('{url}/timer-at-load'); }}, 0);\n\
         module.exports = function (cb) {{ cb(null, loads); }};\n"
    );
    let dir = hooks_dir(&[("credentials-exchange/h.js", &source)]);
    let mut cfg = config("");
    cfg.workers = Some(1);
    let generation = load(dir.path(), &cfg);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        seen.try_recv().is_err(),
        "a module-scope request went out at load"
    );
    // The worker evaluates the module afresh: its first call sees the first evaluation.
    let engine = Engine::start(&cfg).unwrap();
    let h = hook(&generation, "credentials-exchange/h");
    assert_eq!(engine.call_blocking(&h, vec![], "r"), Ok(json!(1)));
    // And on the worker, module scope runs as it always has.
    let paths: Vec<Value> = (0..3)
        .map(|_| next_request(&rt, &mut seen)["path"].clone())
        .collect();
    for p in ["/at-load", "/http-at-load", "/timer-at-load"] {
        assert!(paths.contains(&json!(p)), "{paths:?}");
    }
}

fn node_compat_hooks() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node-compat/hooks")
}

/// Not an assertion on time: prints how long loading the node-compat hooks (real npm packages:
/// axios, request, twilio, aws-sdk...) takes with the probe, and how much of it the probe is.
#[test]
fn hooks_requiring_real_npm_packages_still_load() {
    let dir = node_compat_hooks();
    if !dir.join("node_modules/axios").is_dir() {
        eprintln!("skipped: run scripts/setup to install tests/node-compat/hooks/node_modules");
        return;
    }
    let mut cfg = config("");
    cfg.dir = dir.clone();
    let started = Instant::now();
    let generation = Generation::load(&cfg, Path::new("/")).unwrap_or_else(|e| panic!("{e}"));
    let total = started.elapsed();
    let hooks: Vec<_> = generation.all_hooks().cloned().collect();
    assert!(hooks.len() >= 5, "{} hooks", hooks.len());
    // The probe again, hook by hook, to see the slowest.
    let mut times: Vec<(f64, String)> = hooks
        .iter()
        .map(|h| {
            let t = Instant::now();
            let probed = hookgate::hooks::probe::probe(&cfg, std::slice::from_ref(h));
            assert_eq!(
                probed,
                [hookgate::engine::probe::Probed::Function],
                "{}",
                h.name
            );
            (t.elapsed().as_secs_f64() * 1000.0, h.name.clone())
        })
        .collect();
    times.sort_by(|a, b| b.0.total_cmp(&a.0));
    let probe: f64 = times.iter().map(|t| t.0).sum();
    eprintln!(
        "loading {} node-compat hooks: {:.0} ms in all; the load-time probe alone: {probe:.0} ms, slowest {:.0} ms ({})",
        hooks.len(),
        total.as_secs_f64() * 1000.0,
        times[0].0,
        times[0].1
    );
}

#[test]
fn hookgate_check_exits_2_naming_each_hook_that_cannot_work() {
    for (name, source, at, said) in BAD {
        let dir = tempfile::tempdir().unwrap();
        let hooks = dir.path().join("hooks/credentials-exchange");
        std::fs::create_dir_all(&hooks).unwrap();
        std::fs::write(hooks.join(format!("{name}.js")), source).unwrap();
        std::fs::write(
            dir.path().join("h.toml"),
            "[upstream]\naddress = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        let (code, _, err) = run_cli(&["check", "--config", "h.toml"], dir.path());
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(&format!("{name}.js{at}")), "{name}: {err}");
        assert!(err.contains(said), "{name}: {err}");
    }
}

const TOKEN_ROUTE: &str =
    "[[route]]\nname = \"token\"\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\n\
     upstream_path = \"/token\"\naudience_param = \"resource\"\n";
const HOOK_FILE: &str = "hooks/credentials-exchange/stamp.js";

fn stamp(version: &str) -> String {
    format!(
        "module.exports = function (client, scope, audience, context, cb) {{ cb(null, {{ 'https://example.com/v': '{version}' }}); }};\n"
    )
}

/// The hook's version claim in a fresh token.
async fn version(hg: &Hookgate) -> String {
    let resp = reqwest::Client::new()
        .post(hg.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", oidc::POST_CLIENT_ID),
            ("client_secret", oidc::POST_CLIENT_SECRET),
            ("audience", oidc::AUDIENCE),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", hg.log());
    let body: Value = resp.json().await.unwrap();
    let jwt = body["access_token"].as_str().unwrap_or_default();
    let payload = jwt.split('.').nth(1).unwrap_or_default();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["https://example.com/v"]
        .as_str()
        .unwrap_or("none")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hot_reload_to_a_hook_that_cannot_work_is_rejected_and_the_previous_one_keeps_serving() {
    let _idp = OidcServer::start();
    let idp_addr = _idp.addr();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(HOOK_FILE);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, stamp("1")).unwrap();
    let hg = Hookgate::start_in(dir, &idp_addr, "", "", TOKEN_ROUTE);
    assert_eq!(version(&hg).await, "1");
    for (i, (name, source, at, said)) in BAD.iter().enumerate() {
        std::fs::write(&file, source).unwrap();
        hg.until_metric("hookgate_reload_failure_total", i as u64 + 1)
            .await;
        assert_eq!(
            version(&hg).await,
            "1",
            "{name}: the old code keeps answering"
        );
        let detail: Value = reqwest::get(hg.admin_url("/readyz"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let problems = detail["reload"]["last_error"]["problems"].to_string();
        assert!(
            problems.contains(&format!("stamp.js{at}")) && problems.contains(said),
            "{name}: {detail}"
        );
        assert_eq!(detail["status"], "ready", "{detail}");
    }
    std::fs::write(&file, stamp("2")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while version(&hg).await != "2" {
        assert!(
            Instant::now() < deadline,
            "version 2 never answered\n{}",
            hg.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
