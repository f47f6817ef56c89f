//! Cluster mode end to end: a real `redis-server` (started here on a free port, in a temp
//! folder), node-oidc-provider, and three hookgate replicas sharing their hooks and run records
//! through Redis. A change made through one replica's management API is served by the others,
//! under the same generation number; concurrent changes on two replicas converge; a replica
//! started later catches up; a run on one replica shows in another's list and live tail; without
//! Redis the replicas keep serving (and stay ready once synced), refuse changes with 503, and
//! catch up when it is back.
//!
//! Needs `redis-server` (Debian: `apt-get install redis-server`) and `scripts/setup`. Run:
//! `cargo test --test cluster -- --nocapture` (prints how long a change took to reach the others).

mod common;

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use base64::Engine;
use common::hookgate::{free_port, Hookgate};
use common::oidc::{self, OidcServer};
use common::redis::Redis;
use common::wait_for;
use serde_json::{json, Value};

const TOKEN: &str = "cluster-admin-token-0123456789abcdef";
const CLAIM: &str = "https://example.com/v";
const LIMIT: Duration = Duration::from_secs(15);

const ROUTES: &str =
    "[[route]]\nname = \"token\"\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\n\
     upstream_path = \"/token\"\naudience_param = \"resource\"\n[hooks]\ndir = \"hooks\"\n\
     rescan_secs = 1\n";

fn hook(value: &str) -> String {
    format!("module.exports = function (client, scope, audience, context, cb) {{\n  console.log('claim {value}');\n  cb(null, {{ '{CLAIM}': '{value}' }});\n}};\n")
}

struct Replica {
    hg: Hookgate,
    base: String,
    client: reqwest::Client,
}

impl Replica {
    fn start(idp: &OidcServer, redis: &Redis, ns: &str, name: &str, seed: Option<&str>) -> Replica {
        Replica::start_with(idp, redis, ns, name, seed, &[])
    }

    /// With `files` (path under the replica's folder, content) written before it starts.
    fn start_with(
        idp: &OidcServer,
        redis: &Redis,
        ns: &str,
        name: &str,
        seed: Option<&str>,
        files: &[(&str, &str)],
    ) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        std::fs::write(dir.path().join("token-all"), TOKEN).unwrap();
        let mut extra_hooks = String::new();
        if let Some(value) = seed {
            let folder = dir.path().join("hooks/credentials-exchange");
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join("seed.js"), hook(value)).unwrap();
            extra_hooks = "[[hooks.hook]]\nfile = \"credentials-exchange/seed.js\"\n".into();
        }
        let port = free_port();
        let config = format!(
            "{ROUTES}{extra_hooks}\n[admin]\napi_listen = \"127.0.0.1:{port}\"\n\
             rate_limit_per_sec = 1000\nrate_limit_burst = 1000\n\
             [[admin.token]]\nname = \"all\"\ntoken = {{ file = \"token-all\" }}\n\
             scopes = [\"read:hooks\", \"create:hooks\", \"update:hooks\", \"delete:hooks\", \"read:logs\"]\n\
             [cluster]\nredis_url = \"{}\"\nname = \"{ns}\"\nreplica = \"{name}\"\n",
            redis.url()
        );
        let hg = Hookgate::start_in(dir, &idp.addr(), "", "", &config);
        let addr = format!("127.0.0.1:{port}");
        wait_for("the management API to listen", LIMIT, || {
            TcpStream::connect(&addr).is_ok()
        });
        let pem = std::fs::read(hg.dir.path().join(".hookgate/admin-tls.crt")).unwrap();
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Replica {
            hg,
            base: format!("https://localhost:{port}"),
            client,
        }
    }

    /// (status, body, `Hookgate-Revision`).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value, Option<u64>) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let revision = resp
            .headers()
            .get("hookgate-revision")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, value, revision)
    }

    /// `/readyz`: (status, body).
    async fn ready(&self) -> (u16, Value) {
        let resp = reqwest::get(self.hg.admin_url("/readyz")).await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    async fn generation(&self) -> u64 {
        self.ready().await.1["reload"]["generation"]
            .as_u64()
            .unwrap()
    }

    /// The claim a credentials exchange through this replica gets (None: no hook set it).
    async fn claim(&self) -> Option<String> {
        let resp = reqwest::Client::new()
            .post(self.hg.url("/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", oidc::POST_CLIENT_ID),
                ("client_secret", oidc::POST_CLIENT_SECRET),
                ("audience", oidc::AUDIENCE),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", self.hg.log());
        let body: Value = resp.json().await.unwrap();
        let jwt = body["access_token"].as_str().unwrap();
        let payload = jwt.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        claims[CLAIM].as_str().map(str::to_owned)
    }

    /// The hooks as the API lists them: (name, enabled), sorted.
    async fn hooks(&self) -> Vec<(String, bool)> {
        let (status, list, _) = self.call(reqwest::Method::GET, "/api/v2/hooks", None).await;
        assert_eq!(status, 200, "{list}");
        let mut out: Vec<(String, bool)> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["name"].as_str().unwrap().to_string(),
                    h["enabled"].as_bool().unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }
}

/// Wait until `cond` holds (checked every 10 ms, at most LIMIT); how long it took.
macro_rules! until {
    ($what:expr, $r:expr, $cond:expr) => {{
        let start = Instant::now();
        loop {
            if $cond {
                break;
            }
            assert!(
                start.elapsed() < LIMIT,
                "timed out waiting for {}\n{}",
                $what,
                $r.hg.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let took: Duration = start.elapsed();
        took
    }};
}

/// Every replica serves `value` (or no claim), at generation `revision`.
async fn all_serve(
    replicas: &[&Replica],
    value: Option<&str>,
    revision: u64,
    took: &mut Vec<Duration>,
) {
    for r in replicas {
        let want = value.map(str::to_owned);
        took.push(until!(
            "the change to be served",
            r,
            r.claim().await == want
        ));
        until!(
            "the generation of the revision",
            r,
            r.generation().await == revision
        );
    }
}

fn namespace() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

fn report(took: &[Duration]) {
    let mut ms: Vec<f64> = took.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "a change reached the other replicas (served by a credentials exchange) within: median {:.0} ms, max {:.0} ms over {} observations",
        ms[ms.len() / 2],
        ms[ms.len() - 1],
        ms.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hook_change_through_any_replica_is_served_by_every_replica_under_one_generation() {
    let redis = Redis::start();
    let idp = OidcServer::start();
    let ns = namespace();
    let a = Replica::start(&idp, &redis, &ns, "a", None);
    let b = Replica::start(&idp, &redis, &ns, "b", None);
    let c = Replica::start(&idp, &redis, &ns, "c", None);
    let mut took = Vec::new();
    for r in [&a, &b, &c] {
        until!("the replica to sync", r, r.ready().await.0 == 200);
    }

    // Created through A.
    let (status, created, rev) = a
        .call(
            reqwest::Method::POST,
            "/api/v2/hooks",
            Some(json!({"name": "claims", "script": hook("one"), "triggerId": "credentials-exchange", "enabled": true})),
        )
        .await;
    assert_eq!(status, 201, "{created}\n{}", a.hg.log());
    let rev = rev.expect("a write reports the revision");
    assert_eq!(
        a.generation().await,
        rev,
        "A answered with its own generation of the change in force"
    );
    assert_eq!(
        a.claim().await.as_deref(),
        Some("one"),
        "read-after-write on A"
    );
    all_serve(&[&b, &c], Some("one"), rev, &mut took).await;
    let id = created["id"].as_str().unwrap().to_string();

    // Updated through B, disabled through C, re-enabled and deleted through A.
    let (status, _, rev) = b
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v2/hooks/{id}"),
            Some(json!({"script": hook("two")})),
        )
        .await;
    assert_eq!(status, 200);
    all_serve(&[&a, &c], Some("two"), rev.unwrap(), &mut took).await;

    // A secret set through C, used by a script set through A: served by B.
    let (status, body, _) = c
        .call(
            reqwest::Method::POST,
            &format!("/api/v2/hooks/{id}/secrets"),
            Some(json!({"V": "set-through-c"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let uses_secret = format!(
        "module.exports = function (client, scope, audience, context, cb) {{\n  cb(null, {{ '{CLAIM}': context.webtask.secrets.V }});\n}};\n"
    );
    let (status, _, rev) = a
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v2/hooks/{id}"),
            Some(json!({ "script": uses_secret })),
        )
        .await;
    assert_eq!(status, 200);
    all_serve(&[&b, &c], Some("set-through-c"), rev.unwrap(), &mut took).await;
    let secret_file = b.hg.dir.path().join(format!("secrets/{id}/V"));
    assert_eq!(
        std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600,
        "a secret file written from the cluster is private"
    );
    let (status, _, rev) = c
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v2/hooks/{id}"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200);
    all_serve(&[&a, &b], None, rev.unwrap(), &mut took).await;
    let (status, _, _) = a
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v2/hooks/{id}"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, rev) = a
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v2/hooks/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    all_serve(&[&b, &c], None, rev.unwrap(), &mut took).await;
    for r in [&a, &b, &c] {
        assert!(r.hooks().await.is_empty());
    }

    // Two replicas change different hooks at once: both succeed, and everyone converges.
    let body = |name: &str, value: &str| {
        Some(
            json!({"name": name, "script": hook(value), "triggerId": "credentials-exchange", "enabled": true}),
        )
    };
    let ((s1, _, r1), (s2, _, r2)) = tokio::join!(
        a.call(reqwest::Method::POST, "/api/v2/hooks", body("from-a", "a")),
        b.call(reqwest::Method::POST, "/api/v2/hooks", body("from-b", "b"))
    );
    assert_eq!((s1, s2), (201, 201));
    // `Hookgate-Revision` is what the answering replica holds when it answers: the replica
    // whose write went first may already hold the other's too, so both may say the same. The
    // later write's answer holds both changes.
    let last = r1.unwrap().max(r2.unwrap());
    let want = vec![("from-a".to_string(), true), ("from-b".to_string(), true)];
    for r in [&a, &b, &c] {
        until!(
            "the generation of both changes",
            r,
            r.generation().await == last
        );
        assert_eq!(r.hooks().await, want);
    }

    // A replica started now catches up from the snapshot, at the same generation.
    let d = Replica::start(&idp, &redis, &ns, "d", Some("seed-ignored"));
    until!(
        "the late replica to catch up",
        d,
        d.generation().await == last
    );
    assert_eq!(
        d.hooks().await,
        want,
        "the snapshot wins over its own files"
    );
    let seen = d.claim().await;
    assert!(matches!(seen.as_deref(), Some("a") | Some("b")), "{seen:?}");
    report(&took);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_on_one_replica_shows_in_another_replicas_list_and_live_tail() {
    let redis = Redis::start();
    let idp = OidcServer::start();
    let ns = namespace();
    let a = Replica::start(&idp, &redis, &ns, "a", Some("seeded"));
    let c = Replica::start(&idp, &redis, &ns, "c", None);
    for r in [&a, &c] {
        until!(
            "the replica to serve the seeded hook",
            r,
            r.ready().await.0 == 200 && r.claim().await.as_deref() == Some("seeded")
        );
    }
    // The live tail on A, from now.
    let mut tail = a
        .client
        .get(format!("{}/api/hookgate/runs/stream", a.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), 200);
    // Give the tail its first read (it starts after the newest record).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(c.claim().await.as_deref(), Some("seeded"));

    let mut text = String::new();
    let deadline = Instant::now() + LIMIT;
    while !(text.contains("\"replica\":\"c\"") && text.contains("\n\n")) {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, tail.chunk())
            .await
            .unwrap_or_else(|_| panic!("C's run in the tail within the limit; got {text}"))
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: run"), "{text}");
    assert!(text.contains("claim seeded"), "{text}");

    let list = || async {
        let (_, page, _) = a
            .call(reqwest::Method::GET, "/api/hookgate/runs?limit=100", None)
            .await;
        page["records"].as_array().cloned().unwrap_or_default()
    };
    until!(
        "C's run in A's list",
        a,
        list().await.iter().any(|x| x["replica"] == "c")
    );
    let records = list().await;
    assert!(
        records.iter().any(|x| x["replica"] == "a"),
        "A's own runs are there too"
    );
    // The id is the same on every replica: C serves the record A listed.
    let id = records.iter().find(|x| x["replica"] == "c").unwrap()["id"]
        .as_u64()
        .unwrap();
    let (status, one, _) = c
        .call(
            reqwest::Method::GET,
            &format!("/api/hookgate/runs/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["replica"], "c");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_redis_replicas_keep_serving_stay_ready_refuse_changes_and_catch_up_when_it_is_back(
) {
    let mut redis = Redis::start();
    let idp = OidcServer::start();
    let ns = namespace();
    let a = Replica::start(&idp, &redis, &ns, "a", Some("before"));
    let b = Replica::start(&idp, &redis, &ns, "b", None);
    for r in [&a, &b] {
        until!(
            "the replica to serve the seeded hook",
            r,
            r.ready().await.0 == 200 && r.claim().await.as_deref() == Some("before")
        );
    }
    let id = a.hooks().await;
    assert_eq!(id.len(), 1);
    let (_, list, _) = a.call(reqwest::Method::GET, "/api/v2/hooks", None).await;
    let id = list[0]["id"].as_str().unwrap().to_string();

    redis.stop();
    for r in [&a, &b] {
        until!("readyz to say Redis is gone", r, {
            let (_, body) = r.ready().await;
            body["cluster"]["redis_reachable"] == false
        });
        let (status, body) = r.ready().await;
        assert_eq!(
            status, 200,
            "a synced replica stays ready without Redis (it serves): {body}"
        );
        assert!(body["cluster"]["warning"].is_string(), "{body}");
        assert_eq!(r.claim().await.as_deref(), Some("before"), "still serving");
        assert_eq!(r.hg.metric("hookgate_cluster_redis_up").await, 0);
    }
    let (status, body, _) = a
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v2/hooks/{id}"),
            Some(json!({"script": hook("lost")})),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["errorCode"], "cluster_unavailable", "{body}");
    assert_eq!(body["statusCode"], 503);
    assert_eq!(
        a.claim().await.as_deref(),
        Some("before"),
        "a refused change is not applied"
    );
    let script =
        std::fs::read_to_string(a.hg.dir.path().join("hooks/credentials-exchange/seed.js"))
            .unwrap();
    assert!(script.contains("before"), "nor left on disk: {script}");

    // A replica that never read the shared hooks is not ready.
    let c = Replica::start(&idp, &redis, &ns, "c", None);
    let (status, body) = c.ready().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["cluster"]["synced"], false, "{body}");

    redis.spawn();
    until!("the late replica to sync", c, c.ready().await.0 == 200);
    for r in [&a, &b] {
        until!(
            "the replica to reach Redis again",
            r,
            r.hg.metric("hookgate_cluster_redis_up").await == 1
        );
        assert_eq!(r.ready().await.0, 200);
    }
    let (status, _, rev) = b
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v2/hooks/{id}"),
            Some(json!({"script": hook("after")})),
        )
        .await;
    assert_eq!(status, 200);
    let mut took = Vec::new();
    all_serve(&[&a], Some("after"), rev.unwrap(), &mut took).await;
}

/// H1 + H2: a hook file whose name another replica would refuse is not published (the others
/// stay ready), and an entry written straight into Redis that would make a hook read this
/// replica's files (here: the admin token) is refused: the hook is disabled rather than run with
/// it, the refusal is counted and shown in `/readyz` apart from Redis' reachability, the replica
/// keeps following, and API writes still work.
#[tokio::test(flavor = "multi_thread")]
async fn an_entry_a_replica_must_refuse_is_skipped_counted_and_never_reads_its_files() {
    let redis = Redis::start();
    let idp = OidcServer::start();
    let ns = namespace();
    let a = Replica::start_with(
        &idp,
        &redis,
        &ns,
        "a",
        Some("seeded"),
        &[("hooks/credentials-exchange/add+claims.js", &hook("plus"))],
    );
    let b = Replica::start(&idp, &redis, &ns, "b", None);
    for r in [&a, &b] {
        until!(
            "the replica to serve the seeded hook",
            r,
            r.ready().await.0 == 200 && r.claim().await.as_deref() == Some("seeded")
        );
    }
    assert_eq!(
        b.hg.metric("hookgate_cluster_apply_failures_total").await,
        0
    );

    // Whoever can write Redis forges the next revision: a script reading a secret, and an entry
    // pointing that secret at the replica's admin token file; plus a key no replica may write.
    let mut con = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let rev: u64 = redis::cmd("GET")
        .arg(format!("{ns}:rev"))
        .query(&mut con)
        .unwrap();
    let leak = format!(
        "module.exports = function (client, scope, audience, context, cb) {{\n  cb(null, {{ '{CLAIM}': context.webtask.secrets.K || 'none' }});\n}};\n"
    );
    let entries =
        "[[hooks.hook]]\nfile = \"credentials-exchange/seed.js\"\nsecrets = { K = { file = \"token-all\" } }\n";
    let (id,): (String,) = redis::pipe()
        .atomic()
        .cmd("HSET")
        .arg(format!("{ns}:files"))
        .arg("hook/credentials-exchange/seed.js")
        .arg(&leak)
        .arg("entries")
        .arg(entries)
        .arg("hook/credentials-exchange/x+y.js")
        .arg(&leak)
        .ignore()
        .cmd("XADD")
        .arg(format!("{ns}:changes"))
        .arg("*")
        .arg("rev")
        .arg(rev + 1)
        .arg("origin")
        .arg("forged")
        .arg("put:hook/credentials-exchange/seed.js")
        .arg(&leak)
        .arg("put:entries")
        .arg(entries)
        .arg("put:hook/credentials-exchange/x+y.js")
        .arg(&leak)
        .cmd("SET")
        .arg(format!("{ns}:rev"))
        .arg(rev + 1)
        .ignore()
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{ns}:last"))
        .arg(&id)
        .query(&mut con)
        .unwrap();

    for r in [&a, &b] {
        until!("the forged revision to be refused", r, {
            let (_, body) = r.ready().await;
            body["cluster"]["apply_failed"].is_string()
        });
        // Ready once the revision it took (without the refused entry) is built.
        until!(
            "a replica with a refused entry to be ready",
            r,
            r.ready().await.0 == 200
        );
        let (_, body) = r.ready().await;
        assert_eq!(body["cluster"]["redis_reachable"], true, "{body}");
        assert!(r.hg.metric("hookgate_cluster_apply_failures_total").await >= 1);
        // A's own `add+claims.js` (never published) still runs there; the refused entry's hook
        // (seed.js, which would answer the admin token) runs nowhere.
        let want = if r
            .hg
            .dir
            .path()
            .join("hooks/credentials-exchange/add+claims.js")
            .exists()
        {
            Some("plus".to_string())
        } else {
            None
        };
        until!(
            "the refused entry's hook to be disabled",
            r,
            r.claim().await == want
        );
        let config = std::fs::read_to_string(r.hg.dir.path().join("hookgate.toml")).unwrap();
        assert!(!config.contains("K = "), "{config}");
        assert!(!r
            .hg
            .dir
            .path()
            .join("hooks/credentials-exchange/x+y.js")
            .exists());
    }

    // The replicas still take API writes, and the change reaches the others.
    let (_, list, _) = b.call(reqwest::Method::GET, "/api/v2/hooks", None).await;
    let id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "seed")
        .unwrap_or_else(|| panic!("{list}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body, rev) = b
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v2/hooks/{id}"),
            Some(json!({"enabled": true, "script": hook("fixed")})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut took = Vec::new();
    all_serve(&[&a, &b], Some("fixed"), rev.unwrap(), &mut took).await;
}

/// M6: more than 1000 records in one millisecond (their ids share a number) reach the live tail
/// once each: the tail moves by the raw stream id, so it neither repeats them nor spins.
#[tokio::test(flavor = "multi_thread")]
async fn the_live_tail_sends_each_record_once_even_past_1000_in_one_millisecond() {
    let redis = Redis::start();
    let idp = OidcServer::start();
    let ns = namespace();
    let a = Replica::start(&idp, &redis, &ns, "a", Some("seeded"));
    until!(
        "the replica to serve the seeded hook",
        a,
        a.ready().await.0 == 200 && a.claim().await.as_deref() == Some("seeded")
    );
    let mut con = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let key = format!("{ns}:runs");
    let newest = || -> (String, String) {
        let v: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
            .arg(&key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query(
                &mut redis::Client::open(redis.url())
                    .unwrap()
                    .get_connection()
                    .unwrap(),
            )
            .unwrap();
        let (id, fields) = v.into_iter().next().expect("a record in the shared stream");
        (id, fields.into_iter().find(|(k, _)| k == "r").unwrap().1)
    };
    let start = Instant::now();
    let (first, record) = loop {
        let v: i64 = redis::cmd("XLEN").arg(&key).query(&mut con).unwrap();
        if v > 0 {
            break newest();
        }
        assert!(
            start.elapsed() < LIMIT,
            "no record reached the shared stream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let ms: u64 = first.split('-').next().unwrap().parse::<u64>().unwrap() + 1;
    let (_, list, _) = a
        .call(reqwest::Method::GET, "/api/hookgate/runs?limit=1", None)
        .await;
    let after = list["records"][0]["id"].as_u64().unwrap();
    let mut tail = a
        .client
        .get(format!("{}/api/hookgate/runs/stream", a.base))
        .bearer_auth(TOKEN)
        .header("last-event-id", after.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), 200);
    for seq in [1000, 1001, 1002] {
        let _: String = redis::cmd("XADD")
            .arg(&key)
            .arg(format!("{ms}-{seq}"))
            .arg("r")
            .arg(&record)
            .query(&mut con)
            .unwrap();
    }
    let shared_id = format!("id: {}\n", ms * 1000 + 999);
    let marker_id = format!("id: {}\n", (ms + 1) * 1000);
    let mut text = String::new();
    let deadline = Instant::now() + LIMIT;
    // Read the three, then add a marker after them: anything repeated arrives before it.
    let mut marker_sent = false;
    while !text.contains(&marker_id) {
        if !marker_sent && text.matches(&shared_id).count() >= 3 {
            let _: String = redis::cmd("XADD")
                .arg(&key)
                .arg(format!("{}-0", ms + 1))
                .arg("r")
                .arg(&record)
                .query(&mut con)
                .unwrap();
            marker_sent = true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, tail.chunk())
            .await
            .unwrap_or_else(|_| panic!("the tail within the limit; got {text}"))
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert_eq!(text.matches(&shared_id).count(), 3, "{text}");
}

/// M1: Redis flushed and seeded again counts revisions from 1 again; a replica that already held
/// those numbers takes the new content (another epoch) instead of skipping "old" revisions.
#[tokio::test(flavor = "multi_thread")]
async fn after_redis_is_emptied_and_seeded_again_every_replica_serves_the_new_content() {
    let redis = Redis::start();
    let idp = OidcServer::start();
    let ns = namespace();
    let a = Replica::start(&idp, &redis, &ns, "a", Some("s0"));
    let b = Replica::start(&idp, &redis, &ns, "b", None);
    for r in [&a, &b] {
        until!(
            "the replica to serve the seeded hook",
            r,
            r.ready().await.0 == 200 && r.claim().await.as_deref() == Some("s0")
        );
    }
    let (_, list, _) = a.call(reqwest::Method::GET, "/api/v2/hooks", None).await;
    let id = list[0]["id"].as_str().unwrap().to_string();
    let mut took = Vec::new();
    for value in ["one", "two", "three"] {
        let (status, _, rev) = a
            .call(
                reqwest::Method::PATCH,
                &format!("/api/v2/hooks/{id}"),
                Some(json!({ "script": hook(value) })),
            )
            .await;
        assert_eq!(status, 200);
        all_serve(&[&b], Some(value), rev.unwrap(), &mut took).await;
    }
    // Emptied (FLUSHALL, or a failover to an empty copy): A's next change seeds it again with
    // A's files (revision 1), then publishes revision 2 — a number B already went past.
    let mut con = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
    let (status, body, rev) = a
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v2/hooks/{id}"),
            Some(json!({ "script": hook("after-flush") })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(rev, Some(2), "counted from the new seed");
    all_serve(&[&a, &b], Some("after-flush"), 2, &mut took).await;
}

/// M3: in cluster mode the files the cluster does not manage (here: the replica's own part of
/// hookgate.toml, as keys, TLS and outside secret files) are still rescanned and rebuilt, under
/// the same revision number.
#[tokio::test(flavor = "multi_thread")]
async fn a_replica_still_picks_up_its_unmanaged_files_in_cluster_mode() {
    let redis = Redis::start();
    let idp = OidcServer::start();
    let ns = namespace();
    let a = Replica::start(&idp, &redis, &ns, "a", Some("s0"));
    until!(
        "the replica to serve the seeded hook",
        a,
        a.ready().await.0 == 200 && a.claim().await.as_deref() == Some("s0")
    );
    let generation = a.generation().await;
    let before = a.hg.metric("hookgate_reload_success_total").await;
    let config = a.hg.config_path();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("[hooks]\n", "[hooks]\ntimeout_ms = 15000\n"),
    )
    .unwrap();
    until!(
        "the edit to be rebuilt by the rescan",
        a,
        a.hg.metric("hookgate_reload_success_total").await > before
    );
    assert_eq!(a.generation().await, generation, "still the same revision");
    assert_eq!(a.claim().await.as_deref(), Some("s0"));
}
