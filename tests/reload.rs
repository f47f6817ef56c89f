//! Hot reload end to end: hookgate in front of node-oidc-provider, hook files and the
//! configuration edited while it runs, one test per way files get saved. The observable is a
//! credentials-exchange hook's namespaced claim in the re-signed token: `version(..)` says which
//! code answered.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::hookgate::Hookgate;
use common::oidc::{self, OidcServer};
use serde_json::Value;

const TOKEN_ROUTE: &str =
    "[[route]]\nname = \"token\"\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\n\
     upstream_path = \"/token\"\naudience_param = \"resource\"\n";

/// A hook that stamps its version into the token; `delay_ms` before answering.
fn hook(version: &str, delay_ms: u64) -> String {
    format!(
        "module.exports = function (client, scope, audience, context, cb) {{\n\
         \x20 setTimeout(function () {{ cb(null, {{ scope: scope, 'https://example.com/v': '{version}' }}); }}, {delay_ms});\n\
         }};\n"
    )
}

/// A hook with a syntax error on line 2.
const BROKEN: &str =
    "module.exports = function (client, scope, audience, context, cb) {\n  var x = ;\n};\n";

struct Setup {
    _idp: OidcServer,
    hg: Hookgate,
}

impl Setup {
    /// Start with `files` (relative to the temp folder) written first; `extra` goes into the config.
    fn start(files: &[(&str, &str)], extra: &str) -> Setup {
        Self::start_with(
            |dir| {
                for (rel, body) in files {
                    write(&dir.join(rel), body);
                }
            },
            extra,
        )
    }

    fn start_with(prepare: impl FnOnce(&Path), extra: &str) -> Setup {
        let idp = OidcServer::start();
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path());
        let hg = Hookgate::start_in(dir, &idp.addr(), "", "", &format!("{TOKEN_ROUTE}{extra}"));
        Setup { _idp: idp, hg }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.hg.dir.path().join(rel)
    }
}

fn write(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

/// What an editor with atomic saves does: write a temporary file, rename it over the old one.
fn atomic_save(path: &Path, body: &str) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&tmp, body).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// POST a client-credentials exchange; the status and the hook's version claim ("none": no hook ran).
async fn exchange(c: &reqwest::Client, hg: &Hookgate) -> Result<(u16, String), String> {
    let resp = c
        .post(hg.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", oidc::POST_CLIENT_ID),
            ("client_secret", oidc::POST_CLIENT_SECRET),
            ("audience", oidc::AUDIENCE),
            ("scope", "read:users"),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Ok((status, body.to_string()));
    }
    Ok((status, claim(&body)))
}

fn claim(body: &Value) -> String {
    let jwt = body["access_token"].as_str().unwrap_or_default();
    let payload = jwt.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_default();
    let claims: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    claims["https://example.com/v"]
        .as_str()
        .unwrap_or("none")
        .to_string()
}

async fn version(hg: &Hookgate) -> String {
    let (status, v) = exchange(&client(), hg).await.unwrap();
    assert_eq!(status, 200, "{v}\n{}", hg.log());
    v
}

/// Wait (at most 10 s) until the given version answers.
async fn until_version(hg: &Hookgate, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    while Instant::now() < deadline {
        last = version(hg).await;
        if last == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("version {want} never answered (last: {last})\n{}", hg.log());
}

async fn readyz(hg: &Hookgate) -> Value {
    reqwest::get(hg.admin_url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

const HOOK_FILE: &str = "hooks/credentials-exchange/stamp.js";

#[tokio::test(flavor = "multi_thread")]
async fn in_place_write_is_picked_up() {
    let s = Setup::start(&[(HOOK_FILE, &hook("1", 0))], "");
    assert_eq!(version(&s.hg).await, "1");
    // Truncate and write the same file, as `echo > file` or a simple editor does.
    std::fs::write(s.path(HOOK_FILE), hook("2", 0)).unwrap();
    until_version(&s.hg, "2").await;
    assert_eq!(s.hg.metric("hookgate_generation").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn atomic_save_by_rename_is_picked_up() {
    let s = Setup::start(&[(HOOK_FILE, &hook("1", 0))], "");
    assert_eq!(version(&s.hg).await, "1");
    atomic_save(&s.path(HOOK_FILE), &hook("2", 0));
    until_version(&s.hg, "2").await;
    atomic_save(&s.path(HOOK_FILE), &hook("3", 0));
    until_version(&s.hg, "3").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_and_new_files_are_picked_up() {
    let s = Setup::start(&[(HOOK_FILE, &hook("1", 0))], "");
    assert_eq!(version(&s.hg).await, "1");
    std::fs::remove_file(s.path(HOOK_FILE)).unwrap();
    until_version(&s.hg, "none").await;
    write(
        &s.path("hooks/credentials-exchange/other.js"),
        &hook("new", 0),
    );
    until_version(&s.hg, "new").await;
    // A whole new trigger folder, created after start.
    std::fs::remove_file(s.path("hooks/credentials-exchange/other.js")).unwrap();
    until_version(&s.hg, "none").await;
    std::fs::remove_dir(s.path("hooks/credentials-exchange")).unwrap();
    write(&s.path(HOOK_FILE), &hook("back", 0));
    until_version(&s.hg, "back").await;
}

/// Kubernetes' ConfigMap volume (projected with item paths): `hooks/..2026_x/<files>`,
/// `hooks/..data -> ..2026_x`, `hooks/credentials-exchange -> ..data/credentials-exchange`; an
/// update writes a new timestamped folder, points `..data_tmp` at it, renames `..data_tmp` over
/// `..data` and deletes the old folder.
#[tokio::test(flavor = "multi_thread")]
async fn configmap_data_symlink_swap_is_picked_up() {
    fn stamp(hooks: &Path, name: &str, version: &str) {
        write(
            &hooks.join(name).join("credentials-exchange/stamp.js"),
            &hook(version, 0),
        );
    }
    let s = Setup::start_with(
        |dir| {
            let hooks = dir.join("hooks");
            stamp(&hooks, "..2026_01", "1");
            std::os::unix::fs::symlink("..2026_01", hooks.join("..data")).unwrap();
            std::os::unix::fs::symlink(
                "..data/credentials-exchange",
                hooks.join("credentials-exchange"),
            )
            .unwrap();
        },
        "",
    );
    assert_eq!(version(&s.hg).await, "1");
    let hooks = s.path("hooks");
    let mut old = "..2026_01".to_string();
    for v in 2..=4 {
        let new = format!("..2026_0{v}");
        stamp(&hooks, &new, &v.to_string());
        std::os::unix::fs::symlink(&new, hooks.join("..data_tmp")).unwrap();
        std::fs::rename(hooks.join("..data_tmp"), hooks.join("..data")).unwrap();
        std::fs::remove_dir_all(hooks.join(&old)).unwrap();
        until_version(&s.hg, &v.to_string()).await;
        old = new;
    }
}

/// For filesystems without events (NFS, some FUSE mounts, a ConfigMap on some kernels): with
/// `watch = false`, the periodic rescan alone must pick up changes. Turning notify off is the
/// honest way to test this path: it is the configuration such a user runs.
#[tokio::test(flavor = "multi_thread")]
async fn periodic_rescan_picks_up_changes_without_notify() {
    let s = Setup::start(
        &[(HOOK_FILE, &hook("1", 0))],
        "[hooks]\nwatch = false\nrescan_secs = 1\n",
    );
    assert_eq!(version(&s.hg).await, "1");
    std::fs::write(s.path(HOOK_FILE), hook("2", 0)).unwrap();
    until_version(&s.hg, "2").await;
    let detail = readyz(&s.hg).await;
    assert_eq!(detail["reload"]["generation"], 2, "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn config_edit_changes_routes_and_hook_settings_live_and_reports_restart_only_settings() {
    let s = Setup::start(&[(HOOK_FILE, &hook("1", 0))], "");
    assert_eq!(version(&s.hg).await, "1");
    let path = s.hg.config_path();
    let original = std::fs::read_to_string(&path).unwrap();

    // The route no longer triggers the point: the exchange passes through, no hook runs.
    let passthrough = original
        .replace("point = \"credentials-exchange\"\n", "")
        .replace("audience_param = \"resource\"\n", "");
    atomic_save(&path, &passthrough);
    until_version(&s.hg, "none").await;

    // The point is back, and the hook is disabled by its settings: still no hook.
    let disabled = format!(
        "{original}\n[[hooks.hook]]\nfile = \"credentials-exchange/stamp.js\"\nenabled = false\n"
    );
    std::fs::write(&path, &disabled).unwrap();
    s.hg.until_metric("hookgate_generation", 3).await;
    assert_eq!(version(&s.hg).await, "none");

    // Enabled again, and a listen address changed: the hook runs, the address needs a restart.
    let listen = s.hg.addr.to_string();
    let moved = original.replace(&listen, "127.0.0.1:1");
    atomic_save(&path, &moved);
    until_version(&s.hg, "1").await;
    let detail = readyz(&s.hg).await;
    assert_eq!(
        detail["reload"]["restart_required"],
        serde_json::json!(["server.listen"]),
        "{detail}"
    );
    assert_eq!(s.hg.metric("hookgate_restart_required").await, 1);
    assert!(s.hg.log().contains("need a restart"), "{}", s.hg.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_edits_are_rejected_and_the_previous_generation_keeps_answering() {
    let s = Setup::start(&[(HOOK_FILE, &hook("1", 0))], "");
    assert_eq!(version(&s.hg).await, "1");

    std::fs::write(s.path(HOOK_FILE), BROKEN).unwrap();
    s.hg.until_metric("hookgate_reload_failure_total", 1).await;
    assert_eq!(version(&s.hg).await, "1", "the old code keeps answering");
    let detail = readyz(&s.hg).await;
    let problems = detail["reload"]["last_error"]["problems"].to_string();
    assert!(
        problems.contains("stamp.js:2:"),
        "file:line in /readyz: {detail}"
    );
    assert_eq!(
        detail["status"], "ready",
        "a rejected reload does not make hookgate unready"
    );
    assert!(s.hg.log().contains("stamp.js:2:"), "file:line in the log");

    // A broken configuration file is rejected the same way, with its line.
    let path = s.hg.config_path();
    let original = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{original}\n[tenant]\nnmae = \"typo\"\n")).unwrap();
    s.hg.until_metric("hookgate_reload_failure_total", 2).await;
    let detail = readyz(&s.hg).await;
    let problems = detail["reload"]["last_error"]["problems"].to_string();
    assert!(problems.contains("hookgate.toml:"), "{detail}");
    assert_eq!(version(&s.hg).await, "1");

    // A missing module is a broken generation too.
    std::fs::write(&path, &original).unwrap();
    std::fs::write(
        s.path(HOOK_FILE),
        format!("require('./nowhere');\n{}", hook("x", 0)),
    )
    .unwrap();
    s.hg.until_metric("hookgate_reload_failure_total", 3).await;
    assert_eq!(version(&s.hg).await, "1");

    // An empty file (what an in-place write looks like between its truncate and its write).
    std::fs::write(s.path(HOOK_FILE), "").unwrap();
    s.hg.until_metric("hookgate_reload_failure_total", 4).await;
    assert_eq!(version(&s.hg).await, "1");

    std::fs::write(s.path(HOOK_FILE), hook("2", 0)).unwrap();
    until_version(&s.hg, "2").await;
    assert!(readyz(&s.hg).await["reload"]["last_error"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_in_flight_finishes_on_the_generation_it_started_with() {
    let s = Setup::start(&[(HOOK_FILE, &hook("slow", 1500))], "");
    let started = tokio::spawn({
        let hg_url = s.hg.url("/oauth/token");
        async move {
            let resp = client()
                .post(hg_url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", oidc::POST_CLIENT_ID),
                    ("client_secret", oidc::POST_CLIENT_SECRET),
                    ("audience", oidc::AUDIENCE),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            claim(&resp.json().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(s.path(HOOK_FILE), hook("fast", 0)).unwrap();
    until_version(&s.hg, "fast").await;
    assert_eq!(started.await.unwrap(), "slow");
}

/// The big one: 100 edits while clients hammer the exchange route, one in five of them broken.
/// Every good generation must answer, every broken one must be rejected, and no request may fail.
#[tokio::test(flavor = "multi_thread")]
async fn hundred_reloads_under_continuous_traffic_drop_no_request() {
    let s = Arc::new(Setup::start(&[(HOOK_FILE, &hook("0", 0))], ""));
    assert_eq!(version(&s.hg).await, "0");
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (s, stop, ok, failed) = (s.clone(), stop.clone(), ok.clone(), failed.clone());
        clients.push(tokio::spawn(async move {
            let c = client();
            while !stop.load(Ordering::Relaxed) {
                match exchange(&c, &s.hg).await {
                    Ok((200, _)) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok((status, body)) => failed.lock().unwrap().push(format!("{status} {body}")),
                    Err(e) => failed.lock().unwrap().push(e),
                }
            }
        }));
    }

    let deadline = Instant::now() + Duration::from_secs(180);
    let mut broken = 0;
    for i in 1..=100u64 {
        assert!(Instant::now() < deadline, "100 reloads took too long");
        let path = s.path(HOOK_FILE);
        if i % 5 == 0 {
            broken += 1;
            // Alternate save styles, broken ones too.
            if i % 2 == 0 {
                atomic_save(&path, BROKEN);
            } else {
                std::fs::write(&path, BROKEN).unwrap();
            }
            s.hg.until_metric("hookgate_reload_failure_total", broken)
                .await;
        } else {
            if i % 2 == 0 {
                atomic_save(&path, &hook(&i.to_string(), 0));
            } else {
                std::fs::write(&path, hook(&i.to_string(), 0)).unwrap();
            }
            until_version(&s.hg, &i.to_string()).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let failed = std::mem::take(&mut *failed.lock().unwrap());
    let ok = ok.load(Ordering::Relaxed);
    assert!(
        failed.is_empty(),
        "{} of {} requests failed, first: {:?}",
        failed.len(),
        ok + failed.len() as u64,
        failed.first()
    );
    assert!(ok > 100, "the clients ran throughout ({ok} requests)");
    assert_eq!(s.hg.metric("hookgate_reload_success_total").await, 80);
    assert_eq!(s.hg.metric("hookgate_reload_failure_total").await, 20);
    eprintln!("100 reloads, {ok} requests, none failed");
}

/// A hook stamping the time its module was evaluated (ms since the epoch) into the token, and
/// holding each call 300 ms, so that with one call per worker two calls at once run on two
/// different workers.
fn stamping(version: &str) -> String {
    format!(
        "const loadedAt = String(Date.now());\n\
         module.exports = function (client, scope, audience, context, cb) {{\n\
         \x20 setTimeout(function () {{ cb(null, {{ scope: scope, 'https://example.com/v': '{version}@' + loadedAt }}); }}, 300);\n\
         }};\n"
    )
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// Two calls at once (one per worker); each must come from `version`'s code, whose module was
/// evaluated before the calls were sent.
async fn both_workers_loaded_before(hg: &Hookgate, version: &str) {
    let c = client();
    let asked = now_ms();
    let (a, b) = tokio::join!(exchange(&c, hg), exchange(&c, hg));
    for answer in [a, b] {
        let (status, stamp) = answer.unwrap();
        assert_eq!(status, 200, "{stamp}");
        let (v, loaded) = stamp.split_once('@').unwrap_or_else(|| panic!("{stamp}"));
        assert_eq!(v, version);
        let loaded: u128 = loaded.parse().unwrap();
        assert!(
            loaded < asked,
            "{version}: a worker evaluated the hook's module at its first call ({loaded} ms), \
             after the call was sent ({asked} ms), instead of when the generation loaded\n{}",
            hg.log()
        );
    }
}

/// No slow first call: every worker evaluates a generation's hooks (module and requires)
/// before the generation serves, at start and at each reload.
#[tokio::test]
async fn every_worker_evaluates_a_generations_hooks_before_it_serves() {
    let s = Setup::start(
        &[("hooks/credentials-exchange/stamp.js", &stamping("v1"))],
        // No worker started on demand: one started after the calls would evaluate at its start.
        "[hooks]\nworkers = 2\nmax_workers = 2\ncalls_per_worker = 1\n",
    );
    both_workers_loaded_before(&s.hg, "v1").await;
    atomic_save(
        &s.path("hooks/credentials-exchange/stamp.js"),
        &stamping("v2"),
    );
    s.hg.until_metric("hookgate_generation", 2).await;
    both_workers_loaded_before(&s.hg, "v2").await;
}
