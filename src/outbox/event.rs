//! What the outbox stores and hands back: an [`Event`] (a trigger, its route and client, the hook
//! arguments), where it is ([`State`], [`Stored`]), and what the dispatcher decided for it
//! ([`Outcome`], [`Next`]).
//!
//! Owns: the event's fields, as they are written to the file (JSON). Must not: know a point's
//! arguments (the point that emits an event builds them) or how events are stored.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::now_ms;
use crate::config::Trigger;

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

impl Stored {
    /// A row of the pending table: its `(due, seq)` key and the event's JSON.
    pub(super) fn pending((due, seq): (u64, u64), json: &[u8]) -> serde_json::Result<Stored> {
        Ok(Stored {
            seq,
            state: State::Pending,
            due_ms: Some(due),
            event: serde_json::from_slice(json)?,
        })
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
