//! `hookgate migrate` on the real binary: it converts every starter and every example hook of
//! the repository, and its own comparison (Hook and Action run on the same payloads) agrees with
//! an independent one through hookgate end to end (node-oidc-provider for tokens, an echo
//! upstream for signups); it names the lines it cannot convert (exit 2) and never overwrites a
//! file without `--force`.

mod common;

use common::hookgate::{run_cli, Hookgate};
use common::oidc::{self, OidcServer};
use common::upstream::Upstream;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const TRIGGERS: [&str; 5] = [
    "credentials-exchange",
    "pre-user-registration",
    "post-user-registration",
    "post-change-password",
    "send-phone-message",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `hookgate migrate <hook> <extra...>` from `cwd`: (exit code, the Action, the report).
fn migrate(cwd: &Path, hook: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["migrate", hook];
    args.extend_from_slice(extra);
    run_cli(&args, cwd)
}

#[test]
fn every_starter_migrates_to_an_action_that_gives_the_hooks_result() {
    let dir = tempfile::tempdir().unwrap();
    for trigger in TRIGGERS {
        let starter =
            std::fs::read_to_string(repo().join(format!("src/hooks/starters/{trigger}.js")))
                .unwrap();
        write(
            &dir.path().join(format!("hooks/{trigger}/starter.js")),
            &starter,
        );
        let (code, action, report) =
            migrate(dir.path(), &format!("hooks/{trigger}/starter.js"), &[]);
        assert_eq!(code, 0, "{trigger}: {report}\n{action}");
        assert!(action.contains("exports.onExecute"), "{trigger}: {action}");
        assert!(
            report.contains("the Action gives the Hook's result on every payload"),
            "{trigger}: {report}"
        );
        assert!(!report.contains("DIFFERS"), "{trigger}: {report}");
    }
}

/// The repository's example hooks, with secrets pointing at a local echo server so their
/// requests succeed, compared on the default payload and on one of our own.
#[test]
fn every_example_hook_migrates_and_both_runs_agree() {
    let echo = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}/notify", echo.address());
    let secrets = json!({ "NOTIFY_URL": url, "SMS_API_URL": url, "SMS_API_KEY": "k" });
    let mut checked = 0;
    for trigger in TRIGGERS {
        let examples = repo().join("hooks").join(trigger);
        for entry in std::fs::read_dir(&examples).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            write(
                &dir.path().join(format!("hooks/{trigger}/{name}")),
                &std::fs::read_to_string(entry.path()).unwrap(),
            );
            let payload = dir.path().join(format!("{trigger}-payload.json"));
            write(
                &payload,
                &json!({ "context": { "webtask": { "secrets": secrets } } }).to_string(),
            );
            let hook = format!("hooks/{trigger}/{name}");
            let (code, action, report) =
                migrate(dir.path(), &hook, &["--payload", payload.to_str().unwrap()]);
            checked += 1;
            if trigger == "credentials-exchange" {
                // add-claims.js adds `read:profile`, which the default payload does not grant:
                // an Action cannot add a scope the client was not granted (Auth0's rule).
                assert_eq!(code, 1, "{report}");
                assert!(
                    report.contains("differs from the Hook in: scope (default)")
                        && report.contains("limited to the scopes the identity server granted"),
                    "{report}"
                );
                let granted = dir.path().join("granted.json");
                write(
                    &granted,
                    &json!({ "scope": ["read:connections", "read:profile"] }).to_string(),
                );
                let (code, _, report) = run_cli(
                    &[
                        "migrate",
                        &hook,
                        "--payload",
                        granted.to_str().unwrap(),
                        "--payload",
                        granted.to_str().unwrap(),
                    ],
                    dir.path(),
                );
                assert_eq!(code, 1, "the default payload still differs: {report}");
                assert_eq!(
                    report.matches("DIFFERS").count(),
                    1,
                    "granted read:profile, the Action's token is the Hook's: {report}"
                );
            } else {
                assert_eq!(code, 0, "{hook}: {report}\n{action}");
                assert!(!report.contains("DIFFERS"), "{hook}: {report}");
            }
            if action
                .lines()
                .any(|l| !l.starts_with("//") && l.contains("context.webtask.secrets"))
            {
                panic!("{hook}: the secrets were not rewritten\n{action}");
            }
        }
    }
    assert_eq!(checked, 5, "one example per trigger");
    let seen = echo.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .filter(|l| l.starts_with("POST /notify"))
            .count()
            >= 6,
        "the hooks' and the Actions' requests were made: {seen:?}"
    );
}

#[test]
fn a_hook_with_constructs_it_cannot_convert_exits_2_naming_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("hooks/pre-user-registration/legacy.js"),
        "module.exports = function (user, context, cb) {\n\
         \x20 context.webtask.storage.get(function (err, data) {\n\
         \x20   if (user.password.length < 12) return cb(new PreUserRegistrationError('short', 'Too short'));\n\
         \x20   cb(null, { user: { app_metadata: { seen: data } } });\n\
         \x20 });\n\
         };\n",
    );
    let (code, action, report) = migrate(
        dir.path(),
        "hooks/pre-user-registration/legacy.js",
        &["-o", "legacy.action.js"],
    );
    assert_eq!(code, 2, "{report}{action}");
    assert!(
        report.contains("legacy.js:2: context.webtask.storage")
            && report.contains("legacy.js:3: user.password"),
        "{report}"
    );
    let written = std::fs::read_to_string(dir.path().join("legacy.action.js")).unwrap();
    assert!(
        written.contains("// TODO(migrate): line 2: context.webtask.storage"),
        "the Action is written with what is left to do: {written}"
    );

    write(
        &dir.path()
            .join("hooks/credentials-exchange/not-a-function.js"),
        "const impl = require('./impl');\nmodule.exports = impl;\n",
    );
    let (code, _, report) = migrate(
        dir.path(),
        "hooks/credentials-exchange/not-a-function.js",
        &[],
    );
    assert_eq!(code, 2, "{report}");
    assert!(
        report.contains("line 2: module.exports is not a function"),
        "{report}"
    );

    write(
        &dir.path().join("hooks/credentials-exchange/missing-package.js"),
        "const x = require('left-pad@1.3.0');\nmodule.exports = function (c, s, a, ctx, cb) { cb(null, {}); };\n",
    );
    let (code, _, report) = migrate(
        dir.path(),
        "hooks/credentials-exchange/missing-package.js",
        &[],
    );
    assert_eq!(code, 2, "{report}");
    assert!(
        report.contains("missing-package.js:1: require('left-pad@1.3.0') cannot be satisfied"),
        "{report}"
    );
}

#[test]
fn migrate_refuses_to_overwrite_a_file_without_force() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("hooks/post-change-password/p.js"),
        "module.exports = function (user, context, cb) { cb(); };\n",
    );
    write(&dir.path().join("out.js"), "// mine\n");
    let (code, _, report) = migrate(
        dir.path(),
        "hooks/post-change-password/p.js",
        &["-o", "out.js"],
    );
    assert_eq!(code, 2, "{report}");
    assert!(
        report.contains("out.js already exists") && report.contains("--force"),
        "{report}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.js")).unwrap(),
        "// mine\n"
    );
    let (code, out, report) = migrate(
        dir.path(),
        "hooks/post-change-password/p.js",
        &["-o", "out.js", "--force"],
    );
    assert_eq!(code, 0, "{out}{report}");
    assert!(std::fs::read_to_string(dir.path().join("out.js"))
        .unwrap()
        .contains("exports.onExecutePostChangePassword"));
}

/// The generated Action of `hook` (in `dir`, under hooks/<trigger>/), by `hookgate migrate`.
fn generated(dir: &Path, hook: &str) -> String {
    let (code, action, report) = migrate(dir, hook, &[]);
    assert!(code == 0 || code == 1, "{report}");
    action
}

/// A Hook as teams wrote them (tests/actions.rs has it hand-migrated): deny paths, claims
/// from the client, the audience and a secret, a narrowed scope.
const NARROW: &str = r#"
module.exports = function (client, scope, audience, context, cb) {
  var deny = context.body.deny;
  if (deny === 'scope') return cb(new InvalidScopeError('scope not allowed for ' + client.id));
  if (deny === 'request') return cb(new InvalidRequestError('missing tenant hint'));
  if (deny === 'server') return cb(new ServerError('backend down'));
  if (deny === 'string') return cb('a string');
  if (deny === 'error') return cb(new Error('plain error'));
  var access_token = {};
  access_token.scope = scope.filter(function (s) { return s !== 'delete:users'; });
  access_token['https://example.com/tier'] = client.metadata.tier || 'none';
  access_token['https://example.com/name'] = client.name;
  access_token['https://example.com/tenant'] = client.tenant;
  access_token['https://example.com/audience'] = audience;
  access_token['https://example.com/secret'] = context.webtask.secrets.API_KEY;
  cb(null, access_token);
};
"#;

async fn token(hg: &Hookgate, path: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", oidc::POST_CLIENT_ID),
        ("client_secret", oidc::POST_CLIENT_SECRET),
        ("audience", oidc::AUDIENCE),
        ("scope", "read:users delete:users"),
    ];
    form.extend_from_slice(extra);
    let resp = reqwest::Client::new()
        .post(hg.url(path))
        .form(&form)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// The token's claims without the per-token ones.
fn claims(answer: &Value) -> Value {
    use base64::Engine as _;
    let jwt = answer["access_token"].as_str().expect("an access token");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwt.split('.').nth(1).unwrap())
        .unwrap();
    let mut c: Value = serde_json::from_slice(&bytes).unwrap();
    for k in ["iat", "exp", "jti", "nbf"] {
        c.as_object_mut().unwrap().remove(k);
    }
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn the_migrated_credentials_exchange_action_gives_the_hooks_token_end_to_end() {
    let idp = OidcServer::start();
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/credentials-exchange");
    write(&hooks.join("narrow.js"), NARROW);
    write(
        &hooks.join("add-claims.js"),
        &std::fs::read_to_string(repo().join("hooks/credentials-exchange/add-claims.js")).unwrap(),
    );
    // Generated beside the Hooks (in the hooks folder, so relative requires would resolve alike).
    let narrow = generated(dir.path(), "hooks/credentials-exchange/narrow.js");
    let add_claims = generated(dir.path(), "hooks/credentials-exchange/add-claims.js");
    write(&hooks.join("narrow-action.js"), &narrow);
    write(&hooks.join("add-claims-action.js"), &add_claims);
    std::env::set_var("HOOKGATE_TEST_MIGRATE_KEY", "k-7");
    let mut config = String::new();
    for (route, file) in [
        ("narrow", "narrow.js"),
        ("narrow-action", "narrow-action.js"),
        ("claims", "add-claims.js"),
        ("claims-action", "add-claims-action.js"),
    ] {
        config += &format!(
            "[[route]]\nname = \"{route}\"\npath = \"/{route}/token\"\npoint = \"credentials-exchange\"\nupstream_path = \"/token\"\naudience_param = \"resource\"\n"
        );
        config += &format!(
            "[[hooks.hook]]\nfile = \"credentials-exchange/{file}\"\nroutes = [\"{route}\"]\nsecrets = {{ API_KEY = {{ env = \"HOOKGATE_TEST_MIGRATE_KEY\" }} }}\n"
        );
    }
    config += "[clients.m2m-post]\nname = \"Billing service\"\nmetadata = { tier = \"gold\" }\n";
    let hg = Hookgate::start_in(dir, &idp.addr(), "", "", &config);

    let (status, by_hook) = token(&hg, "/narrow/token", &[]).await;
    assert_eq!(status, 200, "{by_hook}\n{}", hg.log());
    let (status, by_action) = token(&hg, "/narrow-action/token", &[]).await;
    assert_eq!(status, 200, "{by_action}\n{}", hg.log());
    assert_eq!(by_hook["scope"], "read:users");
    assert_eq!(claims(&by_hook)["https://example.com/secret"], "k-7");
    assert_eq!(by_action["scope"], by_hook["scope"]);
    assert_eq!(claims(&by_action), claims(&by_hook), "the same token");
    for deny in ["scope", "request", "server", "string", "error"] {
        let by_hook = token(&hg, "/narrow/token", &[("deny", deny)]).await;
        let by_action = token(&hg, "/narrow-action/token", &[("deny", deny)]).await;
        assert_ne!(by_hook.0, 200, "{deny}: {by_hook:?}");
        assert_eq!(by_action, by_hook, "deny = {deny}");
    }

    // The example adds `read:profile`, which the server does not grant: the claims are the
    // Hook's, the scope is the grant's (what `migrate` reported as the one difference).
    let (status, by_hook) = token(&hg, "/claims/token", &[]).await;
    assert_eq!(status, 200, "{by_hook}\n{}", hg.log());
    let (status, by_action) = token(&hg, "/claims-action/token", &[]).await;
    assert_eq!(status, 200, "{by_action}\n{}", hg.log());
    assert_eq!(by_hook["scope"], "read:users delete:users read:profile");
    assert_eq!(by_action["scope"], "read:users delete:users");
    let (mut h, mut a) = (claims(&by_hook), claims(&by_action));
    h.as_object_mut().unwrap().remove("scope");
    a.as_object_mut().unwrap().remove("scope");
    assert_eq!(h["https://hookgate.example/tier"], "gold");
    assert_eq!(a, h, "every other claim is the Hook's");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_migrated_signup_action_gives_the_hooks_signup_body_end_to_end() {
    let upstream = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/pre-user-registration");
    let deny = "module.exports = function (user, context, cb) {\n\
        \x20 if (user.username === 'blocked') return cb(new PreUserRegistrationError('blocked ' + user.email, 'Not allowed'));\n\
        \x20 cb(null, { user: { user_metadata: { lang: context.requestLanguage, phone: user.phoneNumber || 'none' }, app_metadata: { tenant: user.tenant, connection: context.connection.name } } });\n\
        };\n";
    write(&hooks.join("deny.js"), deny);
    write(
        &hooks.join("add-metadata.js"),
        &std::fs::read_to_string(repo().join("hooks/pre-user-registration/add-metadata.js"))
            .unwrap(),
    );
    let deny_action = generated(dir.path(), "hooks/pre-user-registration/deny.js");
    let metadata_action = generated(dir.path(), "hooks/pre-user-registration/add-metadata.js");
    write(&hooks.join("deny-action.js"), &deny_action);
    write(&hooks.join("add-metadata-action.js"), &metadata_action);
    let mut config = String::new();
    for (route, files) in [
        ("hooks", ["deny.js", "add-metadata.js"]),
        ("actions", ["deny-action.js", "add-metadata-action.js"]),
    ] {
        config += &format!(
            "[[route]]\nname = \"{route}\"\npath = \"/{route}/dbconnections/signup\"\npoint = \"pre-user-registration\"\nupstream_path = \"/dbconnections/signup\"\n[route.signup]\nuser_id = \"/body_sha256\"\n"
        );
        for file in files {
            config += &format!(
                "[[hooks.hook]]\nfile = \"pre-user-registration/{file}\"\nroutes = [\"{route}\"]\n"
            );
        }
    }
    let hg = Hookgate::start_in(dir, &upstream.address(), "", "", &config);
    let signup = |route: &'static str, username: &'static str| {
        let url = hg.url(&format!("/{route}/dbconnections/signup"));
        async move {
            let resp = reqwest::Client::new()
                .post(url)
                .header("accept-language", "fr-CA,fr;q=0.9")
                .json(&json!({
                    "client_id": "spa",
                    "email": format!("{username}@example.com"),
                    "password": "hunter2-secret",
                    "connection": "Username-Password-Authentication",
                    "username": username,
                    "user_metadata": { "kept": "yes" },
                }))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, by_hooks) = signup("hooks", "ann").await;
    assert_eq!(status, 200, "{by_hooks}\n{}", hg.log());
    let (status, by_actions) = signup("actions", "ann").await;
    assert_eq!(status, 200, "{by_actions}\n{}", hg.log());
    let body = |a: &Value| -> Value { serde_json::from_str(a["body"].as_str().unwrap()).unwrap() };
    assert_eq!(body(&by_hooks)["user_metadata"]["lang"], "fr-ca");
    assert_eq!(body(&by_hooks)["app_metadata"]["vip"], true);
    assert_eq!(body(&by_actions), body(&by_hooks), "the same signup body");

    let denied_hook = signup("hooks", "blocked").await;
    let denied_action = signup("actions", "blocked").await;
    assert_eq!(denied_hook.0, 400, "{denied_hook:?}");
    assert_eq!(denied_action, denied_hook, "the same denial");
}
