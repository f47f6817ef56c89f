//! hookgate: run Auth0 Hooks unmodified in front of the identity server you already have.
//!
//! Layers, top to bottom; a module imports only modules below it (checked by
//! `../shared/tools/layers.py`):
//!
//! ```text
//! main / cli → server → proxy, admin, reload → points → hooks, outbox, token, wire → runs → metrics → engine → config
//! ```
//!
//! `cli` (subcommands), `server` (assembly and shutdown), `proxy` (the only transport: pingora
//! phases, routing, owned exchanges, every answer's bytes), `admin` (health, readiness, metrics;
//! the management API, its store of record of hook files and settings, the dashboard),
//! `reload` (the live snapshot, how it is loaded, hot reload), `points` (one file per
//! extensibility point: hook arguments, results, failures, post-events), `hooks` (discovery and
//! compiled generations), `outbox` (the durable post-event queue), `token` (verifying and
//! signing tokens), `wire` (body parameters, headers as text), `runs` (run records of hook
//! calls, their live tail, per-hook metrics), `metrics` (the Prometheus text
//! writer), `engine` (the QuickJS engine: runs scripts), `config` (the validated model, one file
//! per section; imports nothing else of hookgate).
//! `cluster` (cluster mode: the hooks kept in Redis, published from the management API and
//! followed by every replica) sits between `admin` and `reload`: `admin` and `server` use it, it
//! uses `reload` and `config`.

/// mimalloc instead of glibc's malloc: the request path allocates many small, short-lived
/// buffers on several threads, where glibc's arenas showed up as ~10% of hookgate's CPU
/// (`_int_malloc`, `malloc_consolidate`, `unlink_chunk` in `benches/compare.py --profile`).
/// Set here rather than in `main.rs` so that tests and benches measure the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod admin;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod engine;
pub mod hooks;
pub mod metrics;
pub mod outbox;
pub mod points;
pub mod proxy;
pub mod reload;
pub mod runs;
pub mod server;
pub mod token;
pub mod wire;
