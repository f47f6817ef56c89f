//! Group commit: events that arrive while a transaction is being written and fsync'd wait and
//! go together in the next one ([`Outbox::enqueue`]), so concurrent signups share fsyncs.
//!
//! Owns: the queue of waiting events and the one committer at a time. Must not: write to the
//! file other than through [`Outbox::append`].

use std::sync::atomic::Ordering;

use super::{Event, Outbox};

/// Events handed to [`Outbox::enqueue`] and not yet on disk, and whether a committer is at work.
#[derive(Default)]
pub(super) struct Queue {
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

impl Outbox {
    /// [`Outbox::append`] for async callers: returns once the event is on disk. The routes call it
    /// after the upstream's 2xx, so a failure here is counted as an unrecorded event.
    ///
    /// Group commit: events that arrive while a transaction is being written and fsync'd wait
    /// and go together in the next one, so concurrent signups share fsyncs instead of queueing
    /// one by one behind redb's single writer. Alone, an event is committed at once. A failed
    /// commit answers every waiter of its batch with the error.
    pub async fn enqueue(self: &std::sync::Arc<Self>, event: Event) -> anyhow::Result<u64> {
        if let Some(r) = &self.redis {
            let seq = r.enqueue(event).await?;
            self.notify.notify_one();
            return Ok(seq);
        }
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
}
