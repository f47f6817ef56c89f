//! The management API against a real hookgate: Auth0's `/api/v2/hooks` routes with their shapes
//! and statuses over HTTPS (the self-signed certificate hookgate makes, trusted by the client),
//! tokens and scopes, the files as the store of record (comments kept, atomic writes, nothing
//! written for a bad script), changes reaching requests through hot reload, secrets, hookgate's
//! own routes, and the outbox of a deleted hook.

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::hookgate::{free_port, Hookgate};
use common::upstream::Upstream;
use common::wait_for;
use reqwest::StatusCode;
use serde_json::{json, Value};

const ALL: &str = "all-scopes-token-0123456789";
const READER: &str = "reader-token-0123456789";

const SIGNUP_ROUTE: &str = r#"
# The signup route; hooks managed through the API run on it.
[[route]]
name = "signup"
path = "/dbconnections/signup"
point = "pre-user-registration"
[route.signup]
user_id = "/body_sha256"
"#;

/// A pre-user-registration hook that refuses every signup, saying its secret reversed (so the
/// value itself never reaches hookgate's log, where the denial is logged).
const DENY_HOOK: &str = "module.exports = function (user, context, cb) {\n  var s = String(context.webtask.secrets.GREETING).split('').reverse().join('');\n  cb(new PreUserRegistrationError('denied', 'greeting: ' + s));\n};\n";
const PASS_HOOK: &str =
    "module.exports = function (user, context, cb) {\n  cb(null, { user: {} });\n};\n";

struct Api {
    hg: Hookgate,
    base: String,
    client: reqwest::Client,
    _upstream: Upstream,
}

impl Api {
    fn start(extra: &str) -> Api {
        let upstream = Upstream::start();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token-all"), format!("{ALL}\n")).unwrap();
        std::fs::write(dir.path().join("token-reader"), READER).unwrap();
        let port = free_port();
        let config = format!(
            "{SIGNUP_ROUTE}\n\
             # The management API.\n\
             [admin]\napi_listen = \"127.0.0.1:{port}\"\n\
             rate_limit_per_sec = 1000\nrate_limit_burst = 1000\n\
             [[admin.token]]\nname = \"all\"\ntoken = {{ file = \"token-all\" }}\n\
             scopes = [\"read:hooks\", \"create:hooks\", \"update:hooks\", \"delete:hooks\", \"read:outbox\", \"update:outbox\"]\n\
             [[admin.token]]\nname = \"reader\"\ntoken = {{ file = \"token-reader\" }}\nscopes = [\"read:hooks\"]\n\
             {extra}\n"
        );
        let hg = Hookgate::start_in(dir, &upstream.address(), "", "", &config);
        let addr = format!("127.0.0.1:{port}");
        wait_for(
            "the management API to listen",
            Duration::from_secs(20),
            || TcpStream::connect(&addr).is_ok(),
        );
        let pem = std::fs::read(hg.dir.path().join(".hookgate/admin-tls.crt"))
            .expect("a self-signed certificate beside the configuration");
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Api {
            hg,
            // `localhost`: the certificate names it (and 127.0.0.1).
            base: format!("https://localhost:{port}"),
            client,
            _upstream: upstream,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, Some(ALL), None).await
    }
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(ALL), Some(body))
            .await
    }
    async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::PATCH, path, Some(ALL), Some(body))
            .await
    }
    async fn delete(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(reqwest::Method::DELETE, path, Some(ALL), body)
            .await
    }

    async fn create(&self, name: &str, trigger: &str, script: &str, enabled: bool) -> Value {
        let (status, hook) = self
            .post(
                "/api/v2/hooks",
                json!({ "name": name, "script": script, "triggerId": trigger, "enabled": enabled }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hook}");
        hook
    }

    async fn signup(&self, name: &str) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(self.hg.url("/dbconnections/signup"))
            .json(&json!({
                "client_id": "spa",
                "email": format!("{name}@example.com"),
                "password": "hunter2-secret",
                "connection": "Username-Password-Authentication",
                "username": name,
            }))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    fn config_text(&self) -> String {
        std::fs::read_to_string(self.hg.config_path()).unwrap()
    }

    fn hooks_dir(&self) -> std::path::PathBuf {
        self.hg.dir.path().join("hooks")
    }
}

fn error(status: u16, message: &str, code: &str) -> Value {
    let reason = StatusCode::from_u16(status)
        .unwrap()
        .canonical_reason()
        .unwrap();
    json!({ "statusCode": status, "error": reason, "message": message, "errorCode": code })
}

#[tokio::test(flavor = "multi_thread")]
async fn auth0_routes_answer_with_auth0_shapes_and_statuses() {
    let api = Api::start("");
    let (status, list) = api.get("/api/v2/hooks").await;
    assert_eq!((status, list), (StatusCode::OK, json!([])));

    // POST: 201, the hook, disabled unless said otherwise.
    let hook = api
        .create(
            "add-claims",
            "credentials-exchange",
            "module.exports = function (c, s, a, ctx, cb) { cb(null, ctx); };\n",
            false,
        )
        .await;
    let id = hook["id"].as_str().unwrap().to_string();
    assert!(
        id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
        "{id}"
    );
    assert_eq!(
        hook,
        json!({ "id": id, "name": "add-claims",
                "script": "module.exports = function (c, s, a, ctx, cb) { cb(null, ctx); };\n",
                "dependencies": {}, "triggerId": "credentials-exchange", "enabled": false })
    );
    // `"enabled": "true"` as a string, as Auth0's examples send it.
    let (status, other) = api
        .post(
            "/api/v2/hooks",
            json!({ "name": "second hook", "script": PASS_HOOK, "triggerId": "pre-user-registration", "enabled": "true" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    assert_eq!(other["enabled"], true);

    // The list: no code; the SDK's envelope with include_totals.
    let (_, list) = api.get("/api/v2/hooks").await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(list[0].get("script").is_none(), "{list}");
    let (_, page) = api
        .get("/api/v2/hooks?page=0&per_page=100&include_totals=true")
        .await;
    assert_eq!(page["start"], 0);
    assert_eq!(page["limit"], 100);
    assert_eq!(page["total"], 2);
    assert_eq!(page["hooks"].as_array().unwrap().len(), 2);

    // GET one: with the code; `fields` narrows it.
    let (status, got) = api.get(&format!("/api/v2/hooks/{id}")).await;
    assert_eq!((status, &got), (StatusCode::OK, &hook));
    let (_, narrow) = api.get(&format!("/api/v2/hooks/{id}?fields=id,name")).await;
    assert_eq!(narrow, json!({ "id": id, "name": "add-claims" }));

    // PATCH: 200 and the hook; triggerId and unknown properties are 400s in Auth0's words.
    let (status, patched) = api
        .patch(
            &format!("/api/v2/hooks/{id}"),
            json!({ "enabled": true, "dependencies": { "lodash": "4.17.21" } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["enabled"], true);
    assert_eq!(patched["dependencies"], json!({ "lodash": "4.17.21" }));
    let (status, body) = api
        .patch(
            &format!("/api/v2/hooks/{id}"),
            json!({ "triggerId": "pre-user-registration" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        error(
            400,
            "Payload validation error: 'Additional properties not allowed: triggerId'.",
            "invalid_body"
        )
    );
    let (status, body) = api
        .post("/api/v2/hooks", json!({ "name": "x", "script": PASS_HOOK, "triggerId": "pre-user-registration", "secrets": {} }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "Payload validation error: 'Additional properties not allowed: secrets'."
    );
    // A duplicate name (names are unique across triggers, as in an Auth0 tenant): 409.
    let (status, body) = api
        .post("/api/v2/hooks", json!({ "name": "add-claims", "script": PASS_HOOK, "triggerId": "pre-user-registration" }))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["statusCode"], 409);
    // Unknown trigger and bad names: 400.
    let (status, _) = api
        .post(
            "/api/v2/hooks",
            json!({ "name": "y", "script": PASS_HOOK, "triggerId": "rules" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api
        .post("/api/v2/hooks", json!({ "name": "bad_name", "script": PASS_HOOK, "triggerId": "pre-user-registration" }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Comments and layout of hookgate.toml survive the edits.
    let text = api.config_text();
    assert!(
        text.contains("# The signup route; hooks managed through the API run on it."),
        "{text}"
    );
    assert!(text.contains("# The management API."), "{text}");
    assert!(text.contains("lodash = \"4.17.21\""), "{text}");

    // DELETE: 204, empty; then 404 in Auth0's words.
    let (status, body) = api.delete(&format!("/api/v2/hooks/{id}"), None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, body) = api.get(&format!("/api/v2/hooks/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        error(404, "The hook does not exist.", "inexistent_hook")
    );
    assert!(!api
        .hooks_dir()
        .join("credentials-exchange/add-claims.js")
        .exists());
    assert!(!api.config_text().contains("add-claims"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_wrong_token_is_401_and_a_missing_scope_403() {
    let api = Api::start("");
    for token in [None, Some("wrong"), Some("")] {
        let (status, body) = api
            .call(reqwest::Method::GET, "/api/v2/hooks", token, None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(body, error(401, "Invalid token", "invalid_token"));
    }
    let (status, _) = api
        .call(reqwest::Method::GET, "/api/v2/hooks", Some(READER), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/api/v2/hooks",
            Some(READER),
            Some(json!({ "name": "x", "script": PASS_HOOK, "triggerId": "pre-user-registration" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        error(
            403,
            "Insufficient scope, expected any of: create:hooks",
            "insufficient_scope"
        )
    );
    let (status, body) = api
        .call(
            reqwest::Method::GET,
            "/api/hookgate/outbox",
            Some(READER),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["message"],
        "Insufficient scope, expected any of: read:outbox"
    );
    // Nothing was created by the refused call.
    assert_eq!(api.get("/api/v2/hooks").await.1, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_created_hook_runs_once_enabled_with_its_secrets_and_stops_when_disabled() {
    let api = Api::start("");
    let hook = api
        .create("deny-all", "pre-user-registration", DENY_HOOK, false)
        .await;
    let id = hook["id"].as_str().unwrap();
    let (status, body) = api.signup("alice").await;
    assert_eq!(status, 200, "created disabled: not run; {body}");

    // Secrets: 201 {}; read back as names only; a second POST of the name is 409.
    let secrets = format!("/api/v2/hooks/{id}/secrets");
    let (status, body) = api
        .post(&secrets, json!({ "GREETING": "hello-s3cret" }))
        .await;
    assert_eq!((status, body), (StatusCode::CREATED, json!({})));
    let (status, body) = api.get(&secrets).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({ "GREETING": "_VALUE_NOT_SHOWN_" }))
    );
    let (status, _) = api.post(&secrets, json!({ "GREETING": "again" })).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, _) = api
        .patch(&format!("/api/v2/hooks/{id}"), json!({ "enabled": "true" }))
        .await;
    assert_eq!(status, StatusCode::OK);
    // The answer came once the generation with the change was in force: the next request runs it.
    let (status, body) = api.signup("bob").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["description"], "greeting: terc3s-olleh");

    // PATCH a secret: 201 {}, and the hook sees the new value.
    let (status, body) = api
        .patch(&secrets, json!({ "GREETING": "changed-s3cret-2" }))
        .await;
    assert_eq!((status, body), (StatusCode::CREATED, json!({})));
    let (_, body) = api.signup("carol").await;
    assert_eq!(body["description"], "greeting: 2-terc3s-degnahc");
    let (status, _) = api.patch(&secrets, json!({ "OTHER": "x" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Never in the configuration file, never in the log.
    assert!(!api.config_text().contains("s3cret"));
    let log = api.hg.log();
    assert!(
        !log.contains("hello-s3cret") && !log.contains("changed-s3cret-2"),
        "{log}"
    );

    // DELETE secrets takes an array of names: 204.
    let (status, body) = api.delete(&secrets, Some(json!(["GREETING"]))).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    assert_eq!(api.get(&secrets).await.1, json!({}));

    // Disabled: it stops running.
    let (status, _) = api
        .patch(&format!("/api/v2/hooks/{id}"), json!({ "enabled": false }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api.signup("dave").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rename_keeps_the_id_and_moves_the_file() {
    let api = Api::start("");
    let hook = api
        .create("first name", "pre-user-registration", PASS_HOOK, true)
        .await;
    let id = hook["id"].as_str().unwrap();
    let (status, renamed) = api
        .patch(
            &format!("/api/v2/hooks/{id}"),
            json!({ "name": "second-name" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["id"], id);
    assert_eq!(renamed["name"], "second-name");
    assert!(api
        .hooks_dir()
        .join("pre-user-registration/second-name.js")
        .exists());
    assert!(!api
        .hooks_dir()
        .join("pre-user-registration/first name.js")
        .exists());
    let (_, got) = api.get(&format!("/api/v2/hooks/{id}")).await;
    assert_eq!(got["name"], "second-name");
    assert!(api.config_text().contains(&format!("id = \"{id}\"")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_script_that_does_not_compile_is_400_with_its_line_and_nothing_is_written() {
    let api = Api::start("");
    let before = api.config_text();
    let (status, body) = api
        .post(
            "/api/v2/hooks",
            json!({ "name": "broken", "triggerId": "pre-user-registration",
                    "script": "module.exports = function (user, context, cb) {\n  cb(null, {);\n};\n" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("broken.js:2"), "{message}");
    // One that throws when loaded: the load-time probe refuses it too.
    let (status, body) = api
        .post(
            "/api/v2/hooks",
            json!({ "name": "throws", "triggerId": "pre-user-registration",
                    "script": "\n\nthrow new Error('no configuration');\n" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("throws.js:3"),
        "{body}"
    );
    // Too large: 400, the limit named.
    let big = format!("{PASS_HOOK}//{}", "x".repeat(100 * 1024));
    let (status, body) = api
        .post(
            "/api/v2/hooks",
            json!({ "name": "big", "triggerId": "pre-user-registration", "script": big }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("100 KiB"),
        "{body}"
    );
    assert_eq!(api.config_text(), before);
    let left: Vec<_> = std::fs::read_dir(api.hooks_dir().join("pre-user-registration"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    // A bad script in a PATCH leaves the hook as it was.
    let hook = api
        .create("good", "pre-user-registration", PASS_HOOK, true)
        .await;
    let (status, _) = api
        .patch(
            &format!("/api/v2/hooks/{}", hook["id"].as_str().unwrap()),
            json!({ "script": "module.exports = (" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        std::fs::read_to_string(api.hooks_dir().join("pre-user-registration/good.js")).unwrap(),
        PASS_HOOK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_patches_of_one_hook_leave_whole_files() {
    let api = Api::start("");
    let hook = api
        .create("busy", "pre-user-registration", PASS_HOOK, false)
        .await;
    let path = format!("/api/v2/hooks/{}", hook["id"].as_str().unwrap());
    let scripts: Vec<String> = (0..8)
        .map(|i| format!("// version {i}\n{PASS_HOOK}"))
        .collect();
    let calls = scripts
        .iter()
        .enumerate()
        .map(|(i, s)| api.patch(&path, json!({ "script": s, "enabled": i % 2 == 0 })));
    for (status, body) in futures_join_all(calls).await {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let file =
        std::fs::read_to_string(api.hooks_dir().join("pre-user-registration/busy.js")).unwrap();
    assert!(
        scripts.contains(&file),
        "a whole version, not a mix: {file}"
    );
    hookgate::config::Config::parse(Path::new("t.toml"), &api.config_text(), &|_| None)
        .expect("the configuration still parses");
    let (_, got) = api.get(&path).await;
    assert_eq!(got["script"], file.as_str());
}

/// Join futures without another crate: spawn each on the runtime.
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut out = Vec::new();
    let pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut pending: Vec<Option<_>> = pinned.into_iter().map(Some).collect();
    // Poll all of them together.
    std::future::poll_fn(|cx| {
        let mut all = true;
        for slot in pending.iter_mut() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        out.push(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_filters_and_totals_cover_every_hook_once() {
    let api = Api::start("");
    for i in 0..5 {
        api.create(
            &format!("hook{i}"),
            "pre-user-registration",
            PASS_HOOK,
            i % 2 == 0,
        )
        .await;
    }
    api.create(
        "exchange",
        "credentials-exchange",
        "module.exports = function (c, s, a, ctx, cb) { cb(null, ctx); };",
        false,
    )
    .await;
    let mut seen = Vec::new();
    for page in 0..4 {
        let (status, body) = api
            .get(&format!(
                "/api/v2/hooks?page={page}&per_page=2&include_totals=true"
            ))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["total"], 6);
        assert_eq!(body["start"], page * 2);
        assert_eq!(body["limit"], 2);
        for h in body["hooks"].as_array().unwrap() {
            seen.push(h["id"].as_str().unwrap().to_string());
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 6);
    let (_, enabled) = api.get("/api/v2/hooks?enabled=true").await;
    assert_eq!(enabled.as_array().unwrap().len(), 3);
    let (_, exchange) = api
        .get("/api/v2/hooks?triggerId=credentials-exchange&include_totals=true")
        .await;
    assert_eq!(exchange["total"], 1);
    let (status, _) = api.get("/api/v2/hooks?per_page=101").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn hookgate_routes_show_the_settings_set_order_and_report_status() {
    let api = Api::start("");
    let a = api
        .create("a", "pre-user-registration", PASS_HOOK, true)
        .await;
    let b = api
        .create("b", "pre-user-registration", PASS_HOOK, true)
        .await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let (status, native) = api
        .patch(
            &format!("/api/hookgate/hooks/{a}"),
            json!({ "clients": ["spa"], "timeout_ms": 500, "on_error": "allow" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{native}");
    assert_eq!(native["clients"], json!(["spa"]));
    assert_eq!(native["timeout_ms"], 500);
    assert_eq!(native["on_error"], "allow");
    assert_eq!(native["file"], "pre-user-registration/a.js");
    assert_eq!(native["kind"], "hook");
    // The Auth0 route keeps its strict shape.
    let (status, _) = api
        .patch(&format!("/api/v2/hooks/{a}"), json!({ "clients": ["spa"] }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, order) = api
        .post(
            "/api/hookgate/hooks/order",
            json!({ "triggerId": "pre-user-registration", "ids": [b, a] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    let ids: Vec<&str> = order
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [b, a]);
    let (_, list) = api.get("/api/hookgate/hooks").await;
    assert_eq!(list[0]["id"], b);
    assert_eq!(list[0]["order"], 0);
    assert_eq!(list[1]["order"], 1);

    let (status, s) = api.get("/api/hookgate/status").await;
    assert_eq!(status, StatusCode::OK);
    assert!(s["reload"]["generation"].as_u64().unwrap() > 1, "{s}");
    assert_eq!(s["upstream"]["reachable"], true);

    // A dependency that is not installed is reported (hookgate installs nothing).
    let (status, _) = api
        .patch(
            &format!("/api/v2/hooks/{b}"),
            json!({ "dependencies": { "left-pad": "1.3.0" } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, s) = api.get("/api/hookgate/status").await;
    assert_eq!(s["dependency_problems"][0]["id"], b, "{s}");
    let problem = s["dependency_problems"][0]["problems"][0].as_str().unwrap();
    assert!(problem.contains("npm install left-pad@1.3.0"), "{problem}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_hooks_queued_events_become_dead_letters_with_a_reason() {
    let api = Api::start(
        "[outbox]\npath = \"outbox.redb\"\nmax_attempts = 2\nretry_base_ms = 1000\nretry_max_ms = 1000\n",
    );
    // A post hook that fails, so its events stay queued.
    let post = api
        .create(
            "notify",
            "post-user-registration",
            "module.exports = function (user, context, cb) { cb(new Error('the CRM is down')); };\n",
            true,
        )
        .await;
    let (status, body) = api.signup("erin").await;
    assert_eq!(status, 200, "{body}");
    let (status, events) = api.get("/api/hookgate/outbox?state=pending").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        events.as_array().unwrap().len(),
        1,
        "{events}\n{}",
        api.hg.log()
    );
    let (status, _) = api
        .delete(
            &format!("/api/v2/hooks/{}", post["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Nothing is delivered without its hook: it ends as a dead letter saying why.
    let deadline = Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let (_, dead) = api.get("/api/hookgate/outbox?state=dead").await;
        if dead.as_array().is_some_and(|d| !d.is_empty()) {
            break dead;
        }
        assert!(
            Instant::now() < deadline,
            "no dead letter: {}",
            api.hg.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reason = dead[0]["event"]["last_error"].as_str().unwrap();
    assert!(reason.contains("deleted or disabled"), "{reason}");
    let seq = dead[0]["seq"].as_u64().unwrap();
    // Retry puts it back; drop deletes it; an unknown one is 404.
    let (status, _) = api
        .post(&format!("/api/hookgate/outbox/{seq}/retry"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .delete(&format!("/api/hookgate/outbox/{seq}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api
        .delete(&format!("/api/hookgate/outbox/{}", seq + 1000), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_over_its_rate_gets_429_with_the_rate_limit_headers() {
    // Api::start sets a generous rate; this hookgate's API has a small one.
    let upstream = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token-all"), ALL).unwrap();
    let port = free_port();
    let hg = Hookgate::start_in(
        dir,
        &upstream.address(),
        "",
        "",
        &format!(
            "[admin]\napi_listen = \"127.0.0.1:{port}\"\nrate_limit_per_sec = 1\nrate_limit_burst = 2\n\
             [[admin.token]]\nname = \"all\"\ntoken = {{ file = \"token-all\" }}\nscopes = [\"read:hooks\"]\n"
        ),
    );
    let addr = format!("127.0.0.1:{port}");
    wait_for(
        "the management API to listen",
        Duration::from_secs(20),
        || TcpStream::connect(&addr).is_ok(),
    );
    let pem = std::fs::read(hg.dir.path().join(".hookgate/admin-tls.crt")).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}/api/v2/hooks");
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..4 {
        let resp = client.get(&url).bearer_auth(ALL).send().await.unwrap();
        statuses.push(resp.status().as_u16());
        assert!(resp.headers().contains_key("x-ratelimit-limit"));
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(resp);
            break;
        }
    }
    let resp = limited.unwrap_or_else(|| panic!("never limited: {statuses:?}"));
    let h = resp.headers();
    assert_eq!(h["x-ratelimit-limit"], "2");
    assert_eq!(h["x-ratelimit-remaining"], "0");
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert!(h["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse::<u64>()
        .is_ok());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["statusCode"], 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_token_configured_the_api_is_not_started() {
    let upstream = Upstream::start();
    let port = free_port();
    let hg = Hookgate::start(
        &upstream.address(),
        "",
        "",
        &format!("[admin]\napi_listen = \"127.0.0.1:{port}\"\n"),
    );
    // hookgate is up (both listeners answer) and says why the API is not.
    wait_for("the log line", Duration::from_secs(10), || {
        hg.log().contains("management API is not started")
    });
    assert!(TcpStream::connect(format!("127.0.0.1:{port}")).is_err());
    assert!(!hg.dir.path().join(".hookgate").exists());
}
