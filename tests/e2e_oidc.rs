//! End to end: hookgate in front of a real OAuth server, node-oidc-provider from the npm registry.

mod common;

use common::hookgate::Hookgate;
use common::oidc::{self, OidcServer};
use serde_json::Value;

const TOKEN_ROUTE: &str =
    "[[route]]\nname = \"token\"\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\nupstream_path = \"/token\"\n";

fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn client_credentials_through_hookgate_reach_the_real_server() {
    let idp = OidcServer::start();
    let hg = Hookgate::start(&idp.addr(), "", "", TOKEN_ROUTE);
    let c = reqwest::Client::new();

    // client_secret_post, form body, Auth0's path.
    let resp = c
        .post(hg.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", oidc::POST_CLIENT_ID),
            ("client_secret", oidc::POST_CLIENT_SECRET),
            ("resource", oidc::AUDIENCE),
            ("scope", "read:users"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let c1 = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c1["client_id"], oidc::POST_CLIENT_ID);
    assert_eq!(c1["scope"], "read:users");
    assert_eq!(c1["aud"], oidc::AUDIENCE);

    // HTTP Basic.
    let resp = c
        .post(hg.url("/oauth/token"))
        .basic_auth(oidc::BASIC_CLIENT_ID, Some(oidc::BASIC_CLIENT_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", oidc::AUDIENCE),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // A bad secret: the upstream's 401 passes through unchanged.
    let resp = c
        .post(hg.url("/oauth/token"))
        .basic_auth(oidc::BASIC_CLIENT_ID, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"], "invalid_client");

    // Everything else is passthrough: discovery comes from the upstream.
    let disc: Value = c
        .get(hg.url(oidc::DISCOVERY_PATH))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(disc["issuer"], idp.issuer);
}
