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
//!   `outbox list` names one event for good.
//!
//! # One process at a time
//! redb locks the file for the process that opens it. While hookgate runs, `hookgate outbox`
//! cannot open the file and says so; stop hookgate first (its pending events stay on disk).

pub mod dispatch;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::admin::metric_line;
use crate::hooks::Trigger;

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
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            path: PathBuf::from("hookgate-outbox.redb"),
            max_attempts: 10,
            retry_base_ms: 1000,
            retry_max_ms: 300_000,
            batch: 256,
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

/// The open outbox file.
pub struct Outbox {
    db: Database,
    path: PathBuf,
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
    /// Open (or create) the file. Fails with a message that says what to do when another
    /// process holds it.
    pub fn open(path: &Path) -> anyhow::Result<Outbox> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the outbox folder {}", dir.display()))?;
        }
        let db = match Database::create(path) {
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
        Ok(Outbox {
            db,
            path: path.to_path_buf(),
            notify: tokio::sync::Notify::new(),
            queue: std::sync::Mutex::new(Queue::default()),
            unsynced: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
            delivered: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Store events durably (one fsync'd transaction), due now. Blocking: call it from
    /// `spawn_blocking` or a thread of its own.
    pub fn append(&self, events: &[Event]) -> anyhow::Result<Vec<u64>> {
        let tx = self.db.begin_write()?;
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
        self.commit_durably(self.db.begin_write()?)?;
        Ok(true)
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

    /// [`Outbox::append`] for async callers: returns once the event is on disk.
    ///
    /// Group commit: events that arrive while a transaction is being written and fsync'd wait
    /// and go together in the next one, so concurrent signups share fsyncs instead of queueing
    /// one by one behind redb's single writer. Alone, an event is committed at once.
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
        match rx.await {
            Ok(Ok(seq)) => Ok(seq),
            Ok(Err(e)) => Err(anyhow::anyhow!(e)),
            Err(_) => anyhow::bail!("the outbox writer failed before storing the event"),
        }
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
        let tx = self.db.begin_read()?;
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
    }

    /// When the earliest pending event is due, if any.
    pub fn next_due(&self) -> anyhow::Result<Option<u64>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(PENDING)?;
        let first = table.first()?.map(|(k, _)| k.value().0);
        Ok(first)
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
        let mut tx = self.db.begin_write()?;
        let durable = outcomes.iter().any(|o| matches!(o.next, Next::Dead(_)));
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
                        pending.insert((*due_ms, o.seq), serde_json::to_vec(event)?.as_slice())?;
                    }
                    Next::Dead(event) => {
                        pending.remove(key)?;
                        dead.insert(o.seq, serde_json::to_vec(event)?.as_slice())?;
                    }
                }
            }
        }
        if durable {
            self.commit_durably(tx)?;
        } else {
            self.unsynced.store(true, Ordering::Release);
            tx.commit()?;
        }
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

    /// `/metrics` lines, in Prometheus' text format: what waits in the file now, and what the
    /// dispatcher did since start. While hookgate runs, `hookgate outbox list` cannot open the
    /// file, so these are how an operator sees dead letters pile up (alert on
    /// `hookgate_outbox_dead > 0`).
    pub fn metrics(&self) -> String {
        let mut out = String::new();
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
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot count the outbox"),
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
        out
    }

    /// Pending events and dead letters now (both O(1) in redb).
    fn counts(&self) -> anyhow::Result<(u64, u64)> {
        use redb::ReadableTableMetadata;
        let tx = self.db.begin_read()?;
        Ok((tx.open_table(PENDING)?.len()?, tx.open_table(DEAD)?.len()?))
    }

    /// Every event, pending first (by due time), then the dead letters.
    pub fn list(&self) -> anyhow::Result<Vec<Stored>> {
        let tx = self.db.begin_read()?;
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
        let tx = self.db.begin_write()?;
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
        tx.commit()?;
        Ok(chosen.len())
    }

    /// Delete events for good. `None` = every dead letter. Returns how many were deleted.
    pub fn drop_events(&self, seqs: Option<&[u64]>) -> anyhow::Result<usize> {
        let chosen = self.named(seqs)?;
        let tx = self.db.begin_write()?;
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
        tx.commit()?;
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
