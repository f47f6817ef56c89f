//! Answers hookgate gives on the public listener itself: its JWKS, and the upstream's discovery
//! documents with `jwks_uri` pointing at that JWKS (a re-signed token no longer verifies with the
//! upstream's keys, so resource servers that follow discovery must find hookgate's).
//!
//! The JWKS holds hookgate's keys and the upstream's current ones (`crate::token::merged_jwks`),
//! so the tokens no hook changed, signed by the upstream, verify through the same discovery; when
//! the upstream's JWKS cannot be fetched, hookgate's keys are still served (with the keys last
//! fetched, a warning, and `X-Hookgate-Upstream-Keys: unavailable`), never an error. Every
//! configured discovery document (`token.discovery_paths`: OpenID's, RFC 8414's, and the paths
//! under them) is rewritten.
//!
//! The `jwks_uri` tells resource servers whose keys to trust, so no client may choose it: it is
//! `token.public_url` when set; `X-Forwarded-Proto`/`X-Forwarded-Host` are read only with
//! `token.trust_forwarded_headers`, and every value taken from a request must be `http`/`https`
//! and a well-formed host[:port], else the next source is used.
//!
//! Must not: answer anything a route or the upstream should answer.

use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::proxy::Session;
use serde_json::Value;

use super::exchange::write_upstream_response;
use super::upstream::UpstreamResponse;
use super::Proxy;
use crate::config::path::{same, under, Target};
use crate::config::token::valid_host;
use crate::config::Config;
use crate::reload::Live;

/// Answer the request here if it is hookgate's own; `Ok(true)` when answered. `target` is the
/// request's, normalised: hookgate's paths are matched as routes are (any spelling, any case).
pub async fn answer(
    proxy: &Proxy,
    live: &Live,
    session: &mut Session,
    target: &Target,
) -> Result<bool> {
    let Some(keys) = &live.keys else {
        return Ok(false);
    };
    let req = session.req_header();
    if req.method != http::Method::GET && req.method != http::Method::HEAD {
        return Ok(false);
    }
    let token = &live.config.token;
    if same(&target.path, &token.jwks_path, false) {
        let (upstream, unavailable) = proxy.upstream_keys.keys_to_publish().await;
        let (jwks, shadowed) = crate::token::merged_jwks(keys, &upstream);
        if !shadowed.is_empty() {
            tracing::warn!(kids = ?shadowed, "the identity server publishes keys under kids of hookgate's own keys; hookgate's JWKS lists hookgate's keys under them and leaves those out");
        }
        let mut header = pingora::http::ResponseHeader::build(200, Some(4))?;
        header.insert_header("content-type", "application/json")?;
        // Resource servers cache JWKS documents: one without the upstream's keys must not stay.
        header.insert_header("cache-control", "no-store")?;
        if let Some(e) = unavailable {
            tracing::warn!(error = %e, "serving hookgate's JWKS without fresh keys of the identity server: tokens it signed may not verify through hookgate's discovery until it answers");
            header.insert_header("x-hookgate-upstream-keys", "unavailable")?;
        }
        let body = Bytes::from(serde_json::to_vec(&jwks).expect("a JSON value serialises"));
        write_upstream_response(session, UpstreamResponse { header, body }).await?;
        return Ok(true);
    }
    if let Some(document) = token
        .discovery_paths
        .iter()
        .find(|d| under(&target.path, d, false).is_some())
    {
        let server_addr = session
            .server_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.to_string());
        let jwks_uri = format!(
            "{}{}",
            public_base(&live.config, req, server_addr.as_deref()),
            token.jwks_path
        );
        let mut upstream_req = req.clone();
        upstream_req.remove_header("accept-encoding");
        // The upstream gets the spelling hookgate answered for, whatever the client wrote: the
        // configured document's, then what followed it (RFC 8414's issuer path), as normalised.
        let rest = under(&target.path, document, false).unwrap_or("");
        let uri = target
            .forward(&crate::config::path::join(document, rest))
            .parse()
            .or_err(ErrorType::InvalidHTTPHeader, "discovery path")?;
        upstream_req.set_uri(uri);
        match proxy.upstream.send(upstream_req, Bytes::new()).await {
            Ok(resp) => {
                write_upstream_response(session, rewrite_discovery(resp, &jwks_uri)).await?
            }
            Err(e) => {
                super::respond::render(&e, crate::points::Shape::OAuth)
                    .write(session)
                    .await?
            }
        }
        return Ok(true);
    }
    Ok(false)
}

/// `scheme://host[:port]` under which clients reach hookgate. `server_addr` is the address the
/// request arrived on, for a request that names no host.
fn public_base(config: &Config, req: &RequestHeader, server_addr: Option<&str>) -> String {
    if let Some(url) = &config.token.public_url {
        return url.clone();
    }
    let get = |name: &str| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or("").trim())
            .filter(|v| !v.is_empty())
    };
    let host = get("host").filter(|h| valid_host(h));
    let (scheme, host) = if config.token.trust_forwarded_headers {
        let scheme = get("x-forwarded-proto")
            .map(str::to_ascii_lowercase)
            .filter(|s| s == "http" || s == "https");
        let forwarded_host = get("x-forwarded-host").filter(|h| valid_host(h));
        (scheme, forwarded_host.or(host))
    } else {
        (None, host)
    };
    let host = host
        .map(str::to_string)
        .or_else(|| server_addr.map(str::to_string))
        .unwrap_or_else(|| config.server.listen[0].to_string());
    format!("{}://{host}", scheme.as_deref().unwrap_or("http"))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&'static str, &str)]) -> RequestHeader {
        let mut req =
            RequestHeader::build("GET", b"/.well-known/openid-configuration", None).unwrap();
        for (k, v) in headers {
            req.insert_header(*k, v.to_string()).unwrap();
        }
        req
    }

    fn config(token: &str) -> Config {
        let text = format!("[upstream]\naddress = \"127.0.0.1:1\"\n[token]\n{token}\n");
        Config::parse(std::path::Path::new("t.toml"), &text, &|_| None).unwrap()
    }

    #[test]
    fn forwarded_headers_are_ignored_unless_trusted() {
        let hostile = [
            ("host", "hg.example:8080"),
            ("x-forwarded-proto", "javascript"),
            ("x-forwarded-host", "attacker.example"),
        ];
        let c = config("");
        assert_eq!(
            public_base(&c, &request(&hostile), Some("10.0.0.1:8080")),
            "http://hg.example:8080"
        );
        assert_eq!(
            public_base(
                &c,
                &request(&[("x-forwarded-proto", "https")]),
                Some("10.0.0.1:80")
            ),
            "http://10.0.0.1:80",
            "no Host: the address the request arrived on"
        );
        let bad_host = request(&[("host", "attacker.example/evil#")]);
        assert_eq!(
            public_base(&c, &bad_host, Some("10.0.0.1:80")),
            "http://10.0.0.1:80"
        );
    }

    #[test]
    fn trusted_forwarded_headers_must_be_http_and_a_host() {
        let c = config("trust_forwarded_headers = true");
        let base = |h: &[(&'static str, &str)]| public_base(&c, &request(h), None);
        assert_eq!(
            base(&[
                ("host", "10.0.0.1"),
                ("x-forwarded-proto", "HTTPS, http"),
                ("x-forwarded-host", "id.example.com, proxy.internal")
            ]),
            "https://id.example.com"
        );
        assert_eq!(
            base(&[
                ("host", "10.0.0.1"),
                ("x-forwarded-proto", "javascript"),
                ("x-forwarded-host", "attacker.example/x")
            ]),
            "http://10.0.0.1"
        );
        assert_eq!(
            base(&[("host", "10.0.0.1"), ("x-forwarded-proto", "https")]),
            "https://10.0.0.1"
        );
    }

    #[test]
    fn public_url_wins_and_is_checked_at_load() {
        let c =
            config("public_url = \"https://id.example.com/auth/\"\ntrust_forwarded_headers = true");
        assert_eq!(
            public_base(
                &c,
                &request(&[("x-forwarded-host", "attacker.example")]),
                None
            ),
            "https://id.example.com/auth"
        );
        for bad in [
            "javascript://x",
            "https://a b",
            "id.example.com",
            "https://x/?q",
        ] {
            let text =
                format!("[upstream]\naddress = \"127.0.0.1:1\"\n[token]\npublic_url = \"{bad}\"\n");
            let err = Config::parse(std::path::Path::new("t.toml"), &text, &|_| None)
                .unwrap_err()
                .to_string();
            assert!(err.contains("token.public_url"), "{bad}: {err}");
        }
    }
}
