//! Hostile outbox: nothing is answered 2xx that is not recorded.
//!
//! The outbox lives on a small tmpfs this test mounts (we run as root in CI; where mounting is not
//! allowed the full-disk tests say "skipped" and pass). The disk is filled, signups are sent, and
//! every 2xx must have its post-user-registration event delivered once space is back; every
//! failure is in Auth0's signup error shape; `/metrics` counts them and `/readyz` is not ready;
//! freeing space brings hookgate back without a restart. Plus: a hot reload that adds the first
//! signup route opens the outbox, and its post hooks run.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::hookgate::Hookgate;
use common::upstream::Upstream;
use common::wait_for;
use serde_json::{json, Value};

const ROUTE: &str = r#"
[[route]]
name = "signup"
path = "/dbconnections/signup"
point = "pre-user-registration"
[route.signup]
user_id = "/body_sha256"
"#;

/// Tells the stand-in CRM which user signed up; fails (so the outbox retries) when it cannot.
const POST_HOOK: &str = r#"
module.exports = function (user, context, cb) {
  fetch(context.webtask.secrets.NOTIFY_URL + '/notify/' + user.id + '?event=' + context.event_id, { method: 'POST' })
    .then(function (res) { cb(res.ok ? null : new Error('notify answered ' + res.status)); },
          function (err) { cb(err); });
};
"#;

fn hooks_table() -> String {
    "[hooks]\ndir = \"hooks\"\n\
     [[hooks.hook]]\nfile = \"post-user-registration/notify.js\"\ntimeout_ms = 2000\n\
     secrets = { NOTIFY_URL = { file = \"notify_url\" } }\n"
        .to_string()
}

/// A tmpfs mounted for one test, unmounted when dropped (lazily if hookgate still holds it).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None`, with a "skipped" message, where mounting is not allowed.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            Ok(o) => {
                eprintln!(
                    "skipped: cannot mount tmpfs: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot mount tmpfs: {e}");
                None
            }
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Fill the file system to the last byte with a filler file; returns it.
    fn fill(&self) -> PathBuf {
        let filler = self.path("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let mut small = vec![0u8; 512];
        while !small.is_empty() {
            if f.write_all(&small).is_err() {
                small.truncate(small.len() / 2);
            }
        }
        let _ = f.flush();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// hookgate with a signup route whose post hook notifies `crm`, its outbox at `outbox`.
fn start(upstream: &Upstream, crm: &Upstream, outbox: &Path, outbox_extra: &str) -> Hookgate {
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/post-user-registration");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("notify.js"), POST_HOOK).unwrap();
    std::fs::write(
        dir.path().join("notify_url"),
        format!("http://{}", crm.address()),
    )
    .unwrap();
    let extra = format!(
        "{ROUTE}{}[outbox]\npath = \"{}\"\nretry_base_ms = 50\nretry_max_ms = 200\n{outbox_extra}\n",
        hooks_table(),
        outbox.display()
    );
    Hookgate::start_in(dir, &upstream.address(), "", "", &extra)
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

async fn signup(hg: &Hookgate, name: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(hg.url("/dbconnections/signup"))
        .json(&user(name))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// User ids the CRM was told about.
fn notified(crm: &Upstream) -> BTreeSet<String> {
    crm.seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| l.strip_prefix("POST /notify/"))
        .map(|rest| rest.split_once('?').map_or(rest, |(id, _)| id).to_string())
        .collect()
}

fn signups_seen(upstream: &Upstream) -> usize {
    upstream
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("POST /dbconnections/signup"))
        .count()
}

async fn readyz(hg: &Hookgate) -> (u16, Value) {
    let resp = reqwest::get(hg.admin_url("/readyz")).await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// A failed signup is in Auth0's signup error shape, with the status it claims.
fn assert_signup_shape(status: u16, body: &Value) {
    assert_eq!(body["name"], "ServerError", "{body}");
    assert_eq!(body["statusCode"], status, "{body}");
    assert!(
        body["code"].is_string() && body["description"].is_string(),
        "{body}"
    );
}

/// Every 2xx's user is notified once space is back: its event was stored.
async fn assert_every_2xx_delivered(hg: &Hookgate, crm: &Upstream, accepted: &BTreeSet<String>) {
    let log = || hg.log();
    wait_for(
        "every accepted signup's post hook",
        Duration::from_secs(30),
        || notified(crm).is_superset(accepted),
    );
    assert!(
        notified(crm).is_superset(accepted),
        "a 2xx without its event:\n{}",
        log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn full_disk_refuses_signups_before_the_upstream_and_recovers_when_space_returns() {
    let Some(disk) = Tmpfs::mount("16m") else {
        return;
    };
    let upstream = Upstream::start();
    let crm = Upstream::start();
    let hg = start(&upstream, &crm, &disk.path("outbox.redb"), "");
    let mut accepted = BTreeSet::new();
    let (status, body) = signup(&hg, "before").await;
    assert_eq!(status, 200, "{body}");
    accepted.insert(body["body_sha256"].as_str().unwrap().to_string());
    assert_eq!(readyz(&hg).await.0, 200);

    let filler = disk.fill();
    let upstream_before = signups_seen(&upstream);
    let mut refused = 0;
    for i in 0..20 {
        let (status, body) = signup(&hg, &format!("full{i}")).await;
        if (200..300).contains(&status) {
            accepted.insert(body["body_sha256"].as_str().unwrap().to_string());
            continue;
        }
        assert_eq!(status, 503, "refused before the upstream: {body}");
        assert_signup_shape(status, &body);
        refused += 1;
    }
    assert_eq!(
        refused, 20,
        "the disk is below its reserve: every signup is refused"
    );
    assert_eq!(
        signups_seen(&upstream),
        upstream_before,
        "a refused signup must not create the user upstream"
    );
    assert_eq!(hg.metric("hookgate_outbox_refused_total").await, 20);
    assert_eq!(hg.metric("hookgate_outbox_writable").await, 0);
    let (status, detail) = readyz(&hg).await;
    assert_eq!(status, 503, "{detail}");
    assert_eq!(detail["outbox"]["writable"], false, "{detail}");
    assert!(
        detail["outbox"]["problem"]
            .as_str()
            .unwrap()
            .contains("min_free_mb"),
        "{detail}"
    );

    // Space is back: no restart needed.
    std::fs::remove_file(filler).unwrap();
    until_ready(&hg).await;
    for i in 0..3 {
        let (status, body) = signup(&hg, &format!("after{i}")).await;
        assert_eq!(status, 200, "{body}");
        accepted.insert(body["body_sha256"].as_str().unwrap().to_string());
    }
    assert_every_2xx_delivered(&hg, &crm, &accepted).await;
    assert_eq!(hg.metric("hookgate_outbox_writable").await, 1);
    drop(hg);
    drop(disk);
}

/// Wait (at most 20 s) until `/readyz` answers 200.
async fn until_ready(hg: &Hookgate) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, detail) = readyz(hg).await;
        if status == 200 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never ready again: {detail}\n{}",
            hg.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Without a reserve (`min_free_mb = 0`) the write itself fails after the upstream created the
/// user: that signup fails (500, signup shape), its event is logged for replay, redb's refusal
/// of every later write is cured by reopening the file once space is back.
#[tokio::test(flavor = "multi_thread")]
async fn full_disk_without_reserve_fails_the_signup_after_the_upstream_and_logs_its_event() {
    let Some(disk) = Tmpfs::mount("16m") else {
        return;
    };
    let upstream = Upstream::start();
    let crm = Upstream::start();
    let hg = start(
        &upstream,
        &crm,
        &disk.path("outbox.redb"),
        "min_free_mb = 0",
    );
    let mut accepted = BTreeSet::new();
    let (status, body) = signup(&hg, "before").await;
    assert_eq!(status, 200, "{body}");
    accepted.insert(body["body_sha256"].as_str().unwrap().to_string());

    let filler = disk.fill();
    let (mut unrecorded, mut refused) = (Vec::new(), 0u64);
    for i in 0..200 {
        let name = format!("full{i}");
        let (status, body) = signup(&hg, &name).await;
        match status {
            200..=299 => {
                accepted.insert(body["body_sha256"].as_str().unwrap().to_string());
            }
            500 => {
                assert_signup_shape(status, &body);
                unrecorded.push(name);
            }
            503 => {
                assert_signup_shape(status, &body);
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
        // One write failed, and the next signup was refused before the upstream.
        if !unrecorded.is_empty() && refused >= 1 {
            break;
        }
    }
    assert!(
        !unrecorded.is_empty(),
        "the full disk never failed a write:\n{}",
        hg.log()
    );
    eprintln!(
        "full disk: {} accepted, {} failed after the upstream (500), {refused} refused (503)",
        accepted.len() - 1,
        unrecorded.len()
    );
    assert!(hg.metric("hookgate_outbox_write_failures_total").await >= 1);
    assert_eq!(
        hg.metric("hookgate_outbox_unrecorded_total").await,
        unrecorded.len() as u64
    );
    assert_eq!(hg.metric("hookgate_outbox_refused_total").await, refused);
    let log = hg.log();
    for name in &unrecorded {
        let line = log
            .lines()
            .find(|l| l.contains("UNRECORDED") && l.contains(&format!("{name}@example.com")))
            .unwrap_or_else(|| panic!("no replayable error line for {name}:\n{log}"));
        assert!(line.contains("ERROR"), "{line}");
        assert!(line.contains("evt_"), "the event id is logged: {line}");
    }
    assert!(
        !log.contains("hunter2-secret"),
        "the password reached the log"
    );

    std::fs::remove_file(filler).unwrap();
    until_ready(&hg).await;
    let (status, body) = signup(&hg, "after").await;
    assert_eq!(status, 200, "{body}");
    accepted.insert(body["body_sha256"].as_str().unwrap().to_string());
    assert_every_2xx_delivered(&hg, &crm, &accepted).await;
    assert!(hg.metric("hookgate_outbox_reopens_total").await >= 1);
    drop(hg);
    drop(disk);
}

/// Before, a reload that added the first signup route served it with no outbox: its post-events
/// were logged and dropped until a restart.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_adding_the_first_signup_route_opens_the_outbox_and_runs_post_hooks() {
    let upstream = Upstream::start();
    let crm = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/post-user-registration");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("notify.js"), POST_HOOK).unwrap();
    std::fs::write(
        dir.path().join("notify_url"),
        format!("http://{}", crm.address()),
    )
    .unwrap();
    let hg = Hookgate::start_in(dir, &upstream.address(), "", "", &hooks_table());
    let (_, detail) = readyz(&hg).await;
    assert!(detail.get("outbox").is_none(), "no outbox yet: {detail}");
    assert!(!hg.dir.path().join("hookgate-outbox.redb").exists());

    let path = hg.config_path();
    let config = std::fs::read_to_string(&path).unwrap();
    let tmp = path.with_file_name(".hookgate.toml.tmp");
    std::fs::write(&tmp, format!("{config}\n{ROUTE}")).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    hg.until_metric("hookgate_generation", 2).await;

    let (status, body) = signup(&hg, "reloaded").await;
    assert_eq!(status, 200, "{body}");
    let id = body["body_sha256"].as_str().unwrap().to_string();
    wait_for(
        "the post hook of the reloaded route",
        Duration::from_secs(20),
        || notified(&crm).contains(&id),
    );
    let (status, detail) = readyz(&hg).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["outbox"]["writable"], true, "{detail}");
    assert!(hg.dir.path().join("hookgate-outbox.redb").exists());
}

/// The outbox's settings are fixed at start: a reload that changes `[outbox]` together with
/// adding the first signup route would open the old file and leave its events behind at the next
/// restart. It is rejected, saying so, and the previous generation keeps serving.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_adding_the_first_signup_route_with_a_new_outbox_path_is_rejected() {
    let upstream = Upstream::start();
    let hg = Hookgate::start(&upstream.address(), "", "", "[hooks]\ndir = \"hooks\"\n");
    let path = hg.config_path();
    let config = std::fs::read_to_string(&path).unwrap();
    let tmp = path.with_file_name(".hookgate.toml.tmp");
    std::fs::write(
        &tmp,
        format!("{config}\n[outbox]\npath = \"elsewhere.redb\"\n{ROUTE}"),
    )
    .unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    hg.until_metric("hookgate_reload_failure_total", 1).await;
    let (status, detail) = readyz(&hg).await;
    assert_eq!(status, 200, "the previous generation serves: {detail}");
    let problems = detail["reload"]["last_error"]["problems"].to_string();
    assert!(problems.contains("need a restart"), "{problems}");
    assert_eq!(hg.metric("hookgate_generation").await, 1);
    assert!(!hg.dir.path().join("elsewhere.redb").exists());
    assert!(!hg.dir.path().join("hookgate-outbox.redb").exists());
}

/// A password change with post hooks is refused the same way, in the OAuth shape of its route,
/// before the upstream changes the password.
#[tokio::test(flavor = "multi_thread")]
async fn full_disk_refuses_password_changes_in_the_oauth_shape_before_the_upstream() {
    let Some(disk) = Tmpfs::mount("16m") else {
        return;
    };
    let upstream = Upstream::start();
    let crm = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/post-change-password");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("notify.js"), POST_HOOK).unwrap();
    std::fs::write(
        dir.path().join("notify_url"),
        format!("http://{}", crm.address()),
    )
    .unwrap();
    let extra = format!(
        "[[route]]\nname = \"change\"\npath = \"/dbconnections/change_password\"\n\
         point = \"post-change-password\"\n[route.change_password]\nid = \"body:email\"\n\
         [hooks]\ndir = \"hooks\"\n[[hooks.hook]]\nfile = \"post-change-password/notify.js\"\n\
         secrets = {{ NOTIFY_URL = {{ file = \"notify_url\" }} }}\n[outbox]\npath = \"{}\"\n",
        disk.path("outbox.redb").display()
    );
    let hg = Hookgate::start_in(dir, &upstream.address(), "", "", &extra);
    let change = |email: &'static str| {
        let url = hg.url("/dbconnections/change_password");
        async move {
            let resp = reqwest::Client::new()
                .post(url)
                .json(&json!({ "email": email, "client_id": "spa", "password": "n3w-secret" }))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let filler = disk.fill();
    let (status, body) = change("full@example.com").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    assert!(
        !upstream
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("change_password")),
        "a refused change must not reach the upstream"
    );
    assert_eq!(readyz(&hg).await.0, 503);

    std::fs::remove_file(filler).unwrap();
    until_ready(&hg).await;
    let (status, body) = change("after@example.com").await;
    assert_eq!(status, 200, "{body}");
    wait_for(
        "the post-change-password hook",
        Duration::from_secs(20),
        || notified(&crm).contains("after@example.com"),
    );
    drop(hg);
    drop(disk);
}
