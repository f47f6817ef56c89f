//! hookgate: run Auth0 Hooks unmodified in front of the identity server you already have.
//!
//! Layout: `config` (the TOML file and its validated model, one file per section; the bottom
//! layer, importing nothing else of hookgate), `proxy` (pingora phases, the
//! exchange path, answers of our own), `admin` (health and readiness), `server` (assembly and
//! shutdown), `reload` (hot reload of configuration and hooks), `engine` (the QuickJS hook engine), `hooks` (hook discovery and the points),
//! `outbox` (the durable queue of post-events and its dispatcher).
/// mimalloc instead of glibc's malloc: the request path allocates many small, short-lived
/// buffers on several threads, where glibc's arenas showed up as ~10% of hookgate's CPU
/// (`_int_malloc`, `malloc_consolidate`, `unlink_chunk` in `benches/compare.py --profile`).
/// Set here rather than in `main.rs` so that tests and benches measure the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod admin;
pub mod cli;
pub mod config;
pub mod engine;
pub mod hooks;
pub mod metrics;
pub mod outbox;
pub mod points;
pub mod proxy;
pub mod reload;
pub mod server;
pub mod token;
pub mod wire;
