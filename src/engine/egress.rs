//! Every outbound request a hook makes — the `fetch` global, Node's `http`/`https`, and so every
//! npm package built on them — runs here, on the engine's tokio runtime with reqwest; the answer
//! goes back to the worker that asked, through its completion channel.
//!
//! Owns: `[hooks.egress]` — the allow-list (checked on the host the hook named), the redirection
//! map (host -> local address, `Host` header kept), the per-hook timeout, the body size limit —
//! and the one log line per outbound request (hook, method, host, status, duration).
//! Must not touch: JS values (the worker hands a [`Done`] to `io.js`), or response bodies: they
//! come back as sent, compressed or not, because Node's `http` does not decode them either.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::hooks::{EgressConfig, RedirectTarget};

/// Shared by every worker.
#[derive(Clone)]
pub(crate) struct Egress {
    /// Follows redirects, like WHATWG `fetch`.
    follow: reqwest::Client,
    /// Hands 3xx answers to the hook, like Node's `http.request`; packages follow them themselves.
    manual: reqwest::Client,
    handle: tokio::runtime::Handle,
    allow_hosts: Option<Arc<[String]>>,
    redirect: Arc<BTreeMap<String, RedirectTarget>>,
    max_body_bytes: usize,
}

pub(crate) struct Request {
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// Follow 3xx answers (`fetch`) or hand them back (`http.request`).
    pub follow: bool,
}

#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub status_text: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a request failed: a Node-style error code (`ECONNREFUSED`, `ETIMEDOUT`, ...) and a message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: &'static str,
    pub message: String,
}

/// A finished request, tagged with the call (`seq`) and the JS-side id it belongs to.
pub(crate) struct Done {
    pub seq: u64,
    pub id: u64,
    pub result: Result<Response, Failure>,
}

impl Egress {
    pub fn new(cfg: &EgressConfig, handle: tokio::runtime::Handle) -> anyhow::Result<Egress> {
        // No default User-Agent and no Accept-Encoding: a hook's requests carry the headers the
        // hook (or its package) set, as under Node.
        let follow = reqwest::Client::builder().build()?;
        let manual = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Egress {
            follow,
            manual,
            handle,
            allow_hosts: cfg.allow_hosts.as_deref().map(Arc::from),
            redirect: Arc::new(
                cfg.redirect
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect(),
            ),
            max_body_bytes: cfg.max_body_bytes,
        })
    }

    /// Start a request for `hook`; the result is always sent to `done`, even a refusal. Returns
    /// the task's abort handle when a request was actually started.
    pub fn start(
        &self,
        hook: &str,
        seq: u64,
        id: u64,
        req: Request,
        timeout: Duration,
        done: Sender<Done>,
    ) -> Option<tokio::task::AbortHandle> {
        let refuse = |code: &'static str, message: String| {
            tracing::warn!(target: "hookgate::egress", hook = %hook, method = %req.method, url = %req.url, "outbound request refused: {message}");
            let _ = done.send(Done {
                seq,
                id,
                result: Err(Failure { code, message }),
            });
            None
        };
        let mut url = match reqwest::Url::parse(&req.url) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => u,
            Ok(u) => {
                let scheme = u.scheme().to_owned();
                return refuse(
                    "ERR_INVALID_PROTOCOL",
                    format!("Protocol \"{scheme}:\" not supported. Expected \"http:\""),
                );
            }
            Err(e) => {
                return refuse("ERR_INVALID_URL", format!("Invalid URL `{}`: {e}", req.url));
            }
        };
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if !host_allowed(self.allow_hosts.as_deref(), &host) {
            return refuse(
                "ERR_HOOKGATE_EGRESS",
                format!("host `{host}` is not in [hooks.egress] allow_hosts"),
            );
        }
        let mut headers = req.headers;
        if let Some(target) = self.redirect.get(&host) {
            let authority = match url.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.clone(),
            };
            if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
                headers.push(("host".into(), authority));
            }
            if redirect_url(&mut url, target).is_err() {
                return refuse(
                    "ERR_HOOKGATE_EGRESS",
                    format!("cannot redirect `{host}` to {}", target.host),
                );
            }
        }
        let env = self.clone();
        let (hook, method) = (hook.to_owned(), req.method.clone());
        let req = Request { headers, ..req };
        let task = self.handle.spawn(async move {
            let started = Instant::now();
            let result = match tokio::time::timeout(timeout, env.run(url, req)).await {
                Ok(r) => r,
                Err(_) => Err(Failure {
                    code: "ETIMEDOUT",
                    message: "the hook's timeout was reached".to_owned(),
                }),
            };
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            match &result {
                Ok(r) => {
                    tracing::info!(target: "hookgate::egress", hook = %hook, method = %method, host = %host, status = r.status, ms = format_args!("{ms:.1}"), "outbound request")
                }
                Err(f) => {
                    tracing::warn!(target: "hookgate::egress", hook = %hook, method = %method, host = %host, error = %f.message, ms = format_args!("{ms:.1}"), "outbound request failed")
                }
            }
            let _ = done.send(Done { seq, id, result });
        });
        Some(task.abort_handle())
    }

    async fn run(&self, url: reqwest::Url, req: Request) -> Result<Response, Failure> {
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|_| Failure {
            code: "ERR_INVALID_HTTP_TOKEN",
            message: format!("Method must be a valid HTTP token [\"{}\"]", req.method),
        })?;
        let client = if req.follow {
            &self.follow
        } else {
            &self.manual
        };
        let mut builder = client.request(method, url);
        for (k, v) in &req.headers {
            builder = builder.header(k, v);
        }
        if let Some(body) = req.body {
            builder = builder.body(body);
        }
        let mut resp = builder.send().await.map_err(|e| failure(&e))?;
        let status = resp.status();
        let url = resp.url().to_string();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| failure(&e))? {
            if body.len() + chunk.len() > self.max_body_bytes {
                return Err(Failure {
                    code: "ERR_HOOKGATE_BODY_TOO_LARGE",
                    message: format!(
                        "response body larger than {} bytes ([hooks.egress] max_body_bytes)",
                        self.max_body_bytes
                    ),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status: status.as_u16(),
            status_text: status.canonical_reason().unwrap_or("").to_owned(),
            url,
            headers,
            body,
        })
    }
}

/// Point `url` at `target`, keeping path, query and fragment.
fn redirect_url(url: &mut reqwest::Url, target: &RedirectTarget) -> Result<(), ()> {
    url.set_scheme(&target.scheme)?;
    url.set_host(Some(&target.host)).map_err(|_| ())?;
    url.set_port(target.port)?;
    Ok(())
}

/// A reqwest error as Node would name it, with its whole cause chain as the message.
fn failure(e: &reqwest::Error) -> Failure {
    let mut message = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        src = inner.source();
    }
    let lower = message.to_ascii_lowercase();
    let code = if e.is_timeout() {
        "ETIMEDOUT"
    } else if lower.contains("dns error") || lower.contains("failed to lookup") {
        "ENOTFOUND"
    } else if lower.contains("connection refused") {
        "ECONNREFUSED"
    } else {
        // Node's name for a connection that broke for any other reason.
        "ECONNRESET"
    };
    Failure { code, message }
}

/// `None` allows every host; `*.example.com` allows subdomains of example.com (not itself).
pub(crate) fn host_allowed(allow: Option<&[String]>, host: &str) -> bool {
    let Some(allow) = allow else { return true };
    let host = host.to_ascii_lowercase();
    allow.iter().any(|pattern| {
        let pattern = pattern.to_ascii_lowercase();
        match pattern.strip_prefix("*.") {
            Some(suffix) => {
                host.len() > suffix.len()
                    && host.ends_with(&suffix)
                    && host[..host.len() - suffix.len()].ends_with('.')
            }
            None => host == pattern,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matches_exact_hosts_and_wildcard_subdomains() {
        let allow = vec!["api.example.com".to_owned(), "*.slack.com".to_owned()];
        assert!(host_allowed(None, "anything"));
        assert!(host_allowed(Some(&allow), "api.example.com"));
        assert!(host_allowed(Some(&allow), "hooks.slack.com"));
        assert!(!host_allowed(Some(&allow), "slack.com"));
        assert!(!host_allowed(Some(&allow), "evilslack.com"));
        assert!(!host_allowed(Some(&allow), "example.com"));
    }

    #[test]
    fn a_redirect_keeps_path_query_and_fragment_and_changes_scheme_host_and_port() {
        let mut u = reqwest::Url::parse(
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?x=1#f",
        )
        .unwrap();
        let target = RedirectTarget {
            scheme: "http".into(),
            host: "127.0.0.1".into(),
            port: Some(9100),
        };
        redirect_url(&mut u, &target).unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:9100/2010-04-01/Accounts/AC1/Messages.json?x=1#f"
        );
    }
}
