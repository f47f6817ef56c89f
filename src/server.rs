//! Assembling and running the pingora server from a validated [`Config`], and shutting it down.
//!
//! Shutdown: pingora, on SIGTERM, stops accepting and then sleeps its whole grace period before
//! it stops the runtimes (dropping whatever is in flight, unanswered), however idle it is.
//! hookgate counts the requests in flight instead: it exits as soon as they are all answered.
//! When the configured grace period (`server.grace_period_secs`, all of it) is over, exchange
//! requests still in flight answer 503 in their route's shape (`temporarily_unavailable`), and
//! hookgate exits once they have, or [`ANSWER_WINDOW`] later. pingora's own grace period is set
//! beyond that, so it never stops the runtimes first. Passthrough requests still in flight then
//! are cut: pingora streams them and offers no way to answer in their place.
//! The outbox dispatcher's batch under way counts too, and the outbox is synced last, so a
//! deploy does not run the post-event hooks of the last signups again after the restart.
//!
//! Every client connection goes through [`crate::proxy::transport::Guard`] (a deadline on
//! request heads, pingora's own error answers made JSON) before pingora's HTTP code.
//!
//! Owns: assembly (the services, their addresses and threads, what each is handed) and shutdown
//! (the drain above). Must not: load or validate what the configuration names (`reload::load`
//! does, the same for `check`, `serve` and every reload), or handle a request (`proxy` does).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::apps::http_app::HttpServer;
use pingora::listeners::TcpSocketOptions;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::background::background_service;
use pingora::services::listening::Service;

use crate::admin::Admin;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::engine::Engine;
use crate::outbox::dispatch::Dispatcher;
use crate::outbox::Outbox;
use crate::proxy::transport::Guard;
use crate::proxy::{exchange, Proxy, Shared};
use crate::reload::cluster::ClusterHealth;
use crate::reload::{self, Live, LiveHooks, Loaded, Reloader};
use crate::runs::shared::SharedRuns;
use crate::runs::Runs;

pub fn run(config: Config, loaded: Loaded) -> anyhow::Result<()> {
    let config = Arc::new(config);
    for w in &loaded.generation.warnings {
        tracing::warn!("{w}");
    }
    let engine = Engine::start(&config.hooks)?;
    // Run records: `[runs]` (memory, and a redb file with `dir`); never fails to open.
    let runs = Runs::open(&config.runs);
    // Cluster mode: generation 0 serves this replica's own files until the cluster's revision
    // is read; every later generation is numbered by its revision.
    let first = if config.cluster.is_some() { 0 } else { 1 };
    let live = Arc::new(ArcSwap::from_pointee(Live::new(
        first,
        config.clone(),
        loaded,
    )));
    // The outbox is open before anything is served: an accepted signup's event must have a
    // place to go. Without a route that produces events it stays closed until a reload adds one
    // (the reloader opens it then, before that generation serves).
    let outbox = Arc::new(Outbox::closed(&config.outbox));
    if config.outbox_needed() {
        outbox.ensure_open()?;
    }
    // The first generation's hooks are evaluated on every worker before anything is served.
    crate::reload::warm(&engine, first, &live.load().generation);
    let reloader =
        Reloader::new(config.clone(), live.clone(), outbox.clone()).warming(engine.clone());
    let reload_status = reloader.status();
    let (cluster, revisions) = match &config.cluster {
        None => (None, None),
        Some(cc) => {
            let health = Arc::new(ClusterHealth::new(&cc.replica));
            reload_status.set_cluster(health.clone());
            runs.share(SharedRuns::start(cc)?);
            let (tx, rx) = crossbeam_channel::unbounded();
            let cluster = Cluster::start(
                cc,
                crate::cluster::files::Paths::of(&config),
                crate::admin::store::process_lock(),
                health,
                tx,
            )?;
            (Some(cluster), Some(rx))
        }
    };
    // Bound before anything is served, so a taken port or a bad certificate stops the start.
    let api = crate::admin::api::Api::bind(
        config.clone(),
        reload_status.clone(),
        outbox.clone(),
        cluster,
    )?
    .map(|api| {
        api.with_routes(crate::admin::api::runs::routes(
            runs.clone(),
            config.clone(),
        ))
    });
    match revisions {
        None => reload::watch::spawn(reloader)?,
        Some(rx) => reload::watch::spawn_revisions(reloader, rx)?,
    }
    let grace = config.server.grace_period;
    let conf = ServerConf {
        threads: config.server.threads,
        // Pingora sleeps this long unconditionally after SIGTERM and then drops what is in
        // flight; the drain watcher below ends the process first: as soon as nothing is in
        // flight, at the latest the grace period plus ANSWER_WINDOW.
        grace_period_seconds: Some(grace.as_secs() + ANSWER_WINDOW.as_secs() + 2),
        graceful_shutdown_timeout_seconds: Some(1),
        upstream_keepalive_pool_size: config.upstream.keepalive_pool_size,
        work_stealing: config.server.work_stealing,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    // The dispatcher runs as a background service next to the listeners; it waits for the
    // outbox to be opened if it is not yet.
    server.add_service(background_service(
        "outbox dispatcher",
        Dispatcher {
            outbox: outbox.clone(),
            hooks: Arc::new(LiveHooks {
                live: live.clone(),
                engine: engine.clone(),
                runs: runs.clone(),
            }),
            config: config.outbox.clone(),
        },
    ));
    let inflight = Arc::new(AtomicUsize::new(0));
    let shared = Shared::new(live, engine, inflight.clone(), outbox.clone(), runs.clone());
    let threads = config.server.threads.max(1);
    // Work stealing: one service, one runtime for all threads (pingora's default). Otherwise one
    // service per thread, each a one-thread runtime with its own `Proxy` and so its own upstream
    // connection pool and its own socket on the listen address (SO_REUSEPORT), as nginx's
    // workers with `reuseport` do. With
    // one service of N no-steal threads, pingora hands a pooled upstream connection from its
    // idle watcher on one thread to a request on another: a wake-up across threads per request,
    // and under load a race it loses ("failed to acquire reusable stream"), closing the
    // connection and opening a new one.
    // Port 0 would give each service a port of its own: one service, then.
    let services =
        if config.server.work_stealing || config.server.listen.iter().any(|a| a.port() == 0) {
            1
        } else {
            threads
        };
    for addr in &config.server.listen {
        ensure_free(*addr)?;
    }
    // One service: pingora's own listener. Several: a socket each, see `listen_key`.
    let reuseport = (services > 1).then(|| {
        let mut options = TcpSocketOptions::default();
        options.so_reuseport = Some(true);
        options
    });
    for i in 0..services {
        let name = match services {
            1 => "hookgate".to_string(),
            _ => format!("hookgate-{i}"),
        };
        let proxy = pingora::proxy::http_proxy(&server.configuration, Proxy::new(shared.clone()));
        let mut proxy_service = Service::new(
            name,
            Guard {
                inner: Arc::new(proxy),
                header_timeout: config.server.header_read_timeout,
            },
        );
        // All the threads in one service, or one thread in each.
        proxy_service.threads = Some(threads / services);
        for addr in &config.server.listen {
            match &reuseport {
                None => proxy_service.add_tcp(&addr.to_string()),
                Some(options) => {
                    proxy_service.add_tcp_with_settings(&listen_key(*addr, i), options.clone())
                }
            }
        }
        server.add_service(proxy_service);
    }

    let mut admin = Service::new(
        "hookgate admin".to_string(),
        HttpServer::new_app(Admin {
            config: config.clone(),
            reload: reload_status,
            outbox: outbox.clone(),
        }),
    );
    admin.add_tcp(&config.server.admin_listen.to_string());
    admin.threads = Some(1);
    server.add_service(admin);
    if let Some(api) = api {
        server.add_service(background_service("hookgate management API", api));
    }

    tracing::info!(
        listen = ?config.server.listen,
        admin = %config.server.admin_listen,
        upstream = %config.upstream.address,
        routes = config.routes.len(),
        "hookgate starting"
    );
    server.run(RunArgs {
        shutdown_signal: Box::new(DrainOnTerm {
            inflight,
            grace,
            outbox: Some(outbox),
            runs,
        }),
    });
    Ok(())
}

/// The address service `i` binds, written so that pingora, which keys the sockets it has bound by
/// their address text and hands the same socket to every service naming it, binds a socket of
/// its own for each: `127.0.0.1:8080`, `127.0.0.1:08080`, `127.0.0.1:008080`... all parse to the
/// same address (Rust accepts leading zeros in a port). One socket per service, each with
/// SO_REUSEPORT, means the kernel spreads new connections over them, and each is owned and closed
/// by one service only (sharing one file descriptor between services would close it twice).
fn listen_key(addr: SocketAddr, i: usize) -> String {
    // `[fe80::1%2]:8080` keeps its scope id this way.
    let text = addr.to_string();
    let (host, port) = text.rsplit_once(':').expect("a socket address has a port");
    format!("{host}:{}{port}", "0".repeat(i))
}

/// SO_REUSEPORT would let hookgate share its port with a process already listening there (another
/// hookgate left running, say) instead of failing; a plain bind first keeps the usual error.
fn ensure_free(addr: SocketAddr) -> anyhow::Result<()> {
    std::net::TcpListener::bind(addr)
        .map(drop)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}

/// SIGTERM: graceful, bounded by the grace period. SIGINT: immediate. SIGQUIT: pingora's
/// graceful upgrade is not supported by hookgate, so it is treated as SIGTERM.
struct DrainOnTerm {
    inflight: Arc<AtomicUsize>,
    grace: Duration,
    outbox: Option<Arc<Outbox>>,
    /// Its records on disk are synced before the exit.
    runs: Runs,
}

#[async_trait]
impl ShutdownSignalWatch for DrainOnTerm {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
        let mut quit = signal(SignalKind::quit()).expect("install SIGQUIT handler");
        tokio::select! {
            _ = int.recv() => return ShutdownSignal::FastShutdown,
            _ = term.recv() => {},
            _ = quit.recv() => {},
        }
        tracing::info!(
            grace_secs = self.grace.as_secs(),
            "SIGTERM: draining in-flight requests"
        );
        let inflight = self.inflight.clone();
        let grace = self.grace;
        let outbox = self.outbox.clone();
        let runs = self.runs.clone();
        std::thread::spawn(move || drain_then_exit(&inflight, grace, outbox.as_deref(), &runs));
        ShutdownSignal::GracefulTerminate
    }
}

/// After the grace period, how long requests answering 503 get to write it before the exit.
const ANSWER_WINDOW: Duration = Duration::from_secs(1);

fn drain_then_exit(inflight: &AtomicUsize, grace: Duration, outbox: Option<&Outbox>, runs: &Runs) {
    let start = Instant::now();
    // Give the listeners a moment to stop accepting, so a connection accepted just before the
    // signal is counted before we look.
    std::thread::sleep(Duration::from_millis(100));
    while start.elapsed() < grace {
        if inflight.load(Ordering::Acquire) == 0 && outbox.is_none_or(Outbox::is_idle) {
            sync_outbox(outbox);
            runs.flush(Duration::from_secs(1));
            tracing::info!(
                elapsed_ms = start.elapsed().as_millis() as u64,
                "drained; exiting"
            );
            std::process::exit(0);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The whole grace period is spent: what is still in flight answers 503 now (exchange
    // routes; see `exchange::end_grace`), and gets a moment to write it.
    let in_flight = inflight.load(Ordering::Acquire);
    exchange::end_grace();
    let answer_by = Instant::now() + ANSWER_WINDOW;
    while inflight.load(Ordering::Acquire) > 0 && Instant::now() < answer_by {
        std::thread::sleep(Duration::from_millis(10));
    }
    sync_outbox(outbox);
    runs.flush(Duration::from_secs(1));
    tracing::warn!(
        in_flight_at_grace_end = in_flight,
        still_in_flight = inflight.load(Ordering::Acquire),
        outbox_batch_under_way = outbox.is_some_and(|o| !o.is_idle()),
        "grace period over; exiting"
    );
    std::process::exit(0);
}

/// The dispatcher's last results, durable before the process ends (see [`Outbox::sync`]).
fn sync_outbox(outbox: Option<&Outbox>) {
    if let Some(Err(e)) = outbox.map(Outbox::sync) {
        tracing::warn!(error = %format!("{e:#}"), "cannot sync the outbox before exiting");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listen_key_names_the_same_address() {
        for text in [
            "127.0.0.1:8080",
            "0.0.0.0:443",
            "[::1]:8080",
            "[fe80::1%2]:9000",
        ] {
            let addr: SocketAddr = text.parse().unwrap();
            let keys: Vec<String> = (0..40).map(|i| listen_key(addr, i)).collect();
            assert_eq!(keys[0], text);
            for key in &keys {
                assert_eq!(key.parse::<SocketAddr>().unwrap(), addr, "{key}");
            }
            let distinct: std::collections::HashSet<_> = keys.iter().collect();
            assert_eq!(distinct.len(), keys.len());
        }
    }
}
