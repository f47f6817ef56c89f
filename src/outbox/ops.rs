//! What an operator does with the file while hookgate is stopped (or, with the Redis backend,
//! with the shared stream from any replica) (`hookgate outbox
//! list|retry|drop`): list every event, make events due again, delete them.
//!
//! Owns: those three operations. Must not: run hooks or print anything (`cli/outbox.rs` prints).

use redb::{ReadableDatabase, ReadableTable};

use super::{now_ms, Outbox, State, Stored, DEAD, PENDING};

impl Outbox {
    /// Every event, pending first (by due time), then the dead letters.
    pub fn list(&self) -> anyhow::Result<Vec<Stored>> {
        if let Some(r) = &self.redis {
            return r.list();
        }
        self.with_db(|db| {
            let tx = db.begin_read()?;
            let mut out = Vec::new();
            for row in tx.open_table(PENDING)?.iter()? {
                let (k, v) = row?;
                out.push(Stored::pending(k.value(), v.value())?);
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
        if let Some(r) = &self.redis {
            return r.retry(seqs);
        }
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
        if let Some(r) = &self.redis {
            return r.drop_events(seqs);
        }
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
}
