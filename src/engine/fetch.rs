//! The Rust side of the `fetch` global: requests run on the engine's tokio runtime with reqwest;
//! the answer goes back to the worker that asked, through its completion channel.
//!
//! Owns: the allow-list check, the per-hook timeout and the body size limit.
//! Must not touch: JS values (the worker turns a [`FetchDone`] into a `Response`).

use std::time::Duration;

use crossbeam_channel::Sender;

/// Shared by every worker.
#[derive(Clone)]
pub(crate) struct FetchEnv {
    pub client: reqwest::Client,
    pub handle: tokio::runtime::Handle,
    pub allow_hosts: Option<Vec<String>>,
    pub max_body_bytes: usize,
}

pub(crate) struct FetchRequest {
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

#[derive(Debug)]
pub(crate) struct FetchResponse {
    pub status: u16,
    pub status_text: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A finished fetch, tagged with the call (`seq`) and the JS-side id it belongs to.
pub(crate) struct FetchDone {
    pub seq: u64,
    pub id: u64,
    pub result: Result<FetchResponse, String>,
}

impl FetchEnv {
    /// Start a request; the result is always sent to `done`, even a refusal. Returns the task's
    /// abort handle when a request was actually started.
    pub fn start(
        &self,
        seq: u64,
        id: u64,
        req: FetchRequest,
        timeout: Duration,
        done: Sender<FetchDone>,
    ) -> Option<tokio::task::AbortHandle> {
        let url = match reqwest::Url::parse(&req.url) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => u,
            Ok(u) => {
                let _ = done.send(FetchDone {
                    seq,
                    id,
                    result: Err(format!("unsupported URL scheme `{}`", u.scheme())),
                });
                return None;
            }
            Err(e) => {
                let _ = done.send(FetchDone {
                    seq,
                    id,
                    result: Err(format!("invalid URL `{}`: {e}", req.url)),
                });
                return None;
            }
        };
        let host = url.host_str().unwrap_or_default().to_owned();
        if !host_allowed(self.allow_hosts.as_deref(), &host) {
            let _ = done.send(FetchDone {
                seq,
                id,
                result: Err(format!("host `{host}` is not in [hooks.fetch] allow_hosts")),
            });
            return None;
        }
        let env = self.clone();
        let task = self.handle.spawn(async move {
            let result = match tokio::time::timeout(timeout, env.run(url, req)).await {
                Ok(r) => r,
                Err(_) => Err("the hook's timeout was reached".to_owned()),
            };
            let _ = done.send(FetchDone { seq, id, result });
        });
        Some(task.abort_handle())
    }

    async fn run(&self, url: reqwest::Url, req: FetchRequest) -> Result<FetchResponse, String> {
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| format!("invalid method `{}`", req.method))?;
        let mut builder = self.client.request(method, url);
        for (k, v) in &req.headers {
            builder = builder.header(k, v);
        }
        if let Some(body) = req.body {
            builder = builder.body(body);
        }
        let mut resp = builder.send().await.map_err(|e| error_chain(&e))?;
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
        while let Some(chunk) = resp.chunk().await.map_err(|e| error_chain(&e))? {
            if body.len() + chunk.len() > self.max_body_bytes {
                return Err(format!(
                    "response body larger than {} bytes",
                    self.max_body_bytes
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchResponse {
            status: status.as_u16(),
            status_text: status.canonical_reason().unwrap_or("").to_owned(),
            url,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
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
    use super::host_allowed;

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
}
