//! A new user's first minutes, on a copy of the repository's own `config/` and `hooks/`:
//! `hookgate check` lists every problem at once, each with what to set, and passes once they
//! are done; and the text log a supervisor or file receives carries no colour codes.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::hookgate::free_port;

/// The variables the example configuration reads; unset for these tests whatever the caller has.
const EXAMPLE_VARS: [&str; 3] = ["SMS_WEBHOOK_SECRET", "NOTIFY_URL", "SMS_API_URL"];

/// A fresh clone's config/ and hooks/ (no keys: config/keys/ is not in git).
fn fresh_copy() -> tempfile::TempDir {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::copy(
        repo.join("config/hookgate.toml"),
        dir.path().join("config/hookgate.toml"),
    )
    .unwrap();
    copy_tree(&repo.join("hooks"), &dir.path().join("hooks"));
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn hookgate(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hookgate"));
    c.args(args).current_dir(dir);
    for var in EXAMPLE_VARS
        .iter()
        .chain(&["HOOKGATE_CONFIG", "HOOKGATE_UPSTREAM", "HOOKGATE_LISTEN"])
        .chain(&["HOOKGATE_ADMIN_LISTEN", "HOOKGATE_API_LISTEN", "RUST_LOG"])
    {
        c.env_remove(var);
    }
    c.envs(env.iter().copied());
    c
}

fn check(dir: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let out = hookgate(dir, &["check", "--config", "config/hookgate.toml"], env)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_on_a_fresh_clone_lists_every_problem_each_with_its_fix_then_passes() {
    let dir = fresh_copy();
    let (code, _, err) = check(dir.path(), &[]);
    assert_eq!(code, 2, "{err}");
    // One line per problem, every one of them at once (the unset webhook secret does not hide
    // the missing key files), and each line says what to do.
    let expect = [
        ("SMS_WEBHOOK_SECRET", "export SMS_WEBHOOK_SECRET="),
        ("hookgate.pem", "hookgate keys generate"),
        ("NOTIFY_URL", "export NOTIFY_URL="),
        ("SMS_API_URL", "export SMS_API_URL="),
        ("sms-api-key", "write the secret into that file"),
    ];
    let lines: Vec<&str> = err.lines().collect();
    for (problem, fix) in expect {
        let line = lines
            .iter()
            .find(|l| l.contains(problem))
            .unwrap_or_else(|| panic!("no line names {problem}:\n{err}"));
        assert!(
            line.contains(fix),
            "the line for {problem} says `{fix}`: {line}"
        );
    }
    let problems = lines.len() - 1;
    assert!(
        lines
            .last()
            .unwrap()
            .contains(&format!("{problems} problem(s)")),
        "the summary counts the lines above it:\n{err}"
    );

    // Doing what the lines say makes the check pass.
    let keys = hookgate(
        dir.path(),
        &[
            "keys",
            "generate",
            "--alg",
            "ES256",
            "--out",
            "config/keys/hookgate.pem",
        ],
        &[],
    )
    .output()
    .unwrap();
    assert!(keys.status.success(), "{keys:?}");
    std::fs::write(dir.path().join("config/keys/sms-api-key"), "k").unwrap();
    let env = [
        ("SMS_WEBHOOK_SECRET", "s"),
        ("NOTIFY_URL", "http://127.0.0.1:9/n"),
        ("SMS_API_URL", "http://127.0.0.1:9/s"),
    ];
    let (code, out, err) = check(dir.path(), &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("config/hookgate.toml: ok"), "{out}");
}

#[test]
fn text_logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let dir = fresh_copy();
    let keys = hookgate(
        dir.path(),
        &["keys", "generate", "--out", "config/keys/hookgate.pem"],
        &[],
    )
    .output()
    .unwrap();
    assert!(keys.status.success(), "{keys:?}");
    std::fs::write(dir.path().join("config/keys/sms-api-key"), "k").unwrap();
    std::fs::write(dir.path().join("config/keys/admin-token"), "t-0123456789").unwrap();
    let admin = format!("127.0.0.1:{}", free_port());
    let api = format!("127.0.0.1:{}", free_port());
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = hookgate(
        dir.path(),
        &["serve", "--config", "config/hookgate.toml"],
        &[
            ("SMS_WEBHOOK_SECRET", "s"),
            ("NOTIFY_URL", "http://127.0.0.1:9/n"),
            ("SMS_API_URL", "http://127.0.0.1:9/s"),
            ("HOOKGATE_UPSTREAM", "127.0.0.1:9"),
            ("HOOKGATE_LISTEN", &listen),
            ("HOOKGATE_ADMIN_LISTEN", &admin),
            ("HOOKGATE_API_LISTEN", &api),
            ("RUST_LOG", "info"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    common::wait_for("hookgate listening", Duration::from_secs(20), || {
        std::net::TcpStream::connect(&admin).is_ok() || child.try_wait().unwrap().is_some()
    });
    // One more line through the proxy's own logging: a request to an unreachable upstream.
    let _ = std::net::TcpStream::connect(&listen).map(|mut s| {
        use std::io::{Read, Write};
        let _ = s.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = s.read_to_end(&mut Vec::new());
    });
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("INFO"), "the log has lines: {log}");
    assert!(
        !log.contains("\x1b["),
        "ANSI escape codes in a piped log:\n{log:?}"
    );
}
