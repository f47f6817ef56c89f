//! The hook engine: runs Auth0 hook files, unmodified, in a fixed pool of warm, sandboxed
//! QuickJS workers.
//!
//! Owns: the worker pool, the sandbox (CPU deadline, memory and stack limits), the cb contract,
//! the per-call event loop, the globals (`console`, timers, `fetch`, `require`, the error classes)
//! and outbound HTTP. Must not touch: requests, responses or any point's semantics — the point code
//! builds the arguments and interprets the result; discovery and settings live in [`crate::hooks`].
//!
//! # How a call runs
//! [`Engine::call`] puts the call on one queue shared by N worker threads (N = `[hooks] workers`,
//! default: cores) and awaits a oneshot answer, so the async caller never blocks (a caller with
//! nothing else to do may spin on it first: [`Wait`]). A worker owns one QuickJS runtime for its
//! whole life (never one per request); hooks are compiled to bytecode once, at load
//! ([`crate::hooks::Generation::load`]). The worker builds the hook's arguments from their JSON
//! values (fresh objects every call), calls `module.exports(...args, cb)`, answers the caller the
//! moment `cb` settles (its value turned into JSON as `JSON.stringify` would: `values`), and
//! then keeps running the call's event loop — microtasks, timers,
//! fetch completions — until nothing is pending or the hook's timeout passes (Auth0's "the request
//! continues on the sandbox" behaviour, which post-user-registration hooks rely on). An error
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
//! such hooks ran fine under Auth0. After a timeout or a crash the whole runtime, with every
//! context, is thrown away and rebuilt, so a hook left half-way never serves another request.
//! Tests: `tests/engine_isolation.rs`.
//!
//! # Sandbox
//! * CPU: the interrupt handler compares the clock with the call's deadline; past it, QuickJS
//!   raises an uncatchable error, the caller gets [`HookError::Timeout`], the worker is recycled.
//! * Memory: `[hooks] memory_limit_mb` per runtime (generous: QuickJS misbehaves under tight
//!   limits); exhaustion -> [`HookError::Crashed`], worker recycled. Results over
//!   `max_response_bytes` and console output over `max_log_bytes` are refused/dropped.
//! * Stack: `[hooks] stack_limit_kb`; overflow -> [`HookError::Crashed`], worker recycled. Worker
//!   threads get that stack plus 16 MiB of headroom.
//! * No filesystem, process or environment access: QuickJS without quickjs-libc has none, and no
//!   global here adds any. `process` describes a Node 20 without a machine (`process.env` is empty
//!   and fresh on every call); `fs`, `net`, `child_process`... can be required, but their
//!   functions throw ERR_HOOKGATE_UNSUPPORTED. `require` only reaches modules resolved at load time.
//! * A panic inside a worker is caught, the caller gets `Crashed`, the runtime is replaced.
//!   A fault inside QuickJS's C code (it has no other isolation) would still take the process down.
//!
//! A hook that returns without calling `cb` and has nothing pending (no timer, no fetch) could
//! never call it any more; it gets the [`HookError::Timeout`] it would get at its deadline, at once.

pub mod builtins;
mod bytes;
pub(crate) mod compile;
mod egress;
mod globals;
mod natives;
pub mod probe;
pub mod program;
mod values;
mod worker;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use tokio::sync::oneshot::{self, error::TryRecvError};

use crate::hooks::{Hook, HooksConfig};

pub use compile::SyntaxError;

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

struct Inner {
    jobs: Option<Sender<worker::Msg>>,
    /// More than one core: [`Wait::SpinFirst`] may spin.
    may_spin: bool,
    /// Workers not running a call.
    idle: Arc<AtomicUsize>,
    egress_runtime: Option<tokio::runtime::Runtime>,
    workers: usize,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the workers once they finish their call.
        self.jobs.take();
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
        let limits = worker::Limits {
            memory_bytes: cfg.memory_limit_mb.max(8) << 20,
            stack_bytes: cfg.stack_limit_kb.max(64) << 10,
            max_response_bytes: cfg.max_response_bytes,
            max_log_bytes: cfg.max_log_bytes,
        };
        let (tx, rx) = crossbeam_channel::unbounded();
        let idle = Arc::new(AtomicUsize::new(workers));
        let threads = (0..workers)
            .map(|i| worker::spawn(i, rx.clone(), idle.clone(), limits.clone(), egress.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Engine {
            inner: Arc::new(Inner {
                jobs: Some(tx),
                may_spin: std::thread::available_parallelism().is_ok_and(|n| n.get() > 1),
                idle,
                egress_runtime: Some(egress_runtime),
                workers,
                threads,
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
        for t in inner.threads.drain(..) {
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
        hook: &Arc<Hook>,
        args: Vec<serde_json::Value>,
        request_id: &str,
    ) -> Result<serde_json::Value, HookError> {
        self.call_with(hook, args, request_id, Wait::Sleep).await
    }

    /// [`Engine::call`], waiting as `wait` says. [`Wait::SpinFirst`] spins only when a worker is
    /// free to start the call at once and the machine has more than one core.
    pub async fn call_with(
        &self,
        hook: &Arc<Hook>,
        args: Vec<serde_json::Value>,
        request_id: &str,
        wait: Wait,
    ) -> Result<serde_json::Value, HookError> {
        let (mut rx, worker_free) = self.submit(hook, args, request_id)?;
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
        rx.await.unwrap_or_else(|_| Err(worker_died()))
    }

    /// [`Engine::call`] for threads outside any async runtime (the CLI, tests, background threads).
    pub fn call_blocking(
        &self,
        hook: &Arc<Hook>,
        args: Vec<serde_json::Value>,
        request_id: &str,
    ) -> Result<serde_json::Value, HookError> {
        let (rx, _) = self.submit(hook, args, request_id)?;
        rx.blocking_recv().unwrap_or_else(|_| Err(worker_died()))
    }

    /// Say that a call will come shortly (within a few hundred µs): a free worker asleep wakes
    /// now and spins for it, so the wake-up overlaps the caller's own work instead of adding to
    /// the call. For callers passing [`Wait::SpinFirst`] (at a steady load the workers' own
    /// spinning decides). Does nothing when no worker is free or the machine has one core.
    pub fn prewake(&self) {
        if self.inner.may_spin && self.inner.idle.load(Ordering::Relaxed) > 0 {
            if let Some(jobs) = &self.inner.jobs {
                let _ = jobs.send(worker::Msg::Wake);
            }
        }
    }

    /// Queue the call; also says whether a worker was free to take it.
    fn submit(
        &self,
        hook: &Arc<Hook>,
        args: Vec<serde_json::Value>,
        request_id: &str,
    ) -> Result<(oneshot::Receiver<worker::Settled>, bool), HookError> {
        let (reply, rx) = oneshot::channel();
        let job = worker::Job {
            hook: hook.clone(),
            args,
            request_id: request_id.to_owned(),
            reply,
        };
        let jobs = self
            .inner
            .jobs
            .as_ref()
            .ok_or_else(|| HookError::Crashed("the engine has stopped".into()))?;
        let worker_free = self.inner.idle.load(Ordering::Relaxed) > 0;
        jobs.send(worker::Msg::Call(job))
            .map_err(|_| HookError::Crashed("the engine has stopped".into()))?;
        Ok((rx, worker_free))
    }
}

fn worker_died() -> HookError {
    HookError::Crashed("the worker running the hook died".into())
}
