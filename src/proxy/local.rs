//! Answers hookgate gives on the public listener itself: its JWKS, and the upstream's discovery
//! document with `jwks_uri` pointing at that JWKS (a re-signed token no longer verifies with the
//! upstream's keys, so resource servers that follow discovery must find hookgate's).
//!
//! Must not: answer anything a route or the upstream should answer.

use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::proxy::Session;
use serde_json::Value;

use super::exchange::write_upstream_response;
use super::respond::write_json;
use super::upstream::UpstreamResponse;
use super::Proxy;
use crate::config::Config;
use crate::reload::Live;

/// Answer the request here if it is hookgate's own; `Ok(true)` when answered.
pub async fn answer(proxy: &Proxy, live: &Live, session: &mut Session) -> Result<bool> {
    let Some(keys) = &live.keys else {
        return Ok(false);
    };
    let req = session.req_header();
    if req.method != http::Method::GET && req.method != http::Method::HEAD {
        return Ok(false);
    }
    let token = &live.config.token;
    let path = req.uri.path();
    if path == token.jwks_path {
        write_json(session, 200, keys.jwks_body()).await?;
        return Ok(true);
    }
    if path == token.discovery_path {
        let jwks_uri = format!("{}{}", public_base(&live.config, req), token.jwks_path);
        let mut upstream_req = req.clone();
        upstream_req.remove_header("accept-encoding");
        match proxy.upstream.send(upstream_req, Bytes::new()).await {
            Ok(resp) => {
                write_upstream_response(session, rewrite_discovery(resp, &jwks_uri)).await?
            }
            Err(e) => e.write(session).await?,
        }
        return Ok(true);
    }
    Ok(false)
}

/// `scheme://host` under which clients reach hookgate.
fn public_base(config: &Config, req: &RequestHeader) -> String {
    if let Some(url) = &config.token.public_url {
        return url.clone();
    }
    let get = |name: &str| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or("").trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let scheme = get("x-forwarded-proto").unwrap_or_else(|| "http".into());
    let host = get("x-forwarded-host")
        .or_else(|| get("host"))
        .or_else(|| req.uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| config.server.listen[0].to_string());
    format!("{scheme}://{host}")
}

fn rewrite_discovery(resp: UpstreamResponse, jwks_uri: &str) -> UpstreamResponse {
    if resp.header.status.as_u16() != 200 {
        return resp;
    }
    let Ok(Value::Object(mut doc)) = serde_json::from_slice::<Value>(&resp.body) else {
        return resp;
    };
    doc.insert("jwks_uri".into(), Value::String(jwks_uri.to_string()));
    UpstreamResponse {
        header: resp.header,
        body: Bytes::from(serde_json::to_vec(&doc).expect("a JSON map serialises")),
    }
}
