//! The dashboard in a real browser: Debian's `chromium`, driven by `playwright-core`
//! (`tests/dashboard/flow.mjs`), against a real hookgate in front of node-oidc-provider. The flow
//! signs in, creates a hook from the starter code, edits and saves it and sees a token carry the
//! new claim, breaks it and sees the error at its line while tokens still work, runs the Runner
//! and sees the file unchanged, watches a run appear in the live logs, and retries a dead letter.
//!
//! Needs `scripts/setup` (chromium, and `npm ci` in tests/oidc and tests/dashboard). Screenshots
//! go to a temporary folder; `DASHBOARD_SCREENSHOTS=docs` writes them to `docs/` (the README's).

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::hookgate::{free_port, Hookgate};
use common::oidc::OidcServer;
use common::wait_for;
use serde_json::{json, Value};

const ADMIN_TOKEN: &str = "dashboard-e2e-admin-token-0123456789";

/// A post-user-registration hook that always fails: with one attempt, its event is a dead letter.
const FAILING_NOTIFY: &str =
    "module.exports = function (user, context, cb) { cb(new Error('crm is down')); };\n";

/// The whole flow, one browser session; every wait inside is bounded (20 s a step, 240 s in all).
const FLOW_LIMIT: Duration = Duration::from_secs(240);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup (it installs Debian's chromium) or set CHROMIUM",
        path.display()
    );
    let driver = repo().join("tests/dashboard/node_modules/playwright-core");
    assert!(
        driver.is_dir(),
        "{} is missing: run scripts/setup (npm ci --prefix tests/dashboard)",
        driver.display()
    );
    path
}

fn config(api_port: u16) -> String {
    format!(
        r#"
[[route]]
name = "token"
path = "/oauth/token"
point = "credentials-exchange"
upstream_path = "/token"
audience_param = "resource"

[[route]]
name = "signup"
path = "/dbconnections/signup"
point = "pre-user-registration"
[route.signup]
user_id = "/_id"

[clients.m2m-post]
name = "Billing service"

[hooks]
dir = "hooks"
[[hooks.hook]]
file = "post-user-registration/notify.js"

[outbox]
max_attempts = 1
retry_base_ms = 100

[admin]
api_listen = "127.0.0.1:{api_port}"
rate_limit_per_sec = 1000
rate_limit_burst = 1000
[[admin.token]]
name = "dashboard"
token = {{ file = "admin-token" }}
scopes = ["read:hooks", "create:hooks", "update:hooks", "delete:hooks", "read:logs", "read:outbox", "update:outbox"]
"#
    )
}

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Run the Playwright flow; its output, and whether it passed. Killed past [`FLOW_LIMIT`].
fn run_flow(envs: &[(&str, String)], shots: &Path) -> (bool, String) {
    let mut child = Command::new("node")
        .arg("flow.mjs")
        .current_dir(repo().join("tests/dashboard"))
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .env("SHOTS", shots)
        .env("CHROMIUM", chromium())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs tests/dashboard/flow.mjs");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).ok();
        let mut e = String::new();
        err.read_to_string(&mut e).ok();
        format!("{s}{e}")
    });
    let deadline = Instant::now() + FLOW_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = reader.join().unwrap();
    match status {
        Some(s) => (s.success(), output),
        None => (
            false,
            format!("{output}\n(the flow took longer than {FLOW_LIMIT:?})"),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_flow_in_chromium_signs_in_creates_saves_breaks_runs_tails_and_retries() {
    chromium();
    let idp = OidcServer::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin-token"), ADMIN_TOKEN).unwrap();
    let notify = dir.path().join("hooks/post-user-registration");
    std::fs::create_dir_all(&notify).unwrap();
    std::fs::write(notify.join("notify.js"), FAILING_NOTIFY).unwrap();
    let api_port = free_port();
    let hg = Hookgate::start_in(dir, &idp.addr(), "", "", &config(api_port));
    let addr = format!("127.0.0.1:{api_port}");
    wait_for(
        "the management API to listen",
        Duration::from_secs(20),
        || TcpStream::connect(&addr).is_ok(),
    );
    let cert = hg.dir.path().join(".hookgate/admin-tls.crt");
    let pem = std::fs::read(&cert).expect("a self-signed certificate beside the configuration");
    let api = Api {
        base: format!("https://localhost:{api_port}"),
        client: reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    };

    // The dashboard is served without a token (a browser cannot send one when it navigates),
    // with its CSP; the API behind it is not.
    let page = api
        .client
        .get(format!("{}/dashboard/", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let (status, _) = api
        .client
        .get(format!("{}/api/hookgate/hooks", api.base))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(
        status, 401,
        "the API needs the token the dashboard signs in with"
    );

    // A dead letter for the outbox page: a signup whose post hook fails its only attempt.
    let (status, hooks) = api
        .call(reqwest::Method::GET, "/api/hookgate/hooks", None)
        .await;
    assert_eq!(status, 200, "{hooks}");
    let notify_id = hooks
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["triggerId"] == "post-user-registration")
        .and_then(|h| h["id"].as_str())
        .expect("the notify hook is listed")
        .to_owned();
    let signup = reqwest::Client::new()
        .post(hg.url("/dbconnections/signup"))
        .json(&json!({
            "client_id": "m2m-post",
            "email": format!("dash-{}@example.com", std::process::id()),
            "password": "Dash-pass-1",
            "connection": "Username-Password-Authentication",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 200, "{}", signup.text().await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, dead) = api
            .call(
                reqwest::Method::GET,
                "/api/hookgate/outbox?state=dead",
                None,
            )
            .await;
        if dead.as_array().is_some_and(|d| !d.is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no dead letter after 30 s\n{}",
            hg.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let shots = match std::env::var_os("DASHBOARD_SCREENSHOTS") {
        Some(d) => repo().join(d),
        None => hg.dir.path().join("screenshots"),
    };
    let envs = [
        (
            "DASH_URL",
            format!("https://127.0.0.1:{api_port}/dashboard/"),
        ),
        ("API_BASE", format!("https://localhost:{api_port}")),
        ("ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        ("TOKEN_URL", hg.url("/oauth/token")),
        (
            "HOOKS_DIR",
            hg.dir.path().join("hooks").display().to_string(),
        ),
        ("NOTIFY_ID", notify_id),
        ("NODE_EXTRA_CA_CERTS", cert.display().to_string()),
    ];
    let (passed, output) = tokio::task::spawn_blocking(move || run_flow(&envs, &shots))
        .await
        .unwrap();
    println!("{output}");
    assert!(
        passed,
        "the dashboard flow failed:\n{output}\n--- hookgate log ---\n{}",
        hg.log()
    );
    for step in [
        "ok: sign in",
        "ok: create a hook from the starter code",
        "ok: completion offers context.webtask.secrets",
        "ok: edit and save",
        "ok: a secret added",
        "ok: a broken save shows the error at line 3",
        "ok: retry a dead letter",
        "ok: rename moves the file",
        "ok: delete asks first",
        "ok: the Runner runs",
        "ok: a run appears in the live logs",
    ] {
        assert!(output.contains(step), "no `{step}` in:\n{output}");
    }
}

/// The bundle hookgate embeds is what `dashboard/build.mjs` makes of the sources in the repo
/// (`dashboard/src`, `types/*.d.ts`, the starters and default payloads of `src/hooks/`): a change
/// to any of them without a rebuild fails here.
#[test]
fn the_embedded_dashboard_is_built_from_the_current_sources() {
    let dir = repo().join("dashboard");
    assert!(
        dir.join("node_modules/esbuild").is_dir(),
        "dashboard/node_modules is missing: run scripts/setup (npm ci --prefix dashboard)"
    );
    let out = Command::new("node")
        .args(["build.mjs", "--check"])
        .current_dir(&dir)
        .output()
        .expect("node runs dashboard/build.mjs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The page's files are served without a token (a browser navigating to them cannot send one),
/// with the CSP and framing headers, gzip only to clients that accept it, and a 304 for a
/// current ETag; the API beside them still wants the token.
#[tokio::test]
async fn the_dashboard_is_served_without_a_token_with_its_csp_and_revalidates_by_etag() {
    let upstream = common::upstream::Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin-token"), ADMIN_TOKEN).unwrap();
    let api_port = free_port();
    let hg = Hookgate::start_in(
        dir,
        &upstream.address(),
        "",
        "",
        &format!(
            "[admin]\napi_listen = \"127.0.0.1:{api_port}\"\n[[admin.token]]\nname = \"t\"\n\
             token = {{ file = \"admin-token\" }}\nscopes = [\"read:hooks\"]\n"
        ),
    );
    let addr = format!("127.0.0.1:{api_port}");
    wait_for(
        "the management API to listen",
        Duration::from_secs(20),
        || TcpStream::connect(&addr).is_ok(),
    );
    let pem = std::fs::read(hg.dir.path().join(".hookgate/admin-tls.crt")).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |p: &str| format!("https://localhost:{api_port}{p}");

    let res = client.get(url("/dashboard")).send().await.unwrap();
    assert_eq!(res.status(), 308);
    assert_eq!(res.headers()["location"], "/dashboard/");

    let res = client.get(url("/dashboard/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert!(h.get("content-encoding").is_none(), "gzip sent unasked");
    assert_eq!(
        h["content-security-policy"],
        hookgate::admin::dashboard::CSP
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let html = res.text().await.unwrap();
    assert!(html.contains("<script src=\"app.js\" defer>"), "{html}");

    let res = client
        .get(url("/dashboard/app.js"))
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-encoding"], "gzip");
    assert_eq!(
        res.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let etag = res.headers()["etag"].clone();
    let res = client
        .get(url("/dashboard/app.js"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);

    let res = client.get(url("/api/hookgate/hooks")).send().await.unwrap();
    assert_eq!(res.status(), 401, "the API still wants the token");
    let res = client
        .get(url("/api/hookgate/hooks"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().get("access-control-allow-origin").is_none(),
        "no CORS: another origin's page cannot read the API"
    );
}
