//! Run records and the Runner over the management API, against a real hookgate over HTTPS:
//! records listed, read by id and followed live (server-sent events resuming after
//! `Last-Event-ID`); the Runner runs a Hook or an Action and writes nothing; scopes hold.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::hookgate::{free_port, Hookgate};
use common::upstream::Upstream;
use common::wait_for;
use reqwest::StatusCode;
use serde_json::{json, Value};

const LOGS: &str = "logs-token-0123456789";
const RUNNER: &str = "runner-token-0123456789";
const HOOKS_ONLY: &str = "hooks-token-0123456789";

const HOOK: &str = "module.exports = function (user, context, cb) {\n  console.log('signup of ' + user.email);\n  cb(null, { user: { app_metadata: { checked: true } } });\n};\n";

struct Api {
    hg: Hookgate,
    base: String,
    client: reqwest::Client,
    _upstream: Upstream,
}

impl Api {
    fn start() -> Api {
        let upstream = Upstream::start();
        let dir = tempfile::tempdir().unwrap();
        let hooks = dir.path().join("hooks/pre-user-registration");
        std::fs::create_dir_all(&hooks).unwrap();
        std::fs::write(hooks.join("check.js"), HOOK).unwrap();
        std::fs::write(dir.path().join("t-logs"), LOGS).unwrap();
        std::fs::write(dir.path().join("t-runner"), RUNNER).unwrap();
        std::fs::write(dir.path().join("t-hooks"), HOOKS_ONLY).unwrap();
        let port = free_port();
        let config = format!(
            "[[route]]\nname = \"signup\"\npath = \"/dbconnections/signup\"\npoint = \"pre-user-registration\"\n\
             [route.signup]\nuser_id = \"/body_sha256\"\n\
             [admin]\napi_listen = \"127.0.0.1:{port}\"\n\
             [[admin.token]]\nname = \"logs\"\ntoken = {{ file = \"t-logs\" }}\nscopes = [\"read:logs\"]\n\
             [[admin.token]]\nname = \"runner\"\ntoken = {{ file = \"t-runner\" }}\nscopes = [\"update:hooks\"]\n\
             [[admin.token]]\nname = \"hooks\"\ntoken = {{ file = \"t-hooks\" }}\nscopes = [\"read:hooks\"]\n"
        );
        let hg = Hookgate::start_in(dir, &upstream.address(), "", "", &config);
        let addr = format!("127.0.0.1:{port}");
        wait_for("the management API", Duration::from_secs(20), || {
            TcpStream::connect(&addr).is_ok()
        });
        let pem = std::fs::read(hg.dir.path().join(".hookgate/admin-tls.crt")).unwrap();
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Api {
            hg,
            base: format!("https://localhost:{port}"),
            client,
            _upstream: upstream,
        }
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn signup(&self, who: &str) {
        let resp = reqwest::Client::new()
            .post(self.hg.url("/dbconnections/signup"))
            .json(&json!({ "email": format!("{who}@example.com"), "password": "pw-123456", "connection": "db" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", self.hg.log());
    }
}

/// Read server-sent events from `resp` until `done` says so (bounded by the client's timeout).
async fn read_events(resp: &mut reqwest::Response, mut done: impl FnMut(&str) -> bool) -> String {
    let mut text = String::new();
    while !done(&text) {
        let chunk = tokio::time::timeout(Duration::from_secs(20), resp.chunk())
            .await
            .expect("an event within 20 s")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_are_listed_read_by_id_and_followed_live() {
    let api = Api::start();
    api.signup("ann").await;
    api.signup("bob").await;
    let mut records = Vec::new();
    for _ in 0..100 {
        let (status, page) = api
            .get(
                "/api/hookgate/runs?hook=pre-user-registration/check&limit=10",
                LOGS,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        records = page["records"].as_array().unwrap().clone();
        if records.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(
        records[0]["console"][0]["message"], "signup of bob@example.com",
        "newest first, with its console lines"
    );
    assert_eq!(records[0]["outcome"], "ok");
    assert_eq!(records[0]["kind"], "hook");
    assert_eq!(records[0]["route"], "signup");
    let (first, second) = (
        records[1]["id"].as_u64().unwrap(),
        records[0]["id"].as_u64().unwrap(),
    );
    let (status, one) = api.get(&format!("/api/hookgate/runs/{second}"), LOGS).await;
    assert_eq!(status, 200);
    assert_eq!(one, records[0]);
    assert_eq!(
        api.get("/api/hookgate/runs/999999", LOGS).await.0,
        404,
        "an unknown id"
    );
    let (status, bad) = api.get("/api/hookgate/runs?limit=many", LOGS).await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["statusCode"], 400);

    // The tail resumes after Last-Event-ID: the second record first, then live ones.
    let mut resp = api
        .client
        .get(format!("{}/api/hookgate/runs/stream", api.base))
        .bearer_auth(LOGS)
        .header("last-event-id", first.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let replay = read_events(&mut resp, |t| t.contains(&format!("id: {second}\n"))).await;
    assert!(replay.contains("event: run"), "{replay}");
    assert!(
        !replay.contains(&format!("id: {first}\n")),
        "records up to Last-Event-ID are not sent again: {replay}"
    );
    api.signup("cy").await;
    let live = read_events(&mut resp, |t| t.contains("cy@example.com")).await;
    assert!(live.contains(&format!("id: {}\n", second + 1)), "{live}");

    // Reading records needs read:logs.
    assert_eq!(api.get("/api/hookgate/runs", HOOKS_ONLY).await.0, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runner_runs_hooks_and_actions_and_writes_nothing() {
    let api = Api::start();
    let hooks = api.hg.dir.path().join("hooks");
    let before = listing(&hooks);
    let run = |script: &str, token: &str| {
        let req = api
            .client
            .post(format!("{}/api/hookgate/hooks/test", api.base))
            .bearer_auth(token)
            .json(&json!({
                "triggerId": "credentials-exchange",
                "script": script,
                "payload": { "scope": ["read:users", "delete:users"] },
                "secrets": { "TIER": "gold" }
            }));
        async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, hook) = run(
        "module.exports = function (client, scope, audience, context, cb) {\n  console.log('tier', context.webtask.secrets.TIER);\n  cb(null, { scope: scope.slice(0, 1), 'https://example.com/tier': context.webtask.secrets.TIER });\n};\n",
        RUNNER,
    )
    .await;
    assert_eq!(status, 200, "{hook}");
    assert_eq!(
        hook["response"],
        json!({ "scope": ["read:users"], "https://example.com/tier": "gold" })
    );
    assert_eq!(hook["console"][0]["message"], "tier gold");
    let (status, action) = run(
        "exports.onExecuteCredentialsExchange = async (event, api) => {\n  api.transaction.removeTargetScope('delete:users');\n  api.accessToken.setCustomClaim('https://example.com/tier', event.secrets.TIER);\n};\n",
        RUNNER,
    )
    .await;
    assert_eq!(status, 200, "{action}");
    assert_eq!(
        action["response"], hook["response"],
        "the Runner runs an Action as it runs the Hook it replaces"
    );
    let (status, broken) = run(
        "module.exports = function (a, b, c, d, cb) {\n  cb(null, {;\n};\n",
        RUNNER,
    )
    .await;
    assert_eq!(status, 400, "{broken}");
    assert!(
        broken["message"].as_str().unwrap().contains(":2:"),
        "the line of the syntax error: {broken}"
    );
    assert_eq!(
        run("module.exports = function () {};", LOGS).await.0,
        403,
        "running code needs update:hooks"
    );
    assert_eq!(listing(&hooks), before, "the Runner wrote nothing");
}

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in walk(dir) {
        out.push(format!(
            "{} {}",
            entry.display(),
            std::fs::read(&entry).map(|b| b.len()).unwrap_or(0)
        ));
    }
    out.sort();
    out
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A script sent to the Runner (update:hooks) cannot read files above the hooks folder, such as
/// the token files beside the configuration, into its result or its error message.
#[tokio::test(flavor = "multi_thread")]
async fn the_runner_cannot_require_files_outside_the_hooks_folder() {
    let api = Api::start();
    for spec in ["../../t-logs", "../../hookgate.toml", "./../../t-hooks"] {
        let resp = api
            .client
            .post(format!("{}/api/hookgate/hooks/test", api.base))
            .bearer_auth(RUNNER)
            .json(&json!({
                "triggerId": "credentials-exchange",
                "script": format!("var t = require('{spec}');\nmodule.exports = function (a, b, c, d, cb) {{ cb(null, {{ t: t }}); }};\n"),
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{spec}");
        let text = resp.text().await.unwrap();
        assert!(text.contains("cannot be satisfied"), "{spec}: {text}");
        for token in [LOGS, HOOKS_ONLY] {
            assert!(!text.contains(token), "{spec} leaked a token: {text}");
        }
    }
}
