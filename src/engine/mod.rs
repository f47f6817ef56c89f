//! The hook engine: runs Auth0 hook files, unmodified, in a fixed pool of warm, sandboxed
//! QuickJS workers.
//!
//! Owns: the worker pool, the sandbox (CPU deadline, memory and stack limits), the cb contract,
//! the per-call event loop, the globals (`console`, timers, `fetch`, `require`, the error classes),
//! outbound HTTP, compiling a module and what it requires (`program`, `compile`), and evaluating a
//! module once at load (`probe`). What it runs is a [`Script`]: an id, a name, a file, a timeout,
//! a concurrency cap and the compiled program — nothing of triggers.
//! Must not touch: requests, responses or any point's semantics — the point code builds the
//! arguments and interprets the result; nor triggers, discovery, targeting, `on_error` or secrets —
//! the `hooks` layer above owns those and hands the engine scripts. It reads only the `[hooks]`
//! settings (`HooksConfig`, `EgressConfig`) from the rest of the crate.
//!
//! # How a call runs
//! [`Engine::call`] takes one of the hook's concurrency slots (`max_concurrency`), puts the call
//! on one queue shared by N worker threads (N = `[hooks] workers`, default: cores) and awaits a
//! oneshot answer, so the async caller never blocks (a caller with nothing else to do may spin on
//! it first: [`Wait`]). Waiting for the slot and for a worker to start the call is bounded by
//! `[hooks] queue_timeout_ms`: past it the caller answers [`HookError::Overloaded`] (counted for
//! `/metrics`) and a worker reaching the job later skips it ([`worker::Ticket`]). A worker owns
//! one QuickJS runtime for its whole life (never one per request); hooks are compiled to
//! bytecode once, at load (the `hooks` layer's discovery, with [`program::ProgramBuilder`]).
//! The worker builds the hook's arguments from their JSON values (fresh objects every call), calls
//! `module.exports(...args, cb)`, answers the caller the moment `cb` settles (its value turned
//! into JSON as `JSON.stringify` would: `values`), and keeps the call in its set until the call's
//! own event loop — microtasks, timers, fetch completions — is empty or the hook's timeout
//! passes (Auth0's "the request continues on the sandbox" behaviour, which
//! post-user-registration hooks rely on). Meanwhile the worker takes and runs other calls (up to
//! `[hooks] calls_per_worker`), as Node runs concurrent invocations in one process: a call
//! waiting on its API or its timers holds a slot, not the worker (see `worker.rs`). An error
//! after `cb` is logged and changes nothing.
//!
//! # State between requests: one context per (worker, hook)
//! Each worker keeps one QuickJS *context* per hook it has run. A context has its own global
//! object and its own built-ins, so a hook never sees another hook's globals or prototype
//! changes. Within one hook, module-scope variables and globals persist between the requests that
//! worker serves, exactly like Auth0's warm webtask containers: real hooks cache access tokens
//! and HTTP clients in module scope and depend on it. Request data reaches a hook only through its
//! arguments, parsed fresh per call, so nothing of one request is visible to the next unless the
//! hook itself stores it in module scope (a hook bug under Auth0 too).
//! Built-ins are deliberately *not* frozen: freezing `Object.prototype`/`Error.prototype` breaks
//! ordinary code through the "override mistake" (`err.name = 'X'` silently fails or throws), and
//! such hooks ran fine under Auth0. Hookgate's own JS glue calls private copies of the built-ins
//! it uses (`globals/primordials.js`), so replacing them changes only what the hook's code sees.
//! After a timeout while JS runs, a crash, or a failure of that glue the whole runtime, with
//! every context, is thrown away and rebuilt, so a hook left half-way never serves another
//! request; a call ended at its deadline while it *waited* is dropped alone.
//! Tests: `tests/engine_isolation.rs`, `tests/hostile_hooks.rs`.
//!
//! # Sandbox
//! * CPU: the interrupt handler compares the clock with the deadline of the call whose JS runs;
//!   past it, QuickJS raises an uncatchable error, the caller gets [`HookError::Timeout`], the
//!   worker is recycled (its other calls in progress are answered at once, never left hanging).
//! * Memory: `[hooks] memory_limit_mb` per runtime (generous: QuickJS misbehaves under tight
//!   limits); exhaustion -> [`HookError::Crashed`], worker recycled. Results over
//!   `max_response_bytes` and console output over `max_log_bytes` are refused/dropped.
//! * Stack: `[hooks] stack_limit_kb`; overflow -> [`HookError::Crashed`], worker recycled. Worker
//!   threads get that stack plus 16 MiB of headroom.
//! * No filesystem, process or environment access: QuickJS without quickjs-libc has none, and no
//!   global here adds any. `process` describes a Node 20 without a machine (`process.env` is empty
//!   and fresh on every call); `fs`, `child_process`... can be required, but their
//!   functions throw ERR_HOOKGATE_UNSUPPORTED. `require` only reaches modules resolved at load time.
//! * A panic inside a worker is caught, its callers get `Crashed`, the runtime is replaced.
//! * Outbound requests: at most `[hooks] max_requests_per_call` in flight per call (more wait).
//!   Sockets (`net`/`tls`, `sockets.rs`) hold those slots while open (more fail with EMFILE),
//!   obey `[hooks.egress]` like requests, and close when their call ends.
//!   A fault inside QuickJS's C code (it has no other isolation) would still take the process down.
//!
//! # Hogging hooks
//! A script *hogs* once one of its calls spent more than `[hooks] call_cpu_ms` of CPU running
//! JS — its invocation (from a worker's second call of it on: the first may load packages),
//! callbacks, timers and completions, before or after cb (a `setInterval(0)` left after `cb`,
//! 3,000 fetches in a loop) — or its calls' work after cb used as much within one second, all
//! calls together (dozens of calls each leaving a 1 ms interval: cheap each, a core together) —
//! measured as the worker thread's CPU time, which other threads taking the CPU do not inflate;
//! and, worse, once a call was stopped at its timeout while
//! running JS or crashed its runtime: then its calls also share one slot ([`Script::hogged`]).
//! A hogging script's calls go to a queue of their own, served by up to [`LOW_WORKERS_MAX`]
//! low-priority workers started at the first such call: threads that lowered their own nice
//! value to 10, so the OS runs the shared workers and the proxy first and hogs get what is left
//! over (the shared pool's grow-on-stall gave hogs more threads at the same priority: more CPU,
//! not less). Their JS state cannot move, so work a hogging script's answered call still runs
//! on the shared workers stops at the next round once that call has burnt 5 ms of CPU after
//! cb (timers ticking); work that only waits (a timer, a request: a post-event hook's
//! notification) completes.
//! Queue deadline, timeouts, interrupts and recycling are the same on both pools.
//! Tests: `tests/engine_hogs.rs`; figures: BENCHMARKS.md, "A good client beside hostile hooks".
//!
//! A hook that returns without calling `cb` and has nothing pending (no timer, no fetch) could
//! never call it any more; it gets the [`HookError::Timeout`] it would get at its deadline, at once.
//!
//! # Reports
//! A caller that passes a [`Reporter`] (`call_with_report` and its siblings) gets the call's
//! [`CallReport`] when the call ends, event loop included: its console lines (within
//! `max_log_bytes`, still logged as before), its outbound requests (URL redacted, host reached,
//! status or error, duration), its CPU time and durations (`report.rs`). Without one, nothing is
//! captured. Run records and the Runner are built on it; the engine keeps no report itself.

pub mod builtins;
mod bytes;
pub(crate) mod compile;
mod egress;
mod globals;
mod natives;
pub mod probe;
pub mod program;
pub mod report;
mod script;
mod sockets;
mod sockets_js;
mod values;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use tokio::sync::oneshot::{self, error::TryRecvError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::HooksConfig;

pub use compile::SyntaxError;
pub use report::{CallReport, ConsoleLine, Level, OutboundRequest, Reporter};
pub use script::Script;

/// What a failing call produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// `cb(err)`, `cb('string')`, a rejected promise, or a synchronous throw.
    #[error("the hook failed: {0}")]
    Failed(HookFailure),
    /// The deadline passed before cb was called (cb never called, infinite loop, ...).
    #[error("the hook did not call cb before its timeout")]
    Timeout,
    /// Out of memory, stack overflow, an oversized result, or the worker died. The worker is recycled.
    #[error("the hook crashed: {0}")]
    Crashed(String),
    /// No worker started the call within `[hooks] queue_timeout_ms` (every worker full, or the
    /// hook at its `max_concurrency`): the hook did not run. Points answer 503, whatever the
    /// hook's `on_error` (failing open under load would let a flood walk around a hook).
    #[error("no hook worker was free within [hooks] queue_timeout_ms; the hook did not run")]
    Overloaded,
}

/// An error a hook passed to cb (or threw).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class}: {message}")]
pub struct HookFailure {
    /// The error's `name` (`InvalidScopeError`, `InvalidRequestError`, `ServerError`,
    /// `PreUserRegistrationError`, `Error`, `TypeError`, ...), or `"string"` for `cb('text')`.
    pub class: String,
    pub message: String,
    /// `PreUserRegistrationError(logMessage, userMessage)`'s `userMessage`.
    pub user_message: Option<String>,
}

/// The worker pool. Cheap to clone; the pool stops when the last clone is dropped.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// How [`Engine::call_with`] waits for the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Sleep until the worker answers: the caller's thread runs other tasks meanwhile.
    Sleep,
    /// Spin on the answer for up to 50 µs first, then sleep. For a caller whose thread
    /// has nothing else to do (the proxy passes it when its request is the only one in flight):
    /// waking a sleeping thread costs more than a short hook runs.
    SpinFirst,
}

/// How long a [`Wait::SpinFirst`] caller spins. Waking a thread asleep on a futex costs ~15 µs on
/// this project's 2-core VM, once per call: spinning took the engine bench's warm call from
/// 30.5 to 14.5 µs (`cargo bench --bench engine -- "warm call"`, measured back to back). Never
/// on a machine with one core, where the spinning caller would keep the worker off the CPU.
const CALLER_SPIN: Duration = Duration::from_micros(50);

/// Calls answered [`HookError::Overloaded`] by every engine of the process, for `/metrics`.
static OVERLOADED_TOTAL: AtomicU64 = AtomicU64::new(0);
/// Scripts marked hogged ([`Script::mark_hogged`]), for `/metrics`.
static HOGGED_TOTAL: AtomicU64 = AtomicU64::new(0);
/// Calls queued to the low-priority workers, for `/metrics`.
static LOW_CALLS_TOTAL: AtomicU64 = AtomicU64::new(0);
/// Low-priority workers running, for `/metrics`.
static LOW_WORKERS: AtomicUsize = AtomicUsize::new(0);

/// The engine's lines of `/metrics` (Prometheus text).
pub fn metrics() -> String {
    // Written here, not with the admin's line writer: the engine imports nothing above it.
    format!(
        "# HELP hookgate_hook_overloaded_total Hook calls answered 503 because no worker started them within [hooks] queue_timeout_ms (every worker full, or the hook at its max_concurrency).\n\
         # TYPE hookgate_hook_overloaded_total counter\nhookgate_hook_overloaded_total {}\n\
         # HELP hookgate_hook_hogged_total Hooks marked as hogging the CPU (a call over [hooks] call_cpu_ms of CPU, stopped at its timeout while running JS, or crashing its worker): their calls run on the low-priority workers (one at a time after a timeout or crash).\n\
         # TYPE hookgate_hook_hogged_total counter\nhookgate_hook_hogged_total {}\n\
         # HELP hookgate_hook_low_priority_calls_total Calls of hogging hooks queued to the low-priority workers.\n\
         # TYPE hookgate_hook_low_priority_calls_total counter\nhookgate_hook_low_priority_calls_total {}\n\
         # HELP hookgate_hook_low_priority_workers Low-priority JS workers running (started at the first call of a hogging hook).\n\
         # TYPE hookgate_hook_low_priority_workers gauge\nhookgate_hook_low_priority_workers {}\n",
        OVERLOADED_TOTAL.load(Ordering::Relaxed),
        HOGGED_TOTAL.load(Ordering::Relaxed),
        LOW_CALLS_TOTAL.load(Ordering::Relaxed),
        LOW_WORKERS.load(Ordering::Relaxed),
    )
}

/// A loaded hook (weakly: dropped generations are swept), its concurrency slots, and the one
/// slot its calls share once it has hogged a worker ([`Script::hogged`]).
type HookSlots = (Weak<Script>, Arc<Semaphore>, Arc<Semaphore>);

/// How long a queued call waits before the engine concludes every worker is busy — held by JS
/// that runs (a CPU loop, a long computation), or full — and starts another worker.
const STALL: Duration = Duration::from_millis(10);

/// At most this many low-priority workers: a call running JS pins its worker (a CPU loop until
/// its timeout), so two let a second hog run beside it; more would only add threads sharing
/// the CPU left over.
const LOW_WORKERS_MAX: usize = 2;

/// What it takes to start another worker (see [`Engine::grow`]).
struct Pool {
    jobs: crossbeam_channel::Receiver<worker::Msg>,
    /// The low-priority workers' queue.
    low_jobs: crossbeam_channel::Receiver<worker::Msg>,
    limits: worker::Limits,
    egress: egress::Egress,
    threads: Vec<std::thread::JoinHandle<()>>,
}

struct Inner {
    jobs: Option<Sender<worker::Msg>>,
    /// Calls of hogged scripts ([`Script::hogged`]) go to the low-priority workers, started at
    /// the first (see the module doc, "Hogging hooks").
    low_jobs: Option<Sender<worker::Msg>>,
    /// Low-priority workers started so far, and those not running a call.
    low_started: AtomicUsize,
    low_idle: Arc<AtomicUsize>,
    /// How long a call may wait for a worker (and for its hook's concurrency slot).
    queue_timeout: Duration,
    /// The concurrency cap of a hook without its own `max_concurrency`.
    default_hook_cap: usize,
    /// Each loaded hook's concurrency slots, by hook id; entries of hooks dropped (older
    /// generations) are swept as the map grows.
    slots: Mutex<HashMap<u64, HookSlots>>,
    /// Calls this engine answered Overloaded.
    overloaded: AtomicU64,
    /// Calls this engine queued to its low-priority workers.
    low_calls: AtomicU64,
    /// More than one core: [`Wait::SpinFirst`] may spin.
    may_spin: bool,
    /// Workers not running a call.
    idle: Arc<AtomicUsize>,
    egress_runtime: Option<tokio::runtime::Runtime>,
    workers: usize,
    /// Workers started so far (`workers`, plus those [`Engine::grow`] added).
    started: AtomicUsize,
    /// At most this many workers (`[hooks] max_workers`, default 4 × `workers`).
    max_workers: usize,
    pool: Mutex<Pool>,
    /// The generation being loaded, for every worker to evaluate ([`Engine::warm`]).
    board: Arc<worker::WarmBoard>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queues ends the workers once they finish their call.
        self.jobs.take();
        self.low_jobs.take();
        if let Some(rt) = self.egress_runtime.take() {
            // Dropping a runtime from inside another one panics; this never blocks.
            rt.shutdown_background();
        }
    }
}

impl Engine {
    /// Start the worker pool and the runtime that carries outbound requests.
    pub fn start(cfg: &HooksConfig) -> anyhow::Result<Engine> {
        let workers = cfg
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1);
        let egress_runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hookgate-egress")
            .enable_all()
            .build()?;
        let egress = egress::Egress::new(&cfg.egress, egress_runtime.handle().clone())?;
        let limits = worker::Limits::from_config(cfg);
        let calls_per_worker = limits.calls_per_worker;
        let default_hook_cap = cfg
            .max_concurrency_per_hook
            .unwrap_or(workers * calls_per_worker / 2)
            .max(1);
        let (tx, rx) = crossbeam_channel::unbounded();
        let (low_tx, low_rx) = crossbeam_channel::unbounded();
        let idle = Arc::new(AtomicUsize::new(workers));
        let board = Arc::new(worker::WarmBoard::default());
        let threads = (0..workers)
            .map(|i| {
                worker::spawn(
                    i,
                    worker::Pool::Shared,
                    rx.clone(),
                    idle.clone(),
                    limits.clone(),
                    egress.clone(),
                    board.clone(),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pool = Pool {
            jobs: rx,
            low_jobs: low_rx,
            limits,
            egress,
            threads,
        };
        Ok(Engine {
            inner: Arc::new(Inner {
                jobs: Some(tx),
                low_jobs: Some(low_tx),
                low_started: AtomicUsize::new(0),
                low_idle: Arc::new(AtomicUsize::new(0)),
                queue_timeout: Duration::from_millis(cfg.queue_timeout_ms),
                default_hook_cap,
                slots: Mutex::new(HashMap::new()),
                overloaded: AtomicU64::new(0),
                low_calls: AtomicU64::new(0),
                may_spin: std::thread::available_parallelism().is_ok_and(|n| n.get() > 1),
                idle,
                egress_runtime: Some(egress_runtime),
                workers,
                started: AtomicUsize::new(workers),
                max_workers: cfg.max_workers.unwrap_or(workers * 4).max(workers),
                pool: Mutex::new(pool),
                board,
            }),
        })
    }

    /// Stop taking calls and wait until every worker has finished the call it runs, event loop
    /// included — what `node` does before it exits: requests a hook made just before `cb` still
    /// go out. Returns at once if other clones of this engine are alive.
    pub fn finish(self) {
        let Ok(mut inner) = Arc::try_unwrap(self.inner) else {
            return;
        };
        inner.jobs.take();
        inner.low_jobs.take();
        let threads = std::mem::take(
            &mut inner
                .pool
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .threads,
        );
        for t in threads {
            let _ = t.join();
        }
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// Call `module.exports(...args, cb)`. `args` are the arguments before cb; a top-level
    /// `null` is passed as `undefined` (e.g. credentials-exchange's absent `scope`).
    /// Never blocks the caller's thread: the call runs on a worker and is awaited.
    pub async fn call(
        &self,
        hook: &Arc<Script>,
        args: Vec<serde_json::Value>,
        request_id: &str,
    ) -> Result<serde_json::Value, HookError> {
        self.call_with(hook, args, request_id, Wait::Sleep).await
    }

    /// [`Engine::call`], waiting as `wait` says. [`Wait::SpinFirst`] spins only when a worker is
    /// free to start the call at once and the machine has more than one core.
    pub async fn call_with(
        &self,
        hook: &Arc<Script>,
        args: Vec<serde_json::Value>,
        request_id: &str,
        wait: Wait,
    ) -> Result<serde_json::Value, HookError> {
        self.call_with_report(hook, args, request_id, wait, None)
            .await
    }

    /// [`Engine::call_with`]; when `report` is given it gets the call's [`CallReport`] once the
    /// call ends (after the answer when the hook left work after cb), or at once if it never runs.
    pub async fn call_with_report(
        &self,
        hook: &Arc<Script>,
        args: Vec<serde_json::Value>,
        request_id: &str,
        wait: Wait,
        report: Option<Reporter>,
    ) -> Result<serde_json::Value, HookError> {
        let timeout = Some(self.inner.queue_timeout);
        self.run(hook, args, request_id, wait, timeout, report)
            .await
    }

    /// [`Engine::call`] for background work that must not be refused (the outbox's post-event
    /// hooks): waits for the hook's concurrency slot and a worker without the queue deadline —
    /// behind the calls ahead of it, each bounded by its hook's timeout — so a burst of events
    /// is delivered at the pace the hooks allow instead of failing attempts as Overloaded.
    pub async fn call_patiently(
        &self,
        hook: &Arc<Script>,
        args: Vec<serde_json::Value>,
        request_id: &str,
    ) -> Result<serde_json::Value, HookError> {
        self.call_patiently_with_report(hook, args, request_id, None)
            .await
    }

    /// [`Engine::call_patiently`] with a report (see [`Engine::call_with_report`]).
    pub async fn call_patiently_with_report(
        &self,
        hook: &Arc<Script>,
        args: Vec<serde_json::Value>,
        request_id: &str,
        report: Option<Reporter>,
    ) -> Result<serde_json::Value, HookError> {
        self.run(hook, args, request_id, Wait::Sleep, None, report)
            .await
    }

    async fn run(
        &self,
        hook: &Arc<Script>,
        args: Vec<serde_json::Value>,
        request_id: &str,
        wait: Wait,
        queue_timeout: Option<Duration>,
        report: Option<Reporter>,
    ) -> Result<serde_json::Value, HookError> {
        let Some(queue_timeout) = queue_timeout else {
            let permit = match self.try_slot(hook) {
                Ok(permit) => permit,
                Err(slots) => match slots.acquire_owned().await {
                    Ok(permit) => permit,
                    Err(_) => return Err(stopped(report)),
                },
            };
            let (rx, ..) = self.submit(hook, args, request_id, permit, report)?;
            return rx.await.unwrap_or_else(|_| Err(worker_died()));
        };
        let queued_until = Instant::now() + queue_timeout;
        let permit = match self.try_slot(hook) {
            Ok(permit) => permit,
            Err(slots) => {
                match tokio::time::timeout_at(queued_until.into(), slots.acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_)) => return Err(stopped(report)),
                    Err(_) => {
                        let e = self.overloaded(hook, request_id, "its max_concurrency");
                        if let Some(report) = report {
                            report.not_run(e.clone());
                        }
                        return Err(e);
                    }
                }
            }
        };
        let (mut rx, ticket, worker_free, pool) =
            self.submit(hook, args, request_id, permit, report)?;
        if wait == Wait::SpinFirst && self.inner.may_spin && worker_free {
            let start = Instant::now();
            loop {
                match rx.try_recv() {
                    Ok(settled) => return settled,
                    Err(TryRecvError::Empty) if start.elapsed() < CALLER_SPIN => {
                        std::hint::spin_loop()
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Closed) => return Err(worker_died()),
                }
            }
        }
        // The queue deadline bounds the wait for a worker to *start* the call; once started,
        // the hook's own timeout bounds it. A call no worker takes within STALL means every
        // worker is held by running JS or full (a worker whose calls wait on I/O takes new
        // calls at once): the pool grows, up to `max_workers`, so such hooks cost the others
        // CPU time shared by the OS, not their turn.
        loop {
            let until = (Instant::now() + STALL).min(queued_until);
            match tokio::time::timeout_at(until.into(), &mut rx).await {
                Ok(answer) => return answer.unwrap_or_else(|_| Err(worker_died())),
                Err(_) if !ticket.queued() => {
                    return rx.await.unwrap_or_else(|_| Err(worker_died()))
                }
                Err(_) if Instant::now() < queued_until => self.grow(pool),
                Err(_) if ticket.abandon() => {
                    return Err(self.overloaded(hook, request_id, "a free worker"))
                }
                Err(_) => return rx.await.unwrap_or_else(|_| Err(worker_died())),
            }
        }
    }

    /// [`Engine::call`] for threads outside any async runtime (the CLI, tests, background threads).
    pub fn call_blocking(
        &self,
        hook: &Arc<Script>,
        args: Vec<serde_json::Value>,
        request_id: &str,
    ) -> Result<serde_json::Value, HookError> {
        self.call_blocking_with_report(hook, args, request_id, None)
    }

    /// [`Engine::call_blocking`] with a report (see [`Engine::call_with_report`]).
    pub fn call_blocking_with_report(
        &self,
        hook: &Arc<Script>,
        args: Vec<serde_json::Value>,
        request_id: &str,
        report: Option<Reporter>,
    ) -> Result<serde_json::Value, HookError> {
        // No timer to await here: poll for the slot and the start, briefly, until the deadline.
        let queued_until = Instant::now() + self.inner.queue_timeout;
        let permit = loop {
            match self.try_slot(hook) {
                Ok(permit) => break permit,
                Err(_) if Instant::now() >= queued_until => {
                    let e = self.overloaded(hook, request_id, "its max_concurrency");
                    if let Some(report) = report {
                        report.not_run(e.clone());
                    }
                    return Err(e);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        };
        let (mut rx, ticket, ..) = self.submit(hook, args, request_id, permit, report)?;
        loop {
            match rx.try_recv() {
                Ok(settled) => return settled,
                Err(TryRecvError::Closed) => return Err(worker_died()),
                Err(TryRecvError::Empty) if Instant::now() < queued_until => {
                    std::thread::sleep(Duration::from_micros(200))
                }
                Err(TryRecvError::Empty) if ticket.abandon() => {
                    return Err(self.overloaded(hook, request_id, "a free worker"))
                }
                Err(TryRecvError::Empty) => {
                    return rx.blocking_recv().unwrap_or_else(|_| Err(worker_died()))
                }
            }
        }
    }

    /// Calls answered [`HookError::Overloaded`] by this engine.
    pub fn overloaded_total(&self) -> u64 {
        self.inner.overloaded.load(Ordering::Relaxed)
    }

    /// Calls this engine queued to its low-priority workers (calls of hogging scripts).
    pub fn low_priority_calls(&self) -> u64 {
        self.inner.low_calls.load(Ordering::Relaxed)
    }

    /// A concurrency slot of `hook`, if one is free now; else its semaphore, to wait on.
    fn try_slot(&self, hook: &Arc<Script>) -> Result<OwnedSemaphorePermit, Arc<Semaphore>> {
        let slots = {
            let mut map = self.inner.slots.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() >= 256 && !map.contains_key(&hook.id) {
                map.retain(|_, (h, _, _)| h.strong_count() > 0);
            }
            let (_, slots, solo) = map.entry(hook.id).or_insert_with(|| {
                let cap = hook.max_concurrency.unwrap_or(self.inner.default_hook_cap);
                (
                    Arc::downgrade(hook),
                    Arc::new(Semaphore::new(cap.max(1))),
                    Arc::new(Semaphore::new(1)),
                )
            });
            if hook.hogged.load(Ordering::Relaxed) >= script::PINNED {
                solo.clone()
            } else {
                slots.clone()
            }
        };
        slots.clone().try_acquire_owned().map_err(|_| slots)
    }

    /// Start one more worker in `which` pool, up to its maximum (`max_workers`, or
    /// [`LOW_WORKERS_MAX`]): every worker is busy and a call waits (see [`STALL`]). Never blocks
    /// on another caller doing the same.
    fn grow(&self, which: worker::Pool) {
        let Ok(pool) = self.inner.pool.try_lock() else {
            return;
        };
        self.grow_locked(which, pool);
    }

    fn grow_locked(&self, which: worker::Pool, mut pool: std::sync::MutexGuard<'_, Pool>) {
        let inner = &self.inner;
        let (started, max, idle, jobs) = match which {
            worker::Pool::Shared => (&inner.started, inner.max_workers, &inner.idle, &pool.jobs),
            worker::Pool::Low => (
                &inner.low_started,
                LOW_WORKERS_MAX,
                &inner.low_idle,
                &pool.low_jobs,
            ),
        };
        let index = started.load(Ordering::Relaxed);
        if index >= max {
            return;
        }
        idle.fetch_add(1, Ordering::Relaxed);
        match worker::spawn(
            index,
            which,
            jobs.clone(),
            idle.clone(),
            pool.limits.clone(),
            pool.egress.clone(),
            inner.board.clone(),
        ) {
            Ok(thread) => {
                pool.threads.push(thread);
                started.store(index + 1, Ordering::Relaxed);
                match which {
                    worker::Pool::Shared => tracing::warn!(workers = index + 1, max,
                        "every JS worker is busy running a hook (a CPU loop, a long computation): started another worker"),
                    worker::Pool::Low => tracing::info!(workers = index + 1, max,
                        "started a low-priority JS worker for hooks that hog the CPU"),
                }
            }
            Err(e) => {
                idle.fetch_sub(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "could not start another JS worker");
            }
        }
    }

    fn overloaded(&self, hook: &Script, request_id: &str, waited_for: &str) -> HookError {
        self.inner.overloaded.fetch_add(1, Ordering::Relaxed);
        OVERLOADED_TOTAL.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(hook = %hook.name, request_id, queue_timeout_ms = self.inner.queue_timeout.as_millis() as u64,
            "the hook call waited for {waited_for} longer than [hooks] queue_timeout_ms; answered 503 (overloaded)");
        HookError::Overloaded
    }

    /// Say that a call will come shortly (within a few hundred µs): a free worker asleep wakes
    /// now and spins for it, so the wake-up overlaps the caller's own work instead of adding to
    /// the call. For callers passing [`Wait::SpinFirst`] (at a steady load the workers' own
    /// spinning decides). Does nothing when no worker is free or the machine has one core.
    /// Evaluate `scripts` (a generation about to serve: each hook's module and what it
    /// requires) on every worker, and return once all have or `within` has passed, with how
    /// many did. Then no first call on a worker pays for loading a hook's packages (request +
    /// axios: ~100 ms). Workers busy with calls evaluate between their calls' events; a worker
    /// started later evaluates the last set before its first call. Runs on the caller's thread
    /// (the reloader's), never on the proxy's.
    pub fn warm(&self, scripts: Vec<Arc<Script>>, within: Duration) -> usize {
        let inner = &self.inner;
        // All but one of the workers serving calls evaluate at once, so that one always takes
        // calls; a worker started meanwhile evaluates before its first call.
        let at_once = inner.started.load(Ordering::Relaxed).saturating_sub(1);
        let epoch = inner.board.post(scripts, at_once);
        let deadline = Instant::now() + within;
        let mut done = 0;
        loop {
            let workers = inner.started.load(Ordering::Relaxed);
            let now = Instant::now();
            // (`done_beyond` answers usize::MAX once a newer set replaced this one: nobody
            // waits for this one any more, which counts as done.)
            if done >= workers || now >= deadline {
                return done.min(workers);
            }
            // Wake the workers asleep on the queue, one wake-up per worker (those already done
            // may take some): at first, after each worker done (which frees a turn for one
            // that found none and may be asleep) and after each quiet 20 ms. Never in a loop:
            // each wake-up sets a worker spinning for calls.
            if let Some(jobs) = &inner.jobs {
                for _ in 0..workers {
                    let _ = jobs.send(worker::Msg::Wake);
                }
            }
            let wait = Duration::from_millis(20).min(deadline - now);
            done = inner.board.done_beyond(epoch, done, wait);
        }
    }

    pub fn prewake(&self) {
        if self.inner.may_spin && self.inner.idle.load(Ordering::Relaxed) > 0 {
            if let Some(jobs) = &self.inner.jobs {
                let _ = jobs.send(worker::Msg::Wake);
            }
        }
    }

    /// Whether a low-priority worker runs; the first call of a hogging script starts one
    /// (waiting for another caller doing the same, so a call never sits in a queue nobody
    /// reads). False only if no thread could be started: the shared workers take the call.
    fn low_pool_running(&self) -> bool {
        if self.inner.low_started.load(Ordering::Relaxed) == 0 {
            let pool = self.inner.pool.lock().unwrap_or_else(|e| e.into_inner());
            if self.inner.low_started.load(Ordering::Relaxed) == 0 {
                self.grow_locked(worker::Pool::Low, pool);
            }
        }
        self.inner.low_started.load(Ordering::Relaxed) > 0
    }

    /// Queue the call, on the low-priority workers if its script hogs; also says whether a
    /// worker was free to take it, and which pool has it.
    fn submit(
        &self,
        hook: &Arc<Script>,
        args: Vec<serde_json::Value>,
        request_id: &str,
        permit: OwnedSemaphorePermit,
        report: Option<Reporter>,
    ) -> Result<
        (
            oneshot::Receiver<worker::Settled>,
            Arc<worker::Ticket>,
            bool,
            worker::Pool,
        ),
        HookError,
    > {
        let (reply, rx) = oneshot::channel();
        let ticket = worker::Ticket::new(permit);
        let job = worker::Job {
            hook: hook.clone(),
            args,
            request_id: request_id.to_owned(),
            reply,
            ticket: ticket.clone(),
            report,
        };
        // A job refused by a closed queue comes back and is dropped: its reporter reports.
        let refused = |job: worker::Job| stopped(job.report);
        if hook.is_hogged() && self.low_pool_running() {
            let Some(jobs) = self.inner.low_jobs.as_ref() else {
                return Err(refused(job));
            };
            LOW_CALLS_TOTAL.fetch_add(1, Ordering::Relaxed);
            self.inner.low_calls.fetch_add(1, Ordering::Relaxed);
            return match jobs.send(worker::Msg::Call(job)) {
                Ok(()) => Ok((rx, ticket, false, worker::Pool::Low)),
                Err(crossbeam_channel::SendError(worker::Msg::Call(job))) => Err(refused(job)),
                Err(_) => Err(stopped(None)),
            };
        }
        let Some(jobs) = self.inner.jobs.as_ref() else {
            return Err(refused(job));
        };
        let worker_free = self.inner.idle.load(Ordering::Relaxed) > 0;
        match jobs.send(worker::Msg::Call(job)) {
            Ok(()) => Ok((rx, ticket, worker_free, worker::Pool::Shared)),
            Err(crossbeam_channel::SendError(worker::Msg::Call(job))) => Err(refused(job)),
            Err(_) => Err(stopped(None)),
        }
    }
}

/// The engine has stopped: the call cannot run (its reporter, if any, is told so).
fn stopped(report: Option<Reporter>) -> HookError {
    let e = HookError::Crashed("the engine has stopped".into());
    if let Some(report) = report {
        report.not_run(e.clone());
    }
    e
}

fn worker_died() -> HookError {
    HookError::Crashed("the worker running the hook died".into())
}
