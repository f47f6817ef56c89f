//! What the engine runs: a [`Script`] — one compiled hook module with the little the pool needs
//! to run it (a unique id, a name for the logs, its file, its timeout, its concurrency cap) and
//! the state the pool keeps about it (whether it has hogged a worker).
//!
//! Owns: a script's identity (its id keys the workers' contexts and the pool's concurrency slots)
//! and the `hogged` flag. Must not touch: triggers, targeting, `on_error`, secrets or anything
//! else a point reads (that is the `hooks` layer's `Hook`, which carries a `Script`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use super::program::Program;

/// One compiled module, ready to run.
#[derive(Debug)]
pub struct Script {
    /// `<trigger-id>/<file stem>`, e.g. `credentials-exchange/add-claims`: how logs name it.
    pub name: String,
    /// The file on disk; load-time problems name it.
    pub file: PathBuf,
    pub timeout: Duration,
    /// `max_concurrency`: calls of this hook in progress at once (event loop included); absent:
    /// the engine's default (`[hooks] max_concurrency_per_hook`).
    pub max_concurrency: Option<usize>,
    /// How this hook hogs the CPU ([`HEAVY`], [`PINNED`]; 0: it does not). [`HEAVY`]: one of
    /// its calls used more than `[hooks] call_cpu_ms` of CPU; its calls run on the low-priority
    /// workers from then on. [`PINNED`]: a call was stopped while running JS (a CPU loop) or
    /// crashed the runtime (memory, stack); its calls also run one at a time, so it can take at
    /// most one call's worth of the CPU the OS has left over. A new generation starts afresh.
    pub(crate) hogged: AtomicU8,
    /// CPU (ns) its calls' work after cb used in the current one-second window, and when that
    /// window began (ms since the process's first script): see [`Script::after_cb_cpu`].
    after_cb_ns: AtomicU64,
    after_cb_window: AtomicU64,
    /// Unique per loaded hook (and so per generation); workers key their contexts by it.
    pub(crate) id: u64,
    pub(crate) program: Program,
}

static NEXT_SCRIPT_ID: AtomicU64 = AtomicU64::new(1);

/// [`Script::hogged`]: a call used more than `[hooks] call_cpu_ms` of CPU.
pub(crate) const HEAVY: u8 = 1;
/// [`Script::hogged`]: a call pinned its worker until stopped, or crashed it.
pub(crate) const PINNED: u8 = 2;

impl Script {
    /// A script with a fresh id (so a fresh context on every worker, fresh concurrency slots).
    pub fn new(
        name: String,
        file: PathBuf,
        timeout: Duration,
        max_concurrency: Option<usize>,
        program: Program,
    ) -> Script {
        Script {
            name,
            file,
            timeout,
            max_concurrency,
            hogged: Default::default(),
            after_cb_ns: AtomicU64::new(0),
            after_cb_window: AtomicU64::new(0),
            id: NEXT_SCRIPT_ID.fetch_add(1, Ordering::Relaxed),
            program,
        }
    }

    /// Whether the engine treats this script as hogging (see [`Script::hogged`]).
    pub fn is_hogged(&self) -> bool {
        self.hogged.load(Ordering::Relaxed) > 0
    }

    /// Count `used` CPU of work after cb (timers, callbacks, completions of calls already
    /// answered) and say whether the script's calls together used more than `budget` within
    /// the current second: a cost spread over many cheap calls (a `setInterval` left by each of
    /// dozens of calls) that no single call's budget sees. Calls answered and done cost nothing
    /// here, so a busy hook that does its work before cb is never counted.
    pub(crate) fn after_cb_cpu(&self, used: Duration, budget: Duration) -> bool {
        static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let now = EPOCH
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_millis() as u64;
        let start = self.after_cb_window.load(Ordering::Relaxed);
        if now.saturating_sub(start) >= 1000
            && self
                .after_cb_window
                .compare_exchange(start, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.after_cb_ns.store(0, Ordering::Relaxed);
        }
        let used = used.as_nanos() as u64;
        self.after_cb_ns.fetch_add(used, Ordering::Relaxed) + used > budget.as_nanos() as u64
    }

    /// Mark the script as hogging at `level` (see [`Script::hogged`]), logged when it rises;
    /// the first mark is counted for `/metrics`.
    pub(crate) fn mark_hogged(&self, level: u8, why: &str) {
        if self.hogged.load(Ordering::Relaxed) >= level {
            return;
        }
        let was = self.hogged.fetch_max(level, Ordering::Relaxed);
        if was >= level {
            return;
        }
        if was == 0 {
            super::HOGGED_TOTAL.fetch_add(1, Ordering::Relaxed);
        }
        if level >= PINNED {
            tracing::warn!(hook = %self.name, "the hook {why}: from now on its calls run one at a time, on the low-priority workers");
        } else {
            tracing::warn!(hook = %self.name, "the hook {why}: from now on its calls run on the low-priority workers");
        }
    }
}
