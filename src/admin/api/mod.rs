//! The management API: Auth0's `/api/v2/hooks` routes (what auth0-deploy-cli, the Terraform
//! provider and the `auth0` SDK call) and hookgate's own `/api/hookgate/...` routes, over HTTPS on
//! its own listener (`[admin] api_listen`, loopback by default). An `axum` app on hyper, served
//! with `tokio-rustls`, run as a pingora background service beside the proxy.
//!
//! ```text
//! TLS accept ─▶ hyper http1 ─▶ auth::middleware (token, scope table, rate limit)
//!                               ├─▶ hooks.rs   /api/v2/hooks...    (Auth0's shapes, strict)
//!                               ├─▶ native.rs  /api/hookgate/...   (hookgate's own fields, outbox, status)
//!                               └─▶ routes other parts mount (Api::with_routes)
//! handlers ─▶ admin::store (the files; blocking, on spawn_blocking) ─▶ hot reload picks the change up
//! ```
//!
//! A write answers once it is on disk and, within [`SETTLE_WAIT`], once a generation built after
//! it is in force, so a GET right after a PATCH sees it and the next request runs it.
//!
//! In cluster mode a write goes through [`crate::cluster::Cluster::write`]: published as the next
//! cluster revision, it answers once this replica's generation of that revision is in force (every
//! answer then carries `Hookgate-Revision`, the revision this replica's files hold); Redis
//! unreachable, it answers 503 `cluster_unavailable` in Auth0's error shape and changes nothing.
//!
//! Owns: the listener, the routes' shapes and statuses. Must not: write files itself (the store
//! does), log request bodies (secrets travel in them), or touch the proxy's listeners.

pub mod auth;
pub mod errors;
mod hooks;
mod native;
pub mod runs;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::admin::store::{Store, StoreError};
use crate::cluster::{Cluster, Unavailable};
use crate::config::Config;
use crate::outbox::Outbox;
use crate::reload::Status as ReloadStatus;
use auth::Auth;
use errors::ApiError;

/// How long a write waits for the generation that contains it before answering anyway.
pub const SETTLE_WAIT: Duration = Duration::from_secs(3);

/// What handlers share.
pub struct ApiState {
    pub store: Store,
    pub reload: Arc<ReloadStatus>,
    pub outbox: Arc<Outbox>,
    /// The configuration hookgate started with (its upstream, for the status route).
    pub config: Arc<Config>,
    /// Cluster mode: changes are published to every replica through it.
    pub cluster: Option<Arc<Cluster>>,
}

pub type Shared = Arc<ApiState>;

impl ApiState {
    fn generation(&self) -> u64 {
        self.reload.detail()["generation"].as_u64().unwrap_or(0)
    }

    /// Run a store operation off the async threads; if it wrote anything, wait (bounded) for a
    /// generation newer than the one in force when its first write landed. That one is sampled
    /// while the operation runs, not before it: validating a script can itself cause a reload
    /// (a new trigger folder), which must not count as the one carrying the change. A reload
    /// caused by the write comes at least `[hooks] debounce_ms` after it.
    async fn write<T: Send + 'static>(
        self: &Arc<Self>,
        op: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        if let Some(cluster) = self.cluster.clone() {
            return self.write_cluster(cluster, op).await;
        }
        let writes = crate::admin::store::writes();
        let mut before = self.generation();
        let state = self.clone();
        let task = tokio::task::spawn_blocking(move || op(&state.store));
        tokio::pin!(task);
        let out = loop {
            tokio::select! {
                done = &mut task => break done,
                _ = tokio::time::sleep(Duration::from_millis(1)) => {
                    if crate::admin::store::writes() == writes {
                        before = self.generation();
                    }
                }
            }
        };
        let out =
            out.map_err(|e| ApiError::internal(format!("the change did not complete: {e}")))??;
        if crate::admin::store::writes() != writes {
            let deadline = Instant::now() + SETTLE_WAIT;
            while self.generation() <= before && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        Ok(out)
    }

    /// Cluster mode: the operation as a cluster change; then wait (bounded) for this replica's
    /// generation of its revision.
    async fn write_cluster<T: Send + 'static>(
        self: &Arc<Self>,
        cluster: Arc<Cluster>,
        op: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let state = self.clone();
        let out = tokio::task::spawn_blocking(move || cluster.write(|| op(&state.store)))
            .await
            .map_err(|e| ApiError::internal(format!("the change did not complete: {e}")))?;
        let (value, revision) = match out {
            Err(Unavailable(message)) => {
                return Err(ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "cluster_unavailable",
                    message,
                ))
            }
            Ok(result) => result?,
        };
        if let Some(revision) = revision {
            let deadline = Instant::now() + SETTLE_WAIT;
            while self.generation() < revision && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Ok(value)
    }

    /// A read of the store, off the async threads.
    async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        op: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let state = self.clone();
        Ok(tokio::task::spawn_blocking(move || op(&state.store))
            .await
            .map_err(|e| ApiError::internal(format!("the read did not complete: {e}")))??)
    }
}

/// The management API, bound and ready to serve.
pub struct Api {
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    auth: Arc<Auth>,
    routes: Router,
    pub addr: SocketAddr,
}

impl Api {
    /// Bind the API's address and load its certificate and tokens; `None` (logged) when no
    /// `[[admin.token]]` is configured: an API nobody can call is not started.
    pub fn bind(
        config: Arc<Config>,
        reload: Arc<ReloadStatus>,
        outbox: Arc<Outbox>,
        cluster: Option<Arc<Cluster>>,
    ) -> anyhow::Result<Option<Api>> {
        let auth = Auth::from_config(&config.admin, config.base_dir())?;
        if auth.is_empty() {
            tracing::info!("no [[admin.token]] is configured: the management API is not started");
            return Ok(None);
        }
        let addr = config.admin.api_listen;
        let cert = tls::load(&config)?;
        if !addr.ip().is_loopback() {
            tracing::warn!(
                api_listen = %addr,
                "the management API listens beyond loopback: anyone who can reach it can try tokens; keep it on a private network{}",
                if cert.self_signed {
                    ", and configure [admin] tls_cert/tls_key: the self-signed certificate only names localhost"
                } else {
                    ""
                }
            );
        }
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr} ([admin] api_listen): {e}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        // Absolute, so the line can be pasted into NODE_EXTRA_CA_CERTS from anywhere.
        let cert_path = std::path::absolute(&cert.cert_path).unwrap_or(cert.cert_path.clone());
        if cert.self_signed {
            tracing::info!(
                api = %format!("https://{addr}"),
                certificate = %cert_path.display(),
                "management API listening with a self-signed certificate: trust it with NODE_EXTRA_CA_CERTS={}",
                cert_path.display()
            );
        } else {
            tracing::info!(api = %format!("https://{addr}"), certificate = %cert_path.display(), "management API listening");
        }
        let state = Arc::new(ApiState {
            store: Store::for_config(&config),
            reload,
            outbox,
            config,
            cluster: cluster.clone(),
        });
        let mut routes = hooks::routes(state.clone()).merge(native::routes(state));
        if let Some(cluster) = cluster {
            routes = routes.layer(axum::middleware::map_response(
                move |mut response: axum::response::Response| {
                    let revision = cluster.revision();
                    async move {
                        response
                            .headers_mut()
                            .insert("hookgate-revision", axum::http::HeaderValue::from(revision));
                        response
                    }
                },
            ));
        }
        Ok(Some(Api {
            listener,
            tls: cert.server,
            auth: Arc::new(auth),
            routes,
            addr,
        }))
    }

    /// Mount more routes (run records, the Runner): they go through the same authentication,
    /// and their scopes come from [`auth::SCOPE_TABLE`].
    pub fn with_routes(mut self, routes: Router) -> Api {
        self.routes = self.routes.merge(routes);
        self
    }

    fn app(&self) -> Router {
        self.routes
            .clone()
            .fallback(|| async {
                ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "not_found",
                    "no such route",
                )
            })
            .layer(DefaultBodyLimit::max(1 << 20))
            .layer(axum::middleware::from_fn_with_state(
                self.auth.clone(),
                auth::middleware,
            ))
            // Outside the token check: a browser navigating to the page cannot send one.
            .merge(crate::admin::dashboard::router())
    }
}

/// A TLS handshake or a request head slower than this closes the connection.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[async_trait]
impl BackgroundService for Api {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let listener = match self
            .listener
            .try_clone()
            .and_then(tokio::net::TcpListener::from_std)
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "the management API cannot accept connections");
                return;
            }
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls.clone());
        let app = self.app();
        loop {
            let (tcp, _peer) = tokio::select! {
                _ = shutdown.changed() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "management API: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "management API: TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HANDSHAKE_TIMEOUT)
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    }
}
