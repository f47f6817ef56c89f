//! What the engine runs: a [`Script`] — one compiled hook module with the little the pool needs
//! to run it (a unique id, a name for the logs, its file, its timeout, its concurrency cap) and
//! the state the pool keeps about it (whether it has hogged a worker).
//!
//! Owns: a script's identity (its id keys the workers' contexts and the pool's concurrency slots)
//! and the `hogged` flag. Must not touch: triggers, targeting, `on_error`, secrets or anything
//! else a point reads (that is the `hooks` layer's `Hook`, which carries a `Script`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// A call of this hook hogged its worker: stopped while running JS (a CPU loop), crashed
    /// the runtime (memory, stack), or its callbacks and timers used more than
    /// `[hooks] event_loop_cpu_ms` of CPU. From then on the engine runs its calls one at a time,
    /// on the low-priority workers, so a hook that hogs can take at most one call's worth of the
    /// CPU the OS has left over. A new generation starts afresh.
    pub(crate) hogged: AtomicBool,
    /// Unique per loaded hook (and so per generation); workers key their contexts by it.
    pub(crate) id: u64,
    pub(crate) program: Program,
}

static NEXT_SCRIPT_ID: AtomicU64 = AtomicU64::new(1);

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
            id: NEXT_SCRIPT_ID.fetch_add(1, Ordering::Relaxed),
            program,
        }
    }

    /// Whether the engine treats this script as hogging (see [`Script::hogged`]).
    pub fn is_hogged(&self) -> bool {
        self.hogged.load(Ordering::Relaxed)
    }

    /// Mark the script as hogging (see [`Script::hogged`]); true the first time, which is
    /// logged and counted for `/metrics`.
    pub(crate) fn mark_hogged(&self, why: &str) -> bool {
        if self.hogged.load(Ordering::Relaxed) || self.hogged.swap(true, Ordering::Relaxed) {
            return false;
        }
        super::HOGGED_TOTAL.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(hook = %self.name, "the hook {why}: from now on its calls run one at a time, on the low-priority workers");
        true
    }
}
