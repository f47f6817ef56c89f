//! The dispatcher: a pingora background service that runs the hooks of due outbox events.
//!
//! Loop: take up to `batch` due events, run each event's hooks (events concurrently, one event's
//! hooks in their configured order), then record every result in one transaction: delivered
//! events are deleted, failed ones rescheduled with backoff, exhausted ones become dead letters.
//! Results are recorded after the hooks ran, so a crash in between runs them again: delivery is
//! at least once, and `context.event_id` lets a hook recognise a repeat.
//!
//! Hooks are taken from the generation in force when the event runs, so a fixed hook file
//! (or its secrets) applies to events already waiting. Which hooks those are, and running them,
//! is not the outbox's business: the assembler hands the dispatcher a [`PostEventRunner`]
//! (implemented above the outbox, by `reload::LiveHooks`); the dispatcher keeps the
//! schedule, the retry policy and the dead letters.
//!
//! The service always runs: it waits until the outbox is opened (at start, or by the reload that
//! adds the first signup or change-password route). While the file is broken (a failed write),
//! it runs no hooks and tries [`Outbox::recover`] about once a second instead, so hookgate
//! becomes ready again by itself once the disk has room, even with no traffic.
//!
//! With the Redis backend the loop is `redis.rs`'s (XREADGROUP, XAUTOCLAIM); [`deliver`], the
//! retry policy, is shared.
//!
//! Owns: the dispatch loop, its schedule and the recording of results. Must not: know how a
//! post-event hook is found or run (the [`PostEventRunner`] does).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use super::{now_ms, Event, Next, Outbox, Outcome, Stored};
use crate::config::OutboxConfig;

/// Longest sleep without looking at the file (a safety net; appends wake the loop at once).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// How long the dispatcher waits after being woken, to batch what arrives meanwhile.
const LINGER: Duration = Duration::from_millis(20);

/// Runs an event's hooks. Supplied by whoever assembles the dispatcher: the hooks, and which of
/// them are in force, live above the outbox.
#[async_trait]
pub trait PostEventRunner: Send + Sync {
    /// Run the hooks `event` still needs (those of its trigger, client and route in force now,
    /// in their configured order, skipping the ones named in `event.done_hooks`), and add each
    /// that succeeds to `event.done_hooks`. Returns one `"<hook>: <error>"` per hook that failed;
    /// none means the event is delivered.
    async fn run(&self, event: &mut Event) -> Vec<String>;
}

pub struct Dispatcher {
    pub outbox: Arc<Outbox>,
    /// The hooks in force when an event runs (hot reload may have replaced those of its request).
    pub hooks: Arc<dyn PostEventRunner>,
    pub config: OutboxConfig,
}

#[async_trait]
impl BackgroundService for Dispatcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = self.outbox.wait_open() => {},
        }
        if let Some(r) = self.outbox.redis() {
            return r.dispatch(&self.outbox, self.hooks.clone(), shutdown).await;
        }
        tracing::info!(outbox = %self.outbox.path().display(), "outbox dispatcher started");
        loop {
            if *shutdown.borrow() {
                return;
            }
            if self.outbox.is_broken() {
                let outbox = self.outbox.clone();
                let _ = tokio::task::spawn_blocking(move || outbox.recover()).await;
                if self.outbox.is_broken() {
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        _ = tokio::time::sleep(IDLE_POLL) => {},
                    }
                    continue;
                }
            }
            let failures = self.outbox.write_failures();
            let worked = match self.run_once().await {
                Ok(0) => {
                    // Out of work: make the results so far durable (one fsync, only if some
                    // are not), so a restart or crash from here runs no delivered hook again.
                    let outbox = self.outbox.clone();
                    let synced = tokio::task::spawn_blocking(move || outbox.sync()).await;
                    if let Err(e) = synced.map_err(anyhow::Error::from).and_then(|r| r) {
                        tracing::warn!(error = %format!("{e:#}"), "cannot sync the outbox");
                    }
                    false
                }
                Ok(_) => true,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "outbox dispatch failed; retrying");
                    tokio::time::sleep(IDLE_POLL).await;
                    false
                }
            };
            if self.outbox.write_failures() != failures {
                // A write failed (even if its retry after a reopen worked): the disk is in
                // trouble, and a reopen drops the results not yet fsync'd, so the same events
                // come back due. Going straight on would run their hooks again in a tight loop.
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(IDLE_POLL) => {},
                }
                continue;
            }
            if worked {
                continue;
            }
            let wait = match self.outbox.next_due() {
                Ok(Some(due)) => Duration::from_millis(due.saturating_sub(now_ms())).min(IDLE_POLL),
                _ => IDLE_POLL,
            };
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = self.outbox.appended() => {
                    // Let a few more signups land so one batch (and one commit) carries them:
                    // settling each event on its own would compete with the signups' own commits
                    // for redb's single writer and for the CPU.
                    tokio::time::sleep(LINGER).await;
                },
                _ = tokio::time::sleep(wait) => {},
            }
        }
    }
}

impl Dispatcher {
    /// Run one batch of due events; returns how many were handled.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        // A graceful stop waits for the batch: its results are recorded before the process ends.
        let _busy = self.outbox.busy();
        let outbox = self.outbox.clone();
        let batch = self.config.batch.max(1);
        let due = tokio::task::spawn_blocking(move || outbox.due(now_ms(), batch)).await??;
        if due.is_empty() {
            return Ok(0);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for stored in due {
            let hooks = self.hooks.clone();
            let config = self.config.clone();
            tasks.spawn(async move { deliver(&*hooks, &config, stored).await });
        }
        let mut outcomes = Vec::new();
        while let Some(done) = tasks.join_next().await {
            outcomes.push(done?);
        }
        let n = outcomes.len();
        let outbox = self.outbox.clone();
        tokio::task::spawn_blocking(move || outbox.settle(&outcomes)).await??;
        Ok(n)
    }
}

/// Run the hooks an event still needs and decide what becomes of it.
pub(super) async fn deliver(
    hooks: &dyn PostEventRunner,
    config: &OutboxConfig,
    stored: Stored,
) -> Outcome {
    let Stored {
        seq, due_ms, event, ..
    } = stored;
    let due_ms = due_ms.unwrap_or(0);
    let mut event = event;
    let failures = hooks.run(&mut event).await;
    if failures.is_empty() {
        tracing::debug!(event_id = %event.id, trigger = %event.trigger, "event delivered");
        return Outcome {
            seq,
            due_ms,
            next: Next::Delivered,
        };
    }
    event.attempts += 1;
    event.last_error = Some(failures.join("; "));
    if event.attempts >= config.max_attempts {
        tracing::error!(
            event_id = %event.id, trigger = %event.trigger, seq, attempts = event.attempts,
            error = event.last_error.as_deref().unwrap_or(""),
            "event is a dead letter: `hookgate outbox retry {seq}` runs it again once the hook is fixed"
        );
        return Outcome {
            seq,
            due_ms,
            next: Next::Dead(event),
        };
    }
    let wait = config.backoff(event.attempts);
    tracing::warn!(
        event_id = %event.id, trigger = %event.trigger, attempts = event.attempts,
        retry_in_ms = wait.as_millis() as u64,
        error = event.last_error.as_deref().unwrap_or(""),
        "post-event hook failed; will retry"
    );
    Outcome {
        seq,
        due_ms,
        next: Next::Retry {
            due_ms: now_ms() + wait.as_millis() as u64,
            event,
        },
    }
}
