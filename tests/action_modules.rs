//! Actions Modules on the real binary: `require("actions:<name>")` loads
//! `<hooks dir>/modules/<name>/` with its own npm dependencies and its own secrets (the global
//! `actions.secrets`, from `[[hooks.module]]`), a module edit is a new generation, and a
//! module name can never reach outside `modules/`.

mod common;

use common::hookgate::{run_cli, Hookgate};
use common::upstream::Upstream;
use common::wait_for;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const SIGNUP_ROUTE: &str = "\
[[route]]\nname = \"signup\"\npath = \"/dbconnections/signup\"\npoint = \"pre-user-registration\"\n[route.signup]\nuser_id = \"/body_sha256\"\n";

/// The module: its own dependency (in its own node_modules) and its own secret.
const GREETER: &str = r#"'use strict';
const shout = require('shout');
exports.greet = (who) => shout(actions.secrets.GREETING + ', ' + who);
exports.sees = () => Object.keys(actions.secrets).sort().join(',');
exports.strict = (function () { return this === undefined; })();
"#;

const ACTION: &str = r#"
const greeter = require('actions:greeter');
exports.onExecutePreUserRegistration = async (event, api) => {
  api.user.setAppMetadata('greeting', greeter.greet(event.user.username));
  api.user.setAppMetadata('module_sees', greeter.sees());
  api.user.setAppMetadata('action_sees', Object.keys(event.secrets).sort().join(','));
  api.user.setAppMetadata('module_strict', greeter.strict);
  api.user.setAppMetadata('global_actions', typeof actions);
};
"#;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn hooks_with_module(dir: &Path) {
    let hooks = dir.join("hooks");
    write(&hooks.join("modules/greeter/index.js"), GREETER);
    write(
        &hooks.join("modules/greeter/node_modules/shout/index.js"),
        "module.exports = (s) => s.toUpperCase();\n",
    );
    write(&hooks.join("pre-user-registration/greet.js"), ACTION);
    write(&dir.join("greeting"), "hello\n");
}

const SETTINGS: &str = "[hooks]\nrescan_secs = 1\n\
    [[hooks.hook]]\nfile = \"pre-user-registration/greet.js\"\n\
    secrets = { ACTION_KEY = { env = \"HOOKGATE_TEST_MODULES_ACTION\" } }\n\
    [[hooks.module]]\nname = \"greeter\"\nsecrets = { GREETING = { file = \"greeting\" } }\n";

async fn signup(hg: &Hookgate) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(hg.url("/dbconnections/signup"))
        .json(&json!({
            "client_id": "spa",
            "email": "ann@example.com",
            "password": "hunter2-secret",
            "connection": "Username-Password-Authentication",
            "username": "ann",
        }))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// The app_metadata the upstream received.
fn sent_app_metadata(answer: &Value) -> Value {
    let sent: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    sent["app_metadata"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_action_uses_a_module_with_its_own_dependency_and_its_own_secrets() {
    let upstream = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    hooks_with_module(dir.path());
    std::env::set_var("HOOKGATE_TEST_MODULES_ACTION", "a-1");
    let hg = Hookgate::start_in(
        dir,
        &upstream.address(),
        "",
        "",
        &format!("{SIGNUP_ROUTE}{SETTINGS}"),
    );
    let (status, answer) = signup(&hg).await;
    assert_eq!(status, 200, "{answer}\n{}", hg.log());
    let m = sent_app_metadata(&answer);
    assert_eq!(m["greeting"], "HELLO, ANN", "{m}");
    assert_eq!(
        m["module_sees"], "GREETING",
        "the module's actions.secrets are its own"
    );
    assert_eq!(
        m["action_sees"], "ACTION_KEY",
        "the Action's event.secrets do not hold the module's"
    );
    assert_eq!(m["module_strict"], true, "'use strict' still applies");
    assert_eq!(
        m["global_actions"], "undefined",
        "`actions` exists inside modules only"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_module_or_module_secret_edit_is_a_new_generation_and_a_broken_module_keeps_the_last_one()
{
    let upstream = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    hooks_with_module(dir.path());
    std::env::set_var("HOOKGATE_TEST_MODULES_ACTION", "a-1");
    let hg = Hookgate::start_in(
        dir,
        &upstream.address(),
        "",
        "",
        &format!("{SIGNUP_ROUTE}{SETTINGS}"),
    );
    let (status, answer) = signup(&hg).await;
    assert_eq!(status, 200, "{answer}\n{}", hg.log());
    let module = hg.dir.path().join("hooks/modules/greeter/index.js");

    // A broken module rejects the generation: the running one keeps answering.
    std::fs::write(&module, "exports.greet = (who) => {;\n").unwrap();
    wait_for("the rejected generation", Duration::from_secs(20), || {
        hg.log().contains("modules/greeter/index.js")
    });
    let (status, answer) = signup(&hg).await;
    assert_eq!(status, 200, "{answer}\n{}", hg.log());
    assert_eq!(sent_app_metadata(&answer)["greeting"], "HELLO, ANN");

    std::fs::write(
        &module,
        GREETER.replace(
            "shout(actions.secrets.GREETING",
            "('bye ' + actions.secrets.GREETING",
        ),
    )
    .unwrap();
    let rt = tokio::runtime::Handle::current();
    wait_for("the edited module", Duration::from_secs(20), || {
        let (_, answer) = tokio::task::block_in_place(|| rt.block_on(signup(&hg)));
        sent_app_metadata(&answer)["greeting"] == "bye hello, ann"
    });

    // The module's secret file (outside the hooks folder) changes: a new generation too.
    std::fs::write(hg.dir.path().join("greeting"), "hi\n").unwrap();
    wait_for("the module's new secret", Duration::from_secs(20), || {
        let (_, answer) = tokio::task::block_in_place(|| rt.block_on(signup(&hg)));
        sent_app_metadata(&answer)["greeting"] == "bye hi, ann"
    });
}

/// `hookgate check` on a hooks folder whose Action requires `spec`: (exit code, stderr).
fn check_with(spec: &str, module_source: Option<&str>) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks");
    write(
        &hooks.join("credentials-exchange/uses.js"),
        &format!(
            "// line 1\nconst m = require('{spec}');\nexports.onExecuteCredentialsExchange = async (event, api) => {{}};\n"
        ),
    );
    if let Some(src) = module_source {
        write(&hooks.join("modules/broken/index.js"), src);
    }
    // Something outside the hooks folder a path escape would reach.
    write(
        &dir.path().join("etc/passwd.js"),
        "module.exports = 'secret';\n",
    );
    write(
        &dir.path().join("hooks/../private.js"),
        "module.exports = 1;\n",
    );
    let (_, _, _) = run_cli(
        &["keys", "generate", "--alg", "ES256", "--out", "k.pem"],
        dir.path(),
    );
    write(
        &dir.path().join("hookgate.toml"),
        "[upstream]\naddress = \"127.0.0.1:9\"\n[token]\nsigning_key = \"k.pem\"\n",
    );
    let (code, out, err) = run_cli(&["check", "--config", "hookgate.toml"], dir.path());
    (code, format!("{out}{err}"))
}

#[test]
fn a_missing_module_is_a_load_error_naming_the_line_and_where_modules_live() {
    let (code, err) = check_with("actions:nope", None);
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("uses.js:2: require('actions:nope'): no Actions Module named `nope`")
            && err.contains("modules/nope/"),
        "{err}"
    );
}

#[test]
fn a_broken_module_keeps_the_hooks_from_loading() {
    let (code, err) = check_with("actions:broken", Some("exports.x = ;\n"));
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("modules/broken/index.js:1") && err.contains("SyntaxError"),
        "{err}"
    );
    let (code, err) = check_with("actions:broken", Some("require('not-installed');\n"));
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("require('not-installed')"), "{err}");
}

#[test]
fn a_module_name_never_reaches_outside_the_modules_folder() {
    for spec in [
        "actions:../../etc",
        "actions:../../etc/passwd",
        "actions:../private",
        "actions:..",
        "actions:/etc/passwd",
        "actions:.hidden",
        "actions:a/b",
        "actions:",
        // A module's secrets are reached only by the module's own wrapper.
        "hookgate:actions-module-secrets",
    ] {
        let (code, err) = check_with(spec, None);
        assert_ne!(code, 0, "{spec} must be refused: {err}");
        assert!(
            err.contains(&format!("require('{spec}')")),
            "{spec}: the error names the require\n{err}"
        );
        assert!(!err.contains("secret'"), "{err}");
    }
}
