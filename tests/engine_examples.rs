//! The example hooks in `hooks/` (one per trigger), the seed's documented responses through
//! `hookgate test` (`cli::run_test`), and `hookgate new`.

mod engine_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use engine_support::*;
use hookgate::cli;
use hookgate::config::{HooksConfig, Trigger};
use hookgate::engine::Engine;
use hookgate::hooks::Generation;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

fn repo_hooks() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks")
}

/// The seed's "Default response" of pre-user-registration.
fn seed_default_response() -> Value {
    json!({
      "user": {
        "tenant": "my-tenant", "username": "user1", "password": "xxxxxxx", "email": "user1@foo.com",
        "emailVerified": false, "phoneNumber": "1-000-000-0000", "phoneNumberVerified": false,
        "user_metadata": { "hobby": "surfing" }, "app_metadata": { "plan": "full" }
      }
    })
}

#[test]
fn seed_starter_code_gives_the_documented_default_response() {
    let dir = tempfile::tempdir().unwrap();
    let file = cli::write_starter(dir.path(), Trigger::PreUserRegistration, "starter").unwrap();
    let before = std::fs::read(&file).unwrap();
    assert_eq!(cli::run_test(&file, None).unwrap(), seed_default_response());
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "hookgate test must not touch the file"
    );
}

#[test]
fn seed_add_metadata_sample_gives_the_documented_response() {
    let r = cli::run_test(
        &repo_hooks().join("pre-user-registration/add-metadata.js"),
        None,
    )
    .unwrap();
    assert_eq!(
        r,
        json!({ "user": { "user_metadata": { "foo": "bar" }, "app_metadata": { "vip": true, "score": 7 } } })
    );
}

#[test]
fn run_test_takes_a_payload_keyed_by_argument_name() {
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("payload.json");
    std::fs::write(&payload, r#"{ "client": { "id": "c1", "name": "n", "tenant": "t", "metadata": { "tier": "gold", "readonly": "true" } }, "scope": ["read:a", "write:a"] }"#).unwrap();
    let r = cli::run_test(
        &repo_hooks().join("credentials-exchange/add-claims.js"),
        Some(&payload),
    )
    .unwrap();
    assert_eq!(
        r,
        json!({ "scope": ["read:a", "read:profile"], "https://hookgate.example/tier": "gold" })
    );
}

#[test]
fn run_test_reports_a_hook_error() {
    let dir = hooks_dir(&[("pre-user-registration/deny.js", "module.exports = function (user, context, cb) { cb(new PreUserRegistrationError('blocked', 'Not allowed')); };")]);
    let err = cli::run_test(&dir.path().join("pre-user-registration/deny.js"), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("PreUserRegistrationError: blocked") && err.contains("Not allowed"),
        "{err}"
    );
}

#[test]
fn run_test_needs_a_trigger_for_a_file_outside_a_trigger_folder() {
    let dir = hooks_dir(&[("loose.js", "module.exports = function (recipient, text, context, cb) { cb(null, { to: recipient }); };")]);
    let file = dir.path().join("loose.js");
    assert!(cli::run_test(&file, None).is_err());
    assert_eq!(
        cli::run_test_as(
            &file,
            None,
            Some(Trigger::SendPhoneMessage),
            &Default::default()
        )
        .unwrap(),
        json!({ "to": "1-808-555-5555" })
    );
}

#[test]
fn every_starter_runs_with_its_default_payload() {
    let dir = tempfile::tempdir().unwrap();
    for trigger in Trigger::all() {
        let file = cli::write_starter(dir.path(), trigger, "starter.js").unwrap();
        assert_eq!(file, dir.path().join(trigger.id()).join("starter.js"));
        let r = cli::run_test(&file, None).unwrap();
        let expected = match trigger {
            Trigger::CredentialsExchange => json!({ "scope": ["read:connections"] }),
            Trigger::PreUserRegistration => seed_default_response(),
            Trigger::PostUserRegistration | Trigger::PostChangePassword => Value::Null,
            Trigger::SendPhoneMessage => json!({}),
        };
        assert_eq!(r, expected, "{trigger}");
    }
}

#[test]
fn write_starter_refuses_to_overwrite_and_odd_names() {
    let dir = tempfile::tempdir().unwrap();
    cli::write_starter(dir.path(), Trigger::CredentialsExchange, "x").unwrap();
    let err = cli::write_starter(dir.path(), Trigger::CredentialsExchange, "x")
        .unwrap_err()
        .to_string();
    assert!(err.contains("already exists"), "{err}");
    assert!(cli::write_starter(dir.path(), Trigger::CredentialsExchange, "../escape").is_err());
}

/// A server that answers every request with `{"id":"msg-1"}` and reports requests.
async fn recorder() -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = s.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(i) = text.find("\r\n\r\n") {
                        let len = text[..i]
                            .to_lowercase()
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if buf.len() >= i + 4 + len || n == 0 {
                            let _ = tx.send(text);
                            break;
                        }
                    }
                }
                let body = r#"{"id":"msg-1"}"#;
                let resp = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    (url, rx)
}

#[test]
fn every_example_hook_runs() {
    let rt = rt();
    let (url, mut requests) = rt.block_on(recorder());
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("url"), format!("{url}\n")).unwrap();
    let cfg_text = format!(
        r#"
        workers = 2
        [[hook]]
        file = "post-user-registration/notify.js"
        secrets = {{ NOTIFY_URL = {{ file = "{0}/url" }} }}
        [[hook]]
        file = "post-change-password/notify.js"
        secrets = {{ NOTIFY_URL = {{ file = "{0}/url" }} }}
        [[hook]]
        file = "send-phone-message/send-sms.js"
        secrets = {{ SMS_API_URL = {{ file = "{0}/url" }}, SMS_API_KEY = {{ file = "{0}/url" }} }}
        "#,
        secrets.path().display()
    );
    let mut cfg: HooksConfig = toml::from_str(&cfg_text).unwrap();
    cfg.dir = repo_hooks();
    let generation = Generation::load(&cfg, Path::new("/")).unwrap();
    let engine = Engine::start(&cfg).unwrap();
    let call = |name: &str| {
        let h = hook(&generation, name);
        let mut payload = hookgate::hooks::contract::default_payload(h.trigger);
        payload["context"]["webtask"] = h.webtask();
        let args = hookgate::hooks::contract::argument_names(h.trigger)
            .iter()
            .map(|n| payload[*n].clone())
            .collect();
        rt.block_on(engine.call(&h, args, name))
    };
    let mut next_request = || {
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), requests.recv()).await })
            .unwrap()
            .unwrap()
    };

    assert_eq!(
        call("credentials-exchange/add-claims").unwrap(),
        json!({ "scope": ["read:connections", "read:profile"], "https://hookgate.example/tier": "free" })
    );
    assert_eq!(
        call("pre-user-registration/add-metadata").unwrap()["user"]["app_metadata"],
        json!({ "vip": true, "score": 7 })
    );

    assert_eq!(call("post-user-registration/notify").unwrap(), Value::Null);
    let req = next_request();
    assert!(
        req.starts_with("POST /hook") && req.contains(r#""event":"user.registered""#),
        "{req}"
    );

    assert_eq!(call("post-change-password/notify").unwrap(), Value::Null);
    let req = next_request();
    assert!(req.contains(r#""event":"user.password_changed""#), "{req}");

    assert_eq!(
        call("send-phone-message/send-sms").unwrap(),
        json!({ "MessageID": "msg-1" })
    );
    let req = next_request();
    assert!(
        req.contains(r#""body":"Here is your one time password: 871068""#),
        "{req}"
    );
    assert!(
        req.to_lowercase()
            .contains(&format!("authorization: bearer {url}")),
        "{req}"
    );
}
