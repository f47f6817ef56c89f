//! Auth0 Actions beside Hooks, end to end on the real binary: an Action and the Hook it replaces
//! give the same token (node-oidc-provider), the same error answer, the same signup body and the
//! same deliveries; Hooks and Actions chain in order on one exchange.

mod common;

use common::hookgate::{run_cli, Hookgate};
use common::oidc::{self, OidcServer};
use common::upstream::Upstream;
use common::wait_for;
use serde_json::{json, Value};
use std::time::Duration;

/// One route per way of writing the same logic, and one where both kinds chain.
const TOKEN_ROUTES: &str = "\
[[route]]\nname = \"hook\"\npath = \"/hook/token\"\npoint = \"credentials-exchange\"\nupstream_path = \"/token\"\naudience_param = \"resource\"\n\
[[route]]\nname = \"action\"\npath = \"/action/token\"\npoint = \"credentials-exchange\"\nupstream_path = \"/token\"\naudience_param = \"resource\"\n\
[[route]]\nname = \"chain\"\npath = \"/chain/token\"\npoint = \"credentials-exchange\"\nupstream_path = \"/token\"\naudience_param = \"resource\"\n\
[clients.m2m-post]\nname = \"Billing service\"\nmetadata = { tier = \"gold\" }\n";

/// A Hook as teams wrote them: narrow the scope, add claims from the client and a secret, deny
/// on request.
const HOOK: &str = r#"
module.exports = function (client, scope, audience, context, cb) {
  var deny = context.body.deny;
  if (deny === 'scope') return cb(new InvalidScopeError('scope not allowed for ' + client.id));
  if (deny === 'request') return cb(new InvalidRequestError('missing tenant hint'));
  if (deny === 'server') return cb(new ServerError('backend down'));
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

/// The same, as `hookgate migrate` would write it (Auth0's migration guide).
const ACTION: &str = r#"
exports.onExecuteCredentialsExchange = async (event, api) => {
  const deny = event.request.body.deny;
  if (deny === 'scope') return api.access.deny('invalid_scope', 'scope not allowed for ' + event.client.client_id);
  if (deny === 'request') return api.access.deny('invalid_request', 'missing tenant hint');
  if (deny === 'server') return api.access.deny('server_error', 'backend down');
  if (deny === 'error') throw new Error('plain error');
  api.transaction.removeTargetScope('delete:users');
  api.accessToken.setCustomClaim('https://example.com/tier', event.client.metadata.tier || 'none');
  api.accessToken.setCustomClaim('https://example.com/name', event.client.name);
  api.accessToken.setCustomClaim('https://example.com/tenant', event.tenant.id);
  api.accessToken.setCustomClaim('https://example.com/audience', event.resource_server.identifier);
  api.accessToken.setCustomClaim('https://example.com/secret', event.secrets.API_KEY);
  api.cache.set('last-client', event.client.client_id);
};
"#;

/// In the chain, after HOOK: reports what it saw of the request and of the hook before it, and
/// tries what it must not (a scope the client was not granted; writing to `api`).
const SPY: &str = r#"
exports.onExecuteCredentialsExchange = async (event, api) => {
  if (event.request.body.deny === 'spy') {
    api.access.deny('invalid_request', 'the spy says no');
    api.accessToken.setCustomClaim('https://example.com/after-deny', true);
    return;
  }
  api.accessToken['https://example.com/written'] = 'not a claim';
  api.transaction.addTargetScope('admin:everything');
  api.accessToken.setCustomClaim('https://example.com/seen', {
    scope: event.accessToken.scope,
    requested: event.transaction.requested_scopes,
    ip: event.request.ip,
    method: event.request.method,
    user_agent: event.request.user_agent,
    language: event.request.language,
    hostname_set: typeof event.request.hostname === 'string',
    configuration: event.configuration,
    cached: (api.cache.get('last-client') || {}).value,
    claims_before: event.accessToken.customClaims,
  });
  // Work started before the handler resolves completes (within the timeout).
  setTimeout(() => console.log('late work ran'), 50);
};
"#;

/// Last in the chain: never reached when an earlier handler denies.
const LAST: &str = r#"
module.exports = function (client, scope, audience, context, cb) {
  console.log('the last hook ran');
  cb(null, { scope: scope, 'https://example.com/last': true });
};
"#;

struct Tokens {
    _idp: OidcServer,
    hg: Hookgate,
}

fn start_tokens() -> Tokens {
    let idp = OidcServer::start();
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("narrow-hook.js"), HOOK).unwrap();
    std::fs::write(hooks.join("narrow-action.js"), ACTION).unwrap();
    std::fs::write(hooks.join("spy.js"), SPY).unwrap();
    std::fs::write(hooks.join("last.js"), LAST).unwrap();
    std::env::set_var("HOOKGATE_TEST_ACTIONS_KEY", "k-42");
    let settings = "[hooks]\n\
        [[hooks.hook]]\nfile = \"credentials-exchange/narrow-hook.js\"\nroutes = [\"hook\", \"chain\"]\norder = 1\n\
        secrets = { API_KEY = { env = \"HOOKGATE_TEST_ACTIONS_KEY\" } }\n\
        [[hooks.hook]]\nfile = \"credentials-exchange/narrow-action.js\"\nroutes = [\"action\"]\n\
        secrets = { API_KEY = { env = \"HOOKGATE_TEST_ACTIONS_KEY\" } }\n\
        [[hooks.hook]]\nfile = \"credentials-exchange/spy.js\"\nroutes = [\"chain\"]\norder = 2\n\
        configuration = { API_URL = \"https://api.example.com\" }\n\
        [[hooks.hook]]\nfile = \"credentials-exchange/last.js\"\nroutes = [\"chain\"]\norder = 3\n";
    let hg = Hookgate::start_in(
        dir,
        &idp.addr(),
        "",
        "",
        &format!("{TOKEN_ROUTES}{settings}"),
    );
    Tokens { _idp: idp, hg }
}

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
        .header("user-agent", "actions-test/1.0")
        .header("accept-language", "de-CH,de;q=0.8")
        .form(&form)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// The token's claims (the signature is checked by the e2e token suites; here the content).
fn claims(answer: &Value) -> Value {
    use base64::Engine as _;
    let jwt = answer["access_token"].as_str().expect("an access token");
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Claims without the per-token ones.
fn comparable(mut c: Value) -> Value {
    for k in ["iat", "exp", "jti", "nbf"] {
        c.as_object_mut().unwrap().remove(k);
    }
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn an_action_gives_the_same_token_as_the_hook_it_replaces() {
    let t = start_tokens();
    let (status, by_hook) = token(&t.hg, "/hook/token", &[]).await;
    assert_eq!(status, 200, "{by_hook}\n{}", t.hg.log());
    let (status, by_action) = token(&t.hg, "/action/token", &[]).await;
    assert_eq!(status, 200, "{by_action}\n{}", t.hg.log());
    assert_eq!(by_hook["scope"], "read:users");
    assert_eq!(by_action["scope"], by_hook["scope"]);
    let (h, a) = (comparable(claims(&by_hook)), comparable(claims(&by_action)));
    assert_eq!(h["https://example.com/tier"], "gold");
    assert_eq!(h["https://example.com/secret"], "k-42");
    assert_eq!(h["https://example.com/audience"], oidc::AUDIENCE);
    assert_eq!(a, h, "the Action's token is the Hook's");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_actions_deny_and_failure_answer_as_the_hooks_errors_do() {
    let t = start_tokens();
    for deny in ["scope", "request", "server", "error"] {
        let by_hook = token(&t.hg, "/hook/token", &[("deny", deny)]).await;
        let by_action = token(&t.hg, "/action/token", &[("deny", deny)]).await;
        assert_ne!(by_hook.0, 200, "{deny}: {by_hook:?}");
        assert_eq!(by_action, by_hook, "deny = {deny}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hooks_and_actions_run_in_one_ordered_chain() {
    let t = start_tokens();
    // Another Action (another route) fills api.cache first.
    assert_eq!(token(&t.hg, "/action/token", &[]).await.0, 200);
    let (status, answer) = token(&t.hg, "/chain/token", &[]).await;
    assert_eq!(status, 200, "{answer}\n{}", t.hg.log());
    let c = claims(&answer);
    let seen = &c["https://example.com/seen"];
    assert_eq!(
        seen["scope"],
        json!(["read:users"]),
        "the Action sees the scope the Hook before it left"
    );
    assert_eq!(seen["requested"], json!(["read:users", "delete:users"]));
    assert_eq!(seen["ip"], "127.0.0.1");
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["user_agent"], "actions-test/1.0");
    assert_eq!(seen["language"], "de-ch");
    assert_eq!(seen["hostname_set"], true);
    assert_eq!(
        seen["claims_before"]["https://example.com/tier"], "gold",
        "event.accessToken.customClaims holds what the Hook before it set"
    );
    assert_eq!(
        seen["cached"],
        oidc::POST_CLIENT_ID,
        "api.cache is shared by the Actions of a trigger"
    );
    assert_eq!(
        seen["configuration"],
        json!({ "API_URL": "https://api.example.com" })
    );
    assert_eq!(
        answer["scope"], "read:users",
        "a target scope the identity server did not grant is not added"
    );
    assert_eq!(
        c["https://example.com/tier"], "gold",
        "the Hook's claims stay"
    );
    assert_eq!(c["https://example.com/last"], true, "the Hook after it ran");
    assert!(
        c.get("https://example.com/written").is_none(),
        "writing to an api object is harmless and sets nothing"
    );
    wait_for("the late work", Duration::from_secs(5), || {
        t.hg.log().contains("late work ran")
    });

    let (status, answer) = token(&t.hg, "/chain/token", &[("deny", "spy")]).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer,
        json!({ "error": "invalid_request", "error_description": "the spy says no" })
    );
    let log = t.hg.log();
    assert_eq!(
        log.matches("the last hook ran").count(),
        1,
        "a deny stops the chain: the last hook ran for the first request only\n{log}"
    );
}

const SIGNUP_ROUTE: &str = "\
[[route]]\nname = \"signup\"\npath = \"/dbconnections/signup\"\npoint = \"pre-user-registration\"\n[route.signup]\nuser_id = \"/body_sha256\"\n";

const PRE_HOOK: &str = r#"
module.exports = function (user, context, cb) {
  if (user.username === 'blocked') return cb(new PreUserRegistrationError('blocked ' + user.email, 'Signups from this domain are not allowed'));
  cb(null, { user: { user_metadata: { hobby: 'surfing', lang: context.requestLanguage, drop: 'me' },
                     app_metadata: { plan: 'full', connection: context.connection.name } } });
};
"#;

const PRE_ACTION: &str = r#"
exports.onExecutePreUserRegistration = async (event, api) => {
  if (event.user.username === 'blocked') return api.access.deny('blocked ' + event.user.email, 'Signups from this domain are not allowed');
  if (event.user.username === 'invalid') return api.validation.error('invalid_username', 'Pick another username');
  api.user.setUserMetadata('lang', event.request.language);
  api.user.setUserMetadata('drop', null);
  api.user.setAppMetadata('tenant', event.tenant.id);
  api.user.setAppMetadata('phone', event.user.phone_number || 'none');
};
"#;

const POST_ACTION: &str = r#"
exports.onExecutePostUserRegistration = async (event, api) => {
  const url = event.secrets.NOTIFY_URL + '/notify/' + event.user.user_id + '?email=' +
    encodeURIComponent(event.user.email) + '&connection=' + event.connection.name;
  const res = await fetch(url, { method: 'POST' });
  if (!res.ok) throw new Error('notify answered ' + res.status);
};
"#;

fn start_signup(upstream: &Upstream, crm: &Upstream) -> Hookgate {
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks");
    std::fs::create_dir_all(hooks.join("pre-user-registration")).unwrap();
    std::fs::create_dir_all(hooks.join("post-user-registration")).unwrap();
    std::fs::write(hooks.join("pre-user-registration/a-hook.js"), PRE_HOOK).unwrap();
    std::fs::write(hooks.join("pre-user-registration/b-action.js"), PRE_ACTION).unwrap();
    std::fs::write(hooks.join("post-user-registration/notify.js"), POST_ACTION).unwrap();
    std::fs::write(
        dir.path().join("notify_url"),
        format!("http://{}", crm.address()),
    )
    .unwrap();
    let settings = "[hooks]\n\
        [[hooks.hook]]\nfile = \"post-user-registration/notify.js\"\ntimeout_ms = 2000\n\
        secrets = { NOTIFY_URL = { file = \"notify_url\" } }\n\
        [outbox]\npath = \"data/outbox.redb\"\nretry_base_ms = 50\nretry_max_ms = 400\n";
    Hookgate::start_in(
        dir,
        &upstream.address(),
        "",
        "",
        &format!("{SIGNUP_ROUTE}{settings}"),
    )
}

async fn signup(hg: &Hookgate, username: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(hg.url("/dbconnections/signup"))
        .header("accept-language", "fr-CA,fr;q=0.9")
        .json(&json!({
            "client_id": "spa",
            "email": format!("{username}@example.com"),
            "password": "hunter2-secret",
            "connection": "Username-Password-Authentication",
            "username": username,
        }))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn signup_actions_merge_metadata_after_hooks_remove_keys_with_null_and_deny_like_hooks() {
    let upstream = Upstream::start();
    let crm = Upstream::start();
    let hg = start_signup(&upstream, &crm);
    let (status, answer) = signup(&hg, "ann").await;
    assert_eq!(status, 200, "{answer}\n{}", hg.log());
    let sent: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        sent["user_metadata"],
        json!({ "hobby": "surfing", "lang": "fr-ca" }),
        "the Action's keys merge over the Hook's, and its null removes one"
    );
    assert_eq!(
        sent["app_metadata"],
        json!({ "plan": "full", "connection": "Username-Password-Authentication",
                "tenant": "hookgate", "phone": "none" })
    );

    // The post-user-registration Action is delivered through the outbox.
    wait_for("the CRM notification", Duration::from_secs(10), || {
        crm.seen
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("POST /notify/") && l.contains("email=ann%40example.com"))
    });
    assert!(crm
        .seen
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("connection=Username-Password-Authentication")));

    let (status, denied) = signup(&hg, "blocked").await;
    assert_eq!(status, 400, "{denied}");
    assert_eq!(
        denied["description"], "Signups from this domain are not allowed",
        "{denied}"
    );
    let (status, invalid) = signup(&hg, "invalid").await;
    assert_eq!(status, 400, "{invalid}");
    assert_eq!(invalid["description"], "Pick another username", "{invalid}");
}

#[test]
fn a_file_that_is_neither_a_hook_nor_an_action_is_rejected_with_both_shapes_named() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(
        hooks.join("typo.js"),
        "exports.onExecuteCredentialExchange = async (event, api) => {};\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("hookgate.toml"),
        "[upstream]\naddress = \"127.0.0.1:9\"\n[token]\nsigning_key = \"k.pem\"\n",
    )
    .unwrap();
    let (_, _, _) = run_cli(
        &["keys", "generate", "--alg", "ES256", "--out", "k.pem"],
        dir.path(),
    );
    let (code, out, err) = run_cli(&["check", "--config", "hookgate.toml"], dir.path());
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("typo.js")
            && err.contains("exports.onExecuteCredentialsExchange = async (event, api)")
            && err.contains("module.exports = function"),
        "{err}"
    );
}

#[test]
fn new_actions_writes_auth0s_starter_and_test_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    for trigger in [
        "credentials-exchange",
        "pre-user-registration",
        "post-user-registration",
        "post-change-password",
        "send-phone-message",
    ] {
        let (code, out, err) = run_cli(&["new", "--actions", trigger, "mine"], dir.path());
        assert_eq!(code, 0, "{out}{err}");
        let file = dir.path().join(format!("hooks/{trigger}/mine.js"));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("exports.onExecute"), "{text}");
        let (code, out, err) = run_cli(&["test", file.to_str().unwrap()], dir.path());
        assert_eq!(code, 0, "{trigger}: {out}{err}");
    }
    // An Action under `hookgate test`: the Runner's default payload becomes its event.
    let file = dir.path().join("hooks/credentials-exchange/mine.js");
    std::fs::write(
        &file,
        "exports.onExecuteCredentialsExchange = async (event, api) => {\n\
           api.accessToken.setCustomClaim('https://example.com/aud', event.resource_server.identifier);\n\
           api.transaction.removeTargetScope('read:connections');\n};\n",
    )
    .unwrap();
    let (code, out, err) = run_cli(&["test", file.to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        json!({ "https://example.com/aud": "https://my-tenant.auth0.com/api/v2/", "scope": [] })
    );
}

const SMS_ACTION: &str = r#"
exports.onExecuteSendPhoneMessage = async (event, api) => {
  const m = event.message_options;
  if (m.code === 'fail') throw new Error('provider said no to ' + m.recipient);
  console.log('sms to ' + m.recipient + ' (' + m.message_type + '/' + m.action + ') for ' +
    event.client.name + ' from ' + event.request.ip + ' secret ' + event.secrets.API_KEY + ': ' + m.text);
};
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_send_phone_message_action_reads_the_message_options_and_fails_over_like_a_hook() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/send-phone-message");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("a-action.js"), SMS_ACTION).unwrap();
    std::fs::write(
        hooks.join("b-backup.js"),
        "module.exports = function (recipient, text, context, cb) { cb(null, { MessageID: 'backup-' + recipient }); };\n",
    )
    .unwrap();
    std::env::set_var("HOOKGATE_TEST_ACTIONS_SMS_SECRET", "sms-secret");
    std::env::set_var("HOOKGATE_TEST_ACTIONS_SMS_KEY", "k-sms");
    let config =
        "[[route]]\nname = \"sms\"\npath = \"/hooks/sms\"\npoint = \"send-phone-message\"\n\
        webhook_secret = { env = \"HOOKGATE_TEST_ACTIONS_SMS_SECRET\" }\n[hooks]\n\
        [[hooks.hook]]\nfile = \"send-phone-message/a-action.js\"\n\
        secrets = { API_KEY = { env = \"HOOKGATE_TEST_ACTIONS_SMS_KEY\" } }\n";
    let hg = Hookgate::start_in(dir, &up.address(), "", "", config);
    let send = |code: &'static str| {
        let url = hg.url("/hooks/sms");
        async move {
            let resp = reqwest::Client::new()
                .post(url)
                .bearer_auth("sms-secret")
                .json(&json!({
                    "recipient": "+15555550100",
                    "text": "Your code is 123456",
                    "context": {
                        "message_type": "sms", "action": "second-factor-authentication", "language": "en",
                        "code": code, "ip": "203.0.113.7", "user_agent": "Mozilla/5.0",
                        "client": { "client_id": "app1", "name": "My App", "client_metadata": {} },
                        "user": { "user_id": "auth0|1", "email": "ann@example.com" }
                    }
                }))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = send("123456").await;
    assert_eq!(status, 200, "{body}\n{}", hg.log());
    assert!(
        hg.log().contains(
            "sms to +15555550100 (sms/second-factor-authentication) for My App from 203.0.113.7 secret k-sms: Your code is 123456"
        ),
        "{}",
        hg.log()
    );
    let (status, body) = send("fail").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "MessageID": "backup-+15555550100" }),
        "a failing Action fails over to the next provider, as a failing Hook does"
    );
}

/// The host's `native` object (which reaches the shared `api.cache`, among others) is handed to
/// built-in modules only: a hook that plants a setter on `Function.prototype` before loading one
/// never receives it.
#[test]
fn a_hook_cannot_catch_the_natives_handed_to_built_in_modules() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    let file = hooks.join("thief.js");
    std::fs::write(
        &file,
        "module.exports = function (client, scope, audience, context, cb) {\n\
           var stolen;\n\
           Object.defineProperty(Function.prototype, 'native', { set: function (v) { stolen = v; }, configurable: true });\n\
           require('crypto'); require('zlib'); require('http');\n\
           cb(null, { scope: scope, 'https://example.com/stolen': typeof stolen });\n};\n",
    )
    .unwrap();
    let (code, out, err) = run_cli(&["test", file.to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["https://example.com/stolen"], "undefined", "{v}");
}
