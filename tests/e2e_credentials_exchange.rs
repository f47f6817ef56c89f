//! credentials-exchange end to end: hookgate in front of node-oidc-provider, running real hook
//! files, re-signing with its own key, verified with a standard JWT library.

mod common;

use common::hookgate::Hookgate;
use common::oidc::{self, OidcServer};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
use serde_json::{json, Value};

const TOKEN_ROUTE: &str =
    "[[route]]\nname = \"token\"\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\n\
     upstream_path = \"/token\"\naudience_param = \"resource\"\n\
     [clients.m2m-post]\nname = \"Billing service\"\nmetadata = { tier = \"gold\" }\n";

/// A hook that does what real ones do: trims and extends scopes, adds namespaced claims from the
/// client registry and the request, tries what it must not, and denies on request.
const HOOK: &str = r#"
module.exports = function (client, scope, audience, context, cb) {
  var deny = context.body.deny;
  if (deny === 'scope') return cb(new InvalidScopeError('scope not allowed for ' + client.id));
  if (deny === 'request') return cb(new InvalidRequestError('missing tenant hint'));
  if (deny === 'server') return cb(new ServerError('backend down'));
  if (deny === 'error') return cb(new Error('plain error'));
  if (deny === 'string') return cb('just a string');
  if (deny === 'hang') return; // never calls cb
  console.log('credentials-exchange hook ran for ' + client.id);
  var access_token = {};
  access_token.scope = (scope || []).filter(function (s) { return s !== 'delete:users'; });
  access_token.scope.push('extra:scope');
  access_token['https://example.com/tier'] = client.metadata.tier || 'none';
  access_token['https://example.com/client_name'] = client.name;
  access_token['https://example.com/tenant'] = client.tenant;
  access_token['https://example.com/audience'] = audience;
  access_token['https://example.com/saw_secret'] = Object.prototype.hasOwnProperty.call(context.body, 'client_secret');
  access_token['https://example.com/secret'] = context.webtask.secrets.API_KEY || null;
  access_token.not_namespaced = 'ignored';
  access_token['https://tenant.auth0.com/reserved'] = 'ignored';
  access_token.sub = 'someone-else';
  cb(null, access_token);
};
"#;

struct Setup {
    idp: OidcServer,
    hg: Hookgate,
}

fn setup(hook_settings: &str) -> Setup {
    let idp = OidcServer::start();
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks").join("credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("claims.js"), HOOK).unwrap();
    let hooks_table = format!(
        "[hooks]\ndir = \"hooks\"\n[[hooks.hook]]\nfile = \"credentials-exchange/claims.js\"\ntimeout_ms = 1500\n\
         secrets = {{ API_KEY = {{ env = \"HOOKGATE_TEST_API_KEY\" }} }}\n{hook_settings}\n"
    );
    std::env::set_var("HOOKGATE_TEST_API_KEY", "s3cr3t");
    let hg = Hookgate::start_in(
        dir,
        &idp.addr(),
        "",
        "",
        &format!("{TOKEN_ROUTE}{hooks_table}"),
    );
    Setup { idp, hg }
}

async fn token(s: &Setup, params: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(s.hg.url("/oauth/token"))
        .form(params)
        .send()
        .await
        .unwrap()
}

fn post_client<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("grant_type", "client_credentials"),
        ("client_id", oidc::POST_CLIENT_ID),
        ("client_secret", oidc::POST_CLIENT_SECRET),
        ("audience", oidc::AUDIENCE),
        ("scope", "read:users delete:users"),
    ];
    p.extend_from_slice(extra);
    p
}

/// Verify a token the way a resource server would: hookgate's JWKS, a standard JWT library.
async fn verify_with_hookgate_jwks(s: &Setup, jwt: &str) -> Value {
    let discovery: Value = reqwest::get(s.hg.url(oidc::DISCOVERY_PATH))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap();
    assert_eq!(
        jwks_uri,
        s.hg.url("/.well-known/jwks.json"),
        "discovery points at hookgate's JWKS"
    );
    let set: JwkSet = reqwest::get(jwks_uri).await.unwrap().json().await.unwrap();
    let header = decode_header(jwt).unwrap();
    let jwk = set
        .find(header.kid.as_deref().unwrap())
        .expect("the token's kid is in hookgate's JWKS");
    let mut v = Validation::new(header.alg);
    v.set_audience(&[oidc::AUDIENCE]);
    v.set_issuer(&[&s.idp.issuer]);
    decode::<Value>(jwt, &DecodingKey::from_jwk(jwk).unwrap(), &v)
        .unwrap()
        .claims
}

#[tokio::test(flavor = "multi_thread")]
async fn hook_rewrites_scopes_and_adds_namespaced_claims_on_a_resigned_token() {
    let s = setup("");
    let resp = token(&s, &post_client(&[])).await;
    assert_eq!(resp.status(), 200, "{}", s.hg.log());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "read:users extra:scope");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["expires_in"], 3600,
        "the upstream's other fields are kept"
    );
    let claims = verify_with_hookgate_jwks(&s, body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["scope"], "read:users extra:scope");
    assert_eq!(claims["https://example.com/tier"], "gold");
    assert_eq!(claims["https://example.com/client_name"], "Billing service");
    assert_eq!(claims["https://example.com/tenant"], "hookgate");
    assert_eq!(
        claims["https://example.com/audience"],
        oidc::AUDIENCE,
        "Auth0's audience reached the upstream as resource"
    );
    assert_eq!(
        claims["https://example.com/saw_secret"], false,
        "client secrets never reach hooks"
    );
    assert_eq!(claims["https://example.com/secret"], "s3cr3t");
    assert_eq!(
        claims["sub"],
        oidc::POST_CLIENT_ID,
        "registered claims stay the upstream's"
    );
    assert_eq!(claims["client_id"], oidc::POST_CLIENT_ID);
    assert!(claims.get("not_namespaced").is_none());
    assert!(claims.get("https://tenant.auth0.com/reserved").is_none());
    assert!(
        !s.hg.log().contains(oidc::POST_CLIENT_SECRET),
        "the client secret is never logged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_bodies_and_basic_auth_work_against_a_form_only_server() {
    let s = setup("");
    let c = reqwest::Client::new();
    // Auth0-style JSON body, which node-oidc-provider itself refuses.
    let resp = c
        .post(s.hg.url("/oauth/token"))
        .json(&json!({
            "grant_type": "client_credentials",
            "client_id": oidc::POST_CLIENT_ID,
            "client_secret": oidc::POST_CLIENT_SECRET,
            "audience": oidc::AUDIENCE,
            "scope": "read:users"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", s.hg.log());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "read:users extra:scope");

    let resp = c
        .post(s.hg.url("/oauth/token"))
        .basic_auth(oidc::BASIC_CLIENT_ID, Some(oidc::BASIC_CLIENT_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "write:users"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let claims = verify_with_hookgate_jwks(&s, body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["client_id"], oidc::BASIC_CLIENT_ID);
    assert_eq!(claims["scope"], "write:users extra:scope");
    assert_eq!(
        claims["https://example.com/tier"], "none",
        "a client missing from the registry has empty metadata"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_error_class_maps_to_the_contracts_answer() {
    let s = setup("");
    for (deny, status, error, description) in [
        (
            "scope",
            400,
            "invalid_scope",
            "scope not allowed for m2m-post",
        ),
        ("request", 400, "invalid_request", "missing tenant hint"),
        ("server", 500, "server_error", "backend down"),
        ("error", 500, "server_error", "plain error"),
        ("string", 500, "server_error", "just a string"),
    ] {
        let resp = token(&s, &post_client(&[("deny", deny)])).await;
        assert_eq!(resp.status(), status, "{deny}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body,
            json!({ "error": error, "error_description": description }),
            "{deny}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_secret_gets_the_upstreams_401_and_runs_no_hook() {
    let s = setup("");
    let resp = token(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", oidc::POST_CLIENT_ID),
            ("client_secret", "wrong"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    // Prove the hook would have logged, then that it did not.
    let ok = token(&s, &post_client(&[])).await;
    assert_eq!(ok.status(), 200);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        s.hg.log()
            .matches("credentials-exchange hook ran for")
            .count(),
        1,
        "{}",
        s.hg.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hook_timeout_denies_by_default() {
    let s = setup("");
    let resp = token(&s, &post_client(&[("deny", "hang")])).await;
    assert_eq!(resp.status(), 500);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "server_error");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hook_timeout_with_on_error_allow_issues_the_upstreams_token() {
    let s = setup("on_error = \"allow\"");
    let resp = token(&s, &post_client(&[("deny", "hang")])).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["scope"], "read:users delete:users",
        "unchanged: the failed hook is skipped"
    );
    let header = decode_header(body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(
        header.alg,
        jsonwebtoken::Algorithm::RS256,
        "still the upstream's own token"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn other_grants_pass_through_untouched() {
    let s = setup("");
    let params = [
        ("grant_type", "password"),
        ("username", "u"),
        ("password", "p"),
        ("client_id", oidc::POST_CLIENT_ID),
    ];
    let through = token(&s, &params).await;
    let direct = reqwest::Client::new()
        .post(s.idp.token_url())
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(through.status(), direct.status());
    let (through, direct): (Value, Value) =
        (through.json().await.unwrap(), direct.json().await.unwrap());
    assert_eq!(through, direct, "the upstream's own answer comes back");
    assert!(through["error"].is_string());
    assert!(
        !s.hg.log().contains("credentials-exchange hook ran"),
        "no hook runs for other grants"
    );
}
