//! Signup end to end on the real binary: pre-user-registration before the Rust echo upstream
//! (which reports the body it received), post-user-registration through the redb outbox to a
//! second echo server standing in for Slack or a CRM, and `hookgate outbox` on the same file.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::hookgate::{free_port, run_cli, Hookgate};
use common::upstream::Upstream;
use common::wait_for;
use serde_json::{json, Value};

/// The echo upstream answers `body_sha256`: a stable, per-body "user id" for the pointer.
const ROUTES: &str = r#"
[[route]]
name = "signup"
path = "/dbconnections/signup"
point = "pre-user-registration"
[route.signup]
user_id = "/body_sha256"

[[route]]
name = "legacy"
path = "/legacy/register"
point = "pre-user-registration"
upstream_path = "/api/users"
upstream_body = "json"
[route.signup]
username = "login"
email = "mail"
user_metadata = "/profile/metadata"
app_metadata = "/profile/app"
user_id = "/body_sha256"
default_connection = "legacy-db"

[[route]]
name = "lenient"
path = "/lenient/signup"
point = "pre-user-registration"
[route.signup]
user_id = "/body_sha256"
"#;

/// Steered by the username, like a real hook steered by the email domain.
const PRE_HOOK: &str = r#"
module.exports = function (user, context, cb) {
  if (user.username === 'blocked') return cb(new PreUserRegistrationError('blocked ' + user.email + ' by policy', 'Signups from this domain are not allowed'));
  if (user.username === 'throws') return cb(new Error('crm lookup failed'));
  if (user.username === 'badkey') return cb(null, { user: { app_metadata: { nested: { 'a.b': 1 } } } });
  if (user.username === 'dollar') return cb(null, { user: { user_metadata: { $where: 1 } } });
  var response = {};
  response.user = user; // the starter code echoes the user: only the metadata count
  response.user.user_metadata = { hobby: 'surfing', lang: context.requestLanguage };
  response.user.app_metadata = { plan: 'full', tenant: user.tenant, email: user.email,
    connection: context.connection.name, saw_password: user.password === 'hunter2-secret' };
  cb(null, response);
};
"#;

const LENIENT_HOOK: &str = r#"
module.exports = function (user, context, cb) { cb(new Error('flaky dependency')); };
"#;

/// Delivers to NOTIFY_URL and fails (so the outbox retries) when it cannot.
const POST_HOOK: &str = r#"
module.exports = function (user, context, cb) {
  var url = context.webtask.secrets.NOTIFY_URL + '/notify/' + user.id + '?event=' + context.event_id +
    '&email=' + encodeURIComponent(user.email) + '&plan=' + user.app_metadata.plan +
    '&hobby=' + user.user_metadata.hobby + '&lang=' + context.requestLanguage;
  fetch(url, { method: 'POST', body: JSON.stringify(user) })
    .then(function (res) { cb(res.ok ? null : new Error('notify answered ' + res.status)); },
          function (err) { cb(err); });
};
"#;

fn hooks_table(extra_outbox: &str) -> String {
    format!(
        "[hooks]\ndir = \"hooks\"\n\
         [[hooks.hook]]\nfile = \"pre-user-registration/meta.js\"\nroutes = [\"signup\", \"legacy\"]\ntimeout_ms = 2000\n\
         [[hooks.hook]]\nfile = \"pre-user-registration/lenient.js\"\nroutes = [\"lenient\"]\non_error = \"allow\"\n\
         [[hooks.hook]]\nfile = \"post-user-registration/notify.js\"\ntimeout_ms = 2000\n\
         secrets = {{ NOTIFY_URL = {{ file = \"notify_url\" }} }}\n\
         [outbox]\npath = \"data/outbox.redb\"\nretry_base_ms = 50\nretry_max_ms = 400\n{extra_outbox}\n"
    )
}

fn prepare(notify_url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks");
    std::fs::create_dir_all(hooks.join("pre-user-registration")).unwrap();
    std::fs::create_dir_all(hooks.join("post-user-registration")).unwrap();
    std::fs::write(hooks.join("pre-user-registration/meta.js"), PRE_HOOK).unwrap();
    std::fs::write(hooks.join("pre-user-registration/lenient.js"), LENIENT_HOOK).unwrap();
    std::fs::write(hooks.join("post-user-registration/notify.js"), POST_HOOK).unwrap();
    std::fs::write(dir.path().join("notify_url"), notify_url).unwrap();
    dir
}

fn start(dir: tempfile::TempDir, upstream: &Upstream, extra_outbox: &str) -> Hookgate {
    Hookgate::start_in(
        dir,
        &upstream.address(),
        "",
        "",
        &format!("{ROUTES}{}", hooks_table(extra_outbox)),
    )
}

async fn signup(hg: &Hookgate, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(hg.url("/dbconnections/signup"))
        .header("accept-language", "fr-CA,fr;q=0.9")
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn user(name: &str) -> Value {
    json!({
        "client_id": "spa",
        "email": format!("{name}@example.com"),
        "password": "hunter2-secret",
        "connection": "Username-Password-Authentication",
        "username": name,
    })
}

/// The body the echo upstream received, parsed.
fn forwarded(answer: &Value) -> Value {
    serde_json::from_str(answer["body"].as_str().unwrap()).unwrap()
}

/// Notifications seen by the stand-in CRM: (user id, query).
fn notifications(crm: &Upstream) -> Vec<(String, String)> {
    crm.seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| l.strip_prefix("POST /notify/"))
        .map(|rest| {
            let (id, q) = rest.split_once('?').unwrap();
            (id.to_string(), q.to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hook_metadata_reaches_the_forwarded_body_and_client_app_metadata_is_blocked() {
    let upstream = Upstream::start();
    let crm = Upstream::start();
    let hg = start(prepare(&format!("http://{}", crm.address())), &upstream, "");
    let mut body = user("ann");
    body["user_metadata"] = json!({ "color": "red", "hobby": "chess" });
    body["app_metadata"] = json!({ "admin": true, "plan": "free" });
    let (status, answer) = signup(&hg, body).await;
    assert_eq!(status, 200, "{answer}");
    let sent = forwarded(&answer);
    assert_eq!(
        sent["user_metadata"],
        json!({ "color": "red", "hobby": "surfing", "lang": "fr-ca" }),
        "the client's user_metadata is kept, the hook's merged over it"
    );
    assert_eq!(
        sent["app_metadata"],
        json!({ "plan": "full", "tenant": "hookgate", "email": "ann@example.com",
                "connection": "Username-Password-Authentication", "saw_password": true }),
        "only the hook's app_metadata is forwarded"
    );
    assert_eq!(
        sent["password"], "hunter2-secret",
        "the upstream gets the password"
    );
    let log = hg.log();
    assert!(log.contains("carried app_metadata; removed"), "{log}");
    assert!(
        !log.contains("hunter2-secret"),
        "the password reached the log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_mapping_reads_form_fields_and_places_metadata_where_configured() {
    let upstream = Upstream::start();
    let crm = Upstream::start();
    let hg = start(prepare(&format!("http://{}", crm.address())), &upstream, "");
    let resp = reqwest::Client::new()
        .post(hg.url("/legacy/register"))
        .form(&[
            ("login", "bob"),
            ("mail", "bob@legacy.example"),
            ("password", "pw"),
            ("app_metadata", r#"{"admin":true}"#),
            ("user_metadata", r#"{"color":"blue"}"#),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["target"], "/api/users");
    let sent = forwarded(&answer);
    assert_eq!(sent["login"], "bob");
    assert_eq!(sent["profile"]["metadata"]["color"], "blue");
    assert_eq!(sent["profile"]["metadata"]["hobby"], "surfing");
    assert_eq!(sent["profile"]["app"]["email"], "bob@legacy.example");
    assert_eq!(sent["profile"]["app"]["connection"], "legacy-db");
    assert!(sent.get("app_metadata").is_none(), "{sent}");
    assert!(sent.get("user_metadata").is_none(), "{sent}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_deny_path_answers_400_in_the_signup_shape_and_never_reaches_the_upstream() {
    let upstream = Upstream::start();
    let crm = Upstream::start();
    let hg = start(prepare(&format!("http://{}", crm.address())), &upstream, "");
    let (status, body) = signup(&hg, user("blocked")).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({ "name": "PreUserRegistrationError", "code": "invalid_signup",
                "description": "Signups from this domain are not allowed", "statusCode": 400 })
    );
    for name in ["throws", "badkey", "dollar"] {
        let (status, body) = signup(&hg, user(name)).await;
        assert_eq!(status, 400, "{name}");
        assert_eq!(
            body,
            json!({ "name": "BadRequestError", "code": "invalid_signup",
                    "description": "the signup was refused", "statusCode": 400 }),
            "{name}"
        );
    }
    let mut bad_client = user("carol");
    bad_client["user_metadata"] = json!({ "a": { "b.c": 1 } });
    let (status, body) = signup(&hg, bad_client).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_signup"))
    );
    let (status, body) = signup(&hg, json!("not an object")).await;
    assert_eq!(
        (status, body["name"].as_str()),
        (400, Some("BadRequestError"))
    );
    assert!(
        upstream.seen.lock().unwrap().is_empty(),
        "a denied signup reached the upstream"
    );
    let log = hg.log();
    assert!(
        log.contains("blocked blocked@example.com by policy"),
        "the logMessage is logged:\n{log}"
    );
    assert!(log.contains("crm lookup failed"), "{log}");
    assert!(
        log.contains("must not start with `$` or contain `.`"),
        "{log}"
    );

    // on_error = "allow": the failing hook is skipped and the signup goes through.
    let resp = reqwest::Client::new()
        .post(hg.url("/lenient/signup"))
        .json(&user("dave"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn post_hook_runs_once_per_signup_and_never_for_a_rejected_one() {
    let upstream = Upstream::start();
    let crm = Upstream::start();
    let hg = start(prepare(&format!("http://{}", crm.address())), &upstream, "");
    let rejected = reqwest::Client::new()
        .post(hg.url("/dbconnections/signup"))
        .header("x-want-status", "409")
        .json(&user("exists"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        rejected.status(),
        409,
        "the upstream's answer passes through"
    );
    let rejected: Value = rejected.json().await.unwrap();
    assert_eq!(rejected["method"], "POST");

    let mut ids = BTreeSet::new();
    for i in 0..5 {
        let (status, answer) = signup(&hg, user(&format!("u{i}"))).await;
        assert_eq!(status, 200);
        ids.insert(answer["body_sha256"].as_str().unwrap().to_string());
    }
    wait_for("five notifications", Duration::from_secs(20), || {
        notifications(&crm).len() >= 5
    });
    // A sentinel signup: once it is delivered, a duplicate of the earlier ones would have been too.
    let (_, sentinel) = signup(&hg, user("sentinel")).await;
    let sentinel_id = sentinel["body_sha256"].as_str().unwrap().to_string();
    wait_for("the sentinel", Duration::from_secs(20), || {
        notifications(&crm).iter().any(|(id, _)| *id == sentinel_id)
    });
    let seen = notifications(&crm);
    assert_eq!(seen.len(), 6, "{seen:?}");
    let got: BTreeSet<_> = seen
        .iter()
        .map(|(id, _)| id.clone())
        .filter(|id| *id != sentinel_id)
        .collect();
    assert_eq!(
        got, ids,
        "each accepted signup, once, with the id from the answer"
    );
    let events: BTreeSet<_> = seen
        .iter()
        .map(|(_, q)| q.split('&').next().unwrap().to_string())
        .collect();
    assert_eq!(events.len(), 6, "distinct event ids: {events:?}");
    assert!(
        seen[0].1.contains("plan=full&hobby=surfing&lang=fr-ca"),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_graceful_stop_after_deliveries_leaves_no_post_hook_to_run_again() {
    let upstream = Upstream::start();
    let crm = Upstream::start();
    let mut hg = start(prepare(&format!("http://{}", crm.address())), &upstream, "");
    // Concurrent signups: their events may share one commit of the outbox.
    let (a, b, c) = tokio::join!(
        signup(&hg, user("g0")),
        signup(&hg, user("g1")),
        signup(&hg, user("g2"))
    );
    let mut ids = BTreeSet::new();
    for (status, answer) in [a, b, c] {
        assert_eq!(status, 200);
        ids.insert(answer["body_sha256"].as_str().unwrap().to_string());
    }
    wait_for("three notifications", Duration::from_secs(20), || {
        notifications(&crm).len() >= 3
    });
    hg.until_metric("hookgate_outbox_delivered_total", 3).await;
    assert_eq!(hg.metric("hookgate_outbox_pending").await, 0);
    // A deploy: SIGTERM right after the hooks ran.
    hg.signal("TERM");
    assert!(hg.wait_exit(Duration::from_secs(15)).is_some());
    let config = hg.config_path();
    let (code, out, err) = run_cli(
        &["outbox", "list", "--config", config.to_str().unwrap()],
        hg.dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("0 pending, 0 dead"),
        "delivered events must not wait to run again after the restart: {out}"
    );

    // After the restart, a new signup is notified, and none of the earlier ones again.
    let dir = std::mem::replace(&mut hg.dir, tempfile::tempdir().unwrap());
    drop(hg);
    let hg = start(dir, &upstream, "");
    let (_, sentinel) = signup(&hg, user("after")).await;
    let sentinel_id = sentinel["body_sha256"].as_str().unwrap().to_string();
    wait_for("the new signup", Duration::from_secs(20), || {
        notifications(&crm).iter().any(|(id, _)| *id == sentinel_id)
    });
    let seen: Vec<String> = notifications(&crm).into_iter().map(|(id, _)| id).collect();
    assert_eq!(seen.len(), 4, "each signup notified once: {seen:?}");
    assert_eq!(
        seen.iter()
            .filter(|id| **id != sentinel_id)
            .cloned()
            .collect::<BTreeSet<_>>(),
        ids
    );
    drop(hg);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_with_events_pending_then_restart_delivers_every_event() {
    let upstream = Upstream::start();
    // The CRM is down at first: a port nothing listens on.
    let dead_port = free_port();
    let mut hg = start(
        prepare(&format!("http://127.0.0.1:{dead_port}")),
        &upstream,
        "",
    );
    let mut ids = BTreeSet::new();
    for i in 0..8 {
        let (status, answer) = signup(&hg, user(&format!("k{i}"))).await;
        assert_eq!(status, 200, "the answer does not wait for the post hook");
        ids.insert(answer["body_sha256"].as_str().unwrap().to_string());
    }
    wait_for("a failed delivery", Duration::from_secs(20), || {
        hg.log().contains("will retry")
    });
    let config = hg.config_path();
    let (code, _, err) = run_cli(
        &["outbox", "list", "--config", config.to_str().unwrap()],
        hg.dir.path(),
    );
    assert_ne!(code, 0, "the outbox is held by the running hookgate");
    assert!(err.contains("stop hookgate first"), "{err}");

    hg.signal("KILL");
    assert!(hg.wait_exit(Duration::from_secs(10)).is_some());
    let (code, out, err) = run_cli(
        &["outbox", "list", "--config", config.to_str().unwrap()],
        hg.dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("8 pending, 0 dead"), "{out}");

    // The CRM is back; hookgate restarts on the same folder and outbox file.
    let crm = Upstream::start();
    let dir = std::mem::replace(&mut hg.dir, tempfile::tempdir().unwrap());
    drop(hg);
    std::fs::write(
        dir.path().join("notify_url"),
        format!("http://{}", crm.address()),
    )
    .unwrap();
    let hg = start(dir, &upstream, "");
    wait_for(
        "every event after the restart",
        Duration::from_secs(30),
        || {
            let got: BTreeSet<_> = notifications(&crm).into_iter().map(|(id, _)| id).collect();
            got == ids
        },
    );
    drop(hg);
}

#[tokio::test(flavor = "multi_thread")]
async fn exhausted_events_become_dead_letters_that_the_cli_retries_and_drops() {
    let upstream = Upstream::start();
    let dead_port = free_port();
    let mut hg = start(
        prepare(&format!("http://127.0.0.1:{dead_port}")),
        &upstream,
        "max_attempts = 2",
    );
    for i in 0..2 {
        assert_eq!(signup(&hg, user(&format!("d{i}"))).await.0, 200);
    }
    wait_for("two dead letters", Duration::from_secs(20), || {
        hg.log().matches("is a dead letter").count() >= 2
    });
    // While hookgate runs, the CLI cannot open the file: /metrics is where dead letters show.
    hg.until_metric("hookgate_outbox_dead", 2).await;
    assert_eq!(hg.metric("hookgate_outbox_pending").await, 0);
    assert_eq!(hg.metric("hookgate_outbox_dead_letters_total").await, 2);
    assert_eq!(hg.metric("hookgate_outbox_failed_attempts_total").await, 4);
    assert_eq!(hg.metric("hookgate_outbox_delivered_total").await, 0);
    hg.signal("TERM");
    assert!(hg.wait_exit(Duration::from_secs(15)).is_some());
    let config = hg.config_path();
    let cfg = config.to_str().unwrap();
    let cli = |args: &[&str]| {
        let mut all = vec!["outbox"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--config", cfg]);
        let (code, out, err) = run_cli(&all, hg.dir.path());
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };
    let out = cli(&["list"]);
    assert!(out.contains("0 pending, 2 dead"), "{out}");
    assert!(out.contains("attempts=2"), "{out}");
    let first: String = out.split('\t').next().unwrap().to_string();
    assert!(cli(&["drop", &first]).contains("1 event(s) deleted"));
    assert!(cli(&["retry", "--all-dead"]).contains("1 event(s) due now"));
    let out = cli(&["list", "--json"]);
    let row: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(
        (row["state"].as_str(), row["event"]["attempts"].as_u64()),
        (Some("pending"), Some(0))
    );
    assert_eq!(row["event"]["trigger"], "post-user-registration");
    assert!(row["event"]["args"][0].get("password").is_none());
    assert!(
        row["event"]["args"][1].get("webtask").is_none(),
        "secrets are never stored"
    );
}

/// Reports to the signup's forwarded body (pre) and to the CRM (post) which fields it was given.
const PRESENCE_PRE: &str = r#"
module.exports = function (user, context, cb) {
  cb(null, { user: { app_metadata: { phone_in_user: 'phoneNumber' in user, username_in_user: 'username' in user,
    phone_type: typeof user.phoneNumber } } });
};
"#;
const PRESENCE_POST: &str = r#"
module.exports = function (user, context, cb) {
  var q = 'phone_in_user=' + ('phoneNumber' in user) + '&username_in_user=' + ('username' in user) +
    '&email=' + encodeURIComponent(user.email);
  fetch(context.webtask.secrets.NOTIFY_URL + '/presence?' + q, { method: 'POST' })
    .then(function (res) { cb(res.ok ? null : new Error('crm answered ' + res.status)); }, cb);
};
"#;

#[tokio::test(flavor = "multi_thread")]
async fn signup_fields_the_client_did_not_send_are_absent_not_null_in_both_hooks() {
    let (upstream, crm) = (Upstream::start(), Upstream::start());
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks");
    std::fs::create_dir_all(hooks.join("pre-user-registration")).unwrap();
    std::fs::create_dir_all(hooks.join("post-user-registration")).unwrap();
    std::fs::write(
        hooks.join("pre-user-registration/presence.js"),
        PRESENCE_PRE,
    )
    .unwrap();
    std::fs::write(
        hooks.join("post-user-registration/presence.js"),
        PRESENCE_POST,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("notify_url"),
        format!("http://{}", crm.address()),
    )
    .unwrap();
    let settings = "[hooks]\ndir = \"hooks\"\n\
         [[hooks.hook]]\nfile = \"post-user-registration/presence.js\"\ntimeout_ms = 2000\n\
         secrets = { NOTIFY_URL = { file = \"notify_url\" } }\n\
         [outbox]\npath = \"outbox.redb\"\nretry_base_ms = 50\nretry_max_ms = 400\n";
    let hg = Hookgate::start_in(
        dir,
        &upstream.address(),
        "",
        "",
        &format!("{ROUTES}{settings}"),
    );

    // No phone number, no username: absent. Then both sent: present (the test can tell).
    let bare = json!({ "client_id": "spa", "email": "bare@example.com", "password": "pw-123456" });
    let (status, answer) = signup(&hg, bare).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        forwarded(&answer)["app_metadata"],
        json!({ "phone_in_user": false, "username_in_user": false, "phone_type": "undefined" }),
        "pre-user-registration: 'phoneNumber' in user === false"
    );
    let mut full = user("full");
    full["phone_number"] = json!("+15555550100");
    let (status, answer) = signup(&hg, full).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        forwarded(&answer)["app_metadata"],
        json!({ "phone_in_user": true, "username_in_user": true, "phone_type": "string" })
    );

    let seen = |email: &str| {
        crm.seen
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains(&format!("email={email}")))
            .cloned()
    };
    wait_for("both post hooks", Duration::from_secs(20), || {
        seen("bare%40example.com").is_some() && seen("full%40example.com").is_some()
    });
    assert!(
        seen("bare%40example.com")
            .unwrap()
            .contains("phone_in_user=false&username_in_user=false"),
        "post-user-registration: absent too"
    );
    assert!(seen("full%40example.com")
        .unwrap()
        .contains("phone_in_user=true&username_in_user=true"));
}
