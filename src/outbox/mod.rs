//! The outbox: a durable queue of post-events (post-user-registration, post-change-password) in one
//! embedded ACID file (redb), and the [`dispatch::Dispatcher`] that delivers them to hooks.
//!
//! An event is written, and its transaction committed with fsync, *before* the client's answer
//! is written; so an accepted signup's event survives a crash or `kill -9`. Concurrent signups
//! share commits (group commit, [`Outbox::enqueue`]): one fsync carries every event that arrived
//! while the previous one was being written. The dispatcher runs
//! the hooks later, at least once: a hook that fails is retried with exponential backoff and
//! jitter, and after `max_attempts` the event moves to the dead letters, where
//! `hookgate outbox list|retry|drop` manages it.
//!
//! Owns: the file's schema, sequencing, scheduling and the retry policy. Must not: know any
//! point's arguments (an event carries a trigger and the hook arguments, built by the point code)
//! or run JS itself (the engine does). Secrets are never stored: the dispatcher adds
//! `context.webtask` from the hook in force when it runs.
//!
//! # Schema (redb tables)
//! * `pending`: `(due_ms, seq) → event JSON`. Keyed by due time first, so the due events are one
//!   range scan; rescheduling is remove + insert under the new due time.
//! * `dead`: `seq → event JSON`: events that used up their attempts.
//! * `meta`: `"next_seq" → u64`: sequence numbers are never reused, so an id printed by
//!   `outbox list` names one event for good; `"probe_ms"`: the last recovery probe's write.
//!
//! # Nothing answered 2xx that is not recorded
//! A route that produces an event asks [`Outbox::preflight`] before the upstream changes
//! anything: while the last write failed, or the disk has less than `min_free_mb` free, it is
//! refused (503) and nothing is created. A write that still fails after the upstream's 2xx fails
//! the request (500, logged with the event for replay). A failed write reopens the file and
//! retries once; a broken file is reopened by the dispatcher until a probe write succeeds.
//! `/readyz` is not ready meanwhile, and `/metrics` counts it all ([`Outbox::metrics`]).
//!
//! # One process at a time
//! redb locks the file for the process that opens it. While hookgate runs, `hookgate outbox`
//! cannot open the file and says so; stop hookgate first (its pending events stay on disk).

pub mod dispatch;
mod health;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::RwLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::hooks::Trigger;
use crate::metrics::metric_line;
use health::Health;
pub use health::Unwritable;

const PENDING: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("pending");
const DEAD: TableDefinition<u64, &[u8]> = TableDefinition::new("dead");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// `[outbox]` of hookgate.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// The redb file, relative to the configuration file's folder. Default `hookgate-outbox.redb`.
    pub path: PathBuf,
    /// Deliveries tried before an event becomes a dead letter. Default 10.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time, with jitter. Default 1000.
    pub retry_base_ms: u64,
    /// Longest wait between two attempts. Default 300000 (5 min).
    pub retry_max_ms: u64,
    /// Events the dispatcher runs at once. Default 256.
    pub batch: usize,
    /// Free space (MiB) the outbox's disk must keep: below it, signups and password changes with
    /// post hooks are refused (503) before the upstream is called, instead of failing to store
    /// their event after it. 0 turns the check off. Default 1.
    pub min_free_mb: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            path: PathBuf::from("hookgate-outbox.redb"),
            max_attempts: 10,
            retry_base_ms: 1000,
            retry_max_ms: 300_000,
            batch: 256,
            min_free_mb: 1,
        }
    }
}

impl OutboxConfig {
    /// The wait before attempt `attempts + 1`: `base · 2^(attempts-1)`, capped, then a random
    /// point in its upper half, so events that failed together do not retry in lockstep.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(32);
        let full = self
            .retry_base_ms
            .saturating_mul(1u64 << exp)
            .min(self.retry_max_ms)
            .max(1);
        let jittered = full / 2 + rand::random_range(0..=full - full / 2);
        Duration::from_millis(jittered)
    }
}

/// One post-event: which hooks to run (trigger, route) and their arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Stable across retries and restarts; hooks see it as `context.event_id` to deduplicate.
    pub id: String,
    pub trigger: Trigger,
    /// The route the event came from (hooks can be limited to routes).
    pub route: String,
    /// The client the event came from, when known (hooks can be limited to clients).
    #[serde(default)]
    pub client_id: Option<String>,
    /// The hook arguments before `cb`. The last one is the `context`; the dispatcher adds
    /// `webtask` and `event_id` to it.
    pub args: Vec<Value>,
    pub created_ms: u64,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// Hooks that already succeeded for this event: a retry runs only the others.
    #[serde(default)]
    pub done_hooks: Vec<String>,
    #[serde(default)]
    pub last_error: Option<String>,
}

impl Event {
    pub fn new(
        trigger: Trigger,
        route: &str,
        client_id: Option<String>,
        args: Vec<Value>,
    ) -> Event {
        Event {
            id: format!("evt_{}", uuid::Uuid::new_v4().simple()),
            trigger,
            route: route.to_string(),
            client_id,
            args,
            created_ms: now_ms(),
            attempts: 0,
            done_hooks: Vec::new(),
            last_error: None,
        }
    }
}

/// Where an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Dead,
}

/// An event as stored, with its place in the file.
#[derive(Debug, Clone, Serialize)]
pub struct Stored {
    pub seq: u64,
    pub state: State,
    /// When the next attempt is due (pending events), ms since the epoch.
    pub due_ms: Option<u64>,
    pub event: Event,
}

/// How the file is opened: [`Database::create`]; tests put a backend that fails on demand under it.
type Opener = Box<dyn Fn(&Path) -> Result<Database, DatabaseError> + Send + Sync>;

/// How often a broken outbox is reopened and probed, at most (the dispatcher tries about once a
/// second, and a request's pre-flight when it is due).
const RECOVERY_INTERVAL_MS: u64 = 500;

/// The process's outbox file: open, or not yet (no route produces post-events), or broken.
///
/// redb fails every operation after one I/O error ("PreviousIo") until the database is closed
/// and opened again, so a write that fails closes the file, opens it again (redb repairs it to
/// its last durable commit) and retries once; a broken file is reopened by the dispatcher and by
/// the pre-flight of the next request ([`Outbox::recover`]). Every transaction runs under `db`'s
/// read lock and a reopen takes the write lock, so no transaction is alive when it happens.
pub struct Outbox {
    /// `None` until opened, and while a reopen after a failure does not succeed.
    db: RwLock<Option<Database>>,
    /// +1 per reopen: of two writers that failed on the same file, only the first reopens it.
    epoch: AtomicU64,
    path: PathBuf,
    opener: Opener,
    /// `outbox.min_free_mb` in bytes: below this, requests that would write are refused.
    min_free: u64,
    health: Health,
    /// One recovery at a time.
    recovering: std::sync::Mutex<()>,
    /// Becomes true when the file is opened (the dispatcher of a configuration without post-events
    /// waits for it: a reload may add a signup route).
    opened: tokio::sync::watch::Sender<bool>,
    notify: tokio::sync::Notify,
    /// Events waiting for [`Outbox::enqueue`]'s group commit.
    queue: std::sync::Mutex<Queue>,
    /// A commit without fsync (the dispatcher's results) has not been made durable yet.
    unsynced: AtomicBool,
    /// Dispatcher batches under way; a graceful stop waits for them (see [`Outbox::busy`]).
    busy: AtomicUsize,
    /// Since start: events delivered, failed delivery attempts, events that became dead letters.
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    dead_letters: AtomicU64,
}

/// Counts a dispatcher batch as under way while it lives.
pub struct Busy<'a>(&'a AtomicUsize);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Events handed to [`Outbox::enqueue`] and not yet on disk, and whether a committer is at work.
#[derive(Default)]
struct Queue {
    waiting: Vec<(Event, tokio::sync::oneshot::Sender<Result<u64, String>>)>,
    committing: bool,
}

/// Resets the queue if a commit panics: the waiters of that batch and of the queue are answered
/// (their senders dropped, which they see as an error) instead of waiting forever, and the next
/// `enqueue` starts a committer again.
struct CommitterGuard<'a>(&'a Outbox);

impl Drop for CommitterGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut q = self.0.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.waiting.clear();
            q.committing = false;
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Outbox {
    /// The outbox of a configuration, not opened yet: [`Outbox::ensure_open`] opens it (at start
    /// when a route produces post-events, or when a reload adds the first such route).
    pub fn closed(config: &OutboxConfig) -> Outbox {
        Outbox::with_opener(
            &config.path,
            config.min_free_mb.saturating_mul(1 << 20),
            Box::new(|p| Database::create(p)),
        )
    }

    fn with_opener(path: &Path, min_free: u64, opener: Opener) -> Outbox {
        Outbox {
            db: RwLock::new(None),
            epoch: AtomicU64::new(0),
            path: path.to_path_buf(),
            opener,
            min_free,
            health: Health::default(),
            recovering: std::sync::Mutex::new(()),
            opened: tokio::sync::watch::channel(false).0,
            notify: tokio::sync::Notify::new(),
            queue: std::sync::Mutex::new(Queue::default()),
            unsynced: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
            delivered: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
        }
    }

    /// Open (or create) the file now, without a free-space reserve (the `hookgate outbox`
    /// commands). Fails with a message that says what to do when another process holds it.
    pub fn open(path: &Path) -> anyhow::Result<Outbox> {
        let o = Outbox::with_opener(path, 0, Box::new(|p| Database::create(p)));
        o.ensure_open()?;
        Ok(o)
    }

    /// Open the file if it is not open yet. Blocking.
    pub fn ensure_open(&self) -> anyhow::Result<()> {
        {
            let mut slot = self.db.write().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = Some(self.open_db()?);
            }
        }
        self.health.wanted.store(true, Ordering::Release);
        self.health.writable.store(true, Ordering::Release);
        self.opened.send_replace(true);
        Ok(())
    }

    /// Has the file been opened (it may be broken since)?
    pub fn is_open(&self) -> bool {
        *self.opened.borrow()
    }

    /// Until the file is opened.
    pub async fn wait_open(&self) {
        let mut rx = self.opened.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }

    fn open_db(&self) -> anyhow::Result<Database> {
        let path = &self.path;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the outbox folder {}", dir.display()))?;
        }
        let db = match (self.opener)(path) {
            Ok(db) => db,
            Err(DatabaseError::DatabaseAlreadyOpen) => anyhow::bail!(
                "the outbox {} is open in another process (a running hookgate?); \
                 redb allows one process at a time: stop hookgate first",
                path.display()
            ),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot open the outbox {}", path.display()))
            }
        };
        let tx = db.begin_write()?;
        tx.open_table(PENDING)?;
        tx.open_table(DEAD)?;
        tx.open_table(META)?;
        tx.commit()?;
        Ok(db)
    }

    /// Close the file and open it again, unless another caller already did since `epoch`.
    /// On failure the outbox stays closed (every operation fails) until a later reopen works.
    fn reopen(&self, epoch: u64) -> anyhow::Result<()> {
        let mut slot = self.db.write().unwrap_or_else(|p| p.into_inner());
        if self.epoch.load(Ordering::Acquire) != epoch && slot.is_some() {
            return Ok(());
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(old) = slot.take() {
            // A broken file cannot be closed cleanly; the reopen repairs it.
            if let Err(e) = old.close() {
                tracing::debug!(error = %e, "closing the broken outbox");
            }
        }
        *slot = Some(self.open_db()?);
        self.health.reopens.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(outbox = %self.path.display(), "the outbox file was reopened after a failure");
        Ok(())
    }

    /// Run `f` on the open file.
    fn with_db<T>(&self, f: impl FnOnce(&Database) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let slot = self.db.read().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some(db) => f(db),
            None => Err(match self.health.last_error() {
                Some(e) => anyhow::anyhow!("the outbox is closed after a failure: {e}"),
                None => anyhow::anyhow!("the outbox {} is not open", self.path.display()),
            }),
        }
    }

    /// A read: its failure marks the file broken (redb fails reads too after an I/O error), so
    /// the dispatcher's recovery reopens it.
    fn read<T>(&self, f: impl FnOnce(&Database) -> anyhow::Result<T>) -> anyhow::Result<T> {
        self.with_db(f)
            .inspect_err(|e| self.health.failed(format!("{e:#}")))
    }

    /// A write transaction: on failure the file is reopened and `f` runs once more. Both
    /// failures count; the second marks the outbox unwritable until a write or a recovery works.
    fn write<T>(&self, f: impl Fn(&Database) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let epoch = self.epoch.load(Ordering::Acquire);
        let first = match self.with_db(&f) {
            Ok(v) => {
                self.health.succeeded();
                return Ok(v);
            }
            Err(e) => e,
        };
        self.health.write_failures.fetch_add(1, Ordering::Relaxed);
        // If the failed commit did reach the disk after all (an fsync that reported an error),
        // the retry stores its events a second time: the hooks would run twice, which
        // at-least-once delivery allows (`context.event_id` is the same).
        tracing::warn!(error = %format!("{first:#}"), "outbox write failed; reopening the file and trying once more");
        let second = match self.reopen(epoch) {
            Ok(()) => self.with_db(&f),
            Err(e) => Err(e.context("reopening the outbox failed")),
        };
        match second {
            Ok(v) => {
                self.health.succeeded();
                Ok(v)
            }
            Err(e) => {
                self.health.write_failures.fetch_add(1, Ordering::Relaxed);
                let e = first.context(format!("and again after reopening: {e:#}"));
                self.health.failed(format!("{e:#}"));
                Err(e)
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Store events durably (one fsync'd transaction), due now. Blocking: call it from
    /// `spawn_blocking` or a thread of its own.
    pub fn append(&self, events: &[Event]) -> anyhow::Result<Vec<u64>> {
        let seqs = self.write(|db| {
            let tx = db.begin_write()?;
            let mut seqs = Vec::with_capacity(events.len());
            {
                let mut meta = tx.open_table(META)?;
                let mut next = meta.get("next_seq")?.map_or(1, |v| v.value());
                let mut pending = tx.open_table(PENDING)?;
                let due = now_ms();
                for e in events {
                    pending.insert((due, next), serde_json::to_vec(e)?.as_slice())?;
                    seqs.push(next);
                    next += 1;
                }
                meta.insert("next_seq", next)?;
            }
            self.commit_durably(tx)?;
            Ok(seqs)
        })?;
        self.notify.notify_one();
        Ok(seqs)
    }

    /// Commit with fsync; earlier commits without one become durable with it. The flag is set
    /// while the write transaction is held, so it follows the order of the commits.
    fn commit_durably(&self, tx: redb::WriteTransaction) -> anyhow::Result<()> {
        let was = self.unsynced.swap(false, Ordering::AcqRel);
        if let Err(e) = tx.commit() {
            self.unsynced.store(was, Ordering::Release);
            return Err(e.into());
        }
        Ok(())
    }

    /// Make the dispatcher's results durable if any are not yet: one empty fsync'd transaction.
    /// The dispatcher calls it when it runs out of work and a graceful stop calls it last, so
    /// neither a restart nor a crash after a quiet moment runs delivered hooks again. Blocking.
    pub fn sync(&self) -> anyhow::Result<bool> {
        if !self.unsynced.load(Ordering::Acquire) {
            return Ok(false);
        }
        self.write(|db| self.commit_durably(db.begin_write()?))?;
        Ok(true)
    }

    /// Can an event be stored now, as far as is known without storing one?
    pub fn writable(&self) -> Result<(), Unwritable> {
        self.health.check(&self.path, self.min_free)
    }

    /// Writes that failed since start (see `hookgate_outbox_write_failures_total`).
    pub fn write_failures(&self) -> u64 {
        self.health.write_failures.load(Ordering::Relaxed)
    }

    /// The last write failed (the file needs a reopen); a low disk alone does not break it.
    pub fn is_broken(&self) -> bool {
        self.is_open() && !self.health.writable.load(Ordering::Acquire)
    }

    /// Is a recovery attempt due (the file is broken and none was tried lately)?
    fn recovery_due(&self) -> bool {
        let last = self.health.last_recovery_ms.load(Ordering::Acquire);
        self.is_broken() && now_ms().saturating_sub(last) >= RECOVERY_INTERVAL_MS
    }

    /// Reopen a broken file and probe it with a durable write; at most every
    /// `RECOVERY_INTERVAL_MS`, and one caller at a time: the others (requests on a broken
    /// outbox) get the current state at once instead of queueing behind a slow reopen. Blocking.
    pub fn recover(&self) -> Result<(), Unwritable> {
        let _one = match self.recovering.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return self.writable(),
        };
        if !self.recovery_due() {
            return self.writable();
        }
        self.health
            .last_recovery_ms
            .store(now_ms(), Ordering::Release);
        let epoch = self.epoch.load(Ordering::Acquire);
        let probed = self.reopen(epoch).and_then(|()| {
            self.with_db(|db| {
                let tx = db.begin_write()?;
                tx.open_table(META)?.insert("probe_ms", now_ms())?;
                self.commit_durably(tx)
            })
        });
        match probed {
            Ok(()) => self.health.succeeded(),
            Err(e) => self.health.failed(format!("{e:#}")),
        }
        self.writable()
    }

    /// Before a request changes anything upstream: can its event be stored? A broken outbox
    /// gets a recovery attempt first (see [`Outbox::recover`]). A refusal is counted.
    pub async fn preflight(self: &std::sync::Arc<Self>) -> Result<(), Unwritable> {
        if self.recovery_due() {
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || me.recover()).await;
        }
        self.writable()
            .inspect_err(|_| _ = self.health.refused.fetch_add(1, Ordering::Relaxed))
    }

    /// Marks a dispatcher batch as under way until the returned guard drops.
    pub fn busy(&self) -> Busy<'_> {
        self.busy.fetch_add(1, Ordering::AcqRel);
        Busy(&self.busy)
    }

    /// No dispatcher batch is under way.
    pub fn is_idle(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0
    }

    /// [`Outbox::append`] for async callers: returns once the event is on disk. The routes call it
    /// after the upstream's 2xx, so a failure here is counted as an unrecorded event.
    ///
    /// Group commit: events that arrive while a transaction is being written and fsync'd wait
    /// and go together in the next one, so concurrent signups share fsyncs instead of queueing
    /// one by one behind redb's single writer. Alone, an event is committed at once. A failed
    /// commit answers every waiter of its batch with the error.
    pub async fn enqueue(self: &std::sync::Arc<Self>, event: Event) -> anyhow::Result<u64> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let lead = {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.waiting.push((event, tx));
            !std::mem::replace(&mut q.committing, true)
        };
        if lead {
            let me = self.clone();
            tokio::task::spawn_blocking(move || me.commit_waiting());
        }
        let stored = match rx.await {
            Ok(Ok(seq)) => Ok(seq),
            Ok(Err(e)) => Err(anyhow::anyhow!(e)),
            Err(_) => Err(anyhow::anyhow!(
                "the outbox writer failed before storing the event"
            )),
        };
        if stored.is_err() {
            self.health.unrecorded.fetch_add(1, Ordering::Relaxed);
        }
        stored
    }

    /// The committer: writes whatever is waiting in one transaction, answers those waiters, and
    /// goes on until nothing is waiting. Blocking.
    fn commit_waiting(&self) {
        let _guard = CommitterGuard(self);
        loop {
            let batch = {
                let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                if q.waiting.is_empty() {
                    q.committing = false;
                    return;
                }
                std::mem::take(&mut q.waiting)
            };
            let (events, waiters): (Vec<Event>, Vec<_>) = batch.into_iter().unzip();
            match self.append(&events) {
                Ok(seqs) => {
                    for (waiter, seq) in waiters.into_iter().zip(seqs) {
                        let _ = waiter.send(Ok(seq));
                    }
                }
                Err(e) => {
                    let e = format!("{e:#}");
                    for waiter in waiters {
                        let _ = waiter.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// Pending events due at `now_ms`, oldest due first, at most `limit`.
    pub fn due(&self, now_ms: u64, limit: usize) -> anyhow::Result<Vec<Stored>> {
        self.read(|db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(PENDING)?;
            let mut out = Vec::new();
            for row in table.range((0u64, 0u64)..=(now_ms, u64::MAX))? {
                if out.len() >= limit {
                    break;
                }
                let (k, v) = row?;
                let (due, seq) = k.value();
                out.push(Stored {
                    seq,
                    state: State::Pending,
                    due_ms: Some(due),
                    event: serde_json::from_slice(v.value())?,
                });
            }
            Ok(out)
        })
    }

    /// When the earliest pending event is due, if any.
    pub fn next_due(&self) -> anyhow::Result<Option<u64>> {
        self.read(|db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(PENDING)?;
            let first = table.first()?.map(|(k, _)| k.value().0);
            Ok(first)
        })
    }

    /// Apply the dispatcher's results in one transaction.
    ///
    /// Deliveries and reschedules are not fsync'd (`Durability::None`): losing them in a crash
    /// only means the hooks run again, which at-least-once delivery allows, while an fsync here
    /// would compete with the signups' own (which make them durable too: redb persists earlier
    /// commits with the next durable one). They become durable at the latest when the dispatcher
    /// runs out of work and when hookgate stops gracefully ([`Outbox::sync`]), so only a crash in
    /// the middle of a busy stretch runs hooks again. A batch that makes dead letters is fsync'd,
    /// so an operator stopping hookgate finds them where the log said.
    pub fn settle(&self, outcomes: &[Outcome]) -> anyhow::Result<()> {
        let durable = outcomes.iter().any(|o| matches!(o.next, Next::Dead(_)));
        self.write(|db| {
            let mut tx = db.begin_write()?;
            if !durable {
                tx.set_durability(redb::Durability::None)?;
            }
            {
                let mut pending = tx.open_table(PENDING)?;
                let mut dead = tx.open_table(DEAD)?;
                for o in outcomes {
                    let key = (o.due_ms, o.seq);
                    match &o.next {
                        Next::Delivered => {
                            pending.remove(key)?;
                        }
                        Next::Retry { due_ms, event } => {
                            pending.remove(key)?;
                            pending
                                .insert((*due_ms, o.seq), serde_json::to_vec(event)?.as_slice())?;
                        }
                        Next::Dead(event) => {
                            pending.remove(key)?;
                            dead.insert(o.seq, serde_json::to_vec(event)?.as_slice())?;
                        }
                    }
                }
            }
            if durable {
                self.commit_durably(tx)
            } else {
                self.unsynced.store(true, Ordering::Release);
                Ok(tx.commit()?)
            }
        })?;
        for o in outcomes {
            let counter = match o.next {
                Next::Delivered => &self.delivered,
                Next::Retry { .. } => &self.failed_attempts,
                Next::Dead(_) => {
                    self.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    &self.dead_letters
                }
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// `/readyz`'s `outbox` object, and whether an event can be stored; `None` while no route
    /// needs the outbox (it was never opened).
    pub fn readiness(&self) -> Option<(bool, serde_json::Value)> {
        self.health
            .wanted
            .load(Ordering::Acquire)
            .then(|| self.health.detail(&self.path, self.min_free))
    }

    /// `/metrics` lines, in Prometheus' text format: what waits in the file now, whether it can
    /// be written, and what the dispatcher and the writers did since start (empty while no
    /// route needs the outbox). While hookgate runs, `hookgate outbox list` cannot open the
    /// file, so these are how an operator sees dead letters pile up (alert on
    /// `hookgate_outbox_dead > 0`) and events go unrecorded (`hookgate_outbox_writable == 0`).
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        if !self.health.wanted.load(Ordering::Acquire) {
            return out;
        }
        match self.counts() {
            Ok((pending, dead)) => {
                metric_line(
                    &mut out,
                    "hookgate_outbox_pending",
                    "gauge",
                    "Post-events waiting for delivery, retries included.",
                    pending,
                );
                metric_line(
                    &mut out,
                    "hookgate_outbox_dead",
                    "gauge",
                    "Dead letters: events that used up their attempts.",
                    dead,
                );
            }
            Err(e) => tracing::debug!(error = %format!("{e:#}"), "cannot count the outbox"),
        }
        for (name, help, counter) in [
            (
                "hookgate_outbox_delivered_total",
                "Post-events whose hooks all succeeded.",
                &self.delivered,
            ),
            (
                "hookgate_outbox_failed_attempts_total",
                "Delivery attempts in which a hook failed.",
                &self.failed_attempts,
            ),
            (
                "hookgate_outbox_dead_letters_total",
                "Post-events that became dead letters.",
                &self.dead_letters,
            ),
        ] {
            metric_line(
                &mut out,
                name,
                "counter",
                help,
                counter.load(Ordering::Relaxed),
            );
        }
        self.health.metrics(&mut out, &self.path, self.min_free);
        out
    }

    /// Pending events and dead letters now (both O(1) in redb). Does not wait for a reopen
    /// under way: the admin listener must answer.
    fn counts(&self) -> anyhow::Result<(u64, u64)> {
        use redb::ReadableTableMetadata;
        let slot = match self.db.try_read() {
            Ok(slot) => slot,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                anyhow::bail!("the outbox is being reopened")
            }
        };
        let db = slot.as_ref().context("the outbox is closed")?;
        let tx = db.begin_read()?;
        Ok((tx.open_table(PENDING)?.len()?, tx.open_table(DEAD)?.len()?))
    }

    /// Every event, pending first (by due time), then the dead letters.
    pub fn list(&self) -> anyhow::Result<Vec<Stored>> {
        self.with_db(|db| {
            let tx = db.begin_read()?;
            let mut out = Vec::new();
            for row in tx.open_table(PENDING)?.iter()? {
                let (k, v) = row?;
                let (due, seq) = k.value();
                out.push(Stored {
                    seq,
                    state: State::Pending,
                    due_ms: Some(due),
                    event: serde_json::from_slice(v.value())?,
                });
            }
            for row in tx.open_table(DEAD)?.iter()? {
                let (k, v) = row?;
                out.push(Stored {
                    seq: k.value(),
                    state: State::Dead,
                    due_ms: None,
                    event: serde_json::from_slice(v.value())?,
                });
            }
            Ok(out)
        })
    }

    /// The events a command names: these sequence numbers, or (`None`) every dead letter.
    fn named(&self, seqs: Option<&[u64]>) -> anyhow::Result<Vec<Stored>> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|s| match seqs {
                None => s.state == State::Dead,
                Some(list) => list.contains(&s.seq),
            })
            .collect())
    }

    /// Make events due now with fresh attempts: dead letters go back to pending. `None` = every
    /// dead letter. Returns how many were moved.
    pub fn retry(&self, seqs: Option<&[u64]>) -> anyhow::Result<usize> {
        let chosen = self.named(seqs)?;
        self.with_db(|db| {
            let tx = db.begin_write()?;
            {
                let mut pending = tx.open_table(PENDING)?;
                let mut dead = tx.open_table(DEAD)?;
                let now = now_ms();
                for s in &chosen {
                    match s.state {
                        State::Dead => {
                            dead.remove(s.seq)?;
                        }
                        State::Pending => {
                            pending.remove((s.due_ms.unwrap_or(0), s.seq))?;
                        }
                    }
                    let mut e = s.event.clone();
                    e.attempts = 0;
                    pending.insert((now, s.seq), serde_json::to_vec(&e)?.as_slice())?;
                }
            }
            Ok(tx.commit()?)
        })?;
        Ok(chosen.len())
    }

    /// Delete events for good. `None` = every dead letter. Returns how many were deleted.
    pub fn drop_events(&self, seqs: Option<&[u64]>) -> anyhow::Result<usize> {
        let chosen = self.named(seqs)?;
        self.with_db(|db| {
            let tx = db.begin_write()?;
            {
                let mut pending = tx.open_table(PENDING)?;
                let mut dead = tx.open_table(DEAD)?;
                for s in &chosen {
                    match s.state {
                        State::Dead => dead.remove(s.seq)?,
                        State::Pending => pending.remove((s.due_ms.unwrap_or(0), s.seq))?,
                    };
                }
            }
            Ok(tx.commit()?)
        })?;
        Ok(chosen.len())
    }

    /// Wake the dispatcher (an event was appended).
    pub(crate) async fn appended(&self) {
        self.notify.notified().await
    }
}

/// What became of one dispatched event.
#[derive(Debug)]
pub struct Outcome {
    pub seq: u64,
    pub due_ms: u64,
    pub next: Next,
}

#[derive(Debug)]
pub enum Next {
    Delivered,
    Retry { due_ms: u64, event: Event },
    Dead(Event),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Event {
        Event::new(
            Trigger::PostUserRegistration,
            "signup",
            Some("spa".into()),
            vec![json!({"id": "u1"}), json!({})],
        )
    }

    #[test]
    fn events_survive_reopening_and_come_out_due_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.redb");
        let (a, b) = (event(), event());
        {
            let o = Outbox::open(&path).unwrap();
            assert_eq!(o.append(&[a.clone(), b.clone()]).unwrap(), vec![1, 2]);
        }
        let o = Outbox::open(&path).unwrap();
        let due = o.due(now_ms(), 10).unwrap();
        assert_eq!(due.len(), 2);
        assert_eq!((due[0].seq, &due[0].event), (1, &a));
        assert_eq!(
            o.due(0, 10).unwrap().len(),
            0,
            "nothing is due before it was written"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_enqueues_are_all_stored_once_with_distinct_sequence_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.redb");
        let o = std::sync::Arc::new(Outbox::open(&path).unwrap());
        let mut tasks = tokio::task::JoinSet::new();
        let mut ids = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let (o, e) = (o.clone(), event());
            ids.insert(e.id.clone());
            tasks.spawn(async move { o.enqueue(e).await.unwrap() });
        }
        let all = async {
            let mut seqs = std::collections::BTreeSet::new();
            while let Some(seq) = tasks.join_next().await {
                assert!(seqs.insert(seq.unwrap()), "a sequence number given twice");
            }
            seqs
        };
        let seqs = tokio::time::timeout(std::time::Duration::from_secs(30), all)
            .await
            .expect("every enqueue is answered");
        assert_eq!(seqs, (1..=200).collect());
        let stored = o.due(now_ms(), 1000).unwrap();
        assert_eq!(
            stored.iter().map(|s| s.seq).collect::<Vec<_>>(),
            (1..=200).collect::<Vec<_>>()
        );
        let stored_ids: std::collections::BTreeSet<_> =
            stored.into_iter().map(|s| s.event.id).collect();
        assert_eq!(stored_ids, ids, "each event stored once");
    }

    #[test]
    fn sync_commits_only_when_results_are_not_yet_durable() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(&dir.path().join("o.redb")).unwrap();
        assert!(!o.sync().unwrap(), "nothing to sync after open");
        let seq = o.append(&[event()]).unwrap()[0];
        assert!(!o.sync().unwrap(), "an append is durable itself");
        let due = o.due(now_ms(), 10).unwrap();
        o.settle(&[Outcome {
            seq,
            due_ms: due[0].due_ms.unwrap(),
            next: Next::Delivered,
        }])
        .unwrap();
        assert!(o.sync().unwrap(), "a delivery is recorded without fsync");
        assert!(!o.sync().unwrap(), "and synced once");
        {
            let _batch = o.busy();
            assert!(!o.is_idle());
        }
        assert!(o.is_idle());
    }

    #[test]
    fn retry_dead_and_drop_move_events_between_tables() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(&dir.path().join("o.redb")).unwrap();
        let seqs = o.append(&[event(), event()]).unwrap();
        let due = o.due(now_ms(), 10).unwrap();
        let later = now_ms() + 60_000;
        o.settle(&[
            Outcome {
                seq: due[0].seq,
                due_ms: due[0].due_ms.unwrap(),
                next: Next::Dead(due[0].event.clone()),
            },
            Outcome {
                seq: due[1].seq,
                due_ms: due[1].due_ms.unwrap(),
                next: Next::Retry {
                    due_ms: later,
                    event: due[1].event.clone(),
                },
            },
        ])
        .unwrap();
        assert!(o.due(now_ms(), 10).unwrap().is_empty());
        assert_eq!(o.next_due().unwrap(), Some(later));
        let states: Vec<_> = o.list().unwrap().iter().map(|s| s.state).collect();
        assert_eq!(states, vec![State::Pending, State::Dead]);
        assert_eq!(o.retry(None).unwrap(), 1);
        assert_eq!(o.due(now_ms(), 10).unwrap()[0].seq, seqs[0]);
        assert_eq!(o.drop_events(Some(&seqs)).unwrap(), 2);
        assert!(o.list().unwrap().is_empty());
        assert_eq!(
            o.append(&[event()]).unwrap(),
            vec![3],
            "sequence numbers are not reused"
        );
    }

    #[test]
    fn a_second_opener_is_told_to_stop_hookgate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.redb");
        let _held = Outbox::open(&path).unwrap();
        let err = Outbox::open(&path).err().unwrap().to_string();
        assert!(err.contains("stop hookgate first"), "{err}");
    }

    /// A file backend whose writes fail while `fail` is set, as on a full disk.
    #[derive(Debug)]
    struct Faulty {
        inner: redb::backends::FileBackend,
        fail: std::sync::Arc<AtomicBool>,
    }

    impl Faulty {
        fn check(&self) -> std::io::Result<()> {
            match self.fail.load(Ordering::SeqCst) {
                true => Err(std::io::Error::from_raw_os_error(libc::ENOSPC)),
                false => Ok(()),
            }
        }
    }

    use std::ops::Bound;
    impl redb::StorageBackend for Faulty {
        fn len(&self) -> std::io::Result<u64> {
            self.inner.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
            self.inner.read(offset, out)
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.check()?;
            self.inner.set_len(len)
        }
        fn sync_data(&self) -> std::io::Result<()> {
            self.check()?;
            self.inner.sync_data()
        }
        fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
            self.check()?;
            self.inner.write(offset, data)
        }
        fn close(&self) -> std::io::Result<()> {
            self.inner.close()
        }
        fn try_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, redb::BackendError> {
            self.inner.try_lock_range(s, e)
        }
        fn try_lock_shared_range(
            &self,
            s: Bound<u64>,
            e: Bound<u64>,
        ) -> Result<bool, redb::BackendError> {
            self.inner.try_lock_shared_range(s, e)
        }
        fn lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), redb::BackendError> {
            self.inner.lock_range(s, e)
        }
        fn lock_shared_range(
            &self,
            s: Bound<u64>,
            e: Bound<u64>,
        ) -> Result<(), redb::BackendError> {
            self.inner.lock_shared_range(s, e)
        }
        fn unlock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), redb::BackendError> {
            self.inner.unlock_range(s, e)
        }
        fn query_lock_range(
            &self,
            s: Bound<u64>,
            e: Bound<u64>,
        ) -> Result<bool, redb::BackendError> {
            self.inner.query_lock_range(s, e)
        }
    }

    /// An outbox over [`Faulty`]; the flag makes its writes fail.
    fn faulty(path: &Path) -> (std::sync::Arc<Outbox>, std::sync::Arc<AtomicBool>) {
        let fail = std::sync::Arc::new(AtomicBool::new(false));
        let flag = fail.clone();
        let opener: Opener = Box::new(move |p| {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(p)?;
            Database::builder().create_with_backend(Faulty {
                inner: redb::backends::FileBackend::new(file)?,
                fail: flag.clone(),
            })
        });
        let o = Outbox::with_opener(path, 0, opener);
        o.ensure_open().unwrap();
        (std::sync::Arc::new(o), fail)
    }

    #[test]
    fn after_a_failed_write_the_file_is_reopened_and_writes_work_again() {
        let dir = tempfile::tempdir().unwrap();
        let (o, fail) = faulty(&dir.path().join("o.redb"));
        let kept = event();
        o.append(std::slice::from_ref(&kept)).unwrap();
        fail.store(true, Ordering::SeqCst);
        let err = o.append(&[event()]).unwrap_err();
        assert!(
            format!("{err:#}").contains("again after reopening"),
            "{err:#}"
        );
        assert!(o.is_broken());
        assert!(o.writable().is_err(), "not writable after a failed write");
        assert!(o
            .metrics()
            .contains("hookgate_outbox_write_failures_total 2"));
        assert!(o.metrics().contains("hookgate_outbox_writable 0"));
        assert!(!o.readiness().unwrap().0, "/readyz: not ready");
        // The disk has room again: the next write reopens the file (redb refuses every
        // operation on it after an I/O error) and succeeds, without a restart.
        fail.store(false, Ordering::SeqCst);
        let later = event();
        o.append(std::slice::from_ref(&later)).unwrap();
        assert!(!o.is_broken());
        assert!(o.readiness().unwrap().0, "/readyz: ready again");
        let ids: Vec<_> = o.list().unwrap().into_iter().map(|s| s.event.id).collect();
        assert_eq!(
            ids,
            vec![kept.id, later.id],
            "the failed event is not stored"
        );
        assert!(o.metrics().contains("hookgate_outbox_reopens_total"));
    }

    #[test]
    fn recovery_reopens_a_broken_file_once_the_disk_works_again() {
        let dir = tempfile::tempdir().unwrap();
        let (o, fail) = faulty(&dir.path().join("o.redb"));
        fail.store(true, Ordering::SeqCst);
        assert!(o.append(&[event()]).is_err());
        assert!(o.recover().is_err(), "still failing");
        fail.store(false, Ordering::SeqCst);
        // Recovery is rate-limited; the dispatcher calls it about once a second.
        common_wait(|| o.recover().is_ok());
        assert!(!o.is_broken());
        assert!(o.due(now_ms(), 10).unwrap().is_empty());
    }

    fn common_wait(mut ok: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !ok() {
            assert!(std::time::Instant::now() < deadline, "never became true");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failed_group_commit_answers_every_waiter_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (o, fail) = faulty(&dir.path().join("o.redb"));
        fail.store(true, Ordering::SeqCst);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let (o, e) = (o.clone(), event());
            tasks.spawn(async move { o.enqueue(e).await });
        }
        let all = async {
            let mut errors = 0;
            while let Some(r) = tasks.join_next().await {
                assert!(r.unwrap().is_err(), "nothing is stored on a failing disk");
                errors += 1;
            }
            errors
        };
        let errors = tokio::time::timeout(Duration::from_secs(30), all)
            .await
            .expect("every waiter is answered");
        assert_eq!(errors, 50);
        assert!(o.metrics().contains("hookgate_outbox_unrecorded_total 50"));
        fail.store(false, Ordering::SeqCst);
        assert!(
            o.enqueue(event()).await.is_ok(),
            "and the next one is stored"
        );
    }

    #[tokio::test]
    async fn preflight_refuses_below_the_free_space_reserve() {
        let dir = tempfile::tempdir().unwrap();
        let o = std::sync::Arc::new(Outbox::closed(&OutboxConfig {
            path: dir.path().join("o.redb"),
            min_free_mb: u64::MAX >> 21,
            ..OutboxConfig::default()
        }));
        assert!(o.readiness().is_none(), "not part of /readyz until opened");
        assert_eq!(o.metrics(), "");
        o.ensure_open().unwrap();
        let refused = o.preflight().await.unwrap_err();
        assert!(refused.0.contains("outbox.min_free_mb"), "{refused}");
        assert!(o.metrics().contains("hookgate_outbox_refused_total 1"));
        assert!(!o.is_broken(), "a low disk does not break the file");
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let c = OutboxConfig {
            retry_base_ms: 100,
            retry_max_ms: 1000,
            ..OutboxConfig::default()
        };
        for (attempts, full) in [(1, 100), (2, 200), (3, 400), (10, 1000)] {
            let d = c.backoff(attempts).as_millis() as u64;
            assert!(d >= full / 2 && d <= full, "{attempts}: {d}");
        }
    }
}
