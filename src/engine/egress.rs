//! Every outbound request a hook makes — the `fetch` global, Node's `http`/`https`, and so every
//! npm package built on them — runs here, on the engine's tokio runtime: `fetch` with reqwest,
//! requests that follow no redirect (`http`/`https`, `fetch`'s `manual`/`error`) with a bare hyper
//! client that adds no header of its own (reqwest always adds `Accept: */*`). The answer goes
//! back to the worker that asked, through its completion channel. A failure reaches the hook as
//! Node reports it (message, errno, code, syscall, address/port or hostname, OpenSSL's names for
//! certificate errors), about the host the hook named; the client's own account goes to the log.
//!
//! Owns: `[hooks.egress]` — the allow-list and the redirection map (host -> local address, `Host`
//! header kept), both applied to the host the hook named *and to every redirect hop* (hookgate
//! follows redirects itself, one hop at a time, so a 302 from an allowed host cannot reach a
//! forbidden one), the per-hook timeout, the body size limit, the process-wide cap on requests
//! in flight (`max_concurrent`: one hook opening thousands of fetches must not use up the file
//! descriptors `accept()` needs) — and the one log line per outbound request (hook, method, the
//! host reached, the hops, status, duration). Sockets (`sockets.rs`) ask it where a connect may
//! go ([`Egress::socket_target`]), under the same allow-list and map.
//! Must not touch: JS values (the worker hands a [`Done`] to `io.js`), or response bodies: they
//! come back as sent, compressed or not, because Node's `http` does not decode them either.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use tokio::sync::Semaphore;

use crate::config::{EgressConfig, RedirectTarget};

/// The WHATWG fetch standard's redirect limit (undici's too).
const MAX_REDIRECTS: usize = 20;
/// Idle keep-alive connections kept per host. reqwest keeps any number by default; with many
/// hosts that is file descriptors held by nothing in flight.
const IDLE_PER_HOST: usize = 32;

/// Shared by every worker.
#[derive(Clone)]
pub(crate) struct Egress {
    /// `None`: a refusing egress (the load-time probe, [`Egress::refusing`]): nothing is sent.
    net: Option<Arc<Net>>,
    allow_hosts: Option<Arc<[String]>>,
    redirect: Arc<BTreeMap<String, RedirectTarget>>,
    max_body_bytes: usize,
    /// Addresses that lookups of allowed names returned, per hook: sockets may connect to them.
    resolved: Arc<super::sockets::Resolved>,
    /// The redirection map's names with their addresses for sockets (`sockets.rs`).
    synthetic: Arc<Vec<(String, usize)>>,
}

/// Node's `http`/`https` client side: a hyper client that sends exactly the headers it is given
/// (reqwest adds `Accept: */*` to every request, which Node's `http` never sends).
type RawClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

/// What actually sends.
struct Net {
    /// `fetch`'s client. Never follows redirects: [`Egress::run`] follows them itself, checking
    /// every hop.
    client: reqwest::Client,
    /// `http.request`'s client (never follows: Node's `http` does not).
    raw: RawClient,
    handle: tokio::runtime::Handle,
    /// One permit per request in flight, for the whole process (`[hooks.egress] max_concurrent`).
    permits: Arc<Semaphore>,
    max_concurrent: usize,
    /// One permit per `dns` lookup whose resolver call has not returned, for the whole process
    /// (`sockets.rs`): getaddrinfo runs on the blocking pool reqwest shares and cannot be
    /// cancelled, so a hook looping over `dns.lookup` must not queue them without end.
    lookups: Arc<Semaphore>,
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
    /// The URL answered, as the hook names it: after redirects, before the redirection map.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    fn new(
        status: reqwest::StatusCode,
        url: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Response {
        Response {
            status: status.as_u16(),
            status_text: status.canonical_reason().unwrap_or("").to_owned(),
            url,
            headers,
            body,
        }
    }
}

/// Why a request failed: a Node-style error code (`ECONNREFUSED`, `ETIMEDOUT`, ...) and a message.
/// A network failure carries what Node's own error carries (`errno`, `syscall`, `address`/`port`
/// or `hostname`, Node's message), all about the host the hook named: never the redirection
/// target, never hookgate's HTTP client (that goes to the log, in `detail`).
#[derive(Debug, Default)]
pub(crate) struct Failure {
    pub code: &'static str,
    pub message: String,
    /// Node's negative errno for this code on Linux (`-111` for ECONNREFUSED).
    pub errno: Option<i32>,
    pub syscall: Option<&'static str>,
    /// The address connected to (`syscall` `connect`: Node's `address`) or the name looked up
    /// (`getaddrinfo`: Node's `hostname`). One field keeps `Failure` small.
    pub peer: Option<String>,
    pub port: Option<u16>,
    /// For the log line only: the HTTP client's own account of the failure.
    pub detail: Option<String>,
}

impl Failure {
    /// The Node fields the JS error gets besides code and message, as a JSON object in the order
    /// Node sets them (`errno`, `code`, `syscall`, then `address`/`port` or `hostname`).
    pub fn node_fields_json(&self) -> String {
        let mut m = serde_json::Map::new();
        if let Some(errno) = self.errno {
            m.insert("errno".into(), errno.into());
        }
        if let Some(syscall) = self.syscall {
            m.insert("syscall".into(), syscall.into());
        }
        let peer_key = if self.syscall == Some("getaddrinfo") {
            "hostname"
        } else {
            "address"
        };
        if let Some(peer) = &self.peer {
            m.insert(peer_key.into(), peer.clone().into());
        }
        if let Some(port) = self.port {
            m.insert("port".into(), port.into());
        }
        serde_json::Value::Object(m).to_string()
    }

    /// What the log says: the hook's message, and the client's detail when there is one.
    fn log_text(&self) -> String {
        match &self.detail {
            Some(d) => format!("{} ({d})", self.message),
            None => self.message.clone(),
        }
    }
}

/// The call a request is made for.
pub(crate) struct Caller<'a> {
    /// The hook's name, for the log.
    pub hook: &'a str,
    /// The call's number on its worker (answers are tagged with it).
    pub seq: u64,
    /// The call's own outbound slots (`[hooks] max_requests_per_call`).
    pub slots: Arc<Semaphore>,
    /// What is left of the call's deadline.
    pub timeout: Duration,
}

/// A finished request, tagged with the call (`seq`) and the JS-side id it belongs to.
pub(crate) struct Done {
    pub seq: u64,
    pub id: u64,
    pub result: Result<Response, Failure>,
    /// The hosts requested, first to last (empty: refused before any was).
    pub hops: Vec<String>,
}

/// The error every forbidden host gets, first hop or redirect.
pub(crate) fn forbidden(host: &str) -> Failure {
    Failure {
        code: "ERR_HOOKGATE_EGRESS",
        message: format!("host `{host}` is not in [hooks.egress] allow_hosts"),
        ..Failure::default()
    }
}

impl Egress {
    pub fn new(cfg: &EgressConfig, handle: tokio::runtime::Handle) -> anyhow::Result<Egress> {
        // No default User-Agent and no Accept-Encoding: a hook's requests carry the headers the
        // hook (or its package) set, as under Node.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(IDLE_PER_HOST)
            .build()?;
        let max_concurrent = cfg.max_concurrent.max(1);
        let mut egress = Egress::refusing(cfg);
        egress.net = Some(Arc::new(Net {
            client,
            raw: raw_client()?,
            handle,
            permits: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            lookups: Arc::new(Semaphore::new(super::sockets::MAX_LOOKUPS)),
        }));
        Ok(egress)
    }

    /// An egress that sends nothing: every request fails as a forbidden host would, after the
    /// same URL checks. For evaluating hooks at load time (`probe.rs`), where a module-scope
    /// `fetch` must not reach anything.
    pub fn refusing(cfg: &EgressConfig) -> Egress {
        let redirect: BTreeMap<String, RedirectTarget> = cfg
            .redirect
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        Egress {
            net: None,
            allow_hosts: cfg.allow_hosts.as_deref().map(Arc::from),
            synthetic: Arc::new(super::sockets::synthetic_slots(redirect.keys())),
            redirect: Arc::new(redirect),
            max_body_bytes: cfg.max_body_bytes,
            resolved: Arc::default(),
        }
    }

    /// Whether a name (or IP literal) may be reached at all.
    pub(crate) fn allows(&self, host: &str) -> bool {
        host_allowed(self.allow_hosts.as_deref(), host)
    }

    /// The address a name of the redirection map resolves to for sockets (`sockets.rs`).
    pub(crate) fn synthetic_for(&self, name: &str) -> Option<std::net::Ipv4Addr> {
        let slot = self.synthetic.iter().find(|(k, _)| k == name)?.1;
        Some(super::sockets::synthetic_ip(slot))
    }

    pub(crate) fn resolved(&self) -> Arc<super::sockets::Resolved> {
        self.resolved.clone()
    }

    /// What sockets need to run: the runtime, the process's outbound permits and their number.
    /// `None` for a refusing egress.
    pub(crate) fn runtime(&self) -> Option<(tokio::runtime::Handle, Arc<Semaphore>, usize)> {
        let net = self.net.as_ref()?;
        Some((net.handle.clone(), net.permits.clone(), net.max_concurrent))
    }

    /// Whether the allow-list names `host` itself (not through a wildcard). Always true without
    /// an allow-list (any host may be reached, an address as well).
    pub(crate) fn lists_exactly(&self, host: &str) -> bool {
        let Some(allow) = self.allow_hosts.as_deref() else {
            return true;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        allow.iter().any(|p| {
            p.trim_start_matches('[')
                .trim_end_matches(']')
                .eq_ignore_ascii_case(host)
        })
    }

    /// The process's lookup permits ([`super::sockets::MAX_LOOKUPS`]); `None` for a refusing
    /// egress.
    pub(crate) fn lookup_permits(&self) -> Option<Arc<Semaphore>> {
        Some(self.net.as_ref()?.lookups.clone())
    }

    /// Where a socket to `host`:`port` connects, under the same rules as a request: the
    /// allow-list on the name the hook gave, then the redirection map (its target's host and
    /// port — its scheme's default when it names none — whatever port the hook asked for). An IP
    /// literal is allowed when the allow-list names it, when a lookup by the same hook of a name
    /// still allowed returned it in the last 10 minutes, or when it stands for a redirected name.
    pub(crate) fn socket_target(
        &self,
        hook: &str,
        host: &str,
        port: u16,
    ) -> Result<super::sockets::Wire, Failure> {
        let name = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let mapped = |key: &str| {
            self.redirect.get(key).map(|t| super::sockets::Wire {
                host: t
                    .host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                // The target's port, its scheme's when it names none: never the port the hook
                // asked for, or a redirect to a host would open every port on it.
                port: t.port.unwrap_or(if t.scheme == "https" { 443 } else { 80 }),
                name: key.to_owned(),
            })
        };
        if let Ok(ip) = name.parse::<std::net::IpAddr>() {
            if let Some(slot) = super::sockets::synthetic_index(&ip) {
                // The name it stands for, still allowed (the allow-list may have changed since
                // the lookup).
                return match self.synthetic.iter().find(|(_, s)| *s == slot) {
                    Some((key, _)) if host_allowed(self.allow_hosts.as_deref(), key) => {
                        mapped(key).ok_or_else(|| forbidden(key))
                    }
                    Some((key, _)) => Err(forbidden(key)),
                    None => Err(forbidden(&name)),
                };
            }
            let allowed = self.allow_hosts.is_none()
                || host_allowed(self.allow_hosts.as_deref(), &name)
                || self
                    .resolved
                    .name_of(hook, &ip)
                    .is_some_and(|n| host_allowed(self.allow_hosts.as_deref(), &n));
            if !allowed {
                return Err(forbidden(&name));
            }
            return Ok(super::sockets::Wire {
                host: name.clone(),
                port,
                name,
            });
        }
        if !host_allowed(self.allow_hosts.as_deref(), &name) {
            return Err(forbidden(&name));
        }
        Ok(mapped(&name).unwrap_or(super::sockets::Wire {
            host: name.clone(),
            port,
            name,
        }))
    }

    /// Start a request for a call; the result is always sent to `done`, even a refusal. Returns
    /// the task's abort handle when a request was actually started.
    pub fn start(
        &self,
        call: Caller<'_>,
        id: u64,
        req: Request,
        done: Sender<Done>,
    ) -> Option<tokio::task::AbortHandle> {
        let Caller {
            hook,
            seq,
            slots: call_slots,
            timeout,
        } = call;
        let refuse = |failure: Failure| {
            tracing::warn!(target: "hookgate::egress", hook = %hook, method = %req.method, url = %req.url, "outbound request refused: {}", failure.log_text());
            let _ = done.send(Done {
                seq,
                id,
                result: Err(failure),
                hops: Vec::new(),
            });
            None
        };
        let url = match parse_http(&req.url) {
            Ok(u) => u,
            Err(f) => return refuse(f),
        };
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if !host_allowed(self.allow_hosts.as_deref(), &host) {
            return refuse(forbidden(&host));
        }
        if let Err(f) = self.map(&url) {
            return refuse(f);
        }
        let Some(net) = self.net.clone() else {
            tracing::debug!(target: "hookgate::egress", hook = %hook, method = %req.method, url = %req.url,
                "outbound request not sent: requests made while a hook loads are refused");
            let _ = done.send(Done {
                seq,
                id,
                result: Err(Failure {
                    code: "ERR_HOOKGATE_EGRESS",
                    message: "outbound requests are not sent while the hook is loaded (module scope at load time)".into(),
                    ..Failure::default()
                }),
                hops: Vec::new(),
            });
            return None;
        };
        let env = self.clone();
        let (hook, method) = (hook.to_owned(), req.method.clone());
        let first_url = url.to_string();
        let task = net.handle.clone().spawn(async move {
            let started = Instant::now();
            // The hosts requested, first to last; only this task writes it.
            let mut hops = Vec::new();
            let unfinished = Unfinished {
                hook: &hook,
                method: &method,
                url: &first_url,
                waiting: AtomicBool::new(true),
                max_concurrent: net.max_concurrent,
            };
            let run = async {
                // The call's own slots first (`[hooks] max_requests_per_call`), then the
                // process's: a call over its cap never holds a process slot while it waits.
                // Neither semaphore is ever closed: acquiring fails only if it were.
                let _call_slot = call_slots.acquire_owned().await.ok();
                let _permit = net.permits.clone().acquire_owned().await.ok();
                unfinished.waiting.store(false, Ordering::Relaxed);
                env.run(&net, url, req, &mut hops).await
            };
            let outcome = tokio::time::timeout(timeout, run).await;
            let result = match outcome {
                Ok(r) => r,
                Err(_) if unfinished.waiting.load(Ordering::Relaxed) => Err(Failure {
                    code: "ETIMEDOUT",
                    message: format!(
                        "the hook's timeout was reached while the request was still waiting for an outbound request slot (the call's [hooks] max_requests_per_call, or the process's {} of [hooks.egress] max_concurrent)",
                        net.max_concurrent
                    ),
                    ..Failure::default()
                }),
                Err(_) => Err(Failure {
                    code: "ETIMEDOUT",
                    message: "the hook's timeout was reached".to_owned(),
                    ..Failure::default()
                }),
            };
            // Answered (or failed): nothing to say on drop. It owns no heap memory.
            std::mem::forget(unfinished);
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            // The host actually reached (or refused) is the last hop; the hops say how.
            let reached = hops.last().cloned().unwrap_or_default();
            // Only when there were redirects: `hops=a.example -> b.example`.
            let hops_text = (hops.len() > 1).then(|| hops.join(" -> "));
            let hops_field = hops_text.as_ref().map(tracing::field::display);
            match &result {
                Ok(r) => {
                    tracing::info!(target: "hookgate::egress", hook = %hook, method = %method, host = %reached, hops = hops_field, status = r.status, ms = format_args!("{ms:.1}"), "outbound request")
                }
                Err(f) => {
                    tracing::warn!(target: "hookgate::egress", hook = %hook, method = %method, host = %reached, hops = hops_field, error = %f.log_text(), ms = format_args!("{ms:.1}"), "outbound request failed")
                }
            }
            let _ = done.send(Done {
                seq,
                id,
                result,
                hops,
            });
        });
        Some(task.abort_handle())
    }

    /// Where a request for `url` goes on the wire: the redirection map applied, with the `Host`
    /// header the mapped request must carry (`None`: not mapped).
    fn map(&self, url: &reqwest::Url) -> Result<(reqwest::Url, Option<String>), Failure> {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let Some(target) = self.redirect.get(&host) else {
            return Ok((url.clone(), None));
        };
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let mut wire = url.clone();
        redirect_url(&mut wire, target).map_err(|_| Failure {
            code: "ERR_HOOKGATE_EGRESS",
            message: format!("cannot redirect `{host}` to {}", target.host),
            ..Failure::default()
        })?;
        Ok((wire, Some(authority)))
    }

    /// Send `req`, following redirects when it asks to — each hop checked against the allow-list
    /// and mapped like the first — and read the answer. `hops` gets every host requested.
    async fn run(
        &self,
        net: &Net,
        mut url: reqwest::Url,
        req: Request,
        hops: &mut Vec<String>,
    ) -> Result<Response, Failure> {
        let mut method =
            reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|_| Failure {
                code: "ERR_INVALID_HTTP_TOKEN",
                message: format!("Method must be a valid HTTP token [\"{}\"]", req.method),
                ..Failure::default()
            })?;
        let mut headers = req.headers;
        let mut body = req.body;
        if !req.follow {
            return self.run_raw(net, url, method, headers, body, hops).await;
        }
        loop {
            let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
            hops.push(host.clone());
            // The first hop was checked before the task started; a redirect's target is checked
            // here, before anything is sent to it.
            if !host_allowed(self.allow_hosts.as_deref(), &host) {
                return Err(forbidden(&host));
            }
            let (wire, host_header) = self.map(&url)?;
            let redirected = host_header.is_some();
            let mut builder = net.client.request(method.clone(), wire);
            for (k, v) in &headers {
                builder = builder.header(k, v);
            }
            if let Some(authority) = host_header {
                if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
                    builder = builder.header("host", authority);
                }
            }
            if let Some(body) = &body {
                builder = builder.body(body.clone());
            }
            let resp = match builder.send().await {
                Ok(resp) => resp,
                Err(e) => {
                    let f = network_failure(&e, e.is_timeout(), e.is_connect(), &url);
                    return Err(resolved(f, &url, redirected).await);
                }
            };
            let status = resp.status();
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok());
            let next = match location {
                Some(loc) if req.follow && is_followed(status) => loc.to_owned(),
                _ => return self.read(resp, url).await,
            };
            drop(resp);
            if hops.len() > MAX_REDIRECTS {
                return Err(Failure {
                    code: "ERR_HOOKGATE_TOO_MANY_REDIRECTS",
                    message: format!("redirect count exceeded ({MAX_REDIRECTS})"),
                    ..Failure::default()
                });
            }
            let next = url
                .join(&next)
                .map_err(|e| Failure {
                    code: "ERR_INVALID_URL",
                    message: format!("invalid redirect location `{next}`: {e}"),
                    ..Failure::default()
                })
                .and_then(|u| parse_http(u.as_str()))?;
            // The fetch standard: 303 becomes a GET (HEAD stays), and so does a POST after 301/302;
            // the body and the headers describing it go.
            let s = status.as_u16();
            if (s == 303 && method != reqwest::Method::HEAD)
                || ((s == 301 || s == 302) && method == reqwest::Method::POST)
            {
                method = reqwest::Method::GET;
                body = None;
                headers.retain(|(k, _)| !is_body_header(k));
            }
            // A hook's own `Host` names the first URL only; credentials do not cross origins.
            let cross_origin = next.origin() != url.origin();
            let dropped = |k: &str| {
                k.eq_ignore_ascii_case("host") || (cross_origin && is_credential_header(k))
            };
            headers.retain(|(k, _)| !dropped(k));
            url = next;
        }
    }

    /// One exchange for Node's `http`: the hook's headers and nothing else (hyper adds only
    /// `Host`, and `Content-Length` for a body), no redirect followed.
    async fn run_raw(
        &self,
        net: &Net,
        url: reqwest::Url,
        method: reqwest::Method,
        headers: Vec<(String, String)>,
        body: Option<Vec<u8>>,
        hops: &mut Vec<String>,
    ) -> Result<Response, Failure> {
        use http_body_util::BodyExt;
        hops.push(url.host_str().unwrap_or_default().to_ascii_lowercase());
        let (wire, host_header) = self.map(&url)?;
        let redirected = host_header.is_some();
        let mut builder = http::Request::builder()
            .method(method.as_str())
            .uri(wire.as_str());
        for (k, v) in &headers {
            builder = builder.header(k, v);
        }
        if let Some(authority) = host_header {
            if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
                builder = builder.header("host", authority);
            }
        }
        let request = builder
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.unwrap_or_default(),
            )))
            .map_err(|e| Failure {
                code: "ERR_INVALID_HTTP_TOKEN",
                message: format!("Invalid request: {e}"),
                ..Failure::default()
            })?;
        let resp = match net.raw.request(request).await {
            Ok(resp) => resp,
            Err(e) => {
                let f = network_failure(&e, false, e.is_connect(), &url);
                return Err(resolved(f, &url, redirected).await);
            }
        };
        let status = resp.status();
        let headers = header_pairs(resp.headers());
        let mut incoming = resp.into_body();
        let mut body = Vec::new();
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(|e| Failure {
                code: "ECONNRESET",
                message: "aborted".into(),
                detail: Some(chain(&e)),
                ..Failure::default()
            })?;
            let Ok(chunk) = frame.into_data() else {
                continue; // trailers
            };
            if body.len() + chunk.len() > self.max_body_bytes {
                return Err(self.too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response::new(status, url.to_string(), headers, body))
    }

    fn too_large(&self) -> Failure {
        Failure {
            code: "ERR_HOOKGATE_BODY_TOO_LARGE",
            message: format!(
                "response body larger than {} bytes ([hooks.egress] max_body_bytes)",
                self.max_body_bytes
            ),
            ..Failure::default()
        }
    }

    /// The final answer, body read up to the limit.
    async fn read(
        &self,
        mut resp: reqwest::Response,
        url: reqwest::Url,
    ) -> Result<Response, Failure> {
        let status = resp.status();
        let headers = header_pairs(resp.headers());
        let mut body = Vec::new();
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                // Node: the answer started, then the connection broke.
                Err(e) => {
                    return Err(Failure {
                        code: "ECONNRESET",
                        message: "aborted".into(),
                        detail: Some(chain(&e)),
                        ..Failure::default()
                    })
                }
            };
            if body.len() + chunk.len() > self.max_body_bytes {
                return Err(self.too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response::new(status, url.to_string(), headers, body))
    }
}

/// The log line of a request whose task is dropped before it finishes: the worker aborted it
/// (the hook's deadline passed, or the hook gave up on it: `req.abort()`, its own timeout).
/// Forgotten once the request has its answer.
struct Unfinished<'a> {
    hook: &'a str,
    method: &'a str,
    url: &'a str,
    waiting: AtomicBool,
    max_concurrent: usize,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if self.waiting.load(Ordering::Relaxed) {
            tracing::warn!(target: "hookgate::egress", hook = %self.hook, method = %self.method, url = %self.url,
                "outbound request abandoned when the hook stopped waiting for it: it was still waiting for an outbound request slot (the call's [hooks] max_requests_per_call, or the process's {} of [hooks.egress] max_concurrent)", self.max_concurrent);
        } else {
            tracing::info!(target: "hookgate::egress", hook = %self.hook, method = %self.method, url = %self.url,
                "outbound request cancelled before its answer: the hook stopped waiting for it");
        }
    }
}

/// An http(s) URL, or the error Node gives for anything else.
fn parse_http(url: &str) -> Result<reqwest::Url, Failure> {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(u),
        Ok(u) => Err(Failure {
            code: "ERR_INVALID_PROTOCOL",
            message: format!(
                "Protocol \"{}:\" not supported. Expected \"http:\"",
                u.scheme()
            ),
            ..Failure::default()
        }),
        Err(e) => Err(Failure {
            code: "ERR_INVALID_URL",
            message: format!("Invalid URL `{url}`: {e}"),
            ..Failure::default()
        }),
    }
}

/// The redirect statuses fetch follows (not 300 or 304).
fn is_followed(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The fetch standard's "request-body-header names", dropped with the body.
fn is_body_header(name: &str) -> bool {
    [
        "content-type",
        "content-length",
        "content-encoding",
        "content-language",
        "content-location",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// Dropped on a cross-origin redirect, as undici (Node's fetch) does.
fn is_credential_header(name: &str) -> bool {
    ["authorization", "proxy-authorization", "cookie"]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

/// Point `url` at `target`, keeping path, query and fragment.
fn redirect_url(url: &mut reqwest::Url, target: &RedirectTarget) -> Result<(), ()> {
    url.set_scheme(&target.scheme)?;
    url.set_host(Some(&target.host)).map_err(|_| ())?;
    url.set_port(target.port)?;
    Ok(())
}

/// The Rustls configuration of [`RawClient`]: the platform's roots, as reqwest's.
fn raw_client() -> anyhow::Result<RawClient> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(IDLE_PER_HOST)
            .build(https),
    )
}

/// The client's whole account of an error (its cause chain), for the log.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        src = inner.source();
    }
    message
}

/// Node names the address it connected to: the first one the name resolves to (an IP literal is
/// its own). Not for a redirected host: where it went is not the hook's business.
async fn resolved(mut f: Failure, url: &reqwest::Url, redirected: bool) -> Failure {
    if f.syscall != Some("connect")
        || redirected
        || !matches!(url.host(), Some(url::Host::Domain(_)))
    {
        return f;
    }
    let (Some(host), Some(port)) = (f.peer.clone(), f.port) else {
        return f;
    };
    if let Ok(Some(a)) = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map(|mut a| a.next())
    {
        let ip = a.ip().to_string();
        f.message = format!("connect {} {ip}:{port}", f.code);
        f.peer = Some(ip);
    }
    f
}

/// A certificate the TLS client refused, as Node (OpenSSL) names it: code and message only, as
/// Node's error has. Rustls's reasons map onto OpenSSL's nearest: an unknown issuer is
/// `UNABLE_TO_GET_ISSUER_CERT_LOCALLY` (OpenSSL tells a self-signed leaf apart when it is marked
/// as a CA, which rustls reports as `CaUsedAsEndEntity`).
pub(crate) fn tls_failure(detail: &str, host: &str) -> Option<(&'static str, String)> {
    if !detail.contains("invalid peer certificate") {
        return None;
    }
    let (code, message) = if detail.contains("CaUsedAsEndEntity") {
        (
            "DEPTH_ZERO_SELF_SIGNED_CERT",
            "self-signed certificate".to_owned(),
        )
    } else if detail.contains("Expired") {
        ("CERT_HAS_EXPIRED", "certificate has expired".to_owned())
    } else if detail.contains("NotValidForName") {
        (
            "ERR_TLS_CERT_ALTNAME_INVALID",
            format!("Hostname/IP does not match certificate's altnames: Host: {host}. is not in the cert's altnames"),
        )
    } else if detail.contains("UnknownIssuer") {
        (
            "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
            "unable to get local issuer certificate".to_owned(),
        )
    } else {
        (
            "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
            "unable to verify the first certificate".to_owned(),
        )
    };
    Some((code, message))
}

/// The OS error under a reqwest error, if the failure came from a socket.
fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut src = e.source();
    while let Some(inner) = src {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        src = inner.source();
    }
    None
}

/// A failed exchange with `url` (the host the hook named, before the redirection map) as Node
/// reports it: `connect ECONNREFUSED 127.0.0.1:80` (errno -111, syscall `connect`, the address
/// and port connected to), `getaddrinfo ENOTFOUND host` (errno -3008, `hostname`), and
/// `socket hang up` (ECONNRESET) for a connection that broke otherwise. The address is the
/// hook's host as named; [`resolved`] turns a name into the IP Node would name.
fn network_failure(
    e: &(dyn std::error::Error + 'static),
    is_timeout: bool,
    is_connect: bool,
    url: &reqwest::Url,
) -> Failure {
    let detail = chain(e);
    let host = match url.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    let port = url.port_or_known_default().unwrap_or(80);
    let lower = detail.to_ascii_lowercase();
    if is_timeout {
        return Failure {
            code: "ETIMEDOUT",
            message: "the hook's timeout was reached".into(),
            detail: Some(detail),
            ..Failure::default()
        };
    }
    if lower.contains("dns error") || lower.contains("failed to lookup") {
        let (code, errno) = if lower.contains("temporary failure") {
            ("EAI_AGAIN", -3001)
        } else {
            ("ENOTFOUND", -3008)
        };
        return Failure {
            code,
            message: format!("getaddrinfo {code} {host}"),
            errno: Some(errno),
            syscall: Some("getaddrinfo"),
            peer: Some(host),
            detail: Some(detail),
            ..Failure::default()
        };
    }
    let connect = match io_kind(e) {
        Some(std::io::ErrorKind::ConnectionRefused) => Some(("ECONNREFUSED", -111)),
        Some(std::io::ErrorKind::HostUnreachable) => Some(("EHOSTUNREACH", -113)),
        Some(std::io::ErrorKind::NetworkUnreachable) => Some(("ENETUNREACH", -101)),
        Some(std::io::ErrorKind::TimedOut) if is_connect => Some(("ETIMEDOUT", -110)),
        _ if lower.contains("connection refused") => Some(("ECONNREFUSED", -111)),
        _ => None,
    };
    if let Some((code, errno)) = connect {
        let address = host;
        return Failure {
            code,
            message: format!("connect {code} {address}:{port}"),
            errno: Some(errno),
            syscall: Some("connect"),
            peer: Some(address),
            port: Some(port),
            detail: Some(detail),
        };
    }
    if let Some((code, message)) = tls_failure(&detail, &host) {
        return Failure {
            code,
            message,
            detail: Some(detail),
            ..Failure::default()
        };
    }
    if io_kind(e) == Some(std::io::ErrorKind::ConnectionReset) && !is_connect {
        return Failure {
            code: "ECONNRESET",
            message: "read ECONNRESET".into(),
            errno: Some(-104),
            syscall: Some("read"),
            detail: Some(detail),
            ..Failure::default()
        };
    }
    // Node's name for a connection that ended without an answer for any other reason.
    Failure {
        code: "ECONNRESET",
        message: "socket hang up".into(),
        detail: Some(detail),
        ..Failure::default()
    }
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

/// A response's headers as the JS side takes them: name and value, in order, values read as
/// UTF-8 (lossily, as Node's latin1 would show them garbled anyway).
fn header_pairs(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
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

    #[test]
    fn a_socket_to_a_redirected_name_goes_to_the_targets_port_only_its_schemes_default_if_unnamed()
    {
        let cfg: EgressConfig = toml::from_str(
            "allow_hosts = [\"smtp.example.test\", \"redis.internal\"]\n[redirect]\n\"smtp.example.test\" = \"http://127.0.0.1\"\n\"redis.internal\" = \"https://127.0.0.1:6380\"\n",
        )
        .unwrap();
        let egress = Egress::refusing(&cfg);
        for port in [25, 22, 6379] {
            let w = egress
                .socket_target("test", "smtp.example.test", port)
                .unwrap();
            assert_eq!(
                (w.host.as_str(), w.port),
                ("127.0.0.1", 80),
                "asked for {port}"
            );
            let w = egress
                .socket_target("test", "redis.internal", port)
                .unwrap();
            assert_eq!(w.port, 6380, "asked for {port}");
        }
        let ip = egress
            .synthetic_for("smtp.example.test")
            .unwrap()
            .to_string();
        assert_eq!(egress.socket_target("test", &ip, 22).unwrap().port, 80);
    }
}
