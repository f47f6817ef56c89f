//! post-change-password end to end on the real binary: the request reaches the Rust echo
//! upstream untouched; after a 2xx the event goes through the durable outbox to a hook that
//! notifies a second echo server standing in for a CRM.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::hookgate::Hookgate;
use common::upstream::Upstream;
use common::wait_for;
use serde_json::{json, Value};

const ROUTES: &str = r#"
[[route]]
name = "change"
path = "/dbconnections/change_password"
point = "post-change-password"

[[route]]
name = "legacy"
path = "/legacy/password"
point = "post-change-password"
upstream_path = "/api/password"
[route.change_password]
id = "response:/body_sha256"
username = "header:X-User-Name"
email = "body:/account/mail"
default_connection = "legacy-db"
"#;

/// Tells the CRM what it saw, everything in the query so the echo reports it.
const POST_HOOK: &str = r#"
module.exports = function (user, context, cb) {
  var q = 'username=' + encodeURIComponent(user.username) + '&email=' + encodeURIComponent(user.email) +
    '&has_password=' + Object.prototype.hasOwnProperty.call(user, 'password') +
    '&reset=' + (/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(user.last_password_reset)) +
    '&conn=' + context.connection.name + '&tenant=' + context.connection.tenant +
    '&lang=' + context.requestLanguage + '&event=' + context.event_id +
    '&id_in_user=' + ('id' in user) + '&email_in_user=' + ('email' in user);
  fetch(context.webtask.secrets.NOTIFY_URL + '/changed/' + encodeURIComponent(user.id) + '?' + q, { method: 'POST' })
    .then(function (res) { cb(res.ok ? null : new Error('crm answered ' + res.status)); }, cb);
};
"#;

fn start(upstream: &Upstream, crm: &Upstream) -> Hookgate {
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/post-change-password");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("notify.js"), POST_HOOK).unwrap();
    std::fs::write(
        dir.path().join("notify-url"),
        format!("http://{}\n", crm.address()),
    )
    .unwrap();
    let settings =
        "[hooks]\n[[hooks.hook]]\nfile = \"post-change-password/notify.js\"\ntimeout_ms = 3000\n\
         secrets = { NOTIFY_URL = { file = \"notify-url\" } }\n\
         [outbox]\nretry_base_ms = 50\nretry_max_ms = 200\n";
    Hookgate::start_in(
        dir,
        &upstream.address(),
        "",
        "",
        &format!("{ROUTES}{settings}"),
    )
}

fn unsigned_jwt(claims: Value) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.sig", b64(&json!({"alg": "RS256"})), b64(&claims))
}

fn notifications(crm: &Upstream) -> Vec<String> {
    crm.seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| l.strip_prefix("POST /changed/").map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_change_notifies_once_with_the_user_and_never_the_password() {
    let (upstream, crm) = (Upstream::start(), Upstream::start());
    let hg = start(&upstream, &crm);
    let body = json!({ "email": "ann@example.com", "username": "ann", "password": "hunter2-secret", "connection": "db" });
    let resp = reqwest::Client::new()
        .post(hg.url("/dbconnections/change_password"))
        .bearer_auth(unsigned_jwt(json!({ "sub": "auth0|42" })))
        .header("accept-language", "de-CH,de;q=0.9")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let echo: Value = resp.json().await.unwrap();
    assert_eq!(
        echo["body"],
        body.to_string(),
        "the request reaches the upstream untouched"
    );
    wait_for("the notification", Duration::from_secs(20), || {
        !notifications(&crm).is_empty()
    });
    let n = notifications(&crm);
    assert_eq!(n.len(), 1, "{n:?}");
    assert!(
        n[0].starts_with("auth0%7C42?username=ann&email=ann%40example.com&has_password=false&reset=true&conn=db&tenant=hookgate&lang=de-ch&event="),
        "{}",
        n[0]
    );
    assert!(
        !hg.log().contains("hunter2-secret"),
        "the password never reaches the logs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_legacy_mapping_reads_header_answer_and_body_pointer() {
    let (upstream, crm) = (Upstream::start(), Upstream::start());
    let hg = start(&upstream, &crm);
    let resp = reqwest::Client::new()
        .post(hg.url("/legacy/password"))
        .header("x-user-name", "bob")
        .json(&json!({ "account": { "mail": "bob@example.com" }, "new_password": "s3cret-new" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let echo: Value = resp.json().await.unwrap();
    assert_eq!(echo["target"], "/api/password");
    let id = echo["body_sha256"].as_str().unwrap().to_string();
    wait_for("the notification", Duration::from_secs(20), || {
        !notifications(&crm).is_empty()
    });
    let n = notifications(&crm);
    assert!(
        n[0].starts_with(&format!("{id}?username=bob&email=bob%40example.com&has_password=false&reset=true&conn=legacy-db")),
        "{}",
        n[0]
    );
    assert!(!hg.log().contains("s3cret-new"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_password_change_runs_no_hook() {
    let (upstream, crm) = (Upstream::start(), Upstream::start());
    let hg = start(&upstream, &crm);
    let c = reqwest::Client::new();
    let refused = c
        .post(hg.url("/dbconnections/change_password"))
        .bearer_auth(unsigned_jwt(json!({ "sub": "refused" })))
        .header("x-want-status", "400")
        .json(&json!({ "email": "x@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        400,
        "the upstream's refusal passes through"
    );
    // A sentinel that does succeed: once its event is delivered, the refused one would have been too.
    let ok = c
        .post(hg.url("/dbconnections/change_password"))
        .bearer_auth(unsigned_jwt(json!({ "sub": "sentinel" })))
        .json(&json!({ "email": "y@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    wait_for("the sentinel", Duration::from_secs(20), || {
        notifications(&crm)
            .iter()
            .any(|n| n.starts_with("sentinel?"))
    });
    std::thread::sleep(Duration::from_millis(300));
    let n = notifications(&crm);
    assert_eq!(n.len(), 1, "only the sentinel: {n:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_opaque_bearer_token_leaves_no_user_id_and_says_loudly_which_mapping_to_set() {
    let (upstream, crm) = (Upstream::start(), Upstream::start());
    let hg = start(&upstream, &crm);
    let metric = "hookgate_change_password_unmapped_total{field=\"id\"}";
    assert_eq!(hg.metric(metric).await, 0);
    let resp = reqwest::Client::new()
        .post(hg.url("/dbconnections/change_password"))
        .bearer_auth("opaque-access-token-7f3a")
        .json(&json!({ "user_id": "u-7", "password": "s3cret-changed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the change itself goes through");
    // The event is still stored and delivered, with the fields not found absent (not null).
    wait_for("the notification", Duration::from_secs(20), || {
        !notifications(&crm).is_empty()
    });
    let n = notifications(&crm);
    assert!(n[0].starts_with("undefined?"), "{}", n[0]);
    assert!(
        n[0].ends_with("&id_in_user=false&email_in_user=false"),
        "{}",
        n[0]
    );
    assert_eq!(hg.metric(metric).await, 1, "the miss is counted");
    assert_eq!(
        hg.metric("hookgate_change_password_unmapped_total{field=\"email\"}")
            .await,
        1
    );
    let log = hg.log();
    assert!(log.contains("id: nothing at jwt:sub"), "{log}");
    assert!(
        log.contains("opaque (non-JWT) bearer token"),
        "the log says why jwt:sub found nothing: {log}"
    );
    assert!(
        log.contains(r#"try id = \"body:user_id\""#) || log.contains(r#"try id = "body:user_id""#),
        "the log names the mapping to set, from what the request carried: {log}"
    );
    assert!(
        log.contains("response:/body_sha256"),
        "what the answer offered is listed: {log}"
    );
    assert!(!log.contains("s3cret-changed"), "names only, never values");
}
