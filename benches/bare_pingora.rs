//! The floor under hookgate's passthrough: pingora's own minimal `ProxyHttp` (a fixed peer and
//! nothing else), built against the same pingora as hookgate, so `benches/compare.py` can tell
//! pingora's per-request cost from hookgate's own.
//!
//!   cargo run --release --example bare-pingora -- 127.0.0.1:8080 127.0.0.1:3300 [THREADS]
//!
//! The thread layout is hookgate's default (`server.work_stealing = false`): one single-thread
//! service per thread, each with its own listening socket (SO_REUSEPORT) and its own upstream
//! connection pool. `BARE_PINGORA_STEAL=1` gives pingora's default instead: one work-stealing
//! runtime for all threads. `BARE_PINGORA_TIMEOUTS=1` sets hookgate's default upstream timeouts
//! on the peer, to tell pingora's timer cost from the rest.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use pingora::listeners::TcpSocketOptions;
use pingora::prelude::*;
use pingora::proxy::http_proxy_service_with_name;
use pingora::server::configuration::ServerConf;

// hookgate's allocator, so that the difference between the two is hookgate's own work.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bare {
    upstream: SocketAddr,
    /// hookgate's default upstream timeouts on the peer (`BARE_PINGORA_TIMEOUTS=1`): pingora
    /// arms a timer around every read and write that has one.
    timeouts: bool,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        let mut peer = HttpPeer::new(self.upstream, false, String::new());
        if self.timeouts {
            // The defaults of hookgate's [upstream] section.
            let o = &mut peer.options;
            o.connection_timeout = Some(Duration::from_secs(2));
            o.total_connection_timeout = Some(Duration::from_secs(2));
            o.read_timeout = Some(Duration::from_secs(15));
            o.write_timeout = Some(Duration::from_secs(15));
            o.idle_timeout = Some(Duration::from_secs(60));
        }
        Ok(Box::new(peer))
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let upstream: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:3300".into())
        .parse()
        .expect("the upstream is an ip:port");
    let threads: usize = args
        .next()
        .map(|t| t.parse().expect("THREADS is a number"))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let steal = std::env::var("BARE_PINGORA_STEAL").is_ok_and(|v| v == "1");
    let timeouts = std::env::var("BARE_PINGORA_TIMEOUTS").is_ok_and(|v| v == "1");
    let conf = ServerConf {
        threads,
        work_stealing: steal,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let services = if steal { 1 } else { threads };
    for i in 0..services {
        let mut service = http_proxy_service_with_name(
            &server.configuration,
            Bare { upstream, timeouts },
            &format!("bare-{i}"),
        );
        service.threads = Some(threads / services);
        if services > 1 {
            let mut options = TcpSocketOptions::default();
            options.so_reuseport = Some(true);
            // pingora keys bound sockets by their text: a leading zero per service makes each
            // bind a socket of its own (hookgate's `listen_key` does the same).
            let (host, port) = listen.rsplit_once(':').expect("LISTEN is ip:port");
            service.add_tcp_with_settings(&format!("{host}:{}{port}", "0".repeat(i)), options);
        } else {
            service.add_tcp(&listen);
        }
        server.add_service(service);
    }
    server.run_forever();
}
