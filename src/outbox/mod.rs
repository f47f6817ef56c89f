//! The outbox: a durable queue of post-events (post-user-registration, post-change-password) in one
//! embedded ACID file (redb), and the [`dispatch::Dispatcher`] that delivers them to hooks.
//!
//! Two backends behind one [`Outbox`]: the redb file described here (`[outbox] backend = "redb"`,
//! the default: one node), and a Redis stream shared by replicas (`backend = "redis"`,
//! `redis.rs`: its module doc says how it keeps the same promises). The points, the management
//! API and the CLI call the same methods ([`Outbox::preflight`], [`Outbox::enqueue`],
//! [`Outbox::list`], ...) and never learn which one runs; each public method hands over to
//! the Redis backend when there is one.
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
//!
//! # Files
//! `event.rs` what is stored; `store.rs` the transactions (open, reopen, append, due, settle);
//! `commit.rs` group commit; `dispatch.rs` the dispatcher; `ops.rs` list/retry/drop; `health.rs`
//! whether an event can be stored now, and its `/readyz` and `/metrics` parts. Here: the
//! [`Outbox`] itself, its settings and its schema.

mod commit;
pub mod dispatch;
mod event;
mod health;
mod ops;
pub mod redis;
mod store;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::RwLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, DatabaseError, TableDefinition};

use self::redis::RedisOutbox;
use crate::config::OutboxConfig;
use crate::metrics::metric_line;
use commit::Queue;
pub use event::{Event, Next, Outcome, State, Stored};
use health::Health;
pub use health::Unwritable;

const PENDING: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("pending");
const DEAD: TableDefinition<u64, &[u8]> = TableDefinition::new("dead");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

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
    /// The Redis backend, when `[outbox] backend = "redis"`: then the file above is never opened.
    redis: Option<RedisOutbox>,
}

/// Counts a dispatcher batch as under way while it lives.
pub struct Busy<'a>(&'a AtomicUsize);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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
        let mut o = Outbox::with_opener(
            &config.path,
            config.min_free_mb.saturating_mul(1 << 20),
            Box::new(|p| Database::create(p)),
        );
        if config.backend == crate::config::outbox::Backend::Redis {
            o.redis = Some(RedisOutbox::new(config));
        }
        o
    }

    /// The Redis backend, when that is the one configured.
    pub fn redis(&self) -> Option<&RedisOutbox> {
        self.redis.as_ref()
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
            redis: None,
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
        if let Some(r) = &self.redis {
            r.connect()?;
            self.health.wanted.store(true, Ordering::Release);
            self.opened.send_replace(true);
            return Ok(());
        }
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

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Can an event be stored now, as far as is known without storing one?
    pub fn writable(&self) -> Result<(), Unwritable> {
        if let Some(r) = &self.redis {
            return r.writable();
        }
        self.health.check(&self.path, self.min_free)
    }

    /// Writes that failed since start (see `hookgate_outbox_write_failures_total`).
    pub fn write_failures(&self) -> u64 {
        if let Some(r) = &self.redis {
            return r.write_failures();
        }
        self.health.write_failures.load(Ordering::Relaxed)
    }

    /// The last write failed (the file needs a reopen); a low disk alone does not break it.
    pub fn is_broken(&self) -> bool {
        if let Some(r) = &self.redis {
            return self.is_open() && r.writable().is_err();
        }
        self.is_open() && !self.health.writable.load(Ordering::Acquire)
    }

    /// Is a recovery attempt due (the file is broken and none was tried lately)?
    fn recovery_due(&self) -> bool {
        if self.redis.is_some() {
            return false;
        }
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
        if let Some(r) = &self.redis {
            return r.preflight().await;
        }
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

    /// `/readyz`'s `outbox` object, and whether an event can be stored; `None` while no route
    /// needs the outbox (it was never opened).
    pub fn readiness(&self) -> Option<(bool, serde_json::Value)> {
        let wanted = self.health.wanted.load(Ordering::Acquire);
        if let Some(r) = &self.redis {
            return wanted.then(|| r.readiness());
        }
        wanted.then(|| self.health.detail(&self.path, self.min_free))
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
        if let Some(r) = &self.redis {
            return r.metrics();
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

    /// Wake the dispatcher (an event was appended).
    pub(crate) async fn appended(&self) {
        self.notify.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Trigger;
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
