//! Run records, the live tail, the Runner and per-hook metrics.
//!
//! End to end (the real binary): a token exchange through node-oidc-provider and signups with
//! post-user-registration events leave records, read from the `[runs] dir` database once
//! hookgate stopped (the HTTP routes over the store are the management API's), and `/metrics`
//! counts them. Through the library: the store's bounds and live tail, what a call's report
//! holds, and the Runner.

mod common;
mod engine_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::hookgate::Hookgate;
use common::oidc::{self, OidcServer};
use common::upstream::{json_response, serve, Upstream};
use hookgate::config::Trigger;
use hookgate::engine::{CallReport, Engine, HookError, Level, Reporter, Wait};
use hookgate::hooks::runner::{self, RunnerError, RunnerRequest};
use hookgate::runs::{Outcome, Query, RunRecord, RunStart, Runs, Tail};
use serde_json::{json, Value};

const TOKEN_ROUTE: &str =
    "[[route]]\nname = \"token\"\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\n\
     upstream_path = \"/token\"\naudience_param = \"resource\"\n";

/// Logs, calls an audit API with a key in the query, and denies or fails on request.
const TOKEN_HOOK: &str = r#"
module.exports = function (client, scope, audience, context, cb) {
  if (context.body.deny === 'scope') return cb(new InvalidScopeError('no scope for ' + client.id));
  if (context.body.deny === 'error') return cb(new Error('the CRM is down'));
  console.log('checking ' + client.id);
  fetch(context.webtask.secrets.AUDIT + '/audit?key=k3y-s3cret&client=' + client.id)
    .then(function (res) {
      console.warn('audit answered ' + res.status);
      cb(null, { 'https://example.com/audited': res.status === 200 });
    }, cb);
};
"#;

fn token_setup(runs_dir: &Path, audit: &str) -> (OidcServer, Hookgate) {
    let idp = OidcServer::start();
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks").join("credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("claims.js"), TOKEN_HOOK).unwrap();
    std::fs::write(dir.path().join("audit_url"), audit).unwrap();
    let extra = format!(
        "{TOKEN_ROUTE}[hooks]\ndir = \"hooks\"\n[[hooks.hook]]\nfile = \"credentials-exchange/claims.js\"\n\
         secrets = {{ AUDIT = {{ file = \"audit_url\" }} }}\n[runs]\ndir = {:?}\n",
        runs_dir.display().to_string()
    );
    let hg = Hookgate::start_in(dir, &idp.addr(), "", "", &extra);
    (idp, hg)
}

async fn token(hg: &Hookgate, deny: Option<&str>) -> u16 {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", oidc::POST_CLIENT_ID),
        ("client_secret", oidc::POST_CLIENT_SECRET),
        ("audience", oidc::AUDIENCE),
    ];
    if let Some(d) = deny {
        form.push(("deny", d));
    }
    reqwest::Client::new()
        .post(hg.url("/oauth/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `/metrics` as text.
async fn metrics(hg: &Hookgate) -> String {
    reqwest::get(hg.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Stop hookgate gracefully (its records reach the disk first).
fn stop(mut hg: Hookgate) {
    hg.signal("TERM");
    assert!(
        hg.wait_exit(Duration::from_secs(20)).is_some(),
        "hookgate did not stop:\n{}",
        hg.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hooked_exchange_leaves_a_record_with_its_console_and_request_that_survives_a_restart() {
    let audit = serve(|_req| async { json_response(200, &json!({"ok": true})) });
    let audit_url = format!("http://{}", audit.addr);
    let runs_dir = tempfile::tempdir().unwrap();

    let (_idp, hg) = token_setup(runs_dir.path(), &audit_url);
    assert_eq!(token(&hg, None).await, 200, "{}", hg.log());
    assert_eq!(token(&hg, Some("scope")).await, 400);
    assert_eq!(token(&hg, Some("error")).await, 500);

    // Per hook and point, by outcome; per route, by status; the store's own.
    hg.until_metric("hookgate_runs_disk_written_total", 3).await;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(runs_dir.path().join("hookgate-runs.redb"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "console lines carry personal data: the owner's alone"
        );
    }
    let text = metrics(&hg).await;
    let labels = "hook=\"credentials-exchange/claims\",point=\"credentials-exchange\"";
    for (outcome, n) in [
        ("ok", 1),
        ("denied", 1),
        ("error", 1),
        ("timeout", 0),
        ("crash", 0),
        ("overloaded", 0),
    ] {
        let line = format!("hookgate_hook_calls_total{{{labels},outcome=\"{outcome}\"}} {n}\n");
        assert!(text.contains(&line), "no {line} in:\n{text}");
    }
    assert!(
        text.contains(&format!(
            "hookgate_hook_duration_seconds_count{{{labels}}} 3\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "hookgate_hook_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 3\n"
        )),
        "{text}"
    );
    for status in [200, 400, 500] {
        let line =
            format!("hookgate_route_requests_total{{route=\"token\",status=\"{status}\"}} 1\n");
        assert!(text.contains(&line), "no {line} in:\n{text}");
    }
    assert!(text.contains("hookgate_runs_recorded_total 3\n"), "{text}");
    assert!(text.contains("hookgate_runs_records 3\n"), "{text}");
    stop(hg);

    let records = hookgate::runs::read_dir(runs_dir.path()).unwrap();
    assert_eq!(records.len(), 3, "{records:#?}");
    let by = |o: Outcome| records.iter().find(|r| r.outcome == o).expect("a record");
    let ok = by(Outcome::Ok);
    assert_eq!(ok.hook, "credentials-exchange/claims");
    assert_eq!(
        ok.hook_id,
        hookgate::hooks::hook_id(Trigger::CredentialsExchange, "claims", None)
    );
    assert_eq!(ok.point, Trigger::CredentialsExchange);
    assert_eq!(ok.route.as_deref(), Some("token"));
    assert_eq!(ok.client_id.as_deref(), Some(oidc::POST_CLIENT_ID));
    assert!(ok.request_id.as_deref().is_some_and(|r| !r.is_empty()));
    assert_eq!(ok.generation, 1);
    assert!(
        ok.start.ends_with('Z') && ok.start.contains('T'),
        "{}",
        ok.start
    );
    let lines: Vec<(Level, &str)> = ok
        .console
        .iter()
        .map(|l| (l.level, l.message.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (Level::Info, "checking m2m-post"),
            (Level::Warn, "audit answered 200")
        ]
    );
    assert_eq!(ok.requests.len(), 1);
    let r = &ok.requests[0];
    assert_eq!(r.method, "GET");
    assert_eq!(
        r.url,
        format!("{audit_url}/audit?key=REDACTED&client=REDACTED")
    );
    assert_eq!(
        (r.host.as_str(), r.status, &r.error),
        ("127.0.0.1", Some(200), &None)
    );
    assert!(ok.error.is_none());

    let denied = by(Outcome::Denied);
    let e = denied.error.as_ref().unwrap();
    assert_eq!(
        (e.class.as_str(), e.message.as_str()),
        ("InvalidScopeError", "no scope for m2m-post")
    );
    let failed = by(Outcome::Error);
    assert_eq!(failed.error.as_ref().unwrap().message, "the CRM is down");
    assert!(failed.requests.is_empty() && failed.console.is_empty());

    // Another hookgate on the same records: they are still there, and ids go on.
    let (_idp2, hg) = token_setup(runs_dir.path(), &audit_url);
    assert_eq!(token(&hg, None).await, 200, "{}", hg.log());
    hg.until_metric("hookgate_runs_disk_written_total", 1).await;
    let text = metrics(&hg).await;
    assert!(text.contains("hookgate_runs_records 4\n"), "{text}");
    stop(hg);
    let records = hookgate::runs::read_dir(runs_dir.path()).unwrap();
    let ids: Vec<u64> = records.iter().map(|r| r.id).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
}

const SIGNUP: &str = r#"
[[route]]
name = "signup"
path = "/dbconnections/signup"
point = "pre-user-registration"
[route.signup]
user_id = "/body_sha256"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn post_event_hooks_leave_records_named_by_their_event_id() {
    let upstream = Upstream::start();
    let runs_dir = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks").join("post-user-registration");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(
        hooks.join("welcome.js"),
        "module.exports = function (user, context, cb) {\n\
           console.log('welcome ' + user.email + ' event ' + context.event_id);\n\
           cb();\n\
           setTimeout(function () { console.log('after cb'); }, 10);\n\
         };\n",
    )
    .unwrap();
    let extra = format!(
        "{SIGNUP}[hooks]\ndir = \"hooks\"\n[outbox]\npath = \"data/outbox.redb\"\n[runs]\ndir = {:?}\n",
        runs_dir.path().display().to_string()
    );
    let hg = Hookgate::start_in(dir, &upstream.address(), "", "", &extra);
    let resp = reqwest::Client::new()
        .post(hg.url("/dbconnections/signup"))
        .json(&json!({"client_id": "app1", "email": "ann@example.com", "password": "pw-12345678", "connection": "db"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", hg.log());
    hg.until_metric("hookgate_runs_disk_written_total", 1).await;
    let text = metrics(&hg).await;
    assert!(text.contains("hookgate_hook_calls_total{hook=\"post-user-registration/welcome\",point=\"post-user-registration\",outcome=\"ok\"} 1\n"), "{text}");
    stop(hg);

    let records = hookgate::runs::read_dir(runs_dir.path()).unwrap();
    assert_eq!(records.len(), 1, "{records:#?}");
    let r = &records[0];
    let event_id = r.event_id.clone().expect("an event id");
    assert!(event_id.starts_with("evt_"), "{event_id}");
    assert_eq!(r.point, Trigger::PostUserRegistration);
    assert_eq!(
        (r.route.as_deref(), r.request_id.as_deref()),
        (Some("signup"), None)
    );
    assert_eq!(r.client_id.as_deref(), Some("app1"));
    assert_eq!((r.outcome, r.attempt), (Outcome::Ok, Some(1)));
    let lines: Vec<&str> = r.console.iter().map(|l| l.message.as_str()).collect();
    // The line the hook printed after cb belongs to its run too.
    assert_eq!(
        lines,
        [
            format!("welcome ann@example.com event {event_id}").as_str(),
            "after cb"
        ]
    );
    assert!(r.ran_ms >= r.duration_ms);
}

/// A record as a caller would make it, for the store tests.
fn record(hook: &str, outcome: Outcome, console: &str) -> RunRecord {
    let report = CallReport {
        started: true,
        result: match outcome {
            Outcome::Ok => Ok(()),
            _ => Err(HookError::Crashed("boom".into())),
        },
        answered_in: Duration::from_millis(1),
        ran: Duration::from_millis(2),
        cpu: Duration::from_micros(300),
        console: vec![hookgate::engine::ConsoleLine {
            level: Level::Info,
            at_ms: 0.5,
            message: console.into(),
        }],
        console_truncated: false,
        requests: Vec::new(),
        requests_omitted: 0,
    };
    RunRecord::new(
        RunStart {
            hook_id: format!("hk-{hook}"),
            hook: format!("credentials-exchange/{hook}"),
            kind: "hook",
            point: Trigger::CredentialsExchange,
            route: Some("token".into()),
            request_id: Some("r1".into()),
            event_id: None,
            attempt: None,
            client_id: None,
            generation: 1,
            at: SystemTime::now(),
            denies: |_, _| false,
        },
        report,
    )
}

fn rt() -> tokio::runtime::Runtime {
    engine_support::rt()
}

/// The next item of a tail, bounded in time.
fn next(rt: &tokio::runtime::Runtime, sub: &mut hookgate::runs::Subscription) -> Tail {
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), sub.next()).await })
        .expect("the tail yielded nothing within 10 s")
        .expect("the tail ended")
}

fn id_of(t: &Tail) -> u64 {
    match t {
        Tail::Record(r) => r.id,
        Tail::Missed(n) => panic!("missed {n}, expected a record"),
    }
}

#[test]
fn subscribing_from_an_id_replays_the_records_after_it_then_streams_new_ones() {
    let rt = rt();
    let runs = Runs::in_memory(100, 1 << 20);
    for i in 1..=4 {
        assert_eq!(runs.record(record("a", Outcome::Ok, "x")), i);
    }
    let mut sub = runs.subscribe(Some(2));
    assert_eq!(id_of(&next(&rt, &mut sub)), 3);
    assert_eq!(id_of(&next(&rt, &mut sub)), 4);
    let writer = runs.clone();
    std::thread::spawn(move || writer.record(record("a", Outcome::Ok, "live")));
    let live = next(&rt, &mut sub);
    assert_eq!(id_of(&live), 5);
    let (id, event, data) = live.sse();
    assert_eq!((id, event), (Some(5), "run"));
    assert_eq!(
        serde_json::from_str::<Value>(&data).unwrap()["console"][0]["message"],
        "live"
    );

    // No Last-Event-ID: only what comes next. One from before a restart (beyond every id):
    // everything held.
    let mut fresh = runs.subscribe(None);
    runs.record(record("a", Outcome::Ok, "x"));
    assert_eq!(id_of(&next(&rt, &mut fresh)), 6);
    let mut after_restart = runs.subscribe(Some(900));
    assert_eq!(id_of(&next(&rt, &mut after_restart)), 1);
}

#[test]
fn a_subscriber_that_falls_behind_is_told_how_many_records_it_missed() {
    let rt = rt();
    let runs = Runs::in_memory(10, 1 << 20);
    let mut sub = runs.subscribe(None);
    for _ in 0..3000 {
        runs.record(record("a", Outcome::Ok, "x"));
    }
    // The store keeps the newest 10: 2991..=3000; the rest is reported, not waited for.
    match next(&rt, &mut sub) {
        Tail::Missed(n) => assert_eq!(n, 2990),
        Tail::Record(r) => panic!("record {} before the gap was reported", r.id),
    }
    let ids: Vec<u64> = (0..10).map(|_| id_of(&next(&rt, &mut sub))).collect();
    assert_eq!(ids, (2991..=3000).collect::<Vec<_>>());
    let (id, event, data) = Tail::Missed(7).sse();
    assert_eq!(
        (id, event, data.as_str()),
        (None, "missed", "{\"missed\":7}")
    );
}

#[test]
fn the_store_drops_its_oldest_records_past_its_count_or_its_bytes() {
    let runs = Runs::in_memory(3, 1 << 20);
    for _ in 0..5 {
        runs.record(record("a", Outcome::Ok, "x"));
    }
    assert!(runs.get(2).is_none());
    let ids: Vec<u64> = runs
        .query(&Query::default())
        .records
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, [5, 4, 3], "newest first");

    // Each record is over 4 KiB: a 10 KiB cap holds two.
    let runs = Runs::in_memory(100, 10 << 10);
    let big = "y".repeat(4 << 10);
    for _ in 0..4 {
        runs.record(record("a", Outcome::Ok, &big));
    }
    let ids: Vec<u64> = runs
        .query(&Query::default())
        .records
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, [4, 3]);
}

#[test]
fn records_are_found_by_hook_outcome_text_and_paged_by_id() {
    let runs = Runs::in_memory(100, 1 << 20);
    runs.record(record("a", Outcome::Ok, "hello Alice"));
    runs.record(record("b", Outcome::Crash, "hello Bob"));
    runs.record(record("a", Outcome::Crash, "bye"));
    runs.record(record("a", Outcome::Ok, "HELLO carol"));
    let ids = |q: &str| -> Vec<u64> {
        let page = runs.query(&Query::parse(q).unwrap());
        page.records.iter().map(|r| r.id).collect()
    };
    assert_eq!(ids("hook=hk-a"), [4, 3, 1]);
    assert_eq!(ids("hook=credentials-exchange/b"), [2]);
    assert_eq!(ids("outcome=crash"), [3, 2]);
    assert_eq!(ids("q=hello"), [4, 2, 1]);
    assert_eq!(ids("q=boom&hook=hk-a"), [3], "the error's message counts");
    assert_eq!(ids("point=credentials-exchange&limit=2"), [4, 3]);
    let page = runs.query(&Query::parse("limit=2").unwrap());
    assert_eq!(page.next_before, Some(3));
    assert_eq!(ids("limit=2&before=3"), [2, 1]);
    assert_eq!(
        runs.query(&Query::parse("before=2").unwrap()).next_before,
        None
    );
    assert!(Query::parse("outcome=maybe")
        .unwrap_err()
        .contains("outcome"));
    assert_eq!(runs.get(2).unwrap().hook, "credentials-exchange/b");
    let json = serde_json::to_value(runs.query(&Query::parse("limit=1").unwrap())).unwrap();
    assert_eq!(json["records"][0]["id"], 4);
    assert_eq!(json["next_before"], 4);
}

#[test]
fn recording_off_hands_out_no_reporter_and_keeps_nothing() {
    let runs = Runs::disabled();
    assert!(!runs.enabled());
    assert_eq!(runs.record(record("a", Outcome::Ok, "x")), 0);
    assert!(runs.query(&Query::default()).records.is_empty());
}

/// Runs `source` (a credentials-exchange hook) with a report; its answer and report.
fn call_reported(source: &str, toml: &str) -> (Result<Value, HookError>, CallReport) {
    let (_dir, hook, engine) = engine_support::single(source, toml, 1);
    let (tx, rx) = std::sync::mpsc::channel();
    let reporter = Reporter::new(move |r| tx.send(r).unwrap());
    let args = vec![json!({}), Value::Null, Value::Null, json!({})];
    let settled = engine.call_blocking_with_report(&hook, args, "req-1", Some(reporter));
    let report = rx.recv_timeout(Duration::from_secs(10)).expect("a report");
    (settled, report)
}

#[test]
fn a_call_report_keeps_console_lines_in_full_up_to_max_log_bytes_and_says_when_cut() {
    let (settled, report) = call_reported(
        "module.exports = function (c, s, a, ctx, cb) {\n\
           console.log('one', { a: 1 });\n\
           console.error(new Error('two'));\n\
           for (var i = 0; i < 50; i++) console.log('filler ' + 'z'.repeat(100));\n\
           cb(null, {});\n\
         };",
        "max_log_bytes = 1000\n",
    );
    assert_eq!(settled, Ok(json!({})));
    assert_eq!(report.console[0].message, "one { a: 1 }");
    assert_eq!(report.console[1].level, Level::Error);
    assert!(report.console[1].message.contains("two"));
    assert!(report.console_truncated);
    assert!(report.console.len() < 52, "{}", report.console.len());
    assert_eq!(report.result, Ok(()));

    let (_, quiet) = call_reported(
        "module.exports = function (c, s, a, ctx, cb) { cb(null, {}); };",
        "",
    );
    assert!(quiet.console.is_empty() && !quiet.console_truncated && quiet.requests.is_empty());
}

#[test]
fn a_hook_that_never_calls_cb_is_reported_as_a_timeout_with_its_lines() {
    let (settled, report) = call_reported(
        "module.exports = function (c, s, a, ctx, cb) { console.log('waiting'); setTimeout(function () {}, 5000); };",
        "timeout_ms = 200\n",
    );
    assert_eq!(settled, Err(HookError::Timeout));
    assert_eq!(report.result, Err(HookError::Timeout));
    assert_eq!(report.console[0].message, "waiting");
}

/// The hooks folder's files and their contents, to see that nothing was written.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn runner_setup(egress: &str) -> (tempfile::TempDir, hookgate::config::HooksConfig, Engine) {
    let dir = engine_support::hooks_dir(&[
        (
            "lib/greeting.js",
            "module.exports = function (n) { return 'hi ' + n; };",
        ),
        (
            "credentials-exchange/existing.js",
            "module.exports = function (c, s, a, ctx, cb) { cb(null, {}); };",
        ),
    ]);
    let mut cfg = engine_support::config(&format!("timeout_ms = 3000\n{egress}"));
    cfg.workers = Some(1);
    let engine = Engine::start(&cfg).unwrap();
    (dir, cfg, engine)
}

#[test]
fn the_runner_runs_a_script_without_writing_any_file_and_returns_its_console_and_requests() {
    let rt = rt();
    let (dir, cfg, engine) = runner_setup("");
    let (url, mut seen) = rt.block_on(engine_support::echo_server());
    let before = snapshot(dir.path());
    let req: RunnerRequest = serde_json::from_value(json!({
        "triggerId": "credentials-exchange",
        "name": "existing",
        "script": "const greet = require('../lib/greeting');\n\
                   module.exports = async function (client, scope, audience, context, cb) {\n\
                     console.log(greet(client.name), __filename);\n\
                     const res = await fetch(context.webtask.secrets.API + '/lookup?token=abc');\n\
                     cb(null, { status: res.status, scope: scope, key: context.webtask.secrets.KEY });\n\
                   };",
        "payload": { "scope": ["read:x"] },
        "secrets": { "API": url, "KEY": "v1" },
    }))
    .unwrap();
    let result = rt
        .block_on(runner::run(&engine, &cfg, dir.path(), req))
        .unwrap();
    assert_eq!(result.outcome, Outcome::Ok);
    assert_eq!(
        result.response,
        Some(json!({"status": 200, "scope": ["read:x"], "key": "v1"}))
    );
    assert_eq!(
        result.console[0].message,
        "hi Test Application /hooks/credentials-exchange/existing.js"
    );
    assert_eq!(result.requests.len(), 1);
    assert_eq!(
        result.requests[0].url,
        format!("{url}/lookup?token=REDACTED")
    );
    assert_eq!(result.requests[0].status, Some(200));
    assert_eq!(
        engine_support::next_request(&rt, &mut seen)["path"],
        "/lookup?token=abc"
    );
    assert_eq!(snapshot(dir.path()), before, "the hooks folder changed");

    // A script that does not compile: its line, nothing run, nothing written.
    let bad: RunnerRequest = serde_json::from_value(json!({
        "triggerId": "credentials-exchange",
        "script": "module.exports = function (a, b, c, d, cb) {\n  cb(null, {;\n};",
    }))
    .unwrap();
    match rt.block_on(runner::run(&engine, &cfg, dir.path(), bad)) {
        Err(RunnerError::Compile(p)) => {
            assert!(
                p[0].starts_with("credentials-exchange/runner.js:2:"),
                "{p:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn egress_rules_hold_in_the_runner() {
    let rt = rt();
    let (dir, cfg, engine) = runner_setup("[egress]\nallow_hosts = [\"api.allowed.example\"]\n");
    let (url, mut seen) = rt.block_on(engine_support::echo_server());
    let req = RunnerRequest {
        trigger: Trigger::CredentialsExchange,
        script: "module.exports = function (c, s, a, ctx, cb) {\n\
                   fetch(ctx.webtask.secrets.API + '/steal').then(function () { cb(null, 'sent'); }, cb);\n\
                 };"
            .into(),
        payload: None,
        secrets: BTreeMap::from([("API".to_string(), url)]),
        name: None,
    };
    let result = rt
        .block_on(runner::run(&engine, &cfg, dir.path(), req))
        .unwrap();
    assert_eq!(result.outcome, Outcome::Error, "{result:?}");
    let error = result.requests[0].error.as_deref().unwrap();
    assert!(
        error.contains("not in [hooks.egress] allow_hosts"),
        "{error}"
    );
    assert_eq!(result.requests[0].host, "127.0.0.1");
    let nothing =
        rt.block_on(async { tokio::time::timeout(Duration::from_millis(300), seen.recv()).await });
    assert!(nothing.is_err(), "the forbidden host got a request");
}

#[test]
fn an_overloaded_call_is_reported_as_never_run() {
    let rt = rt();
    let (url, mut seen) = rt.block_on(engine_support::echo_server());
    // The first call holds the hook's only slot until its timer, a second after its request.
    let (_dir, hook, engine) = engine_support::single(
        "module.exports = function (c, s, a, ctx, cb) {\n\
           fetch(ctx.url).then(function () { setTimeout(function () { cb(null, {}); }, 1000); });\n\
         };",
        "queue_timeout_ms = 50\nmax_concurrency_per_hook = 1\n",
        1,
    );
    let args = || vec![json!({}), Value::Null, Value::Null, json!({ "url": url })];
    let first = {
        let (engine, hook, args) = (engine.clone(), hook.clone(), args());
        rt.spawn(async move { engine.call_with(&hook, args, "r1", Wait::Sleep).await })
    };
    engine_support::next_request(&rt, &mut seen);
    let (tx, rx) = std::sync::mpsc::channel();
    let reporter = Reporter::new(move |r| tx.send(r).unwrap());
    let settled =
        rt.block_on(engine.call_with_report(&hook, args(), "r2", Wait::Sleep, Some(reporter)));
    assert_eq!(settled, Err(HookError::Overloaded));
    let report = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(!report.started);
    assert_eq!(report.result, Err(HookError::Overloaded));
    assert_eq!(rt.block_on(first).unwrap(), Ok(json!({})));
}

#[test]
fn a_script_looping_in_the_runner_never_costs_a_real_call_its_worker() {
    let rt = rt();
    let (url, mut seen) = rt.block_on(engine_support::echo_server());
    // A real call on the shared engine's only worker, mid-way: its request answered, its timer
    // pending.
    let (dir, hook, engine) = engine_support::single(
        "module.exports = function (c, s, a, ctx, cb) {\n\
           fetch(ctx.url).then(function () { setTimeout(function () { cb(null, 'real'); }, 1500); });\n\
         };",
        "timeout_ms = 10000\n",
        1,
    );
    let real = {
        let args = vec![json!({}), Value::Null, Value::Null, json!({ "url": url })];
        let (engine, hook) = (engine.clone(), hook.clone());
        rt.spawn(async move { engine.call_with(&hook, args, "real", Wait::Sleep).await })
    };
    engine_support::next_request(&rt, &mut seen);

    let cfg = engine_support::config("timeout_ms = 300\n");
    let runner = runner::Runner::new(&cfg);
    let req: RunnerRequest = serde_json::from_value(json!({
        "triggerId": "credentials-exchange",
        "script": "module.exports = function (c, s, a, ctx, cb) { console.log('spinning'); while (true) {} };",
    }))
    .unwrap();
    let tried = rt.block_on(runner.run(&cfg, dir.path(), req)).unwrap();
    assert_eq!(tried.outcome, Outcome::Timeout, "{tried:?}");
    assert_eq!(tried.console[0].message, "spinning");
    assert_eq!(rt.block_on(real).unwrap(), Ok(json!("real")));
}
