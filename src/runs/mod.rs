//! Run records: one [`RunRecord`] per hook call — which hook, for which request or post-event,
//! how it ended, what it printed and which requests it made — kept in a bounded store that can
//! be read by id, filtered, and followed live.
//!
//! Owns: the record's shape (what the management API serves as JSON), the store ([`Runs`]: the
//! newest `[runs] max_records` within `[runs] max_mb`, in memory, and with `[runs] dir` also in
//! one redb file that survives restarts: `disk.rs`), the live tail ([`Subscription`]), per-hook
//! metrics (`hook_metrics.rs`) and the store's own `/metrics` lines ([`metrics`]). In cluster
//! mode, also the shared stream of every replica's records (`shared.rs`), which the runs routes
//! then read instead.
//! Must not: block or fail the call it records (a full store drops its oldest record, a disk
//! error is counted and logged once while memory keeps working, a slow subscriber is told how
//! many records it missed), name hooks' or points' types (callers hand a [`RunStart`]), or serve
//! HTTP (the admin layer mounts the routes below on this API).
//!
//! # The API the management routes mount
//! * `GET /api/hookgate/runs?hook=&point=&outcome=&q=&limit=&before=` — [`Query`] (deserialize
//!   it from the query string, or [`Query::parse`] for a clear error text) then
//!   [`Runs::query`]: a [`Page`], newest first; `next_before` pages on.
//! * `GET /api/hookgate/runs/{id}` — [`Runs::get`] (`None`: 404).
//! * `GET /api/hookgate/runs/stream` — [`Runs::subscribe`] with `Last-Event-ID` (absent: live
//!   records only), then [`Subscription::next`] in a loop; each [`Tail`] gives the SSE fields
//!   ([`Tail::sse`]: `id`, `event` `run` or `missed`, `data` JSON). Records after the id still
//!   held come first, then live ones; a subscriber that fell behind gets `missed` with a count.
//!   As a stream for axum's `Sse`: `futures_util::stream::unfold(sub, |mut s| async move {
//!   s.next().await.map(|t| (Ok::<_, Infallible>(to_event(t.sse())), s)) })`. It never ends by
//!   itself: the response ends when the client goes.
//! * `POST /api/hookgate/hooks/test` — the hooks layer's `runner` module (it returns what a
//!   call did and keeps nothing).
//!
//! Recording: callers (the points, the post-event runner) build a [`RunStart`] and hand the
//! engine [`Runs::reporter`]; the record is stored when the call ends (its work after cb
//! included), from the worker thread, in a few microseconds.

mod disk;
pub mod hook_metrics;
mod ring;
pub mod shared;
pub mod time;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::config::{RunsConfig, Trigger};
use crate::engine::{CallReport, ConsoleLine, HookError, HookFailure, OutboundRequest, Reporter};

pub use hook_metrics::HookStats;

/// How a hook call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// cb was called without an error.
    Ok,
    /// cb got an error (or the hook threw), not one of its contract's denials.
    Error,
    /// cb got an error class of the trigger's contract that refuses the request
    /// (`InvalidScopeError`, `PreUserRegistrationError`, ...).
    Denied,
    /// cb was not called before the hook's timeout.
    Timeout,
    /// Out of memory, stack overflow, an oversized result, a lost worker.
    Crash,
    /// No worker started the call in time: the hook never ran.
    Overloaded,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::Error,
        Outcome::Denied,
        Outcome::Timeout,
        Outcome::Crash,
        Outcome::Overloaded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Denied => "denied",
            Outcome::Timeout => "timeout",
            Outcome::Crash => "crash",
            Outcome::Overloaded => "overloaded",
        }
    }

    /// The outcome of a call's result; `denies` says whether a failure is a deliberate denial
    /// of the trigger's contract.
    pub fn of<T>(result: &Result<T, HookError>, denies: impl Fn(&HookFailure) -> bool) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(HookError::Failed(f)) if denies(f) => Outcome::Denied,
            Err(HookError::Failed(_)) => Outcome::Error,
            Err(HookError::Timeout) => Outcome::Timeout,
            Err(HookError::Crashed(_)) => Outcome::Crash,
            Err(HookError::Overloaded) => Outcome::Overloaded,
        }
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Outcome, String> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown outcome `{s}`: one of ok, error, denied, timeout, crash, overloaded"
                )
            })
    }
}

/// Why a call failed: the error's class (`InvalidScopeError`, `Error`, `string` for
/// `cb('text')`; `Timeout`, `Crash`, `Overloaded` for hookgate's own) and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    pub class: String,
    pub message: String,
}

impl RunError {
    pub fn of(e: &HookError) -> RunError {
        let (class, message) = match e {
            HookError::Failed(f) => (f.class.clone(), f.message.clone()),
            HookError::Timeout => ("Timeout".into(), e.to_string()),
            HookError::Crashed(m) => ("Crash".into(), m.clone()),
            HookError::Overloaded => ("Overloaded".into(), e.to_string()),
        };
        RunError { class, message }
    }
}

/// One hook call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Increasing by one per record, across restarts when the store is on disk; also the
    /// live tail's event id.
    pub id: u64,
    /// The hook's stable id (`hk-...`).
    pub hook_id: String,
    /// `<trigger>/<name>`.
    pub hook: String,
    /// `hook` or `action`.
    #[serde(default = "a_hook")]
    pub kind: String,
    /// The trigger (extensibility point) it ran for.
    pub point: Trigger,
    /// The route of the request (or of the request that emitted the post-event).
    pub route: Option<String>,
    /// The request it ran for (blocking points).
    pub request_id: Option<String>,
    /// The outbox event it ran for (post-event hooks; `context.event_id`).
    pub event_id: Option<String>,
    /// Which delivery of that event this was (1 first; retries follow the outbox's backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    pub client_id: Option<String>,
    /// When the call was made, RFC 3339 UTC.
    pub start: String,
    /// How long its caller waited for cb, queue included.
    pub duration_ms: f64,
    /// How long the call lasted, its work after cb included.
    pub ran_ms: f64,
    pub cpu_ms: f64,
    pub outcome: Outcome,
    pub error: Option<RunError>,
    pub console: Vec<ConsoleLine>,
    /// Console lines were dropped (`[hooks] max_log_bytes`) or cut (8 KiB a line).
    pub console_truncated: bool,
    pub requests: Vec<OutboundRequest>,
    /// Outbound requests made beyond the 100 kept.
    #[serde(default)]
    pub requests_omitted: usize,
    /// The hot-reload generation the hook belonged to (for post-events: the one in force when
    /// the event ran).
    pub generation: u64,
    /// The replica that ran it (cluster mode: `[cluster] replica`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
}

fn a_hook() -> String {
    "hook".into()
}

impl RunRecord {
    /// The record of a call from what its caller knew and what the engine reported.
    pub fn new(start: RunStart, report: CallReport) -> RunRecord {
        let ms = |d: Duration| (d.as_secs_f64() * 1_000_000.0).round() / 1000.0;
        let trigger = start.point;
        RunRecord {
            id: 0,
            outcome: Outcome::of(&report.result, |f| (start.denies)(trigger, f)),
            error: report.result.as_ref().err().map(RunError::of),
            hook_id: start.hook_id,
            kind: start.kind.to_owned(),
            hook: start.hook,
            point: start.point,
            route: start.route,
            request_id: start.request_id,
            event_id: start.event_id,
            attempt: start.attempt,
            client_id: start.client_id,
            start: time::rfc3339(start.at),
            duration_ms: ms(report.answered_in),
            ran_ms: ms(report.ran),
            cpu_ms: ms(report.cpu),
            console: report.console,
            console_truncated: report.console_truncated,
            requests: report.requests,
            requests_omitted: report.requests_omitted,
            generation: start.generation,
            replica: None,
        }
    }

    /// About the memory the record holds (the store's byte cap counts this).
    pub fn approx_bytes(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        256 + self.hook_id.len()
            + self.hook.len()
            + opt(&self.route)
            + opt(&self.request_id)
            + opt(&self.event_id)
            + opt(&self.client_id)
            + self.start.len()
            + self
                .error
                .as_ref()
                .map_or(0, |e| 48 + e.class.len() + e.message.len())
            + self
                .console
                .iter()
                .map(|l| 48 + l.message.len())
                .sum::<usize>()
            + self
                .requests
                .iter()
                .map(|r| {
                    128 + r.method.len()
                        + r.url.len()
                        + r.host.len()
                        + r.hops.iter().map(String::len).sum::<usize>()
                        + r.error.as_ref().map_or(0, String::len)
                })
                .sum::<usize>()
    }

    /// Does `needle` (already lower case) occur in the error or a console line, ignoring ASCII
    /// case?
    fn mentions(&self, needle: &str) -> bool {
        let has = |hay: &str| hay.to_ascii_lowercase().contains(needle);
        self.error
            .as_ref()
            .is_some_and(|e| has(&e.class) || has(&e.message))
            || self.console.iter().any(|l| has(&l.message))
    }
}

/// What a caller knows of a call before it runs.
#[derive(Debug, Clone)]
pub struct RunStart {
    pub hook_id: String,
    pub hook: String,
    /// `hook` or `action` (an Auth0 Action behind its adapter).
    pub kind: &'static str,
    pub point: Trigger,
    pub route: Option<String>,
    pub request_id: Option<String>,
    pub event_id: Option<String>,
    /// The delivery's number, for post-events.
    pub attempt: Option<u32>,
    pub client_id: Option<String>,
    pub generation: u64,
    /// When the call is made.
    pub at: SystemTime,
    /// Whether a failure is a deliberate denial of `point`'s contract (`Outcome::Denied`).
    pub denies: fn(Trigger, &HookFailure) -> bool,
}

/// A filter over the records held, as the runs route's query string gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// A hook's id (`hk-...`) or name (`credentials-exchange/add-claims`).
    pub hook: Option<String>,
    /// A trigger id.
    pub point: Option<String>,
    pub outcome: Option<Outcome>,
    /// Text contained in the error or a console line (ASCII case ignored).
    pub q: Option<String>,
    /// At most this many records (default 50, at most 1000).
    pub limit: Option<usize>,
    /// Only records with a smaller id (paging: the previous page's `next_before`).
    pub before: Option<u64>,
}

/// Records per page when the query names no limit, and the most a page may hold.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 1000;

impl Query {
    /// A query string (`hook=x&outcome=error&limit=20`); the error says which parameter is wrong.
    pub fn parse(query: &str) -> Result<Query, String> {
        serde_urlencoded::from_str(query).map_err(|e| {
            format!("invalid runs query: {e} (parameters: hook, point, outcome, q, limit, before)")
        })
    }

    fn matches(&self, r: &RunRecord, needle: Option<&str>) -> bool {
        self.hook
            .as_ref()
            .is_none_or(|h| *h == r.hook_id || *h == r.hook)
            && self.point.as_ref().is_none_or(|p| p == r.point.id())
            && self.outcome.is_none_or(|o| o == r.outcome)
            && self.before.is_none_or(|b| r.id < b)
            && needle.is_none_or(|n| r.mentions(n))
    }
}

/// One page of records, newest first.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub records: Vec<Arc<RunRecord>>,
    /// Pass as `before` for the next (older) page; `None`: no older record matched.
    pub next_before: Option<u64>,
}

impl Serialize for Page {
    /// `{"records":[...],"next_before":id|null}`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Records<'a>(&'a [Arc<RunRecord>]);
        impl Serialize for Records<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(|r| &**r))
            }
        }
        let mut st = s.serialize_struct("Page", 2)?;
        st.serialize_field("records", &Records(&self.records))?;
        st.serialize_field("next_before", &self.next_before)?;
        st.end()
    }
}

/// What a live tail yields.
#[derive(Debug, Clone)]
pub enum Tail {
    Record(Arc<RunRecord>),
    /// This many records were dropped before this subscriber read them (the store's bounds, or
    /// the subscriber fell behind the live channel and the store no longer held them).
    Missed(u64),
}

impl Tail {
    /// The server-sent event: `id` (records only: what `Last-Event-ID` sends back), `event`
    /// (`run` or `missed`) and `data` (the record's JSON, or `{"missed":n}`).
    pub fn sse(&self) -> (Option<u64>, &'static str, String) {
        match self {
            Tail::Record(r) => (
                Some(r.id),
                "run",
                serde_json::to_string(&**r).unwrap_or_default(),
            ),
            Tail::Missed(n) => (None, "missed", format!("{{\"missed\":{n}}}")),
        }
    }
}

/// The store. Cheap to clone; one per process (`hookgate serve` opens it from `[runs]`).
#[derive(Clone)]
pub struct Runs {
    inner: Arc<Inner>,
}

struct Inner {
    enabled: bool,
    ring: Mutex<ring::Ring>,
    live: broadcast::Sender<Arc<RunRecord>>,
    disk: Option<disk::Disk>,
    /// Cluster mode: the shared stream every replica's records also go to, and are read from.
    shared: std::sync::OnceLock<Arc<shared::SharedRuns>>,
}

/// The live channel's capacity at most: a subscriber further behind refills from the store, so
/// the channel never needs to hold more than the store does; records it still holds after the
/// store dropped them are what a lagging subscriber keeps alive (bounded by this).
const LIVE_CAPACITY: usize = 256;

/// The store's counters, for `/metrics` (one store per process).
static RECORDED: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static HELD: AtomicU64 = AtomicU64::new(0);
static HELD_BYTES: AtomicU64 = AtomicU64::new(0);
static DISK_WRITTEN: AtomicU64 = AtomicU64::new(0);
static DISK_ERRORS: AtomicU64 = AtomicU64::new(0);
static DISK_DROPPED: AtomicU64 = AtomicU64::new(0);
static DISK_ERROR_LOGGED: AtomicBool = AtomicBool::new(false);

/// Count a disk failure; log the first one (later ones are only counted: a full disk must not
/// flood the log with one line per hook call).
fn disk_failed(what: &str, e: &dyn std::fmt::Display) {
    DISK_ERRORS.fetch_add(1, Ordering::Relaxed);
    if !DISK_ERROR_LOGGED.swap(true, Ordering::Relaxed) {
        tracing::error!(error = %e, "run records: {what}; records are kept in memory only (later disk errors are counted in hookgate_runs_disk_errors_total, not logged)");
    }
}

impl Runs {
    /// A store in memory only, with these bounds.
    pub fn in_memory(max_records: usize, max_bytes: usize) -> Runs {
        Runs::build(true, max_records, max_bytes, None, Vec::new())
    }

    /// A store that records nothing (`[runs] enabled = false`): no reporter is handed out.
    pub fn disabled() -> Runs {
        Runs::build(false, 1, 1, None, Vec::new())
    }

    /// The store `[runs]` describes (`dir` already resolved against the configuration's
    /// folder). Never fails: a database that cannot be opened is logged and counted, and the
    /// store works in memory.
    pub fn open(cfg: &RunsConfig) -> Runs {
        let max_bytes = (cfg.max_mb as usize).saturating_mul(1 << 20);
        if !cfg.enabled {
            return Runs::disabled();
        }
        let Some(dir) = &cfg.dir else {
            return Runs::in_memory(cfg.max_records, max_bytes);
        };
        match disk::Disk::open(&dir.join(disk::FILE), cfg.max_records.max(1), max_bytes) {
            Ok((disk, loaded)) => {
                tracing::info!(file = %dir.join(disk::FILE).display(), records = loaded.len(), "run records are kept on disk");
                Runs::build(true, cfg.max_records, max_bytes, Some(disk), loaded)
            }
            Err(e) => {
                disk_failed("cannot open the run records file", &format!("{e:#}"));
                Runs::in_memory(cfg.max_records, max_bytes)
            }
        }
    }

    fn build(
        enabled: bool,
        max_records: usize,
        max_bytes: usize,
        disk: Option<disk::Disk>,
        loaded: Vec<RunRecord>,
    ) -> Runs {
        let mut ring = ring::Ring::new(max_records.max(1), max_bytes.max(1));
        for r in loaded {
            ring.push(Arc::new(r));
        }
        HELD.store(ring.len() as u64, Ordering::Relaxed);
        HELD_BYTES.store(ring.bytes() as u64, Ordering::Relaxed);
        let (live, _) = broadcast::channel(LIVE_CAPACITY.min(max_records.max(1)));
        Runs {
            inner: Arc::new(Inner {
                enabled,
                ring: Mutex::new(ring),
                live,
                disk,
                shared: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Cluster mode: records also go to the shared stream (named by their replica), and the
    /// runs routes read it.
    pub fn share(&self, shared: Arc<shared::SharedRuns>) {
        let _ = self.inner.shared.set(shared);
    }

    /// The shared stream, in cluster mode.
    pub fn shared(&self) -> Option<Arc<shared::SharedRuns>> {
        self.inner.shared.get().cloned()
    }

    /// Whether calls are recorded.
    pub fn enabled(&self) -> bool {
        self.inner.enabled
    }

    /// The reporter to hand the engine for a call: it stores the call's record when the call
    /// ends. `None` when recording is off (the engine then captures nothing).
    pub fn reporter(&self, start: RunStart) -> Option<Reporter> {
        if !self.inner.enabled {
            return None;
        }
        let runs = self.clone();
        Some(Reporter::new(move |report| {
            runs.record(RunRecord::new(start, report));
        }))
    }

    /// Store a record (its `id` is assigned here) and publish it to the live tail; the oldest
    /// records go when the bounds are passed. Never blocks on a reader or the disk.
    pub fn record(&self, mut record: RunRecord) -> u64 {
        if !self.inner.enabled {
            return 0;
        }
        let shared = self.inner.shared.get();
        if let Some(s) = shared {
            record.replica = Some(s.replica().to_string());
        }
        let mut ring = self.inner.ring.lock().unwrap_or_else(|e| e.into_inner());
        let (record, dropped) = ring.add(record);
        // Sent under the lock: subscribers see ids in order.
        let _ = self.inner.live.send(record.clone());
        HELD.store(ring.len() as u64, Ordering::Relaxed);
        HELD_BYTES.store(ring.bytes() as u64, Ordering::Relaxed);
        drop(ring);
        RECORDED.fetch_add(1, Ordering::Relaxed);
        DROPPED.fetch_add(dropped as u64, Ordering::Relaxed);
        let id = record.id;
        if let Some(s) = shared {
            s.send(record.clone());
        }
        if let Some(disk) = &self.inner.disk {
            disk.write(record);
        }
        id
    }

    /// The record `id`, if still held.
    pub fn get(&self, id: u64) -> Option<Arc<RunRecord>> {
        self.inner
            .ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
    }

    /// The records matching `query`, newest first.
    pub fn query(&self, query: &Query) -> Page {
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        // Copied out (pointers only) so a text search never holds the lock recorders take.
        let all = self
            .inner
            .ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .snapshot(query.before);
        let needle = query
            .q
            .as_deref()
            .filter(|q| !q.is_empty())
            .map(str::to_ascii_lowercase);
        let mut records = Vec::new();
        let mut more = false;
        for r in all.iter().rev() {
            if query.matches(r, needle.as_deref()) {
                if records.len() == limit {
                    more = true;
                    break;
                }
                records.push(r.clone());
            }
        }
        let next_before = more.then(|| records.last().map(|r| r.id)).flatten();
        Page {
            records,
            next_before,
        }
    }

    /// A live tail: the records held after `after` (a `Last-Event-ID`) first, then each new
    /// one. `None`: new records only. An `after` beyond every id issued (the store restarted
    /// empty since) replays everything held.
    pub fn subscribe(&self, after: Option<u64>) -> Subscription {
        let ring = self.inner.ring.lock().unwrap_or_else(|e| e.into_inner());
        let live = self.inner.live.subscribe();
        let newest = ring.next_id() - 1;
        let last = match after {
            None => newest,
            Some(a) if a <= newest => a,
            Some(_) => ring.oldest_id().map_or(newest, |o| o - 1),
        };
        let backlog: VecDeque<_> = ring.after(last).into();
        drop(ring);
        Subscription {
            runs: self.clone(),
            backlog,
            live,
            last,
            held: None,
        }
    }

    /// Wait (at most `timeout`) until every record stored so far is on disk, durably; true if
    /// so (or there is no disk). For a graceful stop: records reach the disk within ~100 ms
    /// anyway.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.inner.disk.as_ref().is_none_or(|d| d.flush(timeout))
    }
}

/// A live tail over the store (see [`Runs::subscribe`]). `Send`, for a response stream.
pub struct Subscription {
    runs: Runs,
    backlog: VecDeque<Arc<RunRecord>>,
    live: broadcast::Receiver<Arc<RunRecord>>,
    /// The id of the last record yielded (or skipped as missed).
    last: u64,
    /// A record held back while its gap is reported.
    held: Option<Arc<RunRecord>>,
}

impl Subscription {
    /// Behind the live channel: what the store still holds after the last record yielded comes
    /// from there (ids it dropped meanwhile are reported as missed by `next`).
    fn refill(&mut self) {
        let ring = self
            .runs
            .inner
            .ring
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.backlog = ring.after(self.last).into();
    }

    /// The next record, or how many were missed before it; `None` once the store is gone.
    pub async fn next(&mut self) -> Option<Tail> {
        loop {
            let record = match self.held.take().or_else(|| self.backlog.pop_front()) {
                Some(r) => r,
                None => match self.live.recv().await {
                    Ok(r) => r,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.refill();
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            };
            if record.id <= self.last {
                continue;
            }
            if record.id > self.last + 1 {
                let missed = record.id - self.last - 1;
                self.last = record.id - 1;
                self.held = Some(record);
                return Some(Tail::Missed(missed));
            }
            self.last = record.id;
            return Some(Tail::Record(record));
        }
    }
}

/// The store's `/metrics` lines and the per-hook families.
pub fn metrics() -> String {
    let mut out = String::new();
    hook_metrics::write(&mut out);
    let line = crate::metrics::metric_line;
    line(
        &mut out,
        "hookgate_runs_recorded_total",
        "counter",
        "Hook runs recorded.",
        RECORDED.load(Ordering::Relaxed),
    );
    line(
        &mut out,
        "hookgate_runs_dropped_total",
        "counter",
        "Run records dropped, oldest first, to stay within [runs] max_records and max_mb.",
        DROPPED.load(Ordering::Relaxed),
    );
    line(
        &mut out,
        "hookgate_runs_records",
        "gauge",
        "Run records held.",
        HELD.load(Ordering::Relaxed),
    );
    line(
        &mut out,
        "hookgate_runs_bytes",
        "gauge",
        "About the memory the run records held take.",
        HELD_BYTES.load(Ordering::Relaxed),
    );
    line(
        &mut out,
        "hookgate_runs_disk_written_total",
        "counter",
        "Run records written durably to the [runs] dir database.",
        DISK_WRITTEN.load(Ordering::Relaxed),
    );
    line(
        &mut out,
        "hookgate_runs_disk_errors_total",
        "counter",
        "Failures to open or write the run records database (records stay in memory).",
        DISK_ERRORS.load(Ordering::Relaxed),
    );
    line(
        &mut out,
        "hookgate_runs_disk_dropped_total",
        "counter",
        "Run records not written to disk because the writer was behind.",
        DISK_DROPPED.load(Ordering::Relaxed),
    );
    line(
        &mut out,
        "hookgate_runs_shared_dropped_total",
        "counter",
        "Cluster mode: run records not appended to the shared stream (Redis unreachable, or the queue to it full).",
        shared::SHARED_DROPPED.load(Ordering::Relaxed),
    );
    out
}

/// Open the on-disk records of a stopped hookgate, read-only in spirit (for tools and tests:
/// redb lets one process open the file, so not while hookgate runs).
pub fn read_dir(dir: &Path) -> anyhow::Result<Vec<RunRecord>> {
    disk::read_all(&dir.join(disk::FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(message: &str) -> RunRecord {
        RunRecord::new(
            RunStart {
                hook_id: "hk-1".into(),
                hook: "post-user-registration/h".into(),
                kind: "hook",
                point: Trigger::PostUserRegistration,
                route: Some("signup".into()),
                request_id: None,
                event_id: Some("evt_1".into()),
                attempt: Some(1),
                client_id: None,
                generation: 3,
                at: SystemTime::UNIX_EPOCH,
                denies: |_, _| false,
            },
            CallReport {
                started: true,
                result: Ok(()),
                answered_in: Duration::from_micros(1500),
                ran: Duration::from_millis(3),
                cpu: Duration::from_micros(200),
                console: vec![ConsoleLine {
                    level: crate::engine::Level::Info,
                    at_ms: 0.1,
                    message: message.into(),
                }],
                console_truncated: false,
                requests: Vec::new(),
                requests_omitted: 0,
            },
        )
    }

    #[test]
    fn a_record_carries_what_its_caller_knew_and_what_the_engine_reported() {
        let r = record("hi");
        assert_eq!(r.start, "1970-01-01T00:00:00.000Z");
        assert_eq!((r.duration_ms, r.ran_ms, r.cpu_ms), (1.5, 3.0, 0.2));
        assert_eq!((r.outcome, r.generation), (Outcome::Ok, 3));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["point"], "post-user-registration");
        assert_eq!(json["outcome"], "ok");
        assert_eq!(json["console"][0]["level"], "info");
        assert_eq!(serde_json::from_value::<RunRecord>(json).unwrap(), r);
    }

    #[test]
    fn outcomes_follow_the_error_and_the_contract() {
        let failed = |class: &str| -> Result<(), HookError> {
            Err(HookError::Failed(HookFailure {
                class: class.into(),
                message: String::new(),
                user_message: None,
            }))
        };
        let denies = |f: &HookFailure| f.class == "InvalidScopeError";
        assert_eq!(
            Outcome::of(&failed("InvalidScopeError"), denies),
            Outcome::Denied
        );
        assert_eq!(Outcome::of(&failed("Error"), denies), Outcome::Error);
        assert_eq!(
            Outcome::of(&Err::<(), _>(HookError::Timeout), denies),
            Outcome::Timeout
        );
        assert_eq!(
            Outcome::of(&Err::<(), _>(HookError::Crashed("x".into())), denies),
            Outcome::Crash
        );
        assert_eq!(
            Outcome::of(&Err::<(), _>(HookError::Overloaded), denies),
            Outcome::Overloaded
        );
        assert_eq!("denied".parse::<Outcome>(), Ok(Outcome::Denied));
        assert!("nope".parse::<Outcome>().is_err());
    }

    /// A response stream needs both, on a multi-threaded runtime.
    #[test]
    fn a_subscription_and_its_next_item_can_move_between_threads() {
        fn send<T: Send>(_: &T) {}
        let mut sub = Runs::in_memory(1, 1 << 20).subscribe(None);
        send(&sub);
        send(&sub.next());
    }

    #[test]
    fn a_store_whose_file_cannot_be_opened_keeps_its_records_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_folder = dir.path().join("file");
        std::fs::write(&not_a_folder, "x").unwrap();
        let errors = DISK_ERRORS.load(Ordering::Relaxed);
        let runs = Runs::open(&RunsConfig {
            dir: Some(not_a_folder),
            ..RunsConfig::default()
        });
        assert!(DISK_ERRORS.load(Ordering::Relaxed) > errors, "counted");
        let id = runs.record(record("kept"));
        assert_eq!(runs.get(id).unwrap().console[0].message, "kept");
    }

    #[test]
    fn the_file_keeps_the_newest_records_within_its_bounds_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = RunsConfig {
            max_records: 3,
            dir: Some(dir.path().to_path_buf()),
            ..RunsConfig::default()
        };
        let runs = Runs::open(&cfg);
        for i in 0..5 {
            runs.record(record(&format!("line {i}")));
        }
        assert!(runs.flush(Duration::from_secs(10)));
        drop(runs);
        // The writer closes the file once its queue is gone.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let records = loop {
            match read_dir(dir.path()) {
                Ok(r) => break r,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("{e:#}"),
            }
        };
        let ids: Vec<u64> = records.iter().map(|r| r.id).collect();
        assert_eq!(ids, [3, 4, 5]);
        assert_eq!(records[2].console[0].message, "line 4");
        // Reopened: the same records, and ids go on.
        let runs = Runs::open(&cfg);
        assert_eq!(runs.get(3).unwrap().console[0].message, "line 2");
        assert_eq!(runs.record(record("again")), 6);
    }
}
