//! Generation::load: settings, secrets, ordering, targeting, and every problem reported at once.

mod engine_support;

use engine_support::*;
use hookgate::config::{OnError, Trigger};
use hookgate::hooks::Generation;
use serde_json::json;
use std::time::Duration;

const CB: &str = "module.exports = function () { arguments[arguments.length - 1](); };";

#[test]
fn hooks_run_in_order_then_file_name_and_respect_enabled_and_targeting() {
    let dir = hooks_dir(&[
        ("credentials-exchange/b.js", CB),
        ("credentials-exchange/a.js", CB),
        ("credentials-exchange/first.js", CB),
        ("credentials-exchange/off.js", CB),
        ("credentials-exchange/only-c1.js", CB),
        ("credentials-exchange/notes.txt", "not a hook"),
        ("pre-user-registration/signup-route.js", CB),
    ]);
    std::fs::write(dir.path().join("secret.txt"), "s3cret\n").unwrap();
    let cfg = config(
        r#"
        timeout_ms = 1500
        [[hook]]
        file = "credentials-exchange/first.js"
        order = -1
        timeout_ms = 250
        on_error = "allow"
        secrets = { KEY = { file = "secret.txt" } }
        [[hook]]
        file = "credentials-exchange/off.js"
        enabled = false
        [[hook]]
        file = "credentials-exchange/only-c1.js"
        order = 5
        clients = ["c1"]
        [[hook]]
        file = "pre-user-registration/signup-route.js"
        routes = ["/dbconnections/signup"]
        "#,
    );
    let g = load(dir.path(), &cfg);
    let names = |client: Option<&str>| {
        g.hooks_for(Trigger::CredentialsExchange, client, None)
            .iter()
            .map(|h| h.name.clone())
            .collect::<Vec<_>>()
    };
    // An unknown client (none, or an empty id) never matches a client list.
    for unknown in [None, Some("")] {
        assert_eq!(
            names(unknown),
            [
                "credentials-exchange/first",
                "credentials-exchange/a",
                "credentials-exchange/b"
            ]
        );
    }
    assert_eq!(
        names(Some("c2")),
        [
            "credentials-exchange/first",
            "credentials-exchange/a",
            "credentials-exchange/b"
        ]
    );
    assert_eq!(names(Some("c1")).len(), 4);
    assert_eq!(g.disabled, ["credentials-exchange/off"]);
    assert_eq!(
        g.hooks_for(Trigger::PreUserRegistration, None, Some("/other"))
            .len(),
        0
    );
    assert_eq!(
        g.hooks_for(
            Trigger::PreUserRegistration,
            None,
            Some("/dbconnections/signup")
        )
        .len(),
        1
    );
    assert!(g
        .hooks_for(Trigger::SendPhoneMessage, None, None)
        .is_empty());

    let first = hook(&g, "credentials-exchange/first");
    assert_eq!(first.timeout, Duration::from_millis(250));
    assert_eq!(first.on_error, OnError::Allow);
    assert_eq!(first.webtask(), json!({ "secrets": { "KEY": "s3cret" } }));
    let a = hook(&g, "credentials-exchange/a");
    assert_eq!(a.timeout, Duration::from_millis(1500));
    assert_eq!(a.on_error, OnError::Deny);
    assert_eq!(a.webtask(), json!({ "secrets": {} }));
}

#[test]
fn every_settings_problem_is_reported_with_its_key() {
    let dir = hooks_dir(&[
        ("credentials-exchange/a.js", CB),
        (
            "credentials-exchange/bad.js",
            "module.exports = function ( {",
        ),
    ]);
    let cfg = config(
        r#"
        [[hook]]
        file = "credentials-exchange/a.js"
        secrets = { TOKEN = { env = "HOOKGATE_TEST_SURELY_UNSET_VAR" }, KEY = { file = "/nonexistent/key" } }
        [[hook]]
        file = "credentials-exchange/missing.js"
        "#,
    );
    let err = Generation::load(&cfg, dir.path()).unwrap_err();
    let text = err.to_string();
    assert_eq!(err.problems.len(), 4, "{text}");
    assert!(
        text.contains(
            "secrets.TOKEN: environment variable HOOKGATE_TEST_SURELY_UNSET_VAR is not set"
        ),
        "{text}"
    );
    assert!(
        text.contains("secrets.KEY: cannot read /nonexistent/key"),
        "{text}"
    );
    assert!(
        text.contains(r#"file = "credentials-exchange/missing.js": no such hook file"#),
        "{text}"
    );
    assert!(
        text.contains("bad.js:1:") && text.contains("SyntaxError"),
        "{text}"
    );
}

#[test]
fn a_missing_hooks_folder_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config("");
    cfg.dir = "does-not-exist".into();
    assert!(Generation::load(&cfg, dir.path())
        .unwrap_err()
        .to_string()
        .contains("is not a folder"));
}
