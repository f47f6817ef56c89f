//! The running hookgate's management API, as the command line reaches it: found from the same
//! configuration file (`[admin] api_listen`), authenticated with a token of `[[admin.token]]`
//! (or `HOOKGATE_TOKEN`), over HTTPS trusting exactly the API's certificate (`[admin] tls_cert`,
//! or the self-signed one hookgate keeps in `.hookgate/admin-tls.crt`).
//!
//! Owns: deciding whether a hookgate answers (the API is only started with tokens, so a
//! configuration without any has none), picking the token, and turning the API's errors into
//! messages that say what to do next. Must not: decide what a subcommand does with the answer, or
//! touch the files (`crate::admin::store` does, when no hookgate answers).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::Failure;
use crate::admin::api::tls::trusted_cert_path;
use crate::config::secrets::read_secret;
use crate::config::Config;

/// The environment variable whose token the command line sends instead of one of
/// `[[admin.token]]` (for a token whose source this shell cannot read).
pub const ENV_TOKEN: &str = "HOOKGATE_TOKEN";

/// How long a connection attempt to the API waits before hookgate counts as not running.
const PROBE: Duration = Duration::from_millis(500);
/// The longest one API call may take (a write waits for its reload, a few seconds at most).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to the running hookgate's API.
pub struct Remote {
    pub rt: tokio::runtime::Runtime,
    pub client: reqwest::Client,
    /// `https://127.0.0.1:9443`.
    pub base: String,
    token: String,
    /// What the messages call the token: its `[[admin.token]]` name, or `HOOKGATE_TOKEN`.
    token_name: String,
    config_path: PathBuf,
}

/// The address a client dials for a listen address: a wildcard means this machine's loopback.
fn dial_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

impl Remote {
    /// The running hookgate of `config`, if one answers at `[admin] api_listen`; `Ok(None)` when
    /// none does (or the configuration starts no API: it has no `[[admin.token]]`). `scopes`: what
    /// the command needs, all of them, to choose among the configured tokens.
    pub fn find(config: &Config, scopes: &[&str]) -> Result<Option<Remote>, Failure> {
        if config.admin.tokens.is_empty() {
            return Ok(None);
        }
        let addr = dial_addr(config.admin.api_listen);
        if TcpStream::connect_timeout(&addr, PROBE).is_err() {
            return Ok(None);
        }
        let base = format!("https://{addr}");
        let (token_name, token) = pick_token(config, scopes, &base)?;
        let cert = trusted_cert_path(config);
        let pem = std::fs::read(&cert).map_err(|e| {
            Failure::failed(format!(
                "a hookgate answers at {base}, but its certificate {} cannot be read ({e}): run this command as a user who can read it, beside the configuration hookgate was started with",
                cert.display()
            ))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            Failure::failed(format!("{} is not a PEM certificate: {e}", cert.display()))
        })?;
        let client = reqwest::Client::builder()
            .tls_certs_only(certs)
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| Failure::failed(format!("cannot set up HTTPS: {e}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::failed(format!("cannot start the async runtime: {e}")))?;
        Ok(Some(Remote {
            rt,
            client,
            base,
            token,
            token_name,
            config_path: config.path.clone(),
        }))
    }

    /// What the messages say about where the answer came from.
    pub fn describe(&self) -> String {
        format!("the running hookgate at {}", self.base)
    }

    /// A request with the token, for callers that read the answer themselves (the live tail).
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// One call: the answer's JSON (`Value::Null` for an empty body) on a 2xx, or the API's
    /// error worded for the command line.
    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiFailure> {
        self.rt.block_on(async {
            let mut req = self.request(method, path);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.map_err(|e| ApiFailure {
                status: 0,
                failure: self.unreachable(&e),
            })?;
            let status = resp.status().as_u16();
            let text = resp.text().await.map_err(|e| ApiFailure {
                status,
                failure: self.unreachable(&e),
            })?;
            let value = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            if (200..300).contains(&status) {
                Ok(value)
            } else {
                Err(ApiFailure {
                    status,
                    failure: self.refused(status, &value),
                })
            }
        })
    }

    /// A transport error, worded: a certificate the client does not trust, or hookgate gone.
    pub fn unreachable(&self, e: &reqwest::Error) -> Failure {
        let mut chain = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        let lower = chain.to_ascii_lowercase();
        // rustls names the problem: an unknown issuer, a name the certificate is not valid for.
        if lower.contains("certificate") || lower.contains("unknownissuer") {
            Failure::failed(format!(
                "the management API at {} presented a certificate the command line does not trust ({chain}): the command trusts only [admin] tls_cert of {} (or the self-signed .hookgate/admin-tls.crt beside it); was hookgate started with another configuration?",
                self.base,
                self.config_path.display()
            ))
        } else {
            Failure::failed(format!(
                "the management API at {} did not answer ({chain}); is hookgate still running? (`hookgate serve --config {}`)",
                self.base,
                self.config_path.display()
            ))
        }
    }

    /// An error answer, worded: what went wrong and what to do.
    fn refused(&self, status: u16, body: &Value) -> Failure {
        let message = body["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| body.to_string());
        let config = self.config_path.display();
        match status {
            401 if self.token_name == ENV_TOKEN => Failure::failed(format!(
                "the running hookgate at {} refused the token in {ENV_TOKEN} ({message}): set it to one of the [[admin.token]] values hookgate was started with, or unset it to use those of {config}",
                self.base
            )),
            401 => Failure::failed(format!(
                "the running hookgate at {} refused token `{}` ({message}): it reads [[admin.token]] when it starts, so restart it after changing a token in {config}, or set {ENV_TOKEN} to a token it was started with",
                self.base, self.token_name
            )),
            403 => Failure::failed(format!(
                "token `{}` may not do this ({message}): add the scope to its `scopes` in {config} and restart hookgate, or set {ENV_TOKEN} to a token that has it",
                self.token_name
            )),
            429 => Failure::failed(format!(
                "the management API is rate limiting token `{}` ({message}); try again in a moment",
                self.token_name
            )),
            _ => Failure::failed(message),
        }
    }
}

/// An API call that did not succeed: its status (0: no answer) and the worded failure.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: u16,
    pub failure: Failure,
}

impl From<ApiFailure> for Failure {
    fn from(e: ApiFailure) -> Failure {
        e.failure
    }
}

/// The token to send: `HOOKGATE_TOKEN`, or the first `[[admin.token]]` that has every scope in
/// `scopes` and whose value this process can read.
fn pick_token(config: &Config, scopes: &[&str], base: &str) -> Result<(String, String), Failure> {
    if let Ok(t) = std::env::var(ENV_TOKEN) {
        if !t.trim().is_empty() {
            return Ok((ENV_TOKEN.to_string(), t.trim().to_string()));
        }
    }
    let path = config.path.display();
    let with_scopes: Vec<_> = config
        .admin
        .tokens
        .iter()
        .filter(|t| scopes.iter().all(|s| t.scopes.iter().any(|have| have == s)))
        .collect();
    if with_scopes.is_empty() {
        return Err(Failure::failed(format!(
            "a hookgate answers at {base}, but no [[admin.token]] in {path} has the scope(s) {}: add them to a token's `scopes` (and restart hookgate), or set {ENV_TOKEN} to a token that has them",
            scopes.join(", ")
        )));
    }
    let mut why = Vec::new();
    for t in &with_scopes {
        match read_secret(&t.token, config.base_dir(), &|v| std::env::var(v).ok()) {
            Ok(v) if !v.trim().is_empty() => return Ok((t.name.clone(), v.trim().to_string())),
            Ok(_) => why.push(format!("token `{}` is empty", t.name)),
            Err(e) => why.push(format!("token `{}`: {e}", t.name)),
        }
    }
    Err(Failure::failed(format!(
        "a hookgate answers at {base}, but this shell cannot read a token for it: {}; or set {ENV_TOKEN}",
        why.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listen_address_is_dialled_on_loopback() {
        assert_eq!(
            dial_addr("0.0.0.0:9443".parse().unwrap()),
            "127.0.0.1:9443".parse().unwrap()
        );
        assert_eq!(
            dial_addr("[::]:9443".parse().unwrap()),
            "[::1]:9443".parse().unwrap()
        );
        assert_eq!(
            dial_addr("10.0.0.5:1".parse().unwrap()),
            "10.0.0.5:1".parse().unwrap()
        );
    }
}
