//! One JS worker: a thread owning one QuickJS runtime, one context per hook it has run, and the
//! event loop of the call in progress.
//!
//! Owns: the runtime's limits (memory, stack, CPU deadline via the interrupt handler), the per-call
//! event loop (microtasks, timers, fetch completions), answering the caller as soon as cb settles,
//! and recycling the runtime after a timeout or a crash.
//! Must not touch: other workers, files, or anything async: fetch runs on the engine's tokio
//! runtime and comes back through this worker's completion channel.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use rquickjs::{Context, Ctx, Function, Persistent, Runtime, Value};

use super::bytes::bytes_out;
use super::egress::{Done, Egress, Request};
use super::globals::{self, crash_kind, remaining, Api};
use super::program::Module;
use super::{HookError, HookFailure};
use crate::hooks::Hook;

/// What cb (or a failure standing for it) produced.
pub(crate) type Settled = Result<serde_json::Value, HookError>;

/// A call handed to the pool.
pub(crate) struct Job {
    pub hook: Arc<Hook>,
    pub args: Vec<serde_json::Value>,
    pub request_id: String,
    pub reply: tokio::sync::oneshot::Sender<Settled>,
}

/// What the queue carries to a worker.
pub(crate) enum Msg {
    Call(Job),
    /// A call is coming (see [`super::Engine::prewake`]): wake up and spin for it.
    Wake,
}

/// The sandbox limits, from `[hooks]`.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub memory_bytes: usize,
    pub stack_bytes: usize,
    pub max_response_bytes: usize,
    pub max_log_bytes: usize,
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

/// `idle` counts the workers not running a call (event loop included), for callers deciding
/// whether to spin ([`super::Wait`]).
pub(crate) fn spawn(
    index: usize,
    jobs: Receiver<Msg>,
    idle: Arc<AtomicUsize>,
    limits: Limits,
    egress: Egress,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("hookgate-js-{index}"))
        // QuickJS checks its stack limit against the real native stack: leave room above it.
        .stack_size(limits.stack_bytes + (16 << 20))
        .spawn(move || {
            let mut worker = Worker::new(limits.clone(), egress.clone());
            let mut spin = SPIN_FOR;
            while let Some(job) = next_job(&jobs, &mut spin) {
                idle.fetch_sub(1, Ordering::Relaxed);
                let ran = catch_unwind(AssertUnwindSafe(|| worker.run(job)));
                idle.fetch_add(1, Ordering::Relaxed);
                if ran.is_err() {
                    tracing::error!(
                        worker = index,
                        "a JS worker panicked; its runtime is replaced"
                    );
                    // The old runtime may be inconsistent: leaking it is safer than freeing it.
                    std::mem::forget(std::mem::replace(
                        &mut worker,
                        Worker::new(limits.clone(), egress.clone()),
                    ));
                }
            }
        })
}

/// The next call, spinning up to `*spin` before sleeping. Whether to spin next time is what the
/// last wait says: a call that came within [`SPIN_FOR`] would have been caught spinning, one that
/// came later would have cost [`SPIN_FOR`] of CPU for nothing. At a steady few hundred calls per
/// second per worker (hookgate in front of node-oidc-provider) an unconditional spin was 50 µs of
/// wasted CPU per call, a fifth of hookgate's; calls back to back keep the spin. A
/// [`Msg::Wake`] starts a spin of [`WAKE_SPIN`] for the call announced.
fn next_job(jobs: &Receiver<Msg>, spin: &mut Duration) -> Option<Job> {
    let mut start = Instant::now();
    let mut budget = *spin;
    loop {
        let msg = match jobs.try_recv() {
            Ok(msg) => msg,
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if start.elapsed() < budget => {
                std::hint::spin_loop();
                continue;
            }
            Err(TryRecvError::Empty) => {
                let msg = jobs.recv().ok()?;
                *spin = if start.elapsed() < SPIN_FOR {
                    SPIN_FOR
                } else {
                    Duration::ZERO
                };
                msg
            }
        };
        match msg {
            Msg::Call(job) => return Some(job),
            Msg::Wake => {
                start = Instant::now();
                budget = WAKE_SPIN;
            }
        }
    }
}

/// The state of the call in progress, reachable from the native functions of every context.
pub(crate) struct CallState {
    seq: u64,
    hook: Arc<Hook>,
    request_id: String,
    deadline: Instant,
    settled: Option<Settled>,
    crashed: bool,
    timers: BTreeSet<(Instant, u64)>,
    timer_due: HashMap<u64, (Instant, bool)>,
    requests: HashMap<u64, Option<tokio::task::AbortHandle>>,
    log_bytes: usize,
    log_dropped: bool,
}

impl CallState {
    pub fn add_timer(&mut self, id: u64, delay: Duration) {
        let keep = self.timer_due.get(&id).is_none_or(|t| t.1);
        self.clear_timer(id);
        let due = Instant::now() + delay;
        self.timers.insert((due, id));
        self.timer_due.insert(id, (due, keep));
    }
    pub fn clear_timer(&mut self, id: u64) {
        if let Some((due, _)) = self.timer_due.remove(&id) {
            self.timers.remove(&(due, id));
        }
    }
    pub fn ref_timer(&mut self, id: u64, keep: bool) {
        if let Some(t) = self.timer_due.get_mut(&id) {
            t.1 = keep;
        }
    }
    fn pop_due(&mut self, now: Instant) -> Option<u64> {
        let &(due, id) = self.timers.first()?;
        if due > now {
            return None;
        }
        self.timers.remove(&(due, id));
        self.timer_due.remove(&id);
        Some(id)
    }
    /// Something that keeps the loop alive: a ref'd timer or a request in flight.
    fn keeps_alive(&self) -> bool {
        !self.requests.is_empty() || self.timer_due.values().any(|t| t.1)
    }
}

struct SharedInner {
    call: RefCell<Option<CallState>>,
    egress: Egress,
    done_tx: Sender<Done>,
    limits: Limits,
}

/// Handle the native functions hold; one per worker.
#[derive(Clone)]
pub(crate) struct Shared(Rc<SharedInner>);

impl Shared {
    pub fn with_call<R: Default>(&self, f: impl FnOnce(&mut CallState) -> R) -> R {
        self.0.call.borrow_mut().as_mut().map(f).unwrap_or_default()
    }

    pub fn max_response_bytes(&self) -> usize {
        self.0.limits.max_response_bytes
    }

    pub fn module(&self, key: &str) -> Option<Arc<Module>> {
        self.0
            .call
            .borrow()
            .as_ref()
            .and_then(|c| c.hook.program.modules.get(key).cloned())
    }

    pub fn settle(&self, settled: Settled) {
        self.with_call(|c| {
            if c.settled.is_none() {
                c.crashed |= matches!(settled, Err(HookError::Crashed(_)));
                c.settled = Some(settled);
            }
        })
    }

    pub fn start_request(&self, id: u64, req: Request) {
        let mut call = self.0.call.borrow_mut();
        let Some(c) = call.as_mut() else { return };
        let handle = self.0.egress.start(
            &c.hook.name,
            c.seq,
            id,
            req,
            remaining(c.deadline),
            self.0.done_tx.clone(),
        );
        c.requests.insert(id, handle);
    }

    /// The hook stopped waiting for a request (its own timeout, `req.abort()`): drop it, so it
    /// no longer keeps the event loop alive.
    pub fn cancel_request(&self, id: u64) {
        self.with_call(|c| {
            if let Some(Some(handle)) = c.requests.remove(&id) {
                handle.abort();
            }
        })
    }

    /// An exception nothing caught outside a JS stack the host entered (a `process.nextTick`
    /// callback): the call's failure before cb, a logged error after it — as a throw would be.
    pub fn uncaught(&self, class: String, message: String) {
        if let Some(kind) = crash_kind(&message) {
            self.settle(Err(HookError::Crashed(kind)));
            self.with_call(|c| c.crashed = true);
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

    pub fn log(&self, level: i32, mut msg: String) {
        let mut call = self.0.call.borrow_mut();
        let Some(c) = call.as_mut() else {
            tracing::debug!(target: "hookgate::hook", "{msg}");
            return;
        };
        if c.log_bytes >= self.0.limits.max_log_bytes {
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
    }

    fn is_settled(&self) -> bool {
        self.0
            .call
            .borrow()
            .as_ref()
            .is_some_and(|c| c.settled.is_some())
    }
}

struct HookCtx {
    api: Api,
    exports: Option<Persistent<Function<'static>>>,
    hook: Weak<Hook>,
    ctx: Context,
}

pub(crate) struct Worker {
    // Field order is drop order: contexts (and their persistent values) before the runtime.
    contexts: HashMap<u64, HookCtx>,
    rt: Runtime,
    shared: Shared,
    done_rx: Receiver<Done>,
    deadline: Rc<Cell<Option<Instant>>>,
    interrupted: Rc<Cell<bool>>,
    seq: u64,
}

impl Worker {
    pub fn new(limits: Limits, egress: Egress) -> Worker {
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let deadline = Rc::new(Cell::new(None));
        let interrupted = Rc::new(Cell::new(false));
        let shared = Shared(Rc::new(SharedInner {
            call: RefCell::new(None),
            egress,
            done_tx,
            limits,
        }));
        let rt = new_runtime(&shared, &deadline, &interrupted);
        Worker {
            contexts: HashMap::new(),
            rt,
            shared,
            done_rx,
            deadline,
            interrupted,
            seq: 0,
        }
    }

    /// Run one call to the end of its event loop (or its deadline). The caller is answered as
    /// soon as cb settles; the rest of the loop (timers, fetches after cb) still runs here.
    // Out of line so profiles can name a call's work (`valgrind --toggle-collect=*Worker::run`).
    #[inline(never)]
    pub fn run(&mut self, job: Job) {
        self.seq += 1;
        let hook = job.hook;
        let deadline = Instant::now() + hook.timeout;
        *self.shared.0.call.borrow_mut() = Some(CallState {
            seq: self.seq,
            hook: hook.clone(),
            request_id: job.request_id,
            deadline,
            settled: None,
            crashed: false,
            timers: BTreeSet::new(),
            timer_due: HashMap::new(),
            requests: HashMap::new(),
            log_bytes: 0,
            log_dropped: false,
        });
        self.deadline.set(Some(deadline));
        self.interrupted.set(false);
        let mut reply = Some(job.reply);

        if self.contexts.len() >= SWEEP_AT {
            self.contexts.retain(|_, hc| hc.hook.strong_count() > 0);
        }
        match self.context_for(&hook) {
            Ok(()) if !self.shared.is_settled() && !self.interrupted.get() => {
                let args = job.args;
                self.enter(&hook, |ctx, hc, _| {
                    let Some(exports) = &hc.exports else {
                        return Ok(());
                    };
                    let exports = exports.clone().restore(ctx)?;
                    let args = super::values::args_to_js(ctx, &args)?;
                    hc.api
                        .invoke
                        .clone()
                        .restore(ctx)?
                        .call::<_, ()>((exports, args))
                });
            }
            Ok(()) => {}
            Err(settled) => self.shared.settle(settled),
        }
        self.answer(&mut reply);

        let mut timed_out = false;
        loop {
            self.drain_jobs(&hook);
            self.answer(&mut reply);
            if self.interrupted.get() || self.crashed() {
                break;
            }
            let (next_timer, alive) = self
                .shared
                .with_call(|c| (c.timers.first().map(|t| t.0), c.keeps_alive()));
            if !alive {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                timed_out = true;
                break;
            }
            let wake = next_timer.map_or(deadline, |t| t.min(deadline));
            if wake > now {
                match self.done_rx.recv_deadline(wake) {
                    Ok(done) => self.deliver(&hook, done),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        unreachable!("the worker holds a sender")
                    }
                }
            }
            while let Ok(done) = self.done_rx.try_recv() {
                self.deliver(&hook, done);
            }
            let now = Instant::now();
            while let Some(id) = self.shared.with_call(|c| c.pop_due(now)) {
                self.enter(&hook, |ctx, hc, _| {
                    hc.api
                        .fire_timer
                        .clone()
                        .restore(ctx)?
                        .call::<_, ()>((id as f64,))
                });
                self.drain_jobs(&hook);
                self.answer(&mut reply);
            }
        }

        let interrupted = self.interrupted.get();
        let mut state = self
            .shared
            .0
            .call
            .borrow_mut()
            .take()
            .expect("call state set above");
        self.deadline.set(None);
        if let Some(reply) = reply.take() {
            let result = match state.settled.take() {
                Some(settled) => settled,
                None => {
                    if !(interrupted || timed_out) {
                        tracing::warn!(hook = %hook.name, request_id = %state.request_id,
                            "the hook returned without calling cb and has nothing pending; it would end at its timeout, so it ends now");
                    }
                    Err(HookError::Timeout)
                }
            };
            let _ = reply.send(result);
        }
        if interrupted || timed_out {
            tracing::warn!(hook = %hook.name, request_id = %state.request_id, pending_requests = state.requests.len(),
                pending_timers = state.timers.len(), "the hook's timeout was reached; its work is stopped and its worker recycled");
        }
        for handle in state.requests.values().flatten() {
            handle.abort();
        }
        let leftovers = !state.timer_due.is_empty() || !state.requests.is_empty();
        if interrupted || timed_out || state.crashed {
            self.recycle();
        } else if leftovers {
            self.enter(&hook, |ctx, hc, _| {
                hc.api
                    .reset_timers
                    .clone()
                    .restore(ctx)?
                    .call::<_, ()>(())?;
                hc.api.reset_io.clone().restore(ctx)?.call::<_, ()>(())
            });
        }
    }

    /// The load-time probe (`probe.rs`, on a scratch worker): evaluate `hook`'s main module in a
    /// fresh context until `deadline`, without calling it or running its event loop (module-scope
    /// timers and requests are never run), and hand `check` the exports or the exception (to
    /// `ctx.catch()`), and whether the deadline stopped it.
    pub(crate) fn evaluate<R>(
        &mut self,
        hook: &Arc<Hook>,
        deadline: Instant,
        check: impl for<'js> FnOnce(&Ctx<'js>, rquickjs::Result<Value<'js>>, bool) -> R,
    ) -> rquickjs::Result<R> {
        *self.shared.0.call.borrow_mut() = Some(CallState {
            seq: 0,
            hook: hook.clone(),
            request_id: "load".into(),
            deadline,
            settled: None,
            crashed: false,
            timers: BTreeSet::new(),
            timer_due: HashMap::new(),
            requests: HashMap::new(),
            log_bytes: 0,
            log_dropped: false,
        });
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
        self.shared.0.call.borrow_mut().take();
        out
    }

    fn crashed(&self) -> bool {
        self.shared.with_call(|c| c.crashed)
    }

    fn answer(&self, reply: &mut Option<tokio::sync::oneshot::Sender<Settled>>) {
        if reply.is_none() || !self.shared.is_settled() {
            return;
        }
        // The value moves out; `settled` keeps a marker so later settles stay ignored.
        let settled = self
            .shared
            .with_call(|c| c.settled.replace(Ok(serde_json::Value::Null)));
        if let (Some(reply), Some(settled)) = (reply.take(), settled) {
            let _ = reply.send(settled);
        }
    }

    /// Make sure the hook has a context with its module evaluated. A failure is the call's result.
    fn context_for(&mut self, hook: &Arc<Hook>) -> Result<(), Settled> {
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
        self.enter(hook, |ctx, hc, hook| {
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
        match exports {
            Some(f) => {
                if let Some(hc) = self.contexts.get_mut(&hook.id) {
                    hc.exports = Some(f);
                }
                Ok(())
            }
            // The failure (or timeout) was recorded by `enter`; keep the context unevaluated.
            None => Ok(()),
        }
    }

    /// Run `f` in the hook's context; an exception becomes the call's failure if cb has not
    /// settled yet, and a log line otherwise.
    fn enter<F>(&self, hook: &Arc<Hook>, f: F)
    where
        F: for<'js> FnOnce(&Ctx<'js>, &HookCtx, &Arc<Hook>) -> rquickjs::Result<()>,
    {
        let Some(hc) = self.contexts.get(&hook.id) else {
            return;
        };
        hc.ctx.with(|ctx| {
            if let Err(e) = f(&ctx, hc, hook) {
                self.on_error(&ctx, hook, e);
            }
        });
    }

    fn on_error(&self, ctx: &Ctx<'_>, hook: &Arc<Hook>, e: rquickjs::Error) {
        let (class, message) = if e.is_exception() {
            let exc = ctx.catch();
            if self.interrupted.get() {
                return;
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
            return;
        }
        tracing::debug!(hook = %hook.name, "{class}: {message}");
        self.shared.uncaught(class, message);
    }

    fn drain_jobs(&self, hook: &Arc<Hook>) {
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
                        self.shared.settle(Err(HookError::Crashed(kind)));
                        self.shared.with_call(|c| c.crashed = true);
                        break;
                    }
                    tracing::warn!(hook = %hook.name, "a promise job failed: {err}");
                }
            }
        }
    }

    fn deliver(&self, hook: &Arc<Hook>, done: Done) {
        let current = self
            .shared
            .with_call(|c| c.seq == done.seq && c.requests.remove(&done.id).is_some());
        if !current {
            return;
        }
        self.enter(hook, |ctx, hc, _| {
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
                    vec![failure.code.to_owned(), failure.message],
                )),
            }
        });
    }

    /// Throw the runtime away (and with it every context) and start a fresh one.
    fn recycle(&mut self) {
        self.contexts.clear();
        let fresh = new_runtime(&self.shared, &self.deadline, &self.interrupted);
        drop(std::mem::replace(&mut self.rt, fresh));
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
        move |_ctx, _promise, reason, is_handled| {
            if is_handled {
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
            s.log(2, format!("unhandled promise rejection: {msg}"));
        },
    )));
    rt
}
