//! The Redis outbox with several replicas, end to end: three real hookgate processes share one
//! real `redis-server` (started here on an ephemeral port, `appendonly yes`, `appendfsync
//! always`) in front of the test identity server (node-oidc-provider's harness). A
//! post-user-registration hook tells a collector in this test which user signed up, with
//! `context.event_id`.
//!
//! One run, in three acts, each pinning what a team running replicas relies on:
//! 1. 300 signups spread across the replicas; one replica is `kill -9`ed while it is delivering
//!    (the collector holds deliveries open): every signup's event is still delivered (the others
//!    claim the dead one's entries), duplicates are counted and printed.
//! 2. Dead letters (a hook failing until told otherwise) are retried from a *different* replica
//!    through its management API (`hookgate outbox retry --all-dead`) and delivered.
//! 3. Redis is stopped and restarted while signups go on: every 2xx signup has its event
//!    delivered; the others are clean 503/500 JSON answers; `/readyz` says Redis is unreachable
//!    meanwhile, and the replicas recover by themselves.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::hookgate::{free_port, run_cli, Hookgate};
use common::oidc::OidcServer;
use common::redis::Redis;
use common::upstream::{json_response, serve};
use common::wait_for;
use serde_json::{json, Value};

/// What the collector saw: (replica, email, event id) per delivery, on arrival.
#[derive(Default)]
struct Collector {
    seen: Mutex<Vec<(usize, String, String)>>,
    /// Deliveries being held open, per replica.
    inflight: [AtomicUsize; 3],
    /// How long each delivery is held open (to have deliveries under way when a replica dies).
    delay_ms: AtomicU64,
    /// While set, deliveries for `dead-…` users fail (500).
    failing: AtomicBool,
}

impl Collector {
    fn emails(&self) -> BTreeSet<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, e, _)| e.clone())
            .collect()
    }
}

const POST_HOOK: &str = r#"
module.exports = function (user, context, cb) {
  fetch(context.webtask.secrets.NOTIFY_URL + '?event=' + context.event_id + '&email=' + encodeURIComponent(user.email), { method: 'POST' })
    .then(function (res) { cb(res.ok ? null : new Error('notify answered ' + res.status)); },
          function (err) { cb(err); });
};
"#;

const TOKEN: &str = "outbox-operator-token-0123456789";

fn replica(idp: &OidcServer, redis: &Redis, collector: &str, index: usize) -> Hookgate {
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/post-user-registration");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("notify.js"), POST_HOOK).unwrap();
    std::fs::write(
        dir.path().join("notify_url"),
        format!("http://{collector}/r{index}/notify"),
    )
    .unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    std::fs::write(dir.path().join("redis_url"), redis.url()).unwrap();
    let api = free_port();
    let extra = format!(
        r#"
[[route]]
name = "signup"
path = "/dbconnections/signup"
point = "pre-user-registration"
[route.signup]
user_id = "/_id"

[hooks]
dir = "hooks"
timeout_ms = 1000
[[hooks.hook]]
file = "post-user-registration/notify.js"
secrets = {{ NOTIFY_URL = {{ file = "notify_url" }} }}

[outbox]
backend = "redis"
redis_url = {{ file = "redis_url" }}
stream = "test:outbox"
consumer = "replica-{index}"
max_attempts = 3
retry_base_ms = 50
retry_max_ms = 200

[admin]
api_listen = "127.0.0.1:{api}"
[[admin.token]]
name = "operator"
token = {{ file = "token" }}
scopes = ["read:outbox", "update:outbox"]
"#
    );
    Hookgate::start_in(dir, &idp.addr(), "", "", &extra)
}

/// One signup through `hg`: (status, body).
async fn signup(http: &reqwest::Client, hg: &Hookgate, email: &str) -> (u16, Value) {
    let r = http
        .post(hg.url("/dbconnections/signup"))
        .json(&json!({
            "client_id": "m2m-post",
            "email": email,
            "password": "Replica-pass-1",
            "connection": "Username-Password-Authentication",
        }))
        .send()
        .await;
    match r {
        Ok(r) => {
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            (
                status,
                serde_json::from_str(&text).unwrap_or(json!({ "not_json": text })),
            )
        }
        Err(e) => (0, json!({ "transport": e.to_string() })),
    }
}

/// Signups for `emails`, spread over `urls` in turn, 12 at a time: (status, body) each.
async fn signups(http: &reqwest::Client, emails: &[String], urls: &[String]) -> Vec<(u16, String)> {
    let sem = Arc::new(tokio::sync::Semaphore::new(12));
    let mut tasks = tokio::task::JoinSet::new();
    for (n, email) in emails.iter().enumerate() {
        let (http, email, sem, url) = (
            http.clone(),
            email.clone(),
            sem.clone(),
            urls[n % urls.len()].clone(),
        );
        tasks.spawn(async move {
            let _permit = sem.acquire().await.unwrap();
            let r = http
                .post(url)
                .json(&json!({
                    "client_id": "m2m-post",
                    "email": email,
                    "password": "Replica-pass-1",
                    "connection": "Username-Password-Authentication",
                }))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        });
    }
    let mut out = Vec::new();
    while let Some(done) = tasks.join_next().await {
        out.push(done.unwrap());
    }
    out
}

/// Wait (bounded) until the collector has seen every email of `want`.
async fn until_delivered(
    collector: &Collector,
    want: &BTreeSet<String>,
    what: &str,
    logs: &[&Hookgate],
) {
    for _ in 0..(60 * 20) {
        if want.is_subset(&collector.emails()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let missing: Vec<_> = want.difference(&collector.emails()).cloned().collect();
    let logs: String = logs
        .iter()
        .map(|h| h.log())
        .collect::<Vec<_>>()
        .join("\n----\n");
    panic!(
        "{what}: {} events never delivered (e.g. {:?})\n{}",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        &logs[logs.len().saturating_sub(20_000)..]
    );
}

/// Wait (bounded) until the shared stream holds nothing: every entry was acknowledged after its
/// hooks succeeded (an entry a dead replica read stays pending until another claims it).
async fn until_drained(hg: &Hookgate, what: &str) {
    for _ in 0..(60 * 20) {
        if hg.metric("hookgate_outbox_pending").await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: the outbox never drained\n{}", hg.log());
}

/// Events delivered more than once, by event id.
fn duplicates(collector: &Collector) -> usize {
    let mut by_event: BTreeMap<String, usize> = BTreeMap::new();
    for (_, _, id) in collector.seen.lock().unwrap().iter() {
        *by_event.entry(id.clone()).or_default() += 1;
    }
    by_event.values().filter(|n| **n > 1).map(|n| n - 1).sum()
}

fn cli(hg: &Hookgate, args: &[&str]) -> String {
    let config = hg.config_path();
    let mut all = vec!["outbox"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--config", config.to_str().unwrap()]);
    let (code, out, err) = run_cli(&all, hg.dir.path());
    assert_eq!(code, 0, "hookgate outbox {args:?}: {err}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_sharing_redis_deliver_every_accepted_signup_through_a_crash_dead_letters_and_a_redis_restart(
) {
    let mut redis = Redis::start();
    let idp = OidcServer::start();
    let collector = Arc::new(Collector::default());
    let c = collector.clone();
    let server = serve(move |req: hyper::Request<hyper::body::Incoming>| {
        let c = c.clone();
        async move {
            let path = req.uri().path().to_string();
            let query = req.uri().query().unwrap_or("").to_string();
            let r: usize = path
                .strip_prefix("/r")
                .and_then(|p| p.split('/').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let mut event = String::new();
            let mut email = String::new();
            for kv in query.split('&') {
                match kv.split_once('=') {
                    Some(("event", v)) => event = v.to_string(),
                    Some(("email", v)) => email = v.replace("%40", "@"),
                    _ => {}
                }
            }
            if c.failing.load(Ordering::SeqCst) && email.starts_with("dead-") {
                return json_response(500, &json!({ "error": "not today" }));
            }
            c.seen.lock().unwrap().push((r, email, event));
            c.inflight[r.min(2)].fetch_add(1, Ordering::SeqCst);
            let delay = c.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            c.inflight[r.min(2)].fetch_sub(1, Ordering::SeqCst);
            json_response(200, &json!({ "ok": true }))
        }
    });
    let collector_addr = server.addr.to_string();
    let replicas: Vec<Hookgate> = (0..3)
        .map(|i| replica(&idp, &redis, &collector_addr, i))
        .collect();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let run = std::process::id();

    // ---- 1. 300 signups across three replicas; replica 0 dies mid-delivery ----------------
    // Deliveries are held open long enough that replica 0 has some under way (read from the
    // stream, not acknowledged) when it is killed; below the hook timeout, so they succeed.
    collector.delay_ms.store(400, Ordering::SeqCst);
    let emails: Vec<String> = (0..300)
        .map(|n| format!("u{n}-{run}@example.com"))
        .collect();
    // The first half across all three; then replica 0 is killed while it delivers (after its
    // signups were answered: none is in flight); the second half across the two others.
    let urls: Vec<String> = replicas
        .iter()
        .map(|h| h.url("/dbconnections/signup"))
        .collect();
    for (status, body) in signups(&http, &emails[..150], &urls).await {
        assert_eq!(status, 200, "every signup is accepted: {body}");
    }
    wait_for(
        "replica 0 to be delivering",
        Duration::from_secs(20),
        || collector.inflight[0].load(Ordering::SeqCst) > 0,
    );
    let mut replicas = replicas;
    replicas[0].signal("KILL");
    replicas[0].wait_exit(Duration::from_secs(10));
    for (status, body) in signups(&http, &emails[150..], &urls[1..]).await {
        assert_eq!(status, 200, "every signup is accepted: {body}");
    }
    let survivors = [&replicas[1], &replicas[2]];
    let want: BTreeSet<String> = emails.iter().cloned().collect();
    until_delivered(&collector, &want, "after kill -9", &survivors).await;
    until_drained(&replicas[1], "after kill -9").await;
    let reclaimed = replicas[1].metric("hookgate_outbox_reclaimed_total").await
        + replicas[2].metric("hookgate_outbox_reclaimed_total").await;
    let dups = duplicates(&collector);
    eprintln!(
        "300 signups, replica 0 killed mid-delivery: all 300 events delivered; {dups} duplicate deliveries; {reclaimed} entries reclaimed by the survivors"
    );
    assert!(
        reclaimed > 0,
        "the survivors claimed the dead replica's unacknowledged entries"
    );
    let by_event: BTreeSet<String> = collector
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, id)| id.clone())
        .collect();
    assert_eq!(
        by_event.len(),
        300,
        "one event id per signup, the same on every replica and attempt"
    );
    collector.delay_ms.store(0, Ordering::SeqCst);

    // ---- 2. Dead letters, retried from a different replica through its API -----------------
    collector.failing.store(true, Ordering::SeqCst);
    let dead: BTreeSet<String> = (0..3)
        .map(|n| format!("dead-{n}-{run}@example.com"))
        .collect();
    for email in &dead {
        let (status, body) = signup(&http, &replicas[2], email).await;
        assert_eq!(status, 200, "{body}");
    }
    for _ in 0..400 {
        if replicas[2].metric("hookgate_outbox_dead").await >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed = cli(&replicas[1], &["list"]);
    assert!(
        listed.contains("3 dead"),
        "replica 1 lists replica 2's dead letters: {listed}"
    );
    collector.failing.store(false, Ordering::SeqCst);
    let out = cli(&replicas[1], &["retry", "--all-dead"]);
    assert!(out.contains('3'), "{out}");
    until_delivered(
        &collector,
        &dead,
        "dead letters retried from another replica",
        &survivors,
    )
    .await;

    // ---- 3. Redis stopped and restarted while signups go on --------------------------------
    let results = Arc::new(Mutex::new(Vec::<(String, u16, Value)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for w in 0..4usize {
        let (http, results, stop) = (http.clone(), results.clone(), stop.clone());
        let url = replicas[1 + w % 2].url("/dbconnections/signup");
        load.spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) && n < 200 {
                let email = format!("r{w}-{n}-{run}@example.com");
                let r = http
                    .post(&url)
                    .json(&json!({
                        "client_id": "m2m-post",
                        "email": email,
                        "password": "Replica-pass-1",
                        "connection": "Username-Password-Authentication",
                    }))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body: Value =
                    serde_json::from_str(&r.text().await.unwrap()).unwrap_or(json!("not JSON"));
                results.lock().unwrap().push((email, status, body));
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    let progress = |n: usize| {
        let results = results.clone();
        move || results.lock().unwrap().len() >= n
    };
    wait_for(
        "signups before the outage",
        Duration::from_secs(30),
        progress(10),
    );
    redis.stop();
    let readyz = reqwest::Client::new();
    let mut said = String::new();
    for _ in 0..200 {
        let r = readyz
            .get(replicas[1].admin_url("/readyz"))
            .send()
            .await
            .unwrap();
        said = r.text().await.unwrap();
        if said.contains("redis unreachable") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(said.contains("redis unreachable"), "/readyz: {said}");
    assert!(said.contains("not ready"), "/readyz: {said}");
    let during = results.lock().unwrap().len();
    wait_for(
        "signups during the outage",
        Duration::from_secs(30),
        progress(during + 8),
    );
    redis.spawn();
    let after = results.lock().unwrap().len();
    // Recovered by themselves: 2xx again.
    wait_for(
        "2xx signups after the restart",
        Duration::from_secs(30),
        || {
            results.lock().unwrap()[after..]
                .iter()
                .any(|(_, s, _)| *s == 200)
        },
    );
    wait_for(
        "more signups after the restart",
        Duration::from_secs(30),
        progress(after + 10),
    );
    stop.store(true, Ordering::SeqCst);
    while load.join_next().await.is_some() {}

    let results = results.lock().unwrap().clone();
    let accepted: BTreeSet<String> = results
        .iter()
        .filter(|(_, s, _)| *s == 200)
        .map(|(e, _, _)| e.clone())
        .collect();
    let refused: Vec<_> = results.iter().filter(|(_, s, _)| *s != 200).collect();
    for (email, status, body) in &refused {
        assert!(
            *status == 503 || *status == 500,
            "{email}: a clean refusal, not {status}: {body}"
        );
        assert!(body.is_object(), "{email}: a JSON answer: {body}");
    }
    assert!(
        !refused.is_empty(),
        "some signups were refused while Redis was down"
    );
    until_delivered(&collector, &accepted, "after the Redis restart", &survivors).await;
    until_drained(&replicas[2], "after the Redis restart").await;
    eprintln!(
        "Redis restart: {} signups answered 2xx (all delivered), {} refused with 503/500; {} duplicate deliveries in all",
        accepted.len(),
        refused.len(),
        duplicates(&collector)
    );
}
