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
