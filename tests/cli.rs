//! The command line as users meet it: check, new, test, keys, and the management commands
//! (hooks, hooks secrets, logs, outbox) on the files and through a running hookgate's API.

mod common;

use std::path::Path;

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

/// `hookgate <args>` with extra environment variables and `stdin` as its standard input.
fn run_cli_with(
    args: &[&str],
    cwd: &Path,
    env: &[(&str, &str)],
    stdin: &str,
) -> (i32, String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(args)
        .current_dir(cwd)
        .env_remove("HOOKGATE_TOKEN")
        .env_remove("HOOKGATE_CONFIG")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const PASS: &str = "module.exports = function (c, s, a, ctx, cb) { cb(null, {}); };\n";

/// A folder with two credentials-exchange hooks, `first` and `second` (which has an entry and a
/// comment above it).
fn two_hooks(dir: &Path, extra_config: &str) {
    let hooks = dir.join("hooks/credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("first.js"), PASS).unwrap();
    std::fs::write(hooks.join("second.js"), PASS).unwrap();
    std::fs::write(
        dir.join("h.toml"),
        format!(
            "[upstream]\naddress = \"127.0.0.1:1\"\n{extra_config}\n# Reviewed in git: this comment stays.\n[[hooks.hook]]\nfile = \"credentials-exchange/second.js\"\norder = 5\n"
        ),
    )
    .unwrap();
}

#[test]
fn hooks_commands_edit_the_files_when_no_hookgate_runs() {
    let dir = tempfile::tempdir().unwrap();
    two_hooks(dir.path(), "");
    let d = dir.path();
    let cli = |args: &[&str]| run_cli_with(args, d, &[], "");

    let (code, out, err) = cli(&["hooks", "-c", "h.toml", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("from the files of h.toml"), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("ID"), "{out}");
    assert!(
        lines[1].contains("credentials-exchange  first   yes      0"),
        "{out}"
    );
    assert!(
        lines[2].contains("credentials-exchange  second  yes      5"),
        "{out}"
    );

    let (code, out, err) = cli(&["hooks", "-c", "h.toml", "disable", "first"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("disabled credentials-exchange/first (hk-"),
        "{out}"
    );
    assert!(out.contains("written to the files"), "{out}");
    let (_, out, _) = cli(&[
        "hooks",
        "-c",
        "h.toml",
        "disable",
        "credentials-exchange/first",
    ]);
    assert!(out.contains("is already disabled"), "{out}");

    // Order: second first, then first.
    let (code, out, err) = cli(&["hooks", "-c", "h.toml", "order", "second", "first"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1. credentials-exchange/second"), "{out}");
    assert!(out.contains("2. credentials-exchange/first"), "{out}");
    assert!(out.contains("(disabled)"), "{out}");

    // Secrets: a value as an argument, then replaced from standard input.
    let (code, out, err) = cli(&[
        "hooks", "-c", "h.toml", "secrets", "set", "second", "API_KEY", "v1",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("added secret API_KEY of credentials-exchange/second"),
        "{out}"
    );
    let (code, out, err) = run_cli_with(
        &[
            "hooks", "-c", "h.toml", "secrets", "set", "second", "API_KEY",
        ],
        d,
        &[],
        "v2-from-stdin\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("replaced secret API_KEY"), "{out}");
    let (code, out, err) = cli(&["hooks", "-c", "h.toml", "secrets", "list", "second"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "API_KEY");
    let config = std::fs::read_to_string(d.join("h.toml")).unwrap();
    assert!(
        config.contains("# Reviewed in git: this comment stays."),
        "{config}"
    );
    assert!(
        !config.contains("v2-from-stdin"),
        "values never go in the config: {config}"
    );
    let stored = walk(&d.join("secrets"));
    assert_eq!(stored.len(), 1, "{stored:?}");
    // The stdin's line ending is not part of the value (the file may end in one: secret files
    // lose one when read).
    let value = std::fs::read_to_string(&stored[0]).unwrap();
    assert_eq!(value.strip_suffix('\n').unwrap_or(&value), "v2-from-stdin");

    let (code, _, err) = cli(&["hooks", "-c", "h.toml", "secrets", "rm", "second", "NOPE"]);
    assert_eq!(code, 1);
    assert!(err.contains("has no secret NOPE; it has: API_KEY"), "{err}");
    let (code, out, err) = cli(&[
        "hooks", "-c", "h.toml", "secrets", "rm", "second", "API_KEY",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("removed secret(s) API_KEY"), "{out}");
    let (_, out, _) = cli(&["hooks", "-c", "h.toml", "secrets", "list", "second"]);
    assert!(out.contains("has no secrets"), "{out}");

    let (code, out, err) = cli(&["hooks", "-c", "h.toml", "rm", "first"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("deleted credentials-exchange/first"),
        "{out}"
    );
    assert!(!d.join("hooks/credentials-exchange/first.js").exists());

    let (code, out, err) = cli(&["hooks", "-c", "h.toml", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let all: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    assert_eq!(all[0]["name"], "second");
    assert_eq!(all[0]["order"], 0);

    let (code, out, err) = cli(&["hooks", "-c", "h.toml", "disable", "second"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("disabled credentials-exchange/second"),
        "{out}"
    );
    let (code, out, err) = cli(&["hooks", "-c", "h.toml", "enable", "second"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("enabled credentials-exchange/second"),
        "{out}"
    );
    assert!(!std::fs::read_to_string(d.join("h.toml"))
        .unwrap()
        .contains("enabled = false"));

    let (code, _, err) = cli(&["hooks", "-c", "h.toml", "enable", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("no hook `nope`"), "{err}");
    assert!(err.contains("hookgate hooks list"), "{err}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn logs_without_a_running_hookgate_says_what_to_start() {
    let dir = tempfile::tempdir().unwrap();
    two_hooks(dir.path(), "");
    let (code, _, err) = run_cli_with(&["logs", "-c", "h.toml"], dir.path(), &[], "");
    assert_eq!(code, 1);
    assert!(
        err.contains("starts none: add an [[admin.token]] with the scope read:logs"),
        "{err}"
    );

    std::fs::write(dir.path().join("tok"), "t0123456789").unwrap();
    let port = common::hookgate::free_port();
    two_hooks(
        dir.path(),
        &format!("[admin]\napi_listen = \"127.0.0.1:{port}\"\n[[admin.token]]\nname = \"ops\"\ntoken = {{ file = \"tok\" }}\nscopes = [\"read:logs\"]\n"),
    );
    let (code, _, err) = run_cli_with(&["logs", "-c", "h.toml", "--follow"], dir.path(), &[], "");
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("none answers at 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.contains("hookgate serve --config h.toml"), "{err}");
}

const ADMIN_TOKEN: &str = "cli-admin-token-0123456789";
const READER_TOKEN: &str = "cli-reader-token-0123456789";

/// A running hookgate with the management API, the two hooks of [`two_hooks`], an `ops` token
/// with every scope (read from a file) and a `reader` one.
fn running_with_api() -> (common::hookgate::Hookgate, common::upstream::Upstream) {
    let upstream = common::upstream::Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("first.js"), PASS).unwrap();
    std::fs::write(hooks.join("second.js"), PASS).unwrap();
    std::fs::write(dir.path().join("tok-ops"), format!("{ADMIN_TOKEN}\n")).unwrap();
    let port = common::hookgate::free_port();
    let config = format!(
        "[admin]\napi_listen = \"127.0.0.1:{port}\"\n\
         [[admin.token]]\nname = \"ops\"\ntoken = {{ file = \"tok-ops\" }}\n\
         scopes = [\"read:hooks\", \"create:hooks\", \"update:hooks\", \"delete:hooks\", \"read:outbox\", \"update:outbox\", \"read:logs\"]\n\
         [[admin.token]]\nname = \"reader\"\ntoken = {{ env = \"HOOKGATE_TEST_READER\" }}\nscopes = [\"read:hooks\"]\n\
         [[hooks.hook]]\nfile = \"credentials-exchange/second.js\"\norder = 5\n"
    );
    // The reader token's variable is set for hookgate only: the command line cannot read it.
    std::env::set_var("HOOKGATE_TEST_READER", READER_TOKEN);
    let hg = common::hookgate::Hookgate::start_in(dir, &upstream.address(), "", "", &config);
    common::wait_for(
        "the management API",
        std::time::Duration::from_secs(20),
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
    (hg, upstream)
}

#[test]
fn hooks_and_outbox_commands_go_through_the_running_hookgates_api() {
    let (hg, _upstream) = running_with_api();
    let d = hg.dir.path();
    let cli = |args: &[&str]| run_cli_with(args, d, &[], "");

    let (code, out, err) = cli(&["hooks", "-c", "hookgate.toml", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("from the running hookgate at https://127.0.0.1:"),
        "{err}"
    );
    assert!(out.contains("first"), "{out}");

    let (code, out, err) = cli(&["hooks", "-c", "hookgate.toml", "disable", "first"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("applied by the running hookgate at https://127.0.0.1:"),
        "{out}"
    );
    // The running process wrote it (the store of record is still the files).
    let config = std::fs::read_to_string(hg.config_path()).unwrap();
    assert!(config.contains("enabled = false"), "{config}");

    let (code, out, err) = cli(&["hooks", "-c", "hookgate.toml", "enable", "hk-wrong"]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("no hook `hk-wrong`"), "{err}");
    let (code, out, err) = cli(&["hooks", "-c", "hookgate.toml", "enable", "first"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("enabled credentials-exchange/first"),
        "{out}"
    );
    let (code, _, err) = cli(&["hooks", "-c", "hookgate.toml", "disable", "first"]);
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = cli(&["hooks", "-c", "hookgate.toml", "order", "second"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1. credentials-exchange/second"), "{out}");
    assert!(out.contains("2. credentials-exchange/first"), "{out}");

    let (code, out, err) = run_cli_with(
        &[
            "hooks",
            "-c",
            "hookgate.toml",
            "secrets",
            "set",
            "first",
            "TOKEN",
        ],
        d,
        &[],
        "from-stdin",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("added secret TOKEN"), "{out}");
    let (code, out, err) = cli(&[
        "hooks",
        "-c",
        "hookgate.toml",
        "secrets",
        "set",
        "first",
        "TOKEN",
        "v2",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("replaced secret TOKEN"), "{out}");
    let (_, out, _) = cli(&["hooks", "-c", "hookgate.toml", "secrets", "list", "first"]);
    assert_eq!(out.trim(), "TOKEN");
    let (code, _, err) = cli(&[
        "hooks",
        "-c",
        "hookgate.toml",
        "secrets",
        "rm",
        "first",
        "TOKEN",
    ]);
    assert_eq!(code, 0, "{err}");

    // A token hookgate does not know, and one without the scope: errors that say what to do.
    let (code, _, err) = run_cli_with(
        &["hooks", "-c", "hookgate.toml", "list"],
        d,
        &[("HOOKGATE_TOKEN", "not-a-token")],
        "",
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("refused the token in HOOKGATE_TOKEN (Invalid token)"),
        "{err}"
    );
    let (code, _, err) = run_cli_with(
        &["hooks", "-c", "hookgate.toml", "enable", "first"],
        d,
        &[("HOOKGATE_TOKEN", READER_TOKEN)],
        "",
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("may not do this (Insufficient scope, expected any of: update:hooks)"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let (code, out, err) = cli(&["hooks", "-c", "hookgate.toml", "rm", "first"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("deleted credentials-exchange/first"),
        "{out}"
    );
    assert!(!d.join("hooks/credentials-exchange/first.js").exists());

    // The outbox the running hookgate holds open: through the API, not the file.
    let (code, out, err) = cli(&["outbox", "-c", "hookgate.toml", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("0 pending, 0 dead (the running hookgate at https://127.0.0.1:"),
        "{out}"
    );
    let (code, _, err) = cli(&["outbox", "-c", "hookgate.toml", "retry", "99"]);
    assert_eq!(code, 1);
    assert!(err.contains("no outbox event 99"), "{err}");
    let (code, _, err) = cli(&["outbox", "-c", "hookgate.toml", "drop", "99"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no outbox event 99 (0 event(s) done before it)"),
        "{err}"
    );
    let (code, out, err) = cli(&["outbox", "-c", "hookgate.toml", "retry", "--all-dead"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("0 event(s) due now"), "{out}");
}

#[test]
fn a_running_hookgate_whose_token_this_shell_cannot_read_is_a_clear_error() {
    let (hg, _upstream) = running_with_api();
    // Only the reader token (from an environment variable this shell lacks) has read:hooks alone;
    // make the ops token unreadable too.
    std::fs::remove_file(hg.dir.path().join("tok-ops")).unwrap();
    let (code, _, err) = run_cli_with(
        &["hooks", "-c", "hookgate.toml", "list"],
        hg.dir.path(),
        &[("HOOKGATE_TEST_READER", "")],
        "",
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot read a token for it"), "{err}");
    assert!(err.contains("or set HOOKGATE_TOKEN"), "{err}");
}

/// A signup through `hg`'s signup route (the Rust upstream answers it).
fn signup(hg: &common::hookgate::Hookgate, email: &str) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        reqwest::Client::new()
            .post(hg.url("/dbconnections/signup"))
            .json(&serde_json::json!({
                "client_id": "spa", "email": email, "password": "hunter2-secret",
                "connection": "Username-Password-Authentication",
            }))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

/// Through the runs routes (`GET /api/hookgate/runs`, `/api/hookgate/runs/stream`) of the
/// management API.
#[test]
fn logs_prints_a_hooks_runs_and_follows_new_ones_live() {
    use std::io::BufRead;
    let upstream = common::upstream::Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/pre-user-registration");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(
        hooks.join("greeter.js"),
        "module.exports = function (user, context, cb) {\n  console.log('signup of ' + user.email);\n  cb(null, { user: {} });\n};\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("tok"), ADMIN_TOKEN).unwrap();
    let port = common::hookgate::free_port();
    let config = format!(
        "[[route]]\nname = \"signup\"\npath = \"/dbconnections/signup\"\npoint = \"pre-user-registration\"\n\
         [route.signup]\nuser_id = \"/body_sha256\"\n\
         [admin]\napi_listen = \"127.0.0.1:{port}\"\n\
         [[admin.token]]\nname = \"ops\"\ntoken = {{ file = \"tok\" }}\nscopes = [\"read:hooks\", \"read:logs\"]\n"
    );
    let hg = common::hookgate::Hookgate::start_in(dir, &upstream.address(), "", "", &config);
    common::wait_for(
        "the management API",
        std::time::Duration::from_secs(20),
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
    let d = hg.dir.path();
    assert_eq!(signup(&hg, "first@example.com"), 200, "{}", hg.log());

    let (code, out, err) = run_cli_with(
        &["logs", "-c", "hookgate.toml", "--hook", "greeter"],
        d,
        &[],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pre-user-registration/greeter  ok"), "{out}");
    assert!(out.contains("info: signup of first@example.com"), "{out}");

    // --follow --json: the earlier record first, then a new one as it happens.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args([
            "logs",
            "-c",
            "hookgate.toml",
            "--follow",
            "--json",
            "--hook",
            "pre-user-registration/greeter",
        ])
        .current_dir(d)
        .env_remove("HOOKGATE_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let first: Value =
        serde_json::from_str(&rx.recv_timeout(std::time::Duration::from_secs(20)).unwrap())
            .unwrap();
    assert_eq!(first["hook"], "pre-user-registration/greeter");
    assert_eq!(signup(&hg, "second@example.com"), 200);
    let second: Value =
        serde_json::from_str(&rx.recv_timeout(std::time::Duration::from_secs(20)).unwrap())
            .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        second["console"][0]["message"], "signup of second@example.com",
        "{second}"
    );
    assert!(second["id"].as_u64() > first["id"].as_u64());
}
