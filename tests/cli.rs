//! The command line as users meet it: check, new, test, keys.

mod common;

use common::hookgate::run_cli;
use serde_json::Value;

#[test]
fn check_compiles_hooks_and_names_the_broken_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(
        hooks.join("ok.js"),
        "module.exports = function (c, s, a, ctx, cb) { cb(null, {}); };\n",
    )
    .unwrap();
    std::fs::write(
        hooks.join("broken.js"),
        "module.exports = function (c, s, a, ctx, cb) {\n  cb(null, {;\n};\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("h.toml"),
        "[upstream]\naddress = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let (code, _, err) = run_cli(&["check", "--config", "h.toml"], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("broken.js:2:"), "{err}");
    assert!(!err.contains("ok.js"), "{err}");

    std::fs::remove_file(hooks.join("broken.js")).unwrap();
    let (code, out, err) = run_cli(&["check", "--config", "h.toml"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 hook(s) compiled"), "{out}");
}

#[test]
fn check_reports_a_missing_signing_key_with_the_command_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("hooks")).unwrap();
    std::fs::write(
        dir.path().join("h.toml"),
        "[upstream]\naddress = \"127.0.0.1:1\"\n[token]\nsigning_key = \"keys/k.pem\"\n",
    )
    .unwrap();
    let (code, _, err) = run_cli(&["check", "--config", "h.toml"], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("hookgate keys generate --out"), "{err}");

    let (code, out, err) = run_cli(
        &["keys", "generate", "--alg", "EdDSA", "--out", "keys/k.pem"],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("EdDSA, kid "), "{out}");
    let (code, _, err) = run_cli(&["check", "--config", "h.toml"], dir.path());
    assert_eq!(code, 0, "{err}");
    // A key is never overwritten.
    let (code, _, err) = run_cli(&["keys", "generate", "--out", "keys/k.pem"], dir.path());
    assert_ne!(code, 0);
    assert!(err.contains("will not overwrite"), "{err}");
}

#[test]
fn new_writes_the_starter_and_test_runs_it_like_auth0s_runner() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run_cli(&["new", "credentials-exchange", "my-hook"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("hooks/credentials-exchange/my-hook.js"),
        "{out}"
    );
    let file = dir.path().join("hooks/credentials-exchange/my-hook.js");
    let before = std::fs::read_to_string(&file).unwrap();

    let payload = dir.path().join("payload.json");
    std::fs::write(&payload, r#"{"scope": ["read:users"]}"#).unwrap();
    let (code, out, err) = run_cli(
        &[
            "test",
            "hooks/credentials-exchange/my-hook.js",
            "--payload",
            "payload.json",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let result: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        result["scope"],
        serde_json::json!(["read:users"]),
        "the starter copies scope in"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        before,
        "test never touches the file"
    );

    let (code, _, err) = run_cli(&["new", "credentials-exchange", "my-hook"], dir.path());
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = run_cli(&["new", "credential-exchange", "x"], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("credentials-exchange"), "{err}");
}

/// One HTTP request answered `200 ok` on 127.0.0.1:0, in a thread; the request's text comes
/// back on the channel.
fn one_shot_server() -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = sock.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if let Some(i) = text.find("\r\n\r\n") {
                let len = text[..i]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if buf.len() >= i + 4 + len {
                    break;
                }
            }
        }
        let _ =
            sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    (port, rx)
}

#[test]
fn test_with_a_config_redirects_egress_waits_for_fire_and_forget_requests_and_logs_each() {
    let (port, seen) = one_shot_server();
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/post-user-registration");
    std::fs::create_dir_all(&hooks).unwrap();
    // Notifies Slack without waiting, then calls back at once: a common Auth0 pattern.
    std::fs::write(
        hooks.join("notify.js"),
        "module.exports = function (user, context, cb) {\n  fetch('https://hooks.slack.com/services/T0/B0/x', { method: 'POST', body: JSON.stringify({ text: 'New user: ' + user.email }) });\n  cb();\n};\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("h.toml"),
        format!("[upstream]\naddress = \"127.0.0.1:1\"\n[hooks.egress.redirect]\n\"hooks.slack.com\" = \"http://127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let (code, out, err) = run_cli(
        &[
            "test",
            "--config",
            "h.toml",
            "hooks/post-user-registration/notify.js",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "null");
    let request = seen
        .recv_timeout(std::time::Duration::from_secs(1))
        .expect("hookgate test exited before the hook's request went out");
    assert!(
        request.starts_with("POST /services/T0/B0/x HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("\r\nhost: hooks.slack.com\r\n"),
        "{request}"
    );
    assert!(
        request.ends_with("{\"text\":\"New user: user1@foo.com\"}"),
        "{request}"
    );
    let log = err
        .lines()
        .find(|l| l.contains("outbound request"))
        .unwrap_or_else(|| panic!("no egress log line in: {err}"));
    for part in [
        "post-user-registration/notify",
        "POST",
        "hooks.slack.com",
        "200",
    ] {
        assert!(log.contains(part), "{part} missing from: {log}");
    }
}
