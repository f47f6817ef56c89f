//! The management API as real Auth0 clients drive it: the real `auth0-deploy-cli` (import and
//! export of a directory of hooks with secrets) and the real `auth0` Node SDK (every hooks and
//! hook-secrets call), against a real hookgate over HTTPS (its self-signed certificate, trusted
//! through `NODE_EXTRA_CA_CERTS`) in front of node-oidc-provider; and the imported hooks serving
//! requests.
//!
//! Needs `scripts/setup` (node and `npm ci --prefix tests/mgmt`). Run:
//! `cargo test --test management_e2e`. deploy-cli needs no network: with `AUTH0_ACCESS_TOKEN` it
//! asks no token of Auth0, and it sends nothing anywhere but `AUTH0_DOMAIN` (each run here has a
//! cleared environment). Each import spends 20-50 s of CPU compiling deploy-cli's JSON schema
//! before its first request: these tests are slow, not stuck.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::hookgate::{free_port, Hookgate};
use common::oidc::{self, OidcServer};
use common::wait_for;
use serde_json::{json, Value};

const DEPLOY_TOKEN: &str = "deploy-token-0123456789abcdef";
const READ_TOKEN: &str = "read-only-token-0123456789abcdef";
const LOGS_TOKEN: &str = "logs-only-token-0123456789abcdef";

/// A bound on one deploy-cli or SDK run (an import compiles a large JSON schema first).
const NODE_LIMIT: Duration = Duration::from_secs(400);

const ROUTES: &str = r#"
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
"#;

/// The credentials-exchange hook deployed: a claim whose value is a secret.
const CLAIMS_JS: &str = "module.exports = function (client, scope, audience, context, cb) {\n  cb(null, { 'https://example.com/claim': context.webtask.secrets.CLAIM_VALUE });\n};\n";
/// The pre-user-registration hook deployed: refuses one domain.
const SIGNUP_JS: &str = "module.exports = function (user, context, cb) {\n  if (/@blocked\\.example$/.test(user.email)) return cb(new PreUserRegistrationError('blocked', 'Signups from blocked.example are closed'));\n  cb(null, { user: {} });\n};\n";

struct Setup {
    idp: OidcServer,
    hg: Hookgate,
    /// `127.0.0.1:<port>`: what deploy-cli's AUTH0_DOMAIN and the SDK's domain are.
    domain: String,
    cert: PathBuf,
}

fn mgmt_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mgmt")
}

fn setup() -> Setup {
    let modules = mgmt_dir().join("node_modules");
    assert!(
        modules.join("auth0-deploy-cli").is_dir() && modules.join("auth0").is_dir(),
        "{} is missing: run scripts/setup (npm ci --prefix tests/mgmt) before these tests",
        modules.display()
    );
    let idp = OidcServer::start();
    let dir = tempfile::tempdir().unwrap();
    for (file, token) in [
        ("token-deploy", DEPLOY_TOKEN),
        ("token-read", READ_TOKEN),
        ("token-logs", LOGS_TOKEN),
    ] {
        std::fs::write(dir.path().join(file), token).unwrap();
    }
    let port = free_port();
    let config = format!(
        "{ROUTES}\n[admin]\napi_listen = \"127.0.0.1:{port}\"\n\
         [[admin.token]]\nname = \"deploy\"\ntoken = {{ file = \"token-deploy\" }}\n\
         scopes = [\"read:hooks\", \"create:hooks\", \"update:hooks\", \"delete:hooks\"]\n\
         [[admin.token]]\nname = \"reader\"\ntoken = {{ file = \"token-read\" }}\nscopes = [\"read:hooks\"]\n\
         [[admin.token]]\nname = \"logs\"\ntoken = {{ file = \"token-logs\" }}\nscopes = [\"read:logs\"]\n"
    );
    let hg = Hookgate::start_in(dir, &idp.addr(), "", "", &config);
    let domain = format!("127.0.0.1:{port}");
    wait_for(
        "the management API to listen",
        Duration::from_secs(20),
        || TcpStream::connect(&domain).is_ok(),
    );
    let cert = hg.dir.path().join(".hookgate/admin-tls.crt");
    assert!(
        cert.is_file(),
        "no self-signed certificate at {}",
        cert.display()
    );
    Setup {
        idp,
        hg,
        domain,
        cert,
    }
}

/// What a node run printed (stdout then stderr, colour codes removed) and whether it succeeded.
struct Ran {
    ok: bool,
    out: String,
}

/// Run `node <script> <args>` with only the environment given (plus PATH and a HOME of its own):
/// nothing of the caller's (a proxy, an AUTH0_* variable) reaches deploy-cli, which reads every
/// variable as configuration.
fn node(s: &Setup, script: &Path, args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Ran {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("NODE_EXTRA_CA_CERTS", &s.cert)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start node");
    let mut pipes = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ];
    let readers: Vec<_> = pipes
        .iter_mut()
        .map(|p| {
            let mut p = p.take().unwrap();
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = p.read_to_string(&mut s);
                s
            })
        })
        .collect();
    let deadline = Instant::now() + NODE_LIMIT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out: String = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let out = strip_ansi(&out);
    let status =
        status.unwrap_or_else(|| panic!("node {script:?} ran past {NODE_LIMIT:?}:\n{out}"));
    Ran {
        ok: status.success(),
        out,
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// `a0deploy <args>` against the hookgate, limited to hooks, with `token`.
fn a0deploy(s: &Setup, token: &str, args: &[&str], extra: &[(&str, &str)], cwd: &Path) -> Ran {
    let cli = mgmt_dir().join("node_modules/auth0-deploy-cli/lib/index.js");
    let mut env = vec![
        ("AUTH0_DOMAIN", s.domain.as_str()),
        ("AUTH0_ACCESS_TOKEN", token),
        ("AUTH0_INCLUDED_ONLY", "[\"hooks\"]"),
    ];
    env.extend_from_slice(extra);
    node(s, &cli, args, &env, cwd)
}

/// A management API call with the deploy token (the test's own view of the result).
async fn api(s: &Setup, path: &str) -> Value {
    let pem = std::fs::read(&s.cert).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let resp = client
        .get(format!("https://{}{path}", s.domain))
        .bearer_auth(DEPLOY_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap()
}

/// A client-credentials token from hookgate's token route; its claims (hookgate re-signs tokens
/// its hooks change; the signature is not what these tests are about).
async fn token_claims(s: &Setup) -> Value {
    let resp = reqwest::Client::new()
        .post(s.hg.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", oidc::POST_CLIENT_ID),
            ("client_secret", oidc::POST_CLIENT_SECRET),
            ("audience", oidc::AUDIENCE),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}\n{}", s.hg.log());
    let jwt = body["access_token"].as_str().unwrap();
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn signup(s: &Setup, email: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(s.hg.url("/dbconnections/signup"))
        .json(&json!({
            "client_id": oidc::POST_CLIENT_ID,
            "email": email,
            "password": "Passw0rd!long",
            "connection": "Username-Password-Authentication",
        }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_cli_imports_hooks_with_secrets_that_serve_requests_exports_them_back_and_updates_and_deletes_in_place(
) {
    let s = setup();
    let work = tempfile::tempdir().unwrap();
    // deploy-cli's directory format: hooks/<name>.json + hooks/<name>.js.
    let deploy = work.path().join("deploy");
    write(
        &deploy.join("hooks/claims.json"),
        r#"{ "name": "claims", "triggerId": "credentials-exchange", "enabled": true, "script": "./claims.js", "secrets": { "CLAIM_VALUE": "from-a-deployed-secret" }, "dependencies": {} }"#,
    );
    write(&deploy.join("hooks/claims.js"), CLAIMS_JS);
    write(
        &deploy.join("hooks/signup-guard.json"),
        r#"{ "name": "signup-guard", "triggerId": "pre-user-registration", "enabled": true, "script": "./signup-guard.js" }"#,
    );
    write(&deploy.join("hooks/signup-guard.js"), SIGNUP_JS);

    let ran = a0deploy(
        &s,
        DEPLOY_TOKEN,
        &["import", "--input_file", "deploy"],
        &[],
        work.path(),
    );
    assert!(ran.ok, "import failed:\n{}\n{}", ran.out, s.hg.log());
    assert!(ran.out.contains("Import Successful"), "{}", ran.out);
    for created in [
        r#"Created [hooks]: {"name":"claims","triggerId":"credentials-exchange"}"#,
        r#"Created [hooks]: {"name":"signup-guard","triggerId":"pre-user-registration"}"#,
    ] {
        assert!(ran.out.contains(created), "{created} missing:\n{}", ran.out);
    }

    // Stored as files: a hook file per hook, the secret outside it.
    let hooks_dir = s.hg.dir.path().join("hooks");
    assert_eq!(
        std::fs::read_to_string(hooks_dir.join("credentials-exchange/claims.js")).unwrap(),
        CLAIMS_JS
    );
    assert!(hooks_dir
        .join("pre-user-registration/signup-guard.js")
        .is_file());
    assert!(!std::fs::read_to_string(s.hg.config_path())
        .unwrap()
        .contains("from-a-deployed-secret"));

    let listed = api(&s, "/api/v2/hooks").await;
    let ids: Vec<(String, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().to_string(),
                h["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(ids.len(), 2, "{listed}");
    let claims_id = ids.iter().find(|(n, _)| n == "claims").unwrap().1.clone();

    // The imported hooks serve requests; the secret reached the hook.
    let claims = token_claims(&s).await;
    assert_eq!(
        claims["https://example.com/claim"], "from-a-deployed-secret",
        "{claims}"
    );
    let (status, body) = signup(&s, "someone@blocked.example").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string()
            .contains("Signups from blocked.example are closed"),
        "{body}"
    );
    let (status, body) = signup(&s, "someone@open.example").await;
    assert_eq!(status, 200, "{body}");

    // Export: the same hooks back, the secret's value hidden as Auth0 hides it.
    let ran = a0deploy(
        &s,
        DEPLOY_TOKEN,
        &[
            "export",
            "--format",
            "directory",
            "--output_folder",
            "exported",
        ],
        &[],
        work.path(),
    );
    assert!(ran.ok, "export failed:\n{}", ran.out);
    let exported = work.path().join("exported/hooks");
    assert_eq!(
        read_json(&exported.join("claims.json")),
        json!({
            "name": "claims",
            "script": "./claims.js",
            "triggerId": "credentials-exchange",
            "enabled": true,
            "dependencies": {},
            "secrets": { "CLAIM_VALUE": "_VALUE_NOT_SHOWN_" }
        })
    );
    assert_eq!(
        read_json(&exported.join("signup-guard.json")),
        json!({
            "name": "signup-guard",
            "script": "./signup-guard.js",
            "triggerId": "pre-user-registration",
            "enabled": true,
            "dependencies": {},
            "secrets": {}
        })
    );
    assert_eq!(
        std::fs::read_to_string(exported.join("claims.js")).unwrap(),
        CLAIMS_JS
    );
    assert_eq!(
        std::fs::read_to_string(exported.join("signup-guard.js")).unwrap(),
        SIGNUP_JS
    );

    // The exported directory, edited and imported again: a changed script updates the hook in
    // place (same id; `_VALUE_NOT_SHOWN_` leaves the secret alone), and with AUTH0_ALLOW_DELETE
    // the hook removed from the directory is deleted.
    let v2 = CLAIMS_JS.replace(
        "context.webtask.secrets.CLAIM_VALUE",
        "'v2:' + context.webtask.secrets.CLAIM_VALUE",
    );
    write(&exported.join("claims.js"), &v2);
    std::fs::remove_file(exported.join("signup-guard.json")).unwrap();
    std::fs::remove_file(exported.join("signup-guard.js")).unwrap();
    let ran = a0deploy(
        &s,
        DEPLOY_TOKEN,
        &["import", "--input_file", "exported"],
        &[("AUTH0_ALLOW_DELETE", "true")],
        work.path(),
    );
    assert!(ran.ok, "second import failed:\n{}\n{}", ran.out, s.hg.log());
    assert!(
        ran.out
            .contains(r#"Updated [hooks]: {"name":"claims","triggerId":"credentials-exchange"}"#),
        "{}",
        ran.out
    );
    assert!(
        ran.out.contains(
            r#"Deleted [hooks]: {"name":"signup-guard","triggerId":"pre-user-registration"}"#
        ),
        "{}",
        ran.out
    );
    let listed = api(&s, "/api/v2/hooks").await;
    let hooks = listed.as_array().unwrap();
    assert_eq!(hooks.len(), 1, "{listed}");
    assert_eq!(hooks[0]["id"], claims_id.as_str(), "updated in place");
    let hook = api(&s, &format!("/api/v2/hooks/{claims_id}")).await;
    assert_eq!(hook["script"], v2.as_str());
    assert_eq!(
        api(&s, &format!("/api/v2/hooks/{claims_id}/secrets")).await,
        json!({ "CLAIM_VALUE": "_VALUE_NOT_SHOWN_" })
    );
    assert!(!hooks_dir
        .join("pre-user-registration/signup-guard.js")
        .exists());
    let claims = token_claims(&s).await;
    assert_eq!(
        claims["https://example.com/claim"], "v2:from-a-deployed-secret",
        "{claims}"
    );
    let (status, body) = signup(&s, "again@blocked.example").await;
    assert_eq!(status, 200, "the deleted hook no longer runs: {body}");
    drop(s.idp);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_auth0_node_sdk_drives_every_hooks_and_secrets_call() {
    let s = setup();
    let ran = node(
        &s,
        &mgmt_dir().join("sdk-hooks.mjs"),
        &[],
        &[
            ("HOOKGATE_DOMAIN", s.domain.as_str()),
            ("HOOKGATE_TOKEN", DEPLOY_TOKEN),
        ],
        &mgmt_dir(),
    );
    assert!(ran.ok, "{}\n{}", ran.out, s.hg.log());
    assert!(ran.out.contains("all ok"), "{}", ran.out);
    // Nothing is left: the script deletes what it made, secrets with it.
    assert_eq!(api(&s, "/api/v2/hooks").await, json!([]));
    let secrets = s.hg.dir.path().join("secrets");
    assert!(
        !secrets.exists() || std::fs::read_dir(&secrets).unwrap().next().is_none(),
        "secret files left behind"
    );
}

/// deploy-cli 8.44 reads any 403 on hooks as "hooks are deprecated on this tenant": an export
/// with a token lacking `read:hooks` skips hooks silently (exit 0, no hooks folder) instead of
/// printing its "missing scopes" warning, and an import with a token lacking `create:hooks`
/// fails, printing hookgate's `Insufficient scope` answer, and writes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn deploy_cli_without_a_hooks_scope_skips_hooks_on_export_and_fails_an_import_naming_the_scope(
) {
    let s = setup();
    let work = tempfile::tempdir().unwrap();
    let ran = a0deploy(
        &s,
        LOGS_TOKEN,
        &["export", "--format", "directory", "--output_folder", "out"],
        &[],
        work.path(),
    );
    assert!(ran.ok, "{}", ran.out);
    assert!(ran.out.contains("Export Successful"), "{}", ran.out);
    assert!(
        !work.path().join("out/hooks").exists(),
        "no hooks are exported without read:hooks"
    );

    write(
        &work.path().join("deploy/hooks/claims.json"),
        r#"{ "name": "claims", "triggerId": "credentials-exchange", "enabled": true, "script": "./claims.js" }"#,
    );
    write(&work.path().join("deploy/hooks/claims.js"), CLAIMS_JS);
    let ran = a0deploy(
        &s,
        READ_TOKEN,
        &["import", "--input_file", "deploy"],
        &[],
        work.path(),
    );
    assert!(!ran.ok, "{}", ran.out);
    for part in [
        r#"Problem creating hooks {"name":"claims","triggerId":"credentials-exchange"}"#,
        "Insufficient scope, expected any of: create:hooks",
    ] {
        assert!(ran.out.contains(part), "{part} missing:\n{}", ran.out);
    }
    assert_eq!(api(&s, "/api/v2/hooks").await, json!([]));
    assert!(!s
        .hg
        .dir
        .path()
        .join("hooks/credentials-exchange/claims.js")
        .exists());
}
