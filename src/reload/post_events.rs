//! Running a post-event's hooks with the generation in force: what the outbox dispatcher is
//! handed ([`crate::outbox::dispatch::PostEventRunner`]), so that the outbox never names hooks or
//! snapshots.
//!
//! Owns: choosing an event's hooks from the [`Live`] snapshot in force when it runs, the
//! arguments each gets on top of what the event stored (`context.webtask`, `context.event_id`),
//! and each call's run record (named by the event id, with the event's route and client) and
//! metrics.
//! Must not: schedule, retry or store events (the outbox does), or build a point's arguments (the
//! point that emitted the event did).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use serde_json::Value;

use super::Live;
use crate::engine::Engine;
use crate::outbox::dispatch::PostEventRunner;
use crate::outbox::Event;
use crate::points::denied_by_contract;
use crate::runs::{Outcome, RunStart, Runs};

/// The hooks of the generation in force, run on the engine.
pub struct LiveHooks {
    /// The hooks in force when an event runs (hot reload may have replaced those of its request).
    pub live: Arc<ArcSwap<Live>>,
    pub engine: Engine,
    /// Where each call's run record goes.
    pub runs: Runs,
}

#[async_trait]
impl PostEventRunner for LiveHooks {
    async fn run(&self, event: &mut Event) -> Vec<String> {
        let (generation, number) = {
            let live = self.live.load();
            (live.generation.clone(), live.number)
        };
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
            let report = if self.runs.enabled() {
                self.runs.reporter(RunStart {
                    hook_id: hook.id.clone(),
                    kind: hook.kind.as_str(),
                    hook: hook.name.clone(),
                    point: hook.trigger,
                    route: Some(event.route.clone()),
                    request_id: None,
                    event_id: Some(event.id.clone()),
                    attempt: Some(event.attempts + 1),
                    client_id: event.client_id.clone(),
                    generation: number,
                    at: SystemTime::now(),
                    denies: denied_by_contract,
                })
            } else {
                None
            };
            let started = Instant::now();
            let result = self
                .engine
                .call_patiently_with_report(hook, args, &event.id, report)
                .await;
            hook.stats.observe(
                Outcome::of(&result, |f| denied_by_contract(hook.trigger, f)),
                started.elapsed(),
            );
            match result {
                Ok(_) => event.done_hooks.push(hook.name.clone()),
                Err(e) => failures.push(format!("{}: {e}", hook.name)),
            }
        }
        failures
    }
}
