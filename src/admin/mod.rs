//! The admin listener: `/healthz`, `/readyz` and `/metrics` (Prometheus text: reloads, hook calls
//! refused as overloaded, the post-event outbox, and change-password mapping misses), on their own
//! address (127.0.0.1 by default) so that probes never share a port with traffic from the outside.
//! Beside it: [`store`] (the files as the store of record of hooks, usable without a running
//! hookgate) and [`api`] (the management API over HTTPS on `[admin] api_listen`).
//!
//! Must not: proxy anything, or expose configuration secrets.

pub mod api;
pub mod dashboard;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::json;

use crate::config::Config;
use crate::outbox::Outbox;
use crate::reload::Status as ReloadStatus;

pub struct Admin {
    /// The configuration hookgate started with (its upstream needs a restart to change).
    pub config: Arc<Config>,
    pub reload: Arc<ReloadStatus>,
    /// The post-event outbox (closed, and absent from `/readyz` and `/metrics`, while no route
    /// produces post-events).
    pub outbox: Arc<Outbox>,
}

impl Admin {
    /// Ready means: the configuration is loaded (it is, or this would not run), the upstream
    /// accepts a TCP connection now, and, when a route produces post-events, the outbox can store
    /// one (its last write succeeded and its disk keeps `outbox.min_free_mb`): a signup answered
    /// while it cannot would be refused; in cluster mode, the shared hooks were read once and
    /// their revision is the generation in force (losing Redis later leaves the replica ready,
    /// serving its last generation, with a `warning` in the `cluster` object). A rejected reload does not make hookgate unready (the
    /// previous generation serves), but the `reload` detail names the problems.
    async fn readiness(&self) -> (u16, serde_json::Value) {
        let up = &self.config.upstream;
        let probe = tokio::time::timeout(
            up.connect_timeout.min(Duration::from_secs(2)),
            tokio::net::TcpStream::connect(up.socket_addr),
        )
        .await;
        let (ready, upstream) = match probe {
            Ok(Ok(_)) => (true, json!({ "address": up.address, "reachable": true })),
            Ok(Err(e)) => (
                false,
                json!({ "address": up.address, "reachable": false, "error": e.to_string() }),
            ),
            Err(_) => (
                false,
                json!({ "address": up.address, "reachable": false, "error": "connect timed out" }),
            ),
        };
        let mut body = json!({
            "config": { "file": self.config.path.display().to_string(), "loaded": true },
            "upstream": upstream,
            "reload": self.reload.detail(),
        });
        let mut ready = ready;
        if let Some((writable, detail)) = self.outbox.readiness() {
            ready &= writable;
            body["outbox"] = detail;
        }
        // Cluster mode: the shared hooks read and built (Redis lost afterwards: still ready).
        if let Some((synced, detail)) = self.reload.cluster_readiness() {
            ready &= synced;
            body["cluster"] = detail;
        }
        body["status"] = json!(if ready { "ready" } else { "not ready" });
        (if ready { 200 } else { 503 }, body)
    }
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let (status, body) = match session.req_header().uri.path() {
            "/healthz" => (200, json!({ "status": "ok" })),
            "/readyz" => self.readiness().await,
            "/metrics" => {
                let mut text = self.reload.metrics();
                text.push_str(&crate::engine::metrics());
                text.push_str(&self.outbox.metrics());
                // Always present (zero until a change-password route misses a field): gating it
                // on the routes hookgate started with hid it after a reload added the route.
                text.push_str(&crate::points::change_password::metrics());
                // Per hook and point (calls by outcome, latency), the run-record store, and
                // requests by route and status.
                text.push_str(&crate::runs::metrics());
                crate::metrics::ROUTE_REQUESTS.write(&mut text);
                let body = text.into_bytes();
                return Response::builder()
                    .status(200)
                    .header("content-type", "text/plain; version=0.0.4")
                    .header("content-length", body.len())
                    .header("cache-control", "no-store")
                    .body(body)
                    .expect("static response parts are valid");
            }
            _ => (
                404,
                json!({ "error": "not_found", "error_description": "admin endpoints: /healthz, /readyz, /metrics" }),
            ),
        };
        let body = body.to_string().into_bytes();
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("content-length", body.len())
            .header("cache-control", "no-store")
            .body(body)
            .expect("static response parts are valid")
    }
}

/// Is something answering `/healthz` at this admin address? Used by tests and scripts.
pub fn is_listening(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}
