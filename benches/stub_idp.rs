//! A fast stand-in identity server for benchmarks, so that hookgate itself is the bottleneck:
//! `POST /token` answers a pre-made RS256 JWT access token (signed once at start), `/jwks` and
//! the discovery document describe its key, `/dbconnections/signup` answers a created user in
//! Auth0's shape (`_id`, ...), anything else is a small JSON echo.
//!
//!   cargo run --release --example stub-idp -- 127.0.0.1:3300
//!
//! Not a test double for behaviour: the end-to-end tests use node-oidc-provider.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3300".into());
    let pem = hookgate::token::keys::generate_pem(hookgate::token::Alg::RS256).unwrap();
    let key = hookgate::token::SigningKey::from_pem(pem.as_bytes()).unwrap();
    let issuer = format!("http://{addr}");
    let claims = serde_json::json!({
        "iss": issuer, "sub": "m2m-post", "client_id": "m2m-post", "aud": "https://api.example.com/",
        "iat": 1_700_000_000u64, "exp": 4_000_000_000u64, "jti": "bench", "scope": "read:users write:users",
    });
    let token = key.sign(Some("at+jwt"), &claims).unwrap();
    let token_body = Bytes::from(
        serde_json::json!({ "access_token": token, "expires_in": 3600, "scope": "read:users write:users", "token_type": "Bearer" })
            .to_string(),
    );
    let jwks = Bytes::from(serde_json::json!({ "keys": [key.public_jwk()] }).to_string());
    let discovery = Bytes::from(
        serde_json::json!({ "issuer": issuer, "jwks_uri": format!("{issuer}/jwks"), "token_endpoint": format!("{issuer}/token") })
            .to_string(),
    );
    let threads: usize = std::env::var("STUB_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
        println!("{{\"ready\":true,\"addr\":\"{addr}\"}}");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            stream.set_nodelay(true).ok();
            let (token_body, jwks, discovery) =
                (token_body.clone(), jwks.clone(), discovery.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (token_body, jwks, discovery) =
                        (token_body.clone(), jwks.clone(), discovery.clone());
                    async move {
                        let path = req.uri().path().to_string();
                        let _ = req.into_body().collect().await;
                        let body = match path.as_str() {
                            "/token" => token_body,
                            "/jwks" => jwks,
                            "/.well-known/openid-configuration" => discovery,
                            "/dbconnections/signup" => Bytes::from_static(
                                b"{\"_id\":\"auth0|5f7c8ec7c33c6c004bbafe82\",\"email_verified\":false,\"email\":\"bench@example.com\"}",
                            ),
                            _ => Bytes::from_static(b"{\"ok\":true}"),
                        };
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header("content-type", "application/json")
                                .header("cache-control", "no-store")
                                .body(Full::new(body))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
}
