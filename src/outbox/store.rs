//! The file: opening it (and reopening it after a failure), reads and writes with the retry
//! that a failed write gets, storing events, handing out the due ones and recording the
//! dispatcher's results. The schema is in the module doc of [`super`].
//!
//! Owns: every transaction on the redb file but the operator's (`ops.rs`). Must not: decide what
//! becomes of an event (the dispatcher does) or keep the health counters' meaning (`health.rs`).

use std::sync::atomic::Ordering;

use anyhow::Context as _;
use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable};

use super::{now_ms, Event, Next, Outbox, Outcome, Stored, DEAD, META, PENDING};

impl Outbox {
    pub(super) fn open_db(&self) -> anyhow::Result<Database> {
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
    pub(super) fn reopen(&self, epoch: u64) -> anyhow::Result<()> {
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
    pub(super) fn with_db<T>(
        &self,
        f: impl FnOnce(&Database) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
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
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&Database) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.with_db(f)
            .inspect_err(|e| self.health.failed(format!("{e:#}")))
    }

    /// A write transaction: on failure the file is reopened and `f` runs once more. Both
    /// failures count; the second marks the outbox unwritable until a write or a recovery works.
    pub(super) fn write<T>(&self, f: impl Fn(&Database) -> anyhow::Result<T>) -> anyhow::Result<T> {
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
    pub(super) fn commit_durably(&self, tx: redb::WriteTransaction) -> anyhow::Result<()> {
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
        if self.redis.is_some() {
            // Redis' own persistence makes results durable.
            return Ok(false);
        }
        if !self.unsynced.load(Ordering::Acquire) {
            return Ok(false);
        }
        self.write(|db| self.commit_durably(db.begin_write()?))?;
        Ok(true)
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
                out.push(Stored::pending(k.value(), v.value())?);
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

    /// Pending events and dead letters now (both O(1) in redb). Does not wait for a reopen
    /// under way: the admin listener must answer.
    pub(super) fn counts(&self) -> anyhow::Result<(u64, u64)> {
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
}
