//! How hookgate treats what the upstream's token endpoint answers: opaque tokens, tokens it
//! cannot verify, and keys the upstream rotated. Against a small programmable token server
//! (node-oidc-provider cannot be made to misbehave on demand).

mod common;

use std::sync::{Arc, Mutex};

use common::hookgate::Hookgate;
use common::upstream;
use hookgate::token::{keys::generate_pem, Alg, SigningKey};
use http_body_util::BodyExt;
use serde_json::{json, Value};

/// What the token server answers.
struct State {
    /// Signs the access tokens; `None`: opaque tokens.
    signer: Option<SigningKey>,
    /// Published in /jwks.
    published: Vec<Value>,
    jwks_fetches: usize,
}

struct TokenServer {
    addr: String,
    state: Arc<Mutex<State>>,
    _server: upstream::Server,
}

fn key() -> SigningKey {
    SigningKey::from_pem(generate_pem(Alg::ES256).unwrap().as_bytes()).unwrap()
}

impl TokenServer {
    fn start(state: State) -> TokenServer {
        let state = Arc::new(Mutex::new(state));
        let shared = state.clone();
        let server = upstream::serve(move |req: hyper::Request<hyper::body::Incoming>| {
            let state = shared.clone();
            async move {
                let path = req.uri().path().to_string();
                let _ = req.into_body().collect().await;
                let mut s = state.lock().unwrap();
                let body = match path.as_str() {
                    "/jwks" => {
                        s.jwks_fetches += 1;
                        json!({ "keys": s.published })
                    }
                    _ => {
                        let token = match &s.signer {
                            Some(k) => k
                                .sign(
                                    Some("at+jwt"),
                                    &json!({
                                        "sub": "c1", "client_id": "c1", "scope": "read",
                                        "aud": "https://api/", "exp": 4_000_000_000u64
                                    }),
                                )
                                .unwrap(),
                            None => "2YotnFZFEjr1zCsicMWpAA".to_string(),
                        };
                        json!({ "access_token": token, "token_type": "Bearer", "scope": "read" })
                    }
                };
                upstream::json_response(200, &body)
            }
        });
        TokenServer {
            addr: server.addr.to_string(),
            state,
            _server: server,
        }
    }
}

const HOOK: &str = "module.exports = function (client, scope, audience, context, cb) {\n\
    cb(null, { scope: scope, 'https://example.com/x': 1 });\n};\n";

fn hookgate(ts: &TokenServer, token_extra: &str) -> Hookgate {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("hooks/credentials-exchange")).unwrap();
    std::fs::write(dir.path().join("hooks/credentials-exchange/claim.js"), HOOK).unwrap();
    std::fs::write(
        dir.path().join("hookgate.pem"),
        generate_pem(Alg::ES256).unwrap(),
    )
    .unwrap();
    let extra = format!(
        "[[route]]\nname = \"token\"\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\nupstream_path = \"/token\"\n\
         [token]\nsigning_key = \"hookgate.pem\"\nupstream_jwks_url = \"http://{}/jwks\"\n{token_extra}\n",
        ts.addr
    );
    Hookgate::start_in(dir, &ts.addr, "", "", &extra)
}

async fn exchange(hg: &Hookgate) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(hg.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "c1"),
            ("client_secret", "s"),
        ])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_opaque_token_that_hooks_would_change_is_refused_by_default() {
    let ts = TokenServer::start(State {
        signer: None,
        published: vec![],
        jwks_fetches: 0,
    });
    let hg = hookgate(&ts, "");
    let (status, body) = exchange(&hg).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"], "server_error");
    assert!(
        hg.log().contains("opaque token"),
        "the log explains why: {}",
        hg.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_opaque_token_passes_through_when_configured() {
    let ts = TokenServer::start(State {
        signer: None,
        published: vec![],
        jwks_fetches: 0,
    });
    let hg = hookgate(&ts, "opaque_tokens = \"pass\"");
    let (status, body) = exchange(&hg).await;
    assert_eq!(status, 200);
    assert_eq!(body["access_token"], "2YotnFZFEjr1zCsicMWpAA");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_the_upstream_keys_do_not_verify_is_refused() {
    let (signer, stranger) = (key(), key());
    // The JWKS publishes a different key under the signer's kid.
    let mut forged = stranger.public_jwk().clone();
    forged["kid"] = json!(signer.kid);
    let ts = TokenServer::start(State {
        signer: Some(signer),
        published: vec![forged],
        jwks_fetches: 0,
    });
    let hg = hookgate(&ts, "");
    let (status, body) = exchange(&hg).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"], "server_error");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_upstream_key_is_fetched_once_and_cached() {
    let first = key();
    let ts = TokenServer::start(State {
        published: vec![first.public_jwk().clone()],
        signer: Some(first),
        jwks_fetches: 0,
    });
    let hg = hookgate(&ts, "");
    for _ in 0..3 {
        assert_eq!(exchange(&hg).await.0, 200);
    }
    assert_eq!(ts.state.lock().unwrap().jwks_fetches, 1, "keys are cached");
    // The upstream rotates: a new key signs, the JWKS lists both.
    {
        let mut s = ts.state.lock().unwrap();
        let second = key();
        s.published.push(second.public_jwk().clone());
        s.signer = Some(second);
    }
    for _ in 0..3 {
        let (status, body) = exchange(&hg).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["access_token"].as_str().unwrap().contains('.'));
    }
    assert_eq!(
        ts.state.lock().unwrap().jwks_fetches,
        2,
        "one refetch for the unknown kid"
    );
}
