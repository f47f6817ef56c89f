//! One JS worker: a thread owning one QuickJS runtime, one context per hook it has run, and the
//! calls in progress on it, several at once.
//!
//! Owns: the runtime's limits (memory, stack, CPU deadline via the interrupt handler), the event
//! loop shared by the calls in progress (microtasks, timers, fetch completions), answering each
//! caller as soon as its cb settles, ending a call at its deadline, recycling the runtime
//! after a timeout while JS runs, a crash, or a failure of hookgate's own JS glue, and — for a
//! call whose caller handed a reporter — feeding its capture (console lines, requests, CPU) and
//! sending its report the moment the call ends, however it ends (`report.rs`).
//! Must not touch: other workers, files, or anything async: fetch runs on the engine's tokio
//! runtime and comes back through this worker's completion channel; sockets and lookups
//! (`sockets.rs`) likewise, through its socket channel, many events per id, each delivered as
//! the call that opened the socket. A call's sockets keep it alive (ref'd, as in Node; any open
//! socket while cb has not settled) and are closed when it ends; the hook's JS learns of the
//! close when the hook's next call starts (`HookCtx::orphans`).
//!
//! # Several calls per worker
//! Like Node running concurrent invocations of one module in one process, a worker takes new
//! calls while the ones it holds wait on outbound requests or timers (up to
//! `[hooks] calls_per_worker`). Each call keeps its own state ([`CallState`]: deadline, timers,
//! requests, console budget, reply). Attribution: a call's `cb` is made for it and names it;
//! timers, requests and console lines belong to the call whose JS is running when they are
//! created — the worker marks that call *current* before it enters JS for it (the invocation, a
//! timer firing, a request's completion) and drains the microtasks before unmarking it.
//! * A call whose deadline passes while it waits is ended alone: answered Timeout if cb has not
//!   settled, its timers and requests dropped. The runtime stays.
//! * A call still running JS at its deadline (a CPU loop) is interrupted, and a crash (memory,
//!   stack) or a failure of the glue leaves the runtime in doubt: the runtime is replaced, and
//!   the other calls on it that have not settled are answered [`HookError::Crashed`] at once,
//!   never left hanging.
//! * Due timers fire once per round, and a round checks the queue for new calls, so timers every
//!   0 ms cannot keep a worker from taking calls.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use rquickjs::{Context, Ctx, Function, Persistent, Runtime, Value};

use super::bytes::bytes_out;
use super::egress::{Caller, Done, Egress, Request};
use super::globals::{self, crash_kind, remaining, Api};
use super::program::Module;
use super::report::{Capture, Reporter};
use super::sockets::{self, Event as SockEvent, Kind as SockKind, Op, Query, TlsOptions};
use super::Script;
use super::{HookError, HookFailure};

/// What cb (or a failure standing for it) produced.
pub(crate) type Settled = Result<serde_json::Value, HookError>;

/// A call handed to the pool.
pub(crate) struct Job {
    pub hook: Arc<Script>,
    pub args: Vec<serde_json::Value>,
    pub request_id: String,
    pub reply: tokio::sync::oneshot::Sender<Settled>,
    /// Shared with the caller, who may give up before a worker takes the call.
    pub ticket: Arc<Ticket>,
    /// Where the call's report goes when it ends; `None`: nothing is captured.
    pub report: Option<Reporter>,
}

/// Whether a queued call is still wanted: a worker takes it, or its caller abandons it at the
/// queue deadline (and answers Overloaded) — exactly one of the two wins. It carries the hook's
/// concurrency slot ([`super::Engine`]): the worker keeps it until the call's loop ends, an
/// abandoning caller frees it at once (a job left in the queue must not hold it).
pub(crate) struct Ticket {
    state: AtomicU8,
    permit: std::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
}

const QUEUED: u8 = 0;
const TAKEN: u8 = 1;
const ABANDONED: u8 = 2;

impl Ticket {
    pub fn new(permit: tokio::sync::OwnedSemaphorePermit) -> Arc<Ticket> {
        Arc::new(Ticket {
            state: AtomicU8::new(QUEUED),
            permit: std::sync::Mutex::new(Some(permit)),
        })
    }
    fn permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.permit.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
    /// The worker's side: the slot, if the caller still waits.
    fn take(&self) -> Option<Option<tokio::sync::OwnedSemaphorePermit>> {
        self.state
            .compare_exchange(QUEUED, TAKEN, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| self.permit())
    }
    /// No worker has taken the call yet (nor has its caller abandoned it).
    pub fn queued(&self) -> bool {
        self.state.load(Ordering::Acquire) == QUEUED
    }
    /// The caller's side: true if no worker took the call (it never will now).
    pub fn abandon(&self) -> bool {
        let abandoned = self
            .state
            .compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if abandoned {
            drop(self.permit());
        }
        abandoned
    }
}

/// What the queue carries to a worker.
pub(crate) enum Msg {
    Call(Job),
    /// A call is coming (see [`super::Engine::prewake`]): wake up and spin for it.
    Wake,
}

/// The hooks of a generation being loaded, which every shared worker evaluates (module and
/// `require`s) before that generation serves: see [`super::Engine::warm`].
#[derive(Default)]
pub(crate) struct WarmBoard {
    /// Bumped for each new set; a worker compares it with the last one it evaluated.
    epoch: AtomicU64,
    scripts: Mutex<Arc<[Arc<Script>]>>,
    /// (epoch, workers that evaluated its set).
    done: Mutex<(u64, usize)>,
    finished: Condvar,
    /// Workers evaluating a set right now, and how many of those that already serve may at
    /// once: the rest keep taking calls (a hook requiring request + axios takes ~100 ms to
    /// evaluate; every worker at it together stalled every hooked request that long, and the
    /// calls queued meanwhile grew the pool, whose new workers evaluated it too).
    warming: AtomicUsize,
    limit: AtomicUsize,
}

/// A worker's turn at evaluating a set; gives the turn back when dropped (a panic included).
struct WarmTurn<'a>(Option<&'a WarmBoard>);

impl Drop for WarmTurn<'_> {
    fn drop(&mut self) {
        if let Some(board) = self.0 {
            board.warming.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl WarmBoard {
    /// Post a new set, which at most `at_once` serving workers evaluate at the same time (at
    /// least one); returns its epoch.
    pub fn post(&self, scripts: Vec<Arc<Script>>, at_once: usize) -> u64 {
        let mut current = self.scripts.lock().unwrap_or_else(|e| e.into_inner());
        *current = scripts.into();
        self.limit.store(at_once.max(1), Ordering::Release);
        self.epoch.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// A turn at evaluating, if fewer than the limit are at it. A worker that never served
    /// (`fresh`: just started, nobody's calls wait on it) always has one.
    fn turn(&self, fresh: bool) -> Option<WarmTurn<'_>> {
        if fresh {
            return Some(WarmTurn(None));
        }
        let limit = self.limit.load(Ordering::Acquire).max(1);
        self.warming
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| WarmTurn(Some(self)))
    }

    /// Workers that evaluated `epoch`'s set, once more than `seen` have or `wait` has passed.
    /// (A newer set posted meanwhile answers `usize::MAX`: nobody waits for this one any more.)
    pub fn done_beyond(&self, epoch: u64, seen: usize, wait: Duration) -> usize {
        let done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        let (done, _) = self
            .finished
            .wait_timeout_while(done, wait, |d| d.0 < epoch || (d.0 == epoch && d.1 <= seen))
            .unwrap_or_else(|e| e.into_inner());
        match done.0.cmp(&epoch) {
            std::cmp::Ordering::Equal => done.1,
            std::cmp::Ordering::Less => 0,
            std::cmp::Ordering::Greater => usize::MAX,
        }
    }

    fn finish(&self, epoch: u64) {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        match done.0.cmp(&epoch) {
            std::cmp::Ordering::Equal => done.1 += 1,
            std::cmp::Ordering::Less => *done = (epoch, 1),
            std::cmp::Ordering::Greater => return,
        }
        self.finished.notify_all();
    }
}

/// The sandbox limits, from `[hooks]`.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub memory_bytes: usize,
    pub stack_bytes: usize,
    pub max_response_bytes: usize,
    pub max_log_bytes: usize,
    /// Calls a worker holds at once (`[hooks] calls_per_worker`).
    pub calls_per_worker: usize,
    /// Outbound requests one call may have in flight (`[hooks] max_requests_per_call`).
    pub requests_per_call: usize,
    /// `process.version` (`[hooks] node_version`).
    pub node_version: String,
    /// CPU one call's JS may use before its script is marked hogging (`[hooks] call_cpu_ms`).
    pub call_cpu: Duration,
}

impl Limits {
    /// The limits every worker (and the load-time probe's scratch worker) runs under.
    pub fn from_config(cfg: &crate::config::HooksConfig) -> Limits {
        Limits {
            memory_bytes: cfg.memory_limit_mb.max(8) << 20,
            stack_bytes: cfg.stack_limit_kb.max(64) << 10,
            max_response_bytes: cfg.max_response_bytes,
            max_log_bytes: cfg.max_log_bytes,
            calls_per_worker: cfg.calls_per_worker.max(1),
            requests_per_call: cfg.max_requests_per_call.max(1),
            node_version: cfg.node_version.clone(),
            call_cpu: Duration::from_millis(cfg.call_cpu_ms.max(1)),
        }
    }
}

/// How long an idle worker spins on the queue before sleeping, when spinning paid off last time
/// (see [`next_job`]): a call arriving within this window skips a futex wake-up (measured on 2
/// cores: a single warm call 72 µs without the spin, 40 µs with it).
const SPIN_FOR: Duration = Duration::from_micros(50);
/// How long a worker woken by [`Msg::Wake`] spins for the call announced: the proxy announces it
/// before verifying the upstream's token, which takes ~50-100 µs here.
const WAKE_SPIN: Duration = Duration::from_micros(300);
/// Contexts of hooks from older generations are dropped once a worker holds this many.
const SWEEP_AT: usize = 32;
/// One console line is cut to this length.
const MAX_LOG_LINE: usize = 8 << 10;

/// Which pool a worker serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pool {
    /// The workers every call runs on (`hookgate-js-N`).
    Shared,
    /// The workers of hogged scripts (`hookgate-hog-N`), at the lowest CPU priority.
    Low,
}

/// The nice value of the low-priority workers. Under load the OS gives a nice-10 thread about a
/// tenth of the CPU a nice-0 thread gets (CFS weights 110 and 1024), and all it wants when
/// nothing else runs. Not 19 (1/70): on a machine saturated by other processes a nice-19
/// worker got too little CPU to start a call within a 300 ms timeout (`tests/engine_isolation.rs`
/// failed so), and a hook marked for one heavy call should be slowed, not starved.
pub(crate) const LOW_NICE: i32 = 10;

/// Lower the calling thread's CPU priority to [`LOW_NICE`]. Linux's `setpriority` on a thread
/// id sets that thread alone; an unprivileged process cannot raise it back, which is why hogged
/// scripts get threads of their own. Elsewhere, or refused: logged, the pool still works.
fn lower_own_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on the calling thread, no pointers.
        let rc = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, LOW_NICE)
        };
        if rc != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(),
                "could not lower the priority of a low-priority JS worker; hogged hooks share the CPU equally");
        }
    }
}

/// This thread's CPU time so far (Linux, other Unixes: `CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// `idle` counts the workers holding no call, for callers deciding whether to spin
/// ([`super::Wait`]).
pub(crate) fn spawn(
    index: usize,
    pool: Pool,
    jobs: Receiver<Msg>,
    idle: Arc<AtomicUsize>,
    limits: Limits,
    egress: Egress,
    board: Arc<WarmBoard>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let name = match pool {
        Pool::Shared => format!("hookgate-js-{index}"),
        Pool::Low => format!("hookgate-hog-{index}"),
    };
    std::thread::Builder::new()
        .name(name)
        // QuickJS checks its stack limit against the real native stack: leave room above it.
        .stack_size(limits.stack_bytes + (16 << 20))
        .spawn(move || {
            // Counted for `/metrics` while the thread runs.
            struct Running;
            impl Drop for Running {
                fn drop(&mut self) {
                    super::LOW_WORKERS.fetch_sub(1, Ordering::Relaxed);
                }
            }
            let _running = (pool == Pool::Low).then(|| {
                lower_own_priority();
                super::LOW_WORKERS.fetch_add(1, Ordering::Relaxed);
                Running
            });
            let new_worker = || {
                let mut w = Worker::new(limits.clone(), egress.clone());
                w.pool = pool;
                // The low-priority workers run hogged scripts one call at a time: nothing to
                // get ready for.
                w.board = (pool == Pool::Shared).then(|| board.clone());
                w
            };
            let mut worker = new_worker();
            let mut lp = Loop {
                spin: SPIN_FOR,
                closed: false,
                busy: false,
            };
            loop {
                match catch_unwind(AssertUnwindSafe(|| worker.turn(&jobs, &idle, &mut lp))) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(_) => {
                        tracing::error!(
                            worker = index,
                            "a JS worker panicked; its runtime is replaced"
                        );
                        worker.fail_all("the worker running the hook failed (a panic)");
                        // The old runtime may be inconsistent: leaking it is safer than freeing it.
                        std::mem::forget(std::mem::replace(&mut worker, new_worker()));
                    }
                }
                lp.sync_idle(&idle, worker.holds_calls());
            }
        })
}

/// The worker loop's own state, kept across a panic.
struct Loop {
    spin: Duration,
    /// The queue is closed: finish the calls held, take no more.
    closed: bool,
    /// Counted out of `idle`.
    busy: bool,
}

impl Loop {
    fn sync_idle(&mut self, idle: &AtomicUsize, busy: bool) {
        if busy != self.busy {
            if busy {
                idle.fetch_sub(1, Ordering::Relaxed);
            } else {
                idle.fetch_add(1, Ordering::Relaxed);
            }
            self.busy = busy;
        }
    }
}

/// The next call, spinning up to `*spin` before sleeping. Whether to spin next time is what the
/// last wait says: a call that came within [`SPIN_FOR`] would have been caught spinning, one that
/// came later would have cost [`SPIN_FOR`] of CPU for nothing. At a steady few hundred calls per
/// second per worker (hookgate in front of node-oidc-provider) an unconditional spin was 50 µs of
/// wasted CPU per call, a fifth of hookgate's; calls back to back keep the spin. A
/// [`Msg::Wake`] starts a spin of [`WAKE_SPIN`] for the call announced.
/// A [`Msg::Wake`] also ends the wait when `warm_due` says a new set of hooks is to be
/// evaluated ([`WarmBoard`]).
fn next_job(jobs: &Receiver<Msg>, spin: &mut Duration, warm_due: impl Fn() -> bool) -> Next {
    let mut start = Instant::now();
    let mut budget = *spin;
    loop {
        let msg = match jobs.try_recv() {
            Ok(msg) => msg,
            Err(TryRecvError::Disconnected) => return Next::Closed,
            Err(TryRecvError::Empty) if start.elapsed() < budget => {
                std::hint::spin_loop();
                continue;
            }
            Err(TryRecvError::Empty) => {
                let Ok(msg) = jobs.recv() else {
                    return Next::Closed;
                };
                *spin = if start.elapsed() < SPIN_FOR {
                    SPIN_FOR
                } else {
                    Duration::ZERO
                };
                msg
            }
        };
        match msg {
            Msg::Call(job) => return Next::Job(job),
            Msg::Wake if warm_due() => return Next::Warm,
            Msg::Wake => {
                start = Instant::now();
                budget = WAKE_SPIN;
            }
        }
    }
}

/// What [`next_job`] found.
enum Next {
    Job(Job),
    /// A generation's hooks are to be evaluated first.
    Warm,
    /// The queue is closed.
    Closed,
}

/// Abort a call's requests, the most recent first: one still waiting for an outbound slot is
/// cancelled before an older one's slot is freed, so it never takes that slot and goes out
/// after its hook stopped waiting (ids grow with each request).
fn abort_newest_first(requests: &HashMap<u64, Option<tokio::task::AbortHandle>>) {
    let mut ids: Vec<_> = requests.keys().copied().collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    for handle in ids.iter().filter_map(|id| requests[id].as_ref()) {
        handle.abort();
    }
}

/// CPU a settled call of a hogging script may still spend on a shared worker (its timers and
/// callbacks after `cb`) before that leftover work is stopped. A response handler costs far
/// less; a `setInterval(0)` left running passes it within about a second.
const LEFTOVER_CPU_CUT: Duration = Duration::from_millis(5);

/// The state of one call in progress, reachable from the native functions of every context.
pub(crate) struct CallState {
    seq: u64,
    hook: Arc<Script>,
    request_id: String,
    deadline: Instant,
    reply: Option<tokio::sync::oneshot::Sender<Settled>>,
    /// cb (or a failure standing for it) has settled; later settles are ignored.
    settled: bool,
    crashed: bool,
    timers: BTreeSet<(Instant, u64)>,
    timer_due: HashMap<u64, (Instant, bool)>,
    requests: HashMap<u64, Option<tokio::task::AbortHandle>>,
    /// Sockets and lookups of the call (`sockets.rs`); dropping one closes it.
    sockets: HashMap<u64, sockets::Handle>,
    /// Slots for the call's outbound requests in flight (`[hooks] max_requests_per_call`): a
    /// request beyond them waits for one, as behind an HTTP agent's `maxSockets`.
    outbound: Arc<tokio::sync::Semaphore>,
    log_bytes: usize,
    log_dropped: bool,
    /// CPU its JS used so far (counted against `[hooks] call_cpu_ms`).
    cpu: Duration,
    /// The part of `cpu` spent after the call was settled (timers, callbacks left after `cb`).
    cpu_after_cb: Duration,
    /// What the call did, for its caller's report (see `report.rs`); `None`: not asked for.
    capture: Option<Capture>,
    /// Released (to the hook's concurrency cap) when the call ends.
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl CallState {
    /// A call starting now on this worker; `reply` is absent for the load-time probe.
    fn new(
        seq: u64,
        hook: Arc<Script>,
        request_id: String,
        deadline: Instant,
        reply: Option<tokio::sync::oneshot::Sender<Settled>>,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
        limits: &Limits,
    ) -> CallState {
        CallState {
            seq,
            hook,
            request_id,
            deadline,
            reply,
            settled: false,
            crashed: false,
            timers: BTreeSet::new(),
            timer_due: HashMap::new(),
            requests: HashMap::new(),
            sockets: HashMap::new(),
            outbound: Arc::new(tokio::sync::Semaphore::new(limits.requests_per_call)),
            log_bytes: 0,
            log_dropped: false,
            cpu: Duration::ZERO,
            cpu_after_cb: Duration::ZERO,
            capture: None,
            _permit: permit,
        }
    }

    fn add_timer(&mut self, id: u64, delay: Duration) {
        let keep = self.timer_due.get(&id).is_none_or(|t| t.1);
        self.clear_timer(id);
        let due = Instant::now() + delay;
        self.timers.insert((due, id));
        self.timer_due.insert(id, (due, keep));
    }
    fn clear_timer(&mut self, id: u64) -> bool {
        match self.timer_due.remove(&id) {
            Some((due, _)) => {
                self.timers.remove(&(due, id));
                true
            }
            None => false,
        }
    }
    fn ref_timer(&mut self, id: u64, keep: bool) -> bool {
        match self.timer_due.get_mut(&id) {
            Some(t) => {
                t.1 = keep;
                true
            }
            None => false,
        }
    }
    fn pop_due(&mut self, now: Instant) -> Option<(Instant, u64)> {
        let &(due, id) = self.timers.first()?;
        if due > now {
            return None;
        }
        self.timers.remove(&(due, id));
        self.timer_due.remove(&id);
        Some((due, id))
    }
    /// Something that keeps the call alive: a ref'd timer, a request in flight, or a ref'd
    /// socket (Node's rule: an open socket keeps the process alive until it is closed or
    /// `unref()`ed) or lookup.
    fn keeps_alive(&self) -> bool {
        !self.requests.is_empty()
            || self.timer_due.values().any(|t| t.1)
            || self.sockets.values().any(|s| s.keep)
    }
    /// When the worker must look at this call again.
    fn next_wake(&self) -> Instant {
        self.timers
            .first()
            .map_or(self.deadline, |t| t.0.min(self.deadline))
    }
    /// Send the call's report, if one was asked for: the call is over, and requests still under
    /// way were stopped because `why`.
    fn report(&mut self, why: &str) {
        if let Some(capture) = self.capture.take() {
            capture.finish(why);
        }
    }

    /// Record the call's result and answer the caller; only the first one counts.
    fn settle(&mut self, settled: Settled) {
        if self.settled {
            return;
        }
        self.settled = true;
        self.crashed |= matches!(settled, Err(HookError::Crashed(_)));
        if let Some(capture) = &mut self.capture {
            capture.settled(&settled);
        }
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(settled);
        }
    }
}

struct SharedInner {
    calls: RefCell<HashMap<u64, CallState>>,
    /// The call whose JS is running (0: none).
    current: Cell<u64>,
    egress: Egress,
    done_tx: Sender<Done>,
    /// Where the call's sockets and lookups report (`sockets.rs`).
    sock_tx: Sender<SockEvent>,
    limits: Limits,
    /// Promises rejected with no handler during the current `enter`, by identity, with the
    /// line to log: reported only if still unhandled once the microtasks have run, as Node
    /// does (a handler attached a moment later, `await`ed after other work, is no error).
    rejections: RefCell<Vec<(u64, String)>>,
}

/// Handle the native functions hold; one per worker.
#[derive(Clone)]
pub(crate) struct Shared(Rc<SharedInner>);

impl Shared {
    /// `f` on the current call's state; the default when no call is current.
    pub fn with_call<R: Default>(&self, f: impl FnOnce(&mut CallState) -> R) -> R {
        let current = self.0.current.get();
        self.with_seq(current, f)
    }

    fn with_seq<R: Default>(&self, seq: u64, f: impl FnOnce(&mut CallState) -> R) -> R {
        self.0
            .calls
            .borrow_mut()
            .get_mut(&seq)
            .map(f)
            .unwrap_or_default()
    }

    /// `f` on the call that owns the timer or request `id` of the current call's context: the
    /// current call first, else another call of the same hook (a timer one call made and
    /// another clears, both running in the one context).
    fn with_owner(&self, mut f: impl FnMut(&mut CallState) -> bool) {
        let mut calls = self.0.calls.borrow_mut();
        let hook_id = match calls.get_mut(&self.0.current.get()) {
            Some(c) => {
                if f(c) {
                    return;
                }
                c.hook.id
            }
            None => return,
        };
        for c in calls.values_mut() {
            if c.hook.id == hook_id && f(c) {
                return;
            }
        }
    }

    pub fn add_timer(&self, id: u64, delay: Duration) {
        // `refresh()` of a timer another call of the hook made keeps it that call's.
        let mut owned = false;
        self.with_owner(|c| {
            if c.timer_due.contains_key(&id) {
                c.add_timer(id, delay);
                owned = true;
            }
            owned
        });
        if !owned {
            self.with_call(|c| c.add_timer(id, delay));
        }
    }

    pub fn clear_timer(&self, id: u64) {
        self.with_owner(|c| c.clear_timer(id));
    }

    pub fn ref_timer(&self, id: u64, keep: bool) {
        self.with_owner(|c| c.ref_timer(id, keep));
    }

    /// The call whose JS runs now (0: none); process.js keys `process.env` by it.
    pub fn current_call(&self) -> u64 {
        self.0.current.get()
    }

    /// Is call `seq` still in progress on this worker?
    pub fn call_live(&self, seq: u64) -> bool {
        self.0.calls.borrow().contains_key(&seq)
    }

    pub fn max_response_bytes(&self) -> usize {
        self.0.limits.max_response_bytes
    }

    pub fn module(&self, key: &str) -> Option<Arc<Module>> {
        self.0
            .calls
            .borrow()
            .get(&self.0.current.get())
            .and_then(|c| c.hook.program.modules.get(key).cloned())
    }

    /// The current call's result.
    pub fn settle(&self, settled: Settled) {
        self.with_call(|c| c.settle(settled))
    }

    /// Call `seq`'s result (its cb names it: cb may run while another call's JS runs).
    pub fn settle_seq(&self, seq: u64, settled: Settled) {
        self.with_seq(seq, |c| c.settle(settled))
    }

    pub fn start_request(&self, id: u64, req: Request) {
        let mut calls = self.0.calls.borrow_mut();
        let Some(c) = calls.get_mut(&self.0.current.get()) else {
            return;
        };
        if let Some(capture) = &mut c.capture {
            capture.request_started(id, &req.method, &req.url);
        }
        let caller = Caller {
            hook: &c.hook.name,
            seq: c.seq,
            slots: c.outbound.clone(),
            timeout: remaining(c.deadline),
        };
        let handle = self.0.egress.start(caller, id, req, self.0.done_tx.clone());
        c.requests.insert(id, handle);
    }

    /// Open socket `id` for the current call (`net.connect`, `tls.connect`).
    pub fn start_socket(&self, id: u64, host: String, port: u16, tls: Option<TlsOptions>) {
        let mut calls = self.0.calls.borrow_mut();
        let Some(c) = calls.get_mut(&self.0.current.get()) else {
            return;
        };
        let caller = sockets::Caller {
            hook: &c.hook.name,
            seq: c.seq,
            id,
            slots: c.outbound.clone(),
            timeout: remaining(c.deadline),
        };
        let handle = sockets::connect(
            &self.0.egress,
            caller,
            host,
            port,
            tls,
            self.0.sock_tx.clone(),
        );
        c.sockets.insert(id, handle);
    }

    /// Start lookup `id` for the current call (`dns`).
    pub fn start_lookup(&self, id: u64, host: String, query: Query) {
        let mut calls = self.0.calls.borrow_mut();
        let Some(c) = calls.get_mut(&self.0.current.get()) else {
            return;
        };
        let caller = sockets::Caller {
            hook: &c.hook.name,
            seq: c.seq,
            id,
            slots: c.outbound.clone(),
            timeout: remaining(c.deadline),
        };
        let handle = sockets::lookup(&self.0.egress, caller, host, query, self.0.sock_tx.clone());
        c.sockets.insert(id, handle);
    }

    /// Hand socket `id` an operation (the call that opened it may not be the current one: a
    /// client kept in module scope is used by later calls of the hook).
    pub fn socket_op(&self, id: u64, op: Op) {
        let mut op = Some(op);
        self.with_owner(|c| match c.sockets.get(&id) {
            Some(h) => {
                if let Some(op) = op.take() {
                    h.send(op);
                }
                true
            }
            None => false,
        });
    }

    /// `ref()`/`unref()`: whether socket `id` keeps its call alive.
    pub fn socket_ref(&self, id: u64, keep: bool) {
        self.with_owner(|c| match c.sockets.get_mut(&id) {
            Some(h) => {
                h.keep = keep;
                true
            }
            None => false,
        });
    }

    /// `destroy()`: close socket `id` now (or forget a lookup); no more events come for it.
    /// `clean`: both sides had ended (else the hook cut it short).
    pub fn socket_close(&self, id: u64, clean: bool) {
        self.with_owner(|c| match c.sockets.remove(&id) {
            Some(h) => {
                h.close(if clean {
                    "closed"
                } else {
                    "destroyed by the hook"
                });
                true
            }
            None => false,
        });
    }

    /// The hook stopped waiting for a request (its own timeout, `req.abort()`): drop it, so it
    /// no longer keeps the event loop alive.
    pub fn cancel_request(&self, id: u64) {
        self.with_owner(|c| match c.requests.remove(&id) {
            Some(handle) => {
                if let Some(handle) = handle {
                    handle.abort();
                }
                if let Some(capture) = &mut c.capture {
                    capture.request_done(
                        id,
                        Err("cancelled: the hook stopped waiting for it".into()),
                        Vec::new(),
                    );
                }
                true
            }
            None => false,
        })
    }

    /// An exception nothing caught outside a JS stack the host entered (a `process.nextTick`
    /// callback, a timer, a request's callback): the call's failure before cb, a logged error
    /// after it — as a throw would be.
    pub fn uncaught(&self, class: String, message: String) {
        if let Some(kind) = crash_kind(&message) {
            self.with_call(|c| {
                c.settle(Err(HookError::Crashed(kind)));
                c.crashed = true;
            });
        } else if self.is_settled() {
            self.log(
                3,
                format!("error after cb was called (ignored): {class}: {message}"),
            );
        } else {
            self.settle(Err(HookError::Failed(HookFailure {
                class,
                message,
                user_message: None,
            })));
        }
    }

    /// What `process.version` says in this worker's contexts.
    pub fn node_version(&self) -> &str {
        &self.0.limits.node_version
    }

    /// Log the rejections still unhandled now that the microtask queue is empty (when `log`: a
    /// run cut short has no "later" to wait for), and forget them all.
    fn report_rejections(&self, log: bool) {
        let pending = std::mem::take(&mut *self.0.rejections.borrow_mut());
        if log {
            for (_, msg) in pending {
                self.log(2, format!("unhandled promise rejection: {msg}"));
            }
        }
    }

    pub fn log(&self, level: i32, mut msg: String) {
        let mut calls = self.0.calls.borrow_mut();
        let Some(c) = calls.get_mut(&self.0.current.get()) else {
            tracing::debug!(target: "hookgate::hook", "{msg}");
            return;
        };
        if c.log_bytes >= self.0.limits.max_log_bytes {
            if let Some(capture) = &mut c.capture {
                capture.truncated();
            }
            if !c.log_dropped {
                c.log_dropped = true;
                tracing::warn!(target: "hookgate::hook", hook = %c.hook.name, request_id = %c.request_id,
                    "console output limit reached ([hooks] max_log_bytes); further lines of this call are dropped");
            }
            return;
        }
        if msg.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !msg.is_char_boundary(cut) {
                cut -= 1;
            }
            msg.truncate(cut);
            msg.push_str("… (truncated)");
            if let Some(capture) = &mut c.capture {
                capture.truncated();
            }
        }
        c.log_bytes += msg.len();
        let (hook, rid) = (&c.hook.name, &c.request_id);
        match level {
            0 => {
                tracing::debug!(target: "hookgate::hook", hook = %hook, request_id = %rid, "{msg}")
            }
            1 => tracing::info!(target: "hookgate::hook", hook = %hook, request_id = %rid, "{msg}"),
            2 => tracing::warn!(target: "hookgate::hook", hook = %hook, request_id = %rid, "{msg}"),
            _ => {
                tracing::error!(target: "hookgate::hook", hook = %hook, request_id = %rid, "{msg}")
            }
        }
        if let Some(capture) = &mut c.capture {
            capture.line(level, msg);
        }
    }

    fn is_settled(&self) -> bool {
        self.with_call(|c| c.settled)
    }
}

struct HookCtx {
    api: Api,
    /// Sockets the context's JS still holds whose call ended (and so closed them): told to the
    /// JS (`'close'`) when the next call of the hook starts, so a client kept in module scope
    /// reconnects as that call.
    orphans: RefCell<Vec<u64>>,
    /// A call has been invoked in this context: later invocations count against
    /// `[hooks] call_cpu_ms`.
    warm: Cell<bool>,
    exports: Option<Persistent<Function<'static>>>,
    hook: Weak<Script>,
    ctx: Context,
}

/// What an entry into JS runs, which decides what an exception escaping it means.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// The hook's own code (evaluating its module): an exception is the call's failure.
    Hook,
    /// hookgate's glue (invoke, timer and request callbacks), which catches everything the
    /// hook throws: an exception escaping it means the glue itself broke.
    Glue,
}

/// Why a runtime is being replaced, told to the other calls it held.
#[derive(Debug, Clone, Copy)]
enum Recycle {
    Timeout,
    Crash,
    Glue,
}

impl Recycle {
    fn others(&self) -> &'static str {
        match self {
            Recycle::Timeout => "the worker running this call was recycled: another call on it ran past its timeout while running JS",
            Recycle::Crash => "the worker running this call was recycled: another call on it crashed (memory or stack limit)",
            Recycle::Glue => "the worker running this call was recycled: hookgate's invocation code failed in another call on it",
        }
    }
}

/// How a call left the worker.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// cb settled and nothing is pending.
    Done,
    /// Nothing pending and cb not called: it never can be.
    Stuck,
    /// Its deadline passed while it waited.
    Timeout,
    /// Answered, on a shared worker, and its script hogs: what it left after cb stops.
    Hogged,
}

pub(crate) struct Worker {
    // Field order is drop order: contexts (and their persistent values) before the runtime.
    contexts: HashMap<u64, HookCtx>,
    rt: Runtime,
    shared: Shared,
    done_rx: Receiver<Done>,
    sock_rx: Receiver<SockEvent>,
    deadline: Rc<Cell<Option<Instant>>>,
    interrupted: Rc<Cell<bool>>,
    seq: u64,
    /// Set when the runtime must be replaced before it runs anything else.
    recycle: Cell<Option<Recycle>>,
    /// The pool this worker serves (the probe's scratch worker: shared).
    pool: Pool,
    /// Where the generations being loaded are posted (shared workers of an engine only).
    board: Option<Arc<WarmBoard>>,
    /// The last [`WarmBoard`] epoch this worker evaluated.
    warmed: u64,
    /// Whether it took a call yet: until then, evaluating a set keeps nobody waiting.
    served: bool,
}

impl Worker {
    pub fn new(limits: Limits, egress: Egress) -> Worker {
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let (sock_tx, sock_rx) = crossbeam_channel::unbounded();
        let deadline = Rc::new(Cell::new(None));
        let interrupted = Rc::new(Cell::new(false));
        let shared = Shared(Rc::new(SharedInner {
            calls: RefCell::new(HashMap::new()),
            current: Cell::new(0),
            egress,
            done_tx,
            sock_tx,
            limits,
            rejections: RefCell::new(Vec::new()),
        }));
        let rt = new_runtime(&shared, &deadline, &interrupted);
        Worker {
            contexts: HashMap::new(),
            rt,
            shared,
            done_rx,
            sock_rx,
            deadline,
            interrupted,
            seq: 0,
            recycle: Cell::new(None),
            pool: Pool::Shared,
            board: None,
            warmed: 0,
            served: false,
        }
    }

    fn warm_due(&self) -> bool {
        self.board
            .as_ref()
            .is_some_and(|b| b.epoch.load(Ordering::Acquire) != self.warmed)
    }

    /// Evaluate the posted generation's hooks (each one's module, and what it requires) in
    /// this worker, so that their first calls here find them ready. Each evaluation runs as a
    /// call of its own with the hook's timeout and no caller, as the first call's would have:
    /// work its module starts (a token fetched into module scope) goes on in that call's event
    /// loop until it drains or the timeout. A hook that fails here is left for its first call,
    /// which reports it as it always did.
    fn warm(&mut self) {
        let Some(board) = self.board.clone() else {
            return;
        };
        let epoch = board.epoch.load(Ordering::Acquire);
        if epoch == self.warmed {
            return;
        }
        // Another turn comes (between this worker's calls, or at the reloader's next wake-up)
        // when one of those evaluating now is done.
        let Some(_turn) = board.turn(self.warmed == 0 && !self.served) else {
            return;
        };
        self.warmed = epoch;
        let scripts = board
            .scripts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for script in scripts.iter() {
            // A module stopped at its timeout marks the runtime for replacement: the turn
            // does that, and the rest are left for their first calls.
            if self.recycle.get().is_some() {
                break;
            }
            if script.is_hogged()
                || self
                    .contexts
                    .get(&script.id)
                    .is_some_and(|hc| hc.exports.is_some())
            {
                continue;
            }
            self.seq += 1;
            let seq = self.seq;
            let state = CallState::new(
                seq,
                script.clone(),
                "load".into(),
                Instant::now() + script.timeout,
                None,
                None,
                &self.shared.0.limits,
            );
            self.shared.0.calls.borrow_mut().insert(seq, state);
            let _ = self.context_for(seq, script);
            // Nobody waits for it: it ends as soon as its module left nothing pending.
            self.shared.settle_seq(seq, Ok(serde_json::Value::Null));
        }
        board.finish(epoch);
    }

    fn holds_calls(&self) -> bool {
        !self.shared.0.calls.borrow().is_empty()
    }

    fn room(&self) -> bool {
        self.shared.0.calls.borrow().len() < self.shared.0.limits.calls_per_worker.max(1)
    }

    /// One round: take calls, deliver completions, fire due timers, end the calls that are
    /// over, then wait for the next of those. False once the queue is closed and no call is left.
    fn turn(&mut self, jobs: &Receiver<Msg>, idle: &AtomicUsize, lp: &mut Loop) -> bool {
        if self.warm_due() {
            self.warm();
        }
        if !self.holds_calls() {
            if lp.closed {
                return false;
            }
            let job = match next_job(jobs, &mut lp.spin, || self.warm_due()) {
                Next::Job(job) => job,
                Next::Warm => return true,
                Next::Closed => return false,
            };
            lp.sync_idle(idle, true);
            self.start(job);
        } else {
            while !lp.closed && self.room() {
                match jobs.try_recv() {
                    Ok(Msg::Call(job)) => self.start(job),
                    Ok(Msg::Wake) => {}
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => lp.closed = true,
                }
            }
        }
        while let Ok(done) = self.done_rx.try_recv() {
            self.deliver(done);
        }
        while let Ok(ev) = self.sock_rx.try_recv() {
            self.deliver_socket(ev);
        }
        self.fire_due();
        self.reap();
        if !self.holds_calls() {
            return true;
        }
        let now = Instant::now();
        let wake = self
            .shared
            .0
            .calls
            .borrow()
            .values()
            .map(CallState::next_wake)
            .min()
            .unwrap_or(now);
        let Some(wait) = wake.checked_duration_since(now).filter(|d| !d.is_zero()) else {
            return true;
        };
        let never = crossbeam_channel::never();
        let intake = if !lp.closed && self.room() {
            jobs
        } else {
            &never
        };
        crossbeam_channel::select! {
            recv(intake) -> msg => match msg {
                Ok(Msg::Call(job)) => self.start(job),
                Ok(Msg::Wake) => {}
                Err(_) => lp.closed = true,
            },
            recv(self.done_rx) -> done => {
                if let Ok(done) = done {
                    self.deliver(done);
                }
            },
            recv(self.sock_rx) -> ev => {
                if let Ok(ev) = ev {
                    self.deliver_socket(ev);
                }
            },
            default(wait) => {}
        }
        true
    }

    /// Begin a call: its state, its hook's context, the invocation. The caller is answered as
    /// soon as cb settles; what the call leaves pending runs in the following rounds.
    // Out of line so profiles can name a call's work (`valgrind --toggle-collect=*Worker::start`).
    #[inline(never)]
    fn start(&mut self, job: Job) {
        self.served = true;
        let Some(permit) = job.ticket.take() else {
            // The caller gave up at the queue deadline and answered Overloaded.
            if let Some(report) = job.report {
                report.not_run(HookError::Overloaded);
            }
            return;
        };
        self.seq += 1;
        let seq = self.seq;
        let hook = job.hook;
        let mut state = CallState::new(
            seq,
            hook.clone(),
            job.request_id,
            Instant::now() + hook.timeout,
            Some(job.reply),
            permit,
            &self.shared.0.limits,
        );
        state.capture = job.report.map(Capture::new);
        self.shared.0.calls.borrow_mut().insert(seq, state);
        if self.contexts.len() >= SWEEP_AT {
            let in_use: HashSet<u64> = self
                .shared
                .0
                .calls
                .borrow()
                .values()
                .map(|c| c.hook.id)
                .collect();
            self.contexts
                .retain(|id, hc| hc.hook.strong_count() > 0 || in_use.contains(id));
        }
        match self.context_for(seq, &hook) {
            Ok(()) if !self.settled(seq) && self.recycle.get().is_none() => {
                self.tell_orphans(seq, &hook);
                let args = job.args;
                self.enter(seq, &hook, Entry::Glue, |ctx, hc| {
                    let Some(exports) = &hc.exports else {
                        return Ok(());
                    };
                    let exports = exports.clone().restore(ctx)?;
                    let args = super::values::args_to_js(ctx, &args)?;
                    hc.api
                        .invoke
                        .clone()
                        .restore(ctx)?
                        .call::<_, ()>((exports, args, seq as f64))
                });
                if let Some(hc) = self.contexts.get(&hook.id) {
                    hc.warm.set(true);
                }
            }
            Ok(()) => {}
            Err(settled) => self.shared.settle_seq(seq, settled),
        }
        self.finish_recycle();
    }

    /// The load-time probe (`probe.rs`, on a scratch worker): evaluate `hook`'s main module in a
    /// fresh context until `deadline`, without calling it or running its event loop (module-scope
    /// timers and requests are never run), and hand `check` the exports or the exception (to
    /// `ctx.catch()`), and whether the deadline stopped it. The module runs as a call of its own
    /// (`moduleInfo`, console and egress read the current call's state).
    pub(crate) fn evaluate<R>(
        &mut self,
        hook: &Arc<Script>,
        deadline: Instant,
        check: impl for<'js> FnOnce(&Ctx<'js>, rquickjs::Result<Value<'js>>, bool) -> R,
    ) -> rquickjs::Result<R> {
        self.seq += 1;
        let seq = self.seq;
        self.shared.0.calls.borrow_mut().insert(
            seq,
            CallState::new(
                seq,
                hook.clone(),
                "load".into(),
                deadline,
                None,
                None,
                &self.shared.0.limits,
            ),
        );
        self.shared.0.current.set(seq);
        self.deadline.set(Some(deadline));
        self.interrupted.set(false);
        let out = Context::full(&self.rt).map(|ctx| {
            ctx.with(|ctx| {
                let exports = globals::install(&ctx, &self.shared).and_then(|api| {
                    let main = api.require_main.restore(&ctx)?;
                    main.call((hook.program.main.clone(),))
                });
                check(&ctx, exports, self.interrupted.get())
            })
        });
        self.deadline.set(None);
        self.shared.0.current.set(0);
        self.shared.0.calls.borrow_mut().remove(&seq);
        out
    }

    fn settled(&self, seq: u64) -> bool {
        self.shared.with_seq(seq, |c| c.settled)
    }

    /// Make sure the hook has a context with its module evaluated. A failure is the call's result.
    fn context_for(&mut self, seq: u64, hook: &Arc<Script>) -> Result<(), Settled> {
        if !self.contexts.contains_key(&hook.id) {
            let ctx = Context::full(&self.rt).map_err(|e| {
                Err(HookError::Crashed(format!(
                    "cannot create a JS context: {e}"
                )))
            })?;
            let api = ctx
                .with(|c| globals::install(&c, &self.shared))
                .map_err(|e| {
                    Err(HookError::Crashed(format!(
                        "cannot install the hook globals: {e}"
                    )))
                })?;
            self.contexts.insert(
                hook.id,
                HookCtx {
                    api,
                    orphans: RefCell::new(Vec::new()),
                    warm: Cell::new(false),
                    exports: None,
                    hook: Arc::downgrade(hook),
                    ctx,
                },
            );
        }
        if self.contexts[&hook.id].exports.is_some() {
            return Ok(());
        }
        let mut exports = None;
        self.enter(seq, hook, Entry::Hook, |ctx, hc| {
            let value: Value = hc.api.require_main.clone().restore(ctx)?.call((hook.program.main.clone(),))?;
            match value.into_function() {
                Some(f) => exports = Some(Persistent::save(ctx, f)),
                None => {
                    return Err(ctx.throw(
                        rquickjs::String::from_str(ctx.clone(), "module.exports is not a function: a hook file must set module.exports = function (...) { ... }")?
                            .into_value(),
                    ))
                }
            }
            Ok(())
        });
        if let (Some(f), Some(hc)) = (exports, self.contexts.get_mut(&hook.id)) {
            hc.exports = Some(f);
        }
        // Else the failure (or timeout) was recorded by `enter`; the context stays unevaluated.
        Ok(())
    }

    /// Run `f` in the hook's context as call `seq` (0: no call, for hookgate's own cleanup),
    /// then its microtasks. An exception becomes the call's failure (before cb) or a log line
    /// (after); one escaping the glue marks the runtime for replacement, as does a timeout
    /// while running or a crash.
    fn enter<F>(&self, seq: u64, hook: &Arc<Script>, entry: Entry, f: F)
    where
        F: for<'js> FnOnce(&Ctx<'js>, &HookCtx) -> rquickjs::Result<()>,
    {
        if self.recycle.get().is_some() {
            return;
        }
        let Some(hc) = self.contexts.get(&hook.id) else {
            return;
        };
        let deadline = self.shared.with_seq(seq, |c| Some(c.deadline));
        if deadline.is_some_and(|d| Instant::now() >= d) {
            // Past its deadline while it waited (a completion or a timer came too late): the
            // call is ended alone by `reap`; entering would be interrupted at once and cost
            // every other call on the worker its runtime.
            return;
        }
        // What the call's JS costs, in CPU time, which other threads taking the CPU do not
        // inflate. Not the module's evaluation (Entry::Hook), nor a context's first invocation
        // (which may `require` a package): a one-off cost is no hog.
        let metered = entry == Entry::Glue && seq != 0 && hc.warm.get();
        let after_cb = metered && self.shared.with_seq(seq, |c| c.settled);
        // A call whose caller wants a report has all its CPU counted, first invocation included.
        let reported = seq != 0 && self.shared.with_seq(seq, |c| c.capture.is_some());
        let cpu_before = (metered || reported).then(thread_cpu);
        self.shared.0.current.set(seq);
        self.deadline.set(deadline);
        self.interrupted.set(false);
        let mut glue_broke = None;
        hc.ctx.with(|ctx| {
            if let Err(e) = f(&ctx, hc) {
                glue_broke = self.on_error(&ctx, hook, entry, e);
            }
        });
        if !self.interrupted.get() && glue_broke.is_none() {
            self.drain_jobs(hook);
        }
        let used = cpu_before.map(|before| thread_cpu().saturating_sub(before));
        if let Some(used) = used.filter(|_| reported) {
            self.shared.with_seq(seq, |c| {
                if let Some(capture) = &mut c.capture {
                    capture.cpu += used;
                }
            });
        }
        if let Some(used) = used.filter(|_| metered) {
            let budget = self.shared.0.limits.call_cpu;
            let over = self.shared.with_seq(seq, |c| {
                c.cpu += used;
                if after_cb {
                    c.cpu_after_cb += used;
                }
                c.cpu > budget
            });
            if after_cb && !over && !hook.is_hogged() && hook.after_cb_cpu(used, budget) {
                hook.mark_hogged(
                    super::script::HEAVY,
                    &format!(
                        "used more than [hooks] call_cpu_ms ({} ms) of CPU within a second in the work its calls left after cb",
                        budget.as_millis()
                    ),
                );
            }
            if over {
                hook.mark_hogged(
                    super::script::HEAVY,
                    &format!(
                        "used more than [hooks] call_cpu_ms ({} ms) of CPU in one call",
                        budget.as_millis()
                    ),
                );
            }
        }
        self.shared
            .report_rejections(!self.interrupted.get() && glue_broke.is_none());
        self.shared.0.current.set(0);
        self.deadline.set(None);
        let recycle = if self.interrupted.get() {
            // Marked before the caller is answered, so its next call already goes low.
            hook.mark_hogged(
                super::script::PINNED,
                "was stopped at its timeout while running JS",
            );
            self.shared.settle_seq(seq, Err(HookError::Timeout));
            tracing::warn!(hook = %hook.name, "the hook's timeout was reached while it was running; its worker's runtime is replaced");
            Some(Recycle::Timeout)
        } else if let Some(message) = glue_broke {
            tracing::error!(hook = %hook.name, "hookgate's invocation code failed in the hook's context (the hook may have replaced a built-in it relies on): {message}; the worker's runtime is replaced");
            self.shared.settle_seq(
                seq,
                Err(HookError::Crashed(format!(
                    "hookgate's invocation code failed in the hook's context: {message}"
                ))),
            );
            Some(Recycle::Glue)
        } else if self.shared.with_seq(seq, |c| c.crashed) {
            Some(Recycle::Crash)
        } else {
            None
        };
        if matches!(recycle, Some(Recycle::Crash)) {
            hook.mark_hogged(
                super::script::PINNED,
                "crashed its worker's runtime (memory or stack limit)",
            );
        }
        if recycle.is_some() && self.recycle.get().is_none() {
            self.recycle.set(recycle);
        }
    }

    /// Handle an exception out of `enter`; returns the message when it means the glue broke.
    fn on_error(
        &self,
        ctx: &Ctx<'_>,
        hook: &Arc<Script>,
        entry: Entry,
        e: rquickjs::Error,
    ) -> Option<String> {
        let (class, message) = if e.is_exception() {
            let exc = ctx.catch();
            if self.interrupted.get() {
                return None;
            }
            match exc.as_exception() {
                Some(x) => (
                    x.get::<_, String>("name")
                        .unwrap_or_else(|_| "Error".into()),
                    x.message().unwrap_or_default(),
                ),
                None => match exc.as_string().and_then(|s| s.to_string().ok()) {
                    Some(s) => ("string".into(), s),
                    None => ("Error".into(), format!("{exc:?}")),
                },
            }
        } else {
            ("Error".into(), e.to_string())
        };
        if self.interrupted.get() {
            return None;
        }
        if entry == Entry::Glue && crash_kind(&message).is_none() {
            return Some(format!("{class}: {message}"));
        }
        tracing::debug!(hook = %hook.name, "{class}: {message}");
        self.shared.uncaught(class, message);
        None
    }

    fn drain_jobs(&self, hook: &Arc<Script>) {
        loop {
            match self.rt.execute_pending_job() {
                Ok(true) => {}
                Ok(false) => break,
                Err(job) => {
                    let err = job.0.with(|ctx| {
                        let exc = ctx.catch();
                        exc.as_exception()
                            .and_then(|e| e.message())
                            .unwrap_or_else(|| format!("{exc:?}"))
                    });
                    if self.interrupted.get() {
                        break;
                    }
                    if let Some(kind) = crash_kind(&err) {
                        self.shared.with_call(|c| {
                            c.settle(Err(HookError::Crashed(kind)));
                            c.crashed = true;
                        });
                        break;
                    }
                    tracing::warn!(hook = %hook.name, "a promise job failed: {err}");
                }
            }
        }
    }

    fn hook_of(&self, seq: u64) -> Option<Arc<Script>> {
        self.shared
            .0
            .calls
            .borrow()
            .get(&seq)
            .map(|c| c.hook.clone())
    }

    fn deliver(&mut self, done: Done) {
        let hops = done.hops;
        let mine = self.shared.with_seq(done.seq, |c| {
            let mine = c.requests.remove(&done.id).is_some();
            if let (true, Some(capture)) = (mine, &mut c.capture) {
                let outcome = match &done.result {
                    Ok(r) => Ok(r.status),
                    Err(f) => Err(format!("{}: {}", f.code, f.message)),
                };
                capture.request_done(done.id, outcome, hops);
            }
            mine
        });
        let Some(hook) = self.hook_of(done.seq).filter(|_| mine) else {
            return;
        };
        self.enter(done.seq, &hook, Entry::Glue, |ctx, hc| {
            let f = hc.api.io_done.clone().restore(ctx)?;
            match done.result {
                Ok(r) => {
                    let headers = serde_json::to_string(&r.headers).unwrap_or_else(|_| "[]".into());
                    let body = bytes_out(ctx, r.body)?;
                    f.call::<_, ()>((
                        done.id as f64,
                        Value::new_null(ctx.clone()),
                        r.status,
                        r.status_text,
                        r.url,
                        headers,
                        body,
                    ))
                }
                Err(failure) => f.call::<_, ()>((
                    done.id as f64,
                    vec![
                        failure.code.to_owned(),
                        failure.node_fields_json(),
                        failure.message,
                    ],
                )),
            }
        });
        self.finish_recycle();
    }

    /// An event of a socket or lookup: handed to its JS object as the call that opened it.
    fn deliver_socket(&mut self, ev: SockEvent) {
        let SockEvent { seq, id, kind } = ev;
        let last = matches!(kind, SockKind::Closed | SockKind::Resolved(_));
        let data_len = match &kind {
            SockKind::Data(d) => d.len(),
            _ => 0,
        };
        let live = self.shared.with_seq(seq, |c| {
            if last {
                c.sockets.remove(&id).is_some()
            } else {
                match c.sockets.get(&id) {
                    Some(h) => {
                        h.delivered(data_len);
                        true
                    }
                    None => false,
                }
            }
        });
        let Some(hook) = self.hook_of(seq).filter(|_| live) else {
            return;
        };
        self.enter(seq, &hook, Entry::Glue, |ctx, hc| {
            let f = hc.api.sock_event.clone().restore(ctx)?;
            let id = id as f64;
            let null = || Value::new_null(ctx.clone());
            let json = |v: serde_json::Value| -> rquickjs::Result<Value<'_>> {
                Ok(rquickjs::String::from_str(ctx.clone(), &v.to_string())?.into_value())
            };
            match kind {
                SockKind::Connected(v) => f.call::<_, ()>((id, "connect", json(v)?)),
                SockKind::Secure(v) => f.call::<_, ()>((id, "secure", json(v)?)),
                SockKind::Data(d) => f.call::<_, ()>((id, "data", bytes_out(ctx, d)?)),
                SockKind::Written(w) => f.call::<_, ()>((id, "written", w as f64)),
                SockKind::End => f.call::<_, ()>((id, "end", null())),
                SockKind::Closed => f.call::<_, ()>((id, "close", null())),
                SockKind::Failed(failure) => f.call::<_, ()>((
                    id,
                    "error",
                    vec![
                        failure.code.to_owned(),
                        failure.node_fields_json(),
                        failure.message,
                    ],
                )),
                SockKind::Resolved(Ok(addrs)) => {
                    let list: Vec<serde_json::Value> = addrs
                        .into_iter()
                        .map(|(a, f)| serde_json::json!({"address": a, "family": f}))
                        .collect();
                    f.call::<_, ()>((id, "resolved", json(list.into())?))
                }
                SockKind::Resolved(Err(failure)) => f.call::<_, ()>((
                    id,
                    "error",
                    vec![
                        failure.code.to_owned(),
                        failure.node_fields_json(),
                        failure.message,
                    ],
                )),
            }
        });
        self.finish_recycle();
    }

    /// Tell the hook's JS, as call `seq`, about sockets whose call ended and closed them.
    fn tell_orphans(&self, seq: u64, hook: &Arc<Script>) {
        let ids: Vec<f64> = match self.contexts.get(&hook.id) {
            Some(hc) if !hc.orphans.borrow().is_empty() => hc
                .orphans
                .borrow_mut()
                .drain(..)
                .map(|id| id as f64)
                .collect(),
            _ => return,
        };
        self.enter(seq, hook, Entry::Glue, |ctx, hc| {
            hc.api
                .sock_orphans
                .clone()
                .restore(ctx)?
                .call::<_, ()>((ids,))
        });
    }

    /// Fire the timers due now, earliest first, each as the call that set it. Timers set while
    /// these run wait for the next round, so the queue is looked at in between.
    fn fire_due(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        for c in self.shared.0.calls.borrow_mut().values_mut() {
            while let Some((at, id)) = c.pop_due(now) {
                due.push((at, c.seq, id));
            }
        }
        if due.is_empty() {
            return;
        }
        due.sort_unstable();
        for (_, seq, id) in due {
            if self.recycle.get().is_some() {
                break;
            }
            let Some(hook) = self.hook_of(seq) else {
                continue;
            };
            self.enter(seq, &hook, Entry::Glue, |ctx, hc| {
                hc.api
                    .fire_timer
                    .clone()
                    .restore(ctx)?
                    .call::<_, ()>((id as f64,))
            });
        }
        self.finish_recycle();
    }

    /// End the calls that are over: settled with nothing pending, past their deadline, or
    /// unable ever to call cb.
    fn reap(&mut self) {
        let now = Instant::now();
        let mut ending = Vec::new();
        {
            let calls = self.shared.0.calls.borrow();
            // A call with nothing of its own pending may still be settled by another call of
            // the same hook (a promise cached in module scope that their request resolves).
            let mut alive_hooks: Option<HashSet<u64>> = None;
            let shared = self.pool == Pool::Shared;
            for c in calls.values() {
                if now >= c.deadline {
                    ending.push((c.seq, End::Timeout));
                } else if shared
                    && c.settled
                    && c.hook.is_hogged()
                    && c.cpu_after_cb >= LEFTOVER_CPU_CUT
                {
                    // Work a hogging script left after cb cannot move to the low-priority
                    // workers (its JS state lives in this runtime): on the shared workers,
                    // which the request path needs, it stops — when it burns CPU (timers
                    // ticking), not when it waits: a request sent after cb (a post-event hook's
                    // notification) is the hook's side effect and completes.
                    ending.push((c.seq, End::Hogged));
                } else if !c.keeps_alive() {
                    if c.settled {
                        ending.push((c.seq, End::Done));
                    } else if c.sockets.is_empty() {
                        // (An unsettled call with an open socket, even an unref'd one, is
                        // waiting for it: data may still come.)
                        let alive = alive_hooks.get_or_insert_with(|| {
                            calls
                                .values()
                                .filter(|o| o.keeps_alive() || !o.sockets.is_empty())
                                .map(|o| o.hook.id)
                                .collect()
                        });
                        if !alive.contains(&c.hook.id) {
                            ending.push((c.seq, End::Stuck));
                        }
                    }
                }
            }
        }
        for (seq, end) in ending {
            self.end_call(seq, end);
        }
    }

    fn end_call(&mut self, seq: u64, end: End) {
        let Some(mut state) = self.shared.0.calls.borrow_mut().remove(&seq) else {
            return;
        };
        let hook = state.hook.clone();
        state.report(match end {
            End::Timeout => "stopped: the hook's timeout was reached",
            End::Hogged => "stopped: the hook hogs the CPU and its work after cb was stopped",
            End::Done | End::Stuck => "stopped: the call ended",
        });
        if let Some(reply) = state.reply.take() {
            if end == End::Stuck {
                tracing::warn!(hook = %hook.name, request_id = %state.request_id,
                    "the hook returned without calling cb and has nothing pending; it would end at its timeout, so it ends now");
            }
            let _ = reply.send(Err(HookError::Timeout));
        }
        if end == End::Timeout {
            tracing::warn!(hook = %hook.name, request_id = %state.request_id, pending_requests = state.requests.len(),
                pending_timers = state.timer_due.len(), open_sockets = state.sockets.len(), "the hook's timeout was reached; the call's pending work is stopped");
            if state.settled
                && state.requests.is_empty()
                && !state.timer_due.values().any(|t| t.1)
                && state.sockets.values().any(|s| s.keep)
            {
                // Only an idle client (a Redis connection kept in module scope) held the call:
                // its slot was taken until the timeout for nothing.
                tracing::warn!(hook = %hook.name, request_id = %state.request_id,
                    "an open socket kept the call, already answered, until its timeout: close it when done, or unref() it (node-redis: client.unref()) so the call ends with its work");
            }
        }
        if end == End::Hogged && (!state.timer_due.is_empty() || !state.requests.is_empty()) {
            tracing::warn!(hook = %hook.name, request_id = %state.request_id, pending_requests = state.requests.len(),
                pending_timers = state.timer_due.len(), "the hook hogs the CPU: the work its call left after cb on a shared worker is stopped");
        }
        abort_newest_first(&state.requests);
        // Closes them (dropping a handle aborts its task); the JS learns it as a later call.
        let sockets: Vec<u64> = state.sockets.drain().map(|(id, _)| id).collect();
        if !sockets.is_empty() {
            if let Some(hc) = self.contexts.get(&hook.id) {
                hc.orphans.borrow_mut().extend(sockets);
            }
            let other = self
                .shared
                .0
                .calls
                .borrow()
                .values()
                .find(|c| c.hook.id == hook.id)
                .map(|c| c.seq);
            if let Some(other) = other {
                self.tell_orphans(other, &hook);
                self.finish_recycle();
            }
        }
        if state.timer_due.is_empty() && state.requests.is_empty() {
            return;
        }
        // The context outlives the call: forget its timers and requests there, so they neither
        // fire nor hold callbacks.
        let timers: Vec<f64> = state.timer_due.keys().map(|&id| id as f64).collect();
        let requests: Vec<f64> = state.requests.keys().map(|&id| id as f64).collect();
        self.enter(0, &hook, Entry::Glue, |ctx, hc| {
            hc.api
                .drop_timers
                .clone()
                .restore(ctx)?
                .call::<_, ()>((timers,))?;
            hc.api
                .drop_requests
                .clone()
                .restore(ctx)?
                .call::<_, ()>((requests,))
        });
        self.finish_recycle();
    }

    /// Replace the runtime if an entry asked for it: the calls it still holds are answered
    /// (the one that caused it already was) and dropped.
    fn finish_recycle(&mut self) {
        let Some(why) = self.recycle.take() else {
            return;
        };
        let others = std::mem::take(&mut *self.shared.0.calls.borrow_mut());
        let now = Instant::now();
        let mut answered = 0;
        for (_, mut c) in others {
            abort_newest_first(&c.requests);
            if c.reply.is_some() {
                answered += 1;
            }
            // A call whose own deadline passed meanwhile gets the answer it would have had.
            c.settle(Err(if now >= c.deadline {
                HookError::Timeout
            } else {
                HookError::Crashed(why.others().into())
            }));
            c.report("stopped: the worker running the call was recycled");
        }
        if answered > 0 {
            tracing::warn!(
                calls = answered,
                "calls in progress on a recycled worker were stopped: {}",
                why.others()
            );
        }
        self.contexts.clear();
        let fresh = new_runtime(&self.shared, &self.deadline, &self.interrupted);
        drop(std::mem::replace(&mut self.rt, fresh));
        // Completions of the dropped calls find no call and are ignored.
    }

    /// After a panic: answer every call held, so no caller waits for a worker that is gone.
    fn fail_all(&self, why: &str) {
        let Ok(mut calls) = self.shared.0.calls.try_borrow_mut() else {
            return;
        };
        for (_, mut c) in calls.drain() {
            abort_newest_first(&c.requests);
            c.settle(Err(HookError::Crashed(why.into())));
            c.report("stopped: the worker running the call failed");
        }
    }
}

fn new_runtime(
    shared: &Shared,
    deadline: &Rc<Cell<Option<Instant>>>,
    interrupted: &Rc<Cell<bool>>,
) -> Runtime {
    let rt = Runtime::new().expect("QuickJS runtime allocation failed");
    rt.set_memory_limit(shared.0.limits.memory_bytes);
    rt.set_max_stack_size(shared.0.limits.stack_bytes);
    let (d, i) = (deadline.clone(), interrupted.clone());
    rt.set_interrupt_handler(Some(Box::new(move || {
        if d.get().is_some_and(|d| Instant::now() >= d) {
            i.set(true);
            return true;
        }
        false
    })));
    let s = shared.clone();
    rt.set_host_promise_rejection_tracker(Some(Box::new(
        move |_ctx, promise, reason, is_handled| {
            // The promise's identity without holding it (a kept reference would outlive a
            // recycled runtime).
            let key = {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::hash::Hash::hash(&promise, &mut h);
                std::hash::Hasher::finish(&h)
            };
            if is_handled {
                s.0.rejections.borrow_mut().retain(|(k, _)| *k != key);
                return;
            }
            let msg = match reason.as_exception() {
                Some(e) => format!(
                    "{}: {}",
                    e.get::<_, String>("name").unwrap_or_default(),
                    e.message().unwrap_or_default()
                ),
                None => format!("{reason:?}"),
            };
            s.0.rejections.borrow_mut().push((key, msg));
        },
    )));
    rt
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reloader waits on the board for each worker in turn: once one worker has evaluated
    /// a set, asking for "more than one" must wait for the next, not answer at once (it did,
    /// and the reloader spun, flooding the queue with wake-ups, until the last worker was done).
    #[test]
    fn the_board_waits_for_one_more_worker_than_seen() {
        let board = Arc::new(WarmBoard::default());
        let epoch = board.post(Vec::new(), 1);
        board.finish(epoch);
        assert_eq!(board.done_beyond(epoch, 0, Duration::from_secs(10)), 1);
        let other = board.clone();
        let second = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            other.finish(epoch);
        });
        assert_eq!(board.done_beyond(epoch, 1, Duration::from_secs(10)), 2);
        second.join().unwrap();
        // Nothing more comes: the wait ends at its timeout with the count as it is.
        assert_eq!(board.done_beyond(epoch, 2, Duration::from_millis(10)), 2);
        // A newer set makes this one moot.
        let newer = board.post(Vec::new(), 1);
        board.finish(newer);
        assert_eq!(
            board.done_beyond(epoch, 2, Duration::from_secs(10)),
            usize::MAX
        );
        assert_eq!(board.done_beyond(newer, 0, Duration::from_secs(10)), 1);
    }

    /// At most the posted number of serving workers evaluate at once, so the others keep taking
    /// calls; a worker that never served always may; a turn is given back when dropped.
    #[test]
    fn serving_workers_take_turns_at_evaluating() {
        let board = WarmBoard::default();
        board.post(Vec::new(), 1);
        let first = board
            .turn(false)
            .expect("the first serving worker has a turn");
        assert!(
            board.turn(false).is_none(),
            "a second would leave no worker serving"
        );
        let fresh = board.turn(true);
        assert!(fresh.is_some(), "a worker that never served is not counted");
        drop(first);
        let second = board.turn(false).expect("the turn was given back");
        drop(second);
        board.post(Vec::new(), 0);
        let _one = board
            .turn(false)
            .expect("at least one at a time, whatever was posted");
        assert!(board.turn(false).is_none());
    }
}
