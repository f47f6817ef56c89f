//! The proxy: pingora's `ProxyHttp` for hookgate's listeners.
//!
//! A request travels through these phases, in this order:
//!
//! ```text
//! new_ctx (takes the Live snapshot it keeps to the end) ─▶ request_filter
//!     path::parse_target (normalise once; ambiguous spellings: 400) ─▶ routing::decide
//!     ─┬─ refused (would reach a hooked endpoint unhooked: 405 / 400) ─▶ done (Ok(true))
//!      ├─ route has a point (exchange) ─▶ exchange::handle ─▶ done (Ok(true))
//!      │     read body (bounded) → point.before_upstream → upstream via connector
//!      │     → point.after_upstream → write the answer with exact framing
//!      ├─ no route: local::answer (JWKS, discovery) ─▶ done, or on as passthrough
//!      └─ passthrough ─▶ upstream_peer ─▶ upstream_request_filter (the normalised or rewritten path)
//!                        ─▶ pingora streams request and response untouched
//! any failure to reach the upstream ─▶ fail_to_proxy (OAuth-shaped JSON 502/504)
//! logging (always last) ─▶ access log; the in-flight guard in the ctx drops here
//! ```
//!
//! Owns: routing, the passthrough path, the framing of exchange routes and writing every answer
//! (`respond`: a domain failure to bytes). Must not: know what any particular extensibility point
//! does with a request — that lives in `crate::points`.

pub mod exchange;
pub mod local;
pub mod path;
pub mod respond;
pub mod routing;
pub mod transport;
pub mod upstream;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};

use crate::config::{Config, Route};
use crate::engine::Engine;
use crate::outbox::Outbox;
use crate::points::{Failure, Shape};
use crate::reload::Live;
use crate::runs::Runs;
use crate::token::{JwksSource, UpstreamKeys};
use upstream::Upstream;

/// What every proxy thread shares: one of these per process, behind an `Arc`.
pub struct Shared {
    /// Configuration, hooks and keys in force, replaced whole by hot reload. A request loads it
    /// once, in `new_ctx`, and keeps that snapshot throughout (`RequestCtx::live`).
    pub live: Arc<ArcSwap<Live>>,
    pub engine: Engine,
    /// The upstream's keys, to verify its tokens before hooks see them (one cache for all).
    pub upstream_keys: UpstreamKeys,
    pub inflight: Arc<AtomicUsize>,
    /// The durable queue of post-events; open when a route produces them (a closed one refuses
    /// every event, and says why).
    pub outbox: Arc<Outbox>,
    /// Where hook calls leave their run records.
    pub runs: Runs,
    next_request: AtomicU64,
    /// Request ids start with the process id, read once: `getpid` is a system call.
    pid: u32,
}

/// The proxy one pingora service runs. With `server.work_stealing = false` (the default) there
/// is one per proxy thread, each with its own upstream connection pool, so a pooled connection
/// never crosses threads (see `server.rs`).
pub struct Proxy {
    pub shared: Arc<Shared>,
    /// Built once from the configuration at start (`[upstream]` needs a restart to change).
    pub upstream: Upstream,
}

impl std::ops::Deref for Proxy {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl Shared {
    pub fn new(
        live: Arc<ArcSwap<Live>>,
        engine: Engine,
        inflight: Arc<AtomicUsize>,
        outbox: Arc<Outbox>,
        runs: Runs,
    ) -> Arc<Self> {
        let config = live.load().config.clone();
        let jwks = match &config.token.upstream_jwks_url {
            Some(url) => JwksSource::Url(url.clone()),
            None => JwksSource::Discovery(
                config
                    .token
                    .discovery_paths
                    .iter()
                    .map(|p| format!("http://{}{p}", config.upstream.address))
                    .collect(),
            ),
        };
        Arc::new(Shared {
            upstream_keys: UpstreamKeys::new(jwks),
            live,
            engine,
            inflight,
            outbox,
            runs,
            next_request: AtomicU64::new(1),
            pid: std::process::id(),
        })
    }
}

impl Proxy {
    pub fn new(shared: Arc<Shared>) -> Self {
        let config = shared.live.load().config.clone();
        Proxy {
            upstream: Upstream::new(config.upstream.clone()),
            shared,
        }
    }
}

/// Counts a request as in flight for as long as it lives, so shutdown can wait for it.
pub struct InflightGuard(Arc<AtomicUsize>);

impl InflightGuard {
    fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        InflightGuard(counter.clone())
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Per-request state.
pub struct RequestCtx {
    /// The client's `X-Request-Id`, or hookgate's own (process id and a counter), written out
    /// only when something reads it ([`RequestCtx::request_id`]): a passthrough request that
    /// logs nothing never formats one.
    request_id: String,
    /// This request's number in the process, for the request id.
    number: u64,
    /// The process id, for the request id.
    pid: u32,
    /// What was in force when the request started: a reload never changes it mid-way.
    pub live: Arc<Live>,
    /// Index into `live.config.routes`.
    pub route: Option<usize>,
    /// The path and query the upstream is sent (the normalised one hookgate routed on, or the
    /// route's rewrite); `None` leaves the request's own (`OPTIONS *`, or a request line already
    /// in that spelling).
    pub upstream_uri: Option<http::Uri>,
    pub started: Instant,
    _inflight: InflightGuard,
}

impl RequestCtx {
    /// The request id every log line and run record of this request carries.
    pub fn request_id(&mut self) -> &str {
        if self.request_id.is_empty() {
            self.request_id = format!("{:08x}{:08x}", self.pid, self.number);
        }
        &self.request_id
    }

    pub fn route(&self) -> Option<&Route> {
        self.live.route(self.route)
    }

    pub fn config(&self) -> &Config {
        &self.live.config
    }
}

/// Answer a request whose target hookgate will not route: 400 `invalid_request`, and the
/// connection closes (its body, if any, is unread).
async fn refuse(session: &mut Session, why: &str) -> Result<bool> {
    session.set_keepalive(None);
    let err = Failure::BadRequest(why.to_string());
    respond::render(&err, Shape::OAuth).write(session).await?;
    Ok(true)
}

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            request_id: String::new(),
            number: self.next_request.fetch_add(1, Ordering::Relaxed),
            pid: self.pid,
            live: self.live.load_full(),
            route: None,
            upstream_uri: None,
            started: Instant::now(),
            _inflight: InflightGuard::new(&self.inflight),
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        // A client may send its next request before reading this answer (RFC 9112 §9.3.2):
        // answer each in order. pingora's default closes the connection after the first and
        // drops the rest unanswered. The setting carries over to the connection's next requests.
        session.set_pipelining_enabled(true);
        if let Some(id) = session
            .req_header()
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
        {
            ctx.request_id = id.to_string();
        }
        // Route on the path as the upstream will read it, never on the bytes as received: see
        // `path` and `routing` for why, and for what is refused.
        let req = session.req_header();
        let method = req.method.clone();
        let target = match path::parse_target(req.raw_path()) {
            Ok(Some(target)) => target,
            // `OPTIONS *` asks about the server as a whole and names no endpoint.
            Ok(None) if method == http::Method::OPTIONS => return Ok(false),
            Ok(None) => {
                return refuse(session, crate::config::path::Refusal::Form.description()).await
            }
            Err(why) => return refuse(session, why.description()).await,
        };
        let live = ctx.live.clone();
        let upstream = match routing::decide(&live.config.routes, method.as_str(), &target) {
            routing::Decision::Route { index, upstream } => {
                ctx.route = Some(index);
                upstream
            }
            routing::Decision::Unrouted { upstream } => upstream,
            routing::Decision::Refuse { error, allow } => {
                session.set_keepalive(None);
                error.write_with_allow(session, allow.as_deref()).await?;
                return Ok(true);
            }
        };
        // Most requests are already in their canonical spelling: then the request line goes
        // upstream as received, with no URI to build.
        if upstream.as_bytes() != session.req_header().raw_path() {
            match upstream.parse::<http::Uri>() {
                Ok(uri) => ctx.upstream_uri = Some(uri),
                Err(_) => {
                    return refuse(session, "the request path cannot be forwarded").await;
                }
            }
        }
        let Some(route) = ctx.route() else {
            return local::answer(self, &live, session, &target).await;
        };
        if route.kind.trigger().is_none() {
            return Ok(false);
        }
        exchange::handle(self, session, ctx).await?;
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        Ok(Box::new(self.upstream.peer()))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // The upstream reads exactly the path hookgate routed on (and an origin-form target,
        // whatever form the client used).
        if let Some(uri) = &ctx.upstream_uri {
            upstream_request.set_uri(uri.clone());
        }
        routing::strip_overrides(&ctx.live.config.routes, upstream_request);
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        _ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let failure = match e.esource() {
            ErrorSource::Upstream => upstream::upstream_error(
                &self.upstream.config().address,
                e,
                self.upstream.config().read_timeout,
            ),
            ErrorSource::Downstream => match e.etype() {
                ErrorType::ReadTimedout => {
                    Failure::BodyTooSlow("the request body arrived too slowly".into())
                }
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => {
                    // The client is gone: there is nobody to answer.
                    return FailToProxy {
                        error_code: 0,
                        can_reuse_downstream: false,
                    };
                }
                _ => Failure::BadRequest(format!("malformed request: {}", e.etype().as_str())),
            },
            _ => Failure::Internal("internal error in hookgate".into()),
        };
        let err = respond::render(&failure, Shape::OAuth);
        tracing::warn!(error = %e, status = err.status, "request failed");
        // Once part of the answer is on the wire, another header would corrupt it: close instead.
        if session.response_written().is_none() {
            if let Err(write_err) = err.write(session).await {
                tracing::debug!(error = %write_err, "could not send the error response");
            }
        }
        FailToProxy {
            error_code: err.status,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .unwrap_or(0);
        crate::metrics::ROUTE_REQUESTS.count(ctx.route().map_or("-", |r| r.name.as_str()), status);
        if !ctx.config().server.access_log {
            return;
        }
        let request_id = ctx.request_id().to_string();
        let req = session.req_header();
        tracing::info!(
            target: "hookgate::access",
            request_id = %request_id,
            method = %req.method,
            path = %req.uri.path(),
            generation = ctx.live.number,
            route = ctx.route().map(|r| r.name.as_str()).unwrap_or("-"),
            status,
            duration_us = ctx.started.elapsed().as_micros() as u64,
            error = e.map(|e| e.etype().as_str()),
        );
    }
}
