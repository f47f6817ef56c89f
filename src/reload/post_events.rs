//! Running a post-event's hooks with the generation in force: what the outbox dispatcher is
//! handed ([`crate::outbox::dispatch::PostEventRunner`]), so that the outbox never names hooks or
//! snapshots.
//!
//! Owns: choosing an event's hooks from the [`Live`] snapshot in force when it runs, and the
//! arguments each gets on top of what the event stored (`context.webtask`, `context.event_id`).
//! Must not: schedule, retry or store events (the outbox does), or build a point's arguments (the
//! point that emitted the event did).

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use serde_json::Value;

use super::Live;
use crate::engine::Engine;
use crate::outbox::dispatch::PostEventRunner;
use crate::outbox::Event;

/// The hooks of the generation in force, run on the engine.
pub struct LiveHooks {
    /// The hooks in force when an event runs (hot reload may have replaced those of its request).
    pub live: Arc<ArcSwap<Live>>,
    pub engine: Engine,
}

#[async_trait]
impl PostEventRunner for LiveHooks {
    async fn run(&self, event: &mut Event) -> Vec<String> {
        let generation = self.live.load().generation.clone();
        let hooks = generation.hooks_for(
            event.trigger,
            event.client_id.as_deref(),
            Some(&event.route),
        );
        let mut failures = Vec::new();
        if hooks.is_empty() {
            // It was queued because hooks of its trigger were in force for its route and
            // client; none is now (deleted or disabled since): fail the attempt, so it is retried
            // (the hook may come back) and ends as a dead letter with this reason, never
            // "delivered" without any hook having run.
            failures.push(format!(
                "no {} hook is in force for route {} and this client: the hooks it was queued for were deleted or disabled",
                event.trigger, event.route
            ));
        }
        for hook in &hooks {
            if event.done_hooks.contains(&hook.name) {
                continue;
            }
            let mut args = event.args.clone();
            if let Some(Value::Object(context)) = args.last_mut() {
                context.insert("webtask".into(), hook.webtask());
                context.insert("event_id".into(), Value::String(event.id.clone()));
            }
            // Patiently: a burst of events must not fail attempts on the request path's queue
            // deadline.
            match self.engine.call_patiently(hook, args, &event.id).await {
                Ok(_) => event.done_hooks.push(hook.name.clone()),
                Err(e) => failures.push(format!("{}: {e}", hook.name)),
            }
        }
        failures
    }
}
