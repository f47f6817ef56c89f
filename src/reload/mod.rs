//! Hot reload: what is in force ([`Live`]: the configuration, its compiled hooks and its keys, as
//! one immutable snapshot) and how it is replaced while requests keep flowing.
//!
//! ```text
//! notify events (hooks folder, config file's folder) ─┐
//! periodic rescan, notify's Rescan flag ──────────────┼─▶ debounce ─▶ Reloader::check
//!                                                     │     fingerprint (config + hook tree + secret/key files)
//!                                                     │     unchanged? stop. changed: Config::load → pin what
//!                                                     │     needs a restart → live::load (compile everything)
//!                                                     └─▶   ok: ArcSwap::store(new Live)   broken: keep the old one
//! ```
//!
//! A request takes one `Arc<Live>` when it starts and uses it to the end, so it never sees half a
//! change: its route, its client registry and its hooks all come from the same snapshot. Old
//! snapshots live exactly as long as the requests still holding them.
//!
//! Owns: the snapshot type, the check-and-swap, the reload status (`/readyz` detail, `/metrics`)
//! and the watcher thread; opening the outbox when a reload adds the first route that produces
//! post-events (a rejected reload if it cannot be opened). Must not: parse configuration or
//! compile hooks itself (it calls [`Config::load`] and [`load`], exactly what `hookgate check`
//! runs), or run hooks.

pub mod cluster;
mod fingerprint;
mod live;
mod post_events;
mod restart;
pub mod watch;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use serde_json::json;

use crate::config::Config;
use crate::engine::Engine;
use crate::outbox::Outbox;
pub use live::{load, Live, Loaded};
pub use post_events::LiveHooks;

/// What `/readyz` and `/metrics` show about reloading. Written only by the reload thread.
#[derive(Default)]
pub struct Status {
    generation: AtomicU64,
    successes: AtomicU64,
    failures: AtomicU64,
    last_duration_us: AtomicU64,
    state: Mutex<State>,
    /// In cluster mode: the replica's sync with the shared store (`/readyz`'s `cluster`).
    cluster: std::sync::OnceLock<Arc<cluster::ClusterHealth>>,
}

#[derive(Default)]
struct State {
    /// The latest attempt's problems, while what is on disk is broken; cleared by a success.
    last_error: Option<(SystemTime, Vec<String>)>,
    last_success: Option<SystemTime>,
    /// Settings changed on disk that only a restart applies.
    restart_required: Vec<String>,
    hooks: usize,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Status {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Attach the cluster's health (once, at start, in cluster mode).
    pub fn set_cluster(&self, health: Arc<cluster::ClusterHealth>) {
        let _ = self.cluster.set(health);
    }

    /// In cluster mode: whether this replica is in sync with the shared store, and the detail
    /// `/readyz` shows; `None` for one replica. Ready once the shared hooks were read and the
    /// generation in force is the revision its files hold (or that revision's build was
    /// rejected: the previous generation serves, as with one replica).
    pub fn cluster_readiness(&self) -> Option<(bool, serde_json::Value)> {
        self.cluster.get().map(|c| {
            let (synced, mut detail) = c.readiness();
            let built = self.generation.load(Ordering::Relaxed) == c.applied()
                || self.state().last_error.is_some();
            detail["built"] = json!(built);
            (synced && built, detail)
        })
    }

    /// The `reload` object of `/readyz`.
    pub fn detail(&self) -> serde_json::Value {
        let s = self.state();
        json!({
            "generation": self.generation.load(Ordering::Relaxed),
            "hooks": s.hooks,
            "successes": self.successes.load(Ordering::Relaxed),
            "failures": self.failures.load(Ordering::Relaxed),
            "last_success_unix": s.last_success.map(unix),
            "last_error": s.last_error.as_ref().map(|(at, problems)| json!({
                "at_unix": unix(*at),
                "problems": problems,
                "note": "rejected as a whole; the generation above keeps serving",
            })),
            "restart_required": s.restart_required,
        })
    }

    /// `/metrics`, in Prometheus' text exposition format.
    pub fn metrics(&self) -> String {
        let s = self.state();
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            crate::metrics::metric_line(&mut out, name, kind, help, value)
        };
        metric(
            "hookgate_reload_success_total",
            "counter",
            "Reloads swapped in.",
            self.successes.load(Ordering::Relaxed),
        );
        metric(
            "hookgate_reload_failure_total",
            "counter",
            "Reloads rejected (broken configuration or hooks); the previous generation kept serving.",
            self.failures.load(Ordering::Relaxed),
        );
        metric(
            "hookgate_generation",
            "gauge",
            "Number of the generation in force (1 at start).",
            self.generation.load(Ordering::Relaxed),
        );
        metric(
            "hookgate_hooks_loaded",
            "gauge",
            "Enabled hooks in the generation in force.",
            s.hooks as u64,
        );
        metric(
            "hookgate_reload_broken",
            "gauge",
            "1 while the files on disk are broken and an older generation serves.",
            s.last_error.is_some() as u64,
        );
        metric(
            "hookgate_restart_required",
            "gauge",
            "1 when settings changed on disk that only a restart applies.",
            !s.restart_required.is_empty() as u64,
        );
        if let Some(c) = self.cluster.get() {
            metric(
                "hookgate_cluster_revision",
                "gauge",
                "Cluster mode: the revision of the shared hooks this replica's files hold.",
                c.applied(),
            );
            metric(
                "hookgate_cluster_redis_up",
                "gauge",
                "Cluster mode: 1 while Redis answers (hook changes are refused while it does not).",
                c.is_connected() as u64,
            );
            metric(
                "hookgate_cluster_apply_failures_total",
                "counter",
                "Cluster mode: shared hook changes this replica refused (a key or entry it may not write) or could not write; it follows the rest.",
                c.apply_failures(),
            );
        }
        metric(
            "hookgate_reload_last_duration_microseconds",
            "gauge",
            "How long the last rebuild took (load, compile, swap).",
            self.last_duration_us.load(Ordering::Relaxed),
        );
        out
    }
}

/// What one check did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing changed since the last check.
    Unchanged,
    /// A new generation is in force.
    Swapped(u64),
    /// The change was rejected; the previous generation keeps serving.
    Rejected(Vec<String>),
}

/// Reads of files that keep changing before a check gives up until the next event.
const MAX_ATTEMPTS: usize = 5;

/// Checks the files and swaps in what changed. Owned by the reload thread.
pub struct Reloader {
    /// The configuration hookgate started with: what needs a restart keeps these values.
    boot: Arc<Config>,
    live: Arc<ArcSwap<Live>>,
    status: Arc<Status>,
    /// Fingerprint of what the last check read, built or not: an unchanged broken file is
    /// reported once, not at every rescan.
    last_seen: u64,
    /// Fingerprint of what the generation in force was built from: going back to it (a broken
    /// edit undone) needs no rebuild.
    in_force: u64,
    /// The process's outbox: a generation that produces post-events is swapped in only once it
    /// is open (the first signup or change-password route opens it).
    outbox: Arc<Outbox>,
    /// In cluster mode, the number of the generation the check under way builds: the cluster
    /// revision it carries (the same on every replica for the same content).
    revision: Option<u64>,
    /// The engine whose workers evaluate a generation's hooks before it serves.
    engine: Option<Engine>,
}

/// The longest a new generation waits for every worker to have evaluated its hooks: past it,
/// it serves anyway and the rest load at their first call, as before.
const WARM_WITHIN: Duration = Duration::from_secs(5);

/// Have every worker of `engine` evaluate `generation`'s hooks (see [`Engine::warm`]); logs
/// what it took.
pub fn warm(engine: &Engine, number: u64, generation: &crate::hooks::Generation) {
    let scripts: Vec<_> = generation.all_hooks().map(|h| Arc::clone(&**h)).collect();
    if scripts.is_empty() {
        return;
    }
    let longest = scripts.iter().map(|s| s.timeout).max().unwrap_or_default();
    let started = Instant::now();
    let hooks = scripts.len();
    let workers = engine.warm(scripts, longest.min(WARM_WITHIN));
    tracing::debug!(
        generation = number,
        hooks,
        workers,
        took_ms = started.elapsed().as_millis() as u64,
        "the generation's hooks were evaluated on the workers before it serves"
    );
}

impl Reloader {
    /// `live` holds the generation hookgate started with (number 1).
    pub fn new(boot: Arc<Config>, live: Arc<ArcSwap<Live>>, outbox: Arc<Outbox>) -> Reloader {
        let status = Arc::new(Status::default());
        let current = live.load();
        status.generation.store(current.number, Ordering::Relaxed);
        status.state().hooks = current.generation.all_hooks().count();
        let last_seen = fingerprint::of(&boot.path, &boot, Some(&boot)).unwrap_or(0);
        drop(current);
        Reloader {
            boot,
            live,
            status,
            last_seen,
            in_force: last_seen,
            outbox,
            revision: None,
            engine: None,
        }
    }

    /// Have `engine`'s workers evaluate each new generation's hooks before it is swapped in.
    pub fn warming(mut self, engine: Engine) -> Reloader {
        self.engine = Some(engine);
        self
    }

    pub fn status(&self) -> Arc<Status> {
        self.status.clone()
    }

    pub fn boot(&self) -> &Config {
        &self.boot
    }

    /// Read everything again; rebuild and swap if anything changed. `why` goes to the log.
    pub fn check(&mut self, why: &str) -> Outcome {
        for _ in 0..MAX_ATTEMPTS {
            if let Some(outcome) = self.attempt(why) {
                return outcome;
            }
            self.last_seen = 0;
            tracing::debug!(
                why,
                "the files changed while they were read; reading them again"
            );
        }
        // Still moving: let the next event or rescan look again rather than build half a change.
        self.last_seen = 0;
        tracing::warn!(
            why,
            "the files kept changing while being read; looking again later"
        );
        Outcome::Unchanged
    }

    /// Cluster mode: the files now hold cluster revision `revision`; build them as generation
    /// number `revision` (the same on every replica for the same revision). Built even when the
    /// files look unchanged (a revision that changed nothing this replica builds from), so every
    /// replica reports the same number for the same revision.
    /// A revision below the one in force (Redis restored from an older state) is built too:
    /// the replica follows what Redis holds.
    pub fn check_at(&mut self, why: &str, revision: u64) -> Outcome {
        if revision == self.live.load().number {
            // Built already, unless the files differ: the same number with other content after
            // the shared store was seeded again (a new epoch). The fingerprint tells.
            self.revision = Some(revision);
            let outcome = self.check(why);
            self.revision = None;
            return outcome;
        }
        self.revision = Some(revision);
        self.last_seen = 0;
        self.in_force = 0;
        let outcome = self.check(why);
        self.revision = None;
        outcome
    }

    /// Are the files still what `seen` says? A build only counts if nothing moved under it: an
    /// in-place write is a truncate then a write, and a read in between sees an empty file.
    fn still(&self, seen: u64, parsed: Option<&Config>) -> bool {
        fingerprint::of(&self.boot.path, &self.boot, parsed).is_ok_and(|now| now == seen)
    }

    /// One read-build-swap; `None` when the files changed while being read.
    fn attempt(&mut self, why: &str) -> Option<Outcome> {
        let started = Instant::now();
        let path = self.boot.path.clone();
        let parsed = Config::load(&path);
        let seen = fingerprint::of(&path, &self.boot, parsed.as_ref().ok());
        let seen = match seen {
            Ok(f) => f,
            Err(e) => {
                // Mid-swap (a ConfigMap's `..data` being replaced), or really gone: either way
                // the next event or rescan looks again.
                tracing::debug!(error = %e, "reload: cannot read the files yet");
                return Some(Outcome::Unchanged);
            }
        };
        if seen == self.last_seen {
            return Some(Outcome::Unchanged);
        }
        self.last_seen = seen;
        if seen == self.in_force {
            self.status.state().last_error = None;
            tracing::info!(
                why,
                "the files are back to what is in force; nothing to rebuild"
            );
            return Some(Outcome::Unchanged);
        }
        let mut config = match parsed {
            Ok(c) => c,
            Err(errors) => {
                if !self.still(seen, None) {
                    return None;
                }
                let problems = errors.0.iter().map(|e| e.to_string()).collect();
                return Some(self.reject(problems, why));
            }
        };
        let restart = restart::pin(&mut config, &self.boot);
        let loaded = match load(&config) {
            Ok(l) => l,
            Err(problems) => {
                if !self.still(seen, Some(&config)) {
                    return None;
                }
                let file = path.display();
                let problems = problems.iter().map(|p| format!("{file}: {p}")).collect();
                return Some(self.reject(problems, why));
            }
        };
        if !self.still(seen, Some(&config)) {
            return None;
        }
        // A new signup or change-password route needs the outbox before its first request: its
        // events would have nowhere to go. Opening it starts the dispatcher, which waits for it.
        if config.outbox_needed() && !self.outbox.is_open() {
            if restart.iter().any(|r| r == "outbox") {
                // Opening the file hookgate started with would leave its events behind when a
                // restart moves to the new one.
                let problem = format!(
                    "{}: [outbox] changed together with the first route that produces \
                     post-events; the outbox's settings need a restart: restart hookgate, or \
                     keep [outbox] as it was to open {} now",
                    path.display(),
                    self.outbox.path().display()
                );
                return Some(self.reject(vec![problem], why));
            }
            if let Err(e) = self.outbox.ensure_open() {
                // Perhaps passing (a full disk): the next rescan tries again.
                self.last_seen = 0;
                let problem = format!(
                    "{}: a route of this configuration produces post-events, but the outbox \
                     cannot be opened: {e:#}",
                    path.display()
                );
                return Some(self.reject(vec![problem], why));
            }
            tracing::info!(
                outbox = %self.outbox.path().display(),
                "the outbox was opened for the new routes' post-events; its dispatcher starts"
            );
        }
        self.in_force = seen;
        let hooks = loaded.generation.all_hooks().count();
        let number = self.revision.unwrap_or_else(|| self.live.load().number + 1);
        if let Some(engine) = &self.engine {
            warm(engine, number, &loaded.generation);
        }
        self.live
            .store(Arc::new(Live::new(number, Arc::new(config), loaded)));
        let took = started.elapsed();
        self.status.generation.store(number, Ordering::Relaxed);
        self.status.successes.fetch_add(1, Ordering::Relaxed);
        self.status
            .last_duration_us
            .store(took.as_micros() as u64, Ordering::Relaxed);
        {
            let mut s = self.status.state();
            s.last_error = None;
            s.last_success = Some(SystemTime::now());
            s.hooks = hooks;
            s.restart_required = restart.clone();
        }
        tracing::info!(
            generation = number,
            hooks,
            took_ms = took.as_secs_f64() * 1000.0,
            why,
            "reloaded: generation {number} is in force"
        );
        if !restart.is_empty() {
            tracing::warn!(
                settings = ?restart,
                "changed settings need a restart to apply (everything else was applied): {}",
                restart.join(", ")
            );
        }
        Some(Outcome::Swapped(number))
    }

    fn reject(&mut self, problems: Vec<String>, why: &str) -> Outcome {
        self.status.failures.fetch_add(1, Ordering::Relaxed);
        self.status.state().last_error = Some((SystemTime::now(), problems.clone()));
        let serving = self.live.load().number;
        tracing::error!(
            why,
            serving,
            "reload rejected; generation {serving} keeps serving:\n  {}",
            problems.join("\n  ")
        );
        Outcome::Rejected(problems)
    }
}
