//! Per-hook metrics: calls by outcome and a latency histogram, for every hook ever loaded in this
//! process (`hookgate_hook_calls_total{hook,point,outcome}`,
//! `hookgate_hook_duration_seconds{hook,point}`).
//!
//! Owns: the registry of [`HookStats`], keyed by hook name (`<trigger>/<file stem>`, so the
//! counts of a hook go on across reloads and the label set is bounded by the hooks configured),
//! and writing their lines. Counting never takes a lock: a loaded hook holds its `Arc<HookStats>`.
//! Must not: decide an outcome (the caller classifies, see [`super::Outcome`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use super::Outcome;
use crate::config::Trigger;
use crate::metrics::{escape_label, header, Histogram};

/// One hook's counts.
#[derive(Debug)]
pub struct HookStats {
    /// `hook="...",point="..."`, escaped once.
    labels: String,
    calls: [AtomicU64; Outcome::ALL.len()],
    latency: Histogram,
}

impl HookStats {
    /// One call: how it ended and how long its caller waited for it (queue included).
    pub fn observe(&self, outcome: Outcome, waited: Duration) {
        self.calls[outcome as usize].fetch_add(1, Ordering::Relaxed);
        self.latency.observe(waited);
    }

    /// Calls that ended with `outcome` so far.
    pub fn calls(&self, outcome: Outcome) -> u64 {
        self.calls[outcome as usize].load(Ordering::Relaxed)
    }
}

static REGISTRY: LazyLock<Mutex<BTreeMap<String, Arc<HookStats>>>> =
    LazyLock::new(Default::default);

/// The stats of hook `name` of `point`, created at its first load.
pub fn stats(name: &str, point: Trigger) -> Arc<HookStats> {
    let mut map = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(name.to_owned())
        .or_insert_with(|| {
            Arc::new(HookStats {
                labels: format!("hook=\"{}\",point=\"{}\"", escape_label(name), point.id()),
                calls: Default::default(),
                latency: Histogram::default(),
            })
        })
        .clone()
}

/// The two families' lines (headers only while no hook was loaded).
pub fn write(out: &mut String) {
    let all: Vec<Arc<HookStats>> = REGISTRY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect();
    let name = "hookgate_hook_calls_total";
    header(
        out,
        name,
        "counter",
        "Hook calls by how they ended: ok, error (cb with an error, a throw), denied (an error class of the trigger's contract that refuses the request), timeout, crash, overloaded (never ran).",
    );
    for s in &all {
        for outcome in Outcome::ALL {
            let _ = writeln!(
                out,
                "{name}{{{},outcome=\"{}\"}} {}",
                s.labels,
                outcome.as_str(),
                s.calls(outcome)
            );
        }
    }
    let name = "hookgate_hook_duration_seconds";
    header(
        out,
        name,
        "histogram",
        "How long callers waited for a hook's answer (cb), queue included.",
    );
    for s in &all {
        s.latency.write(out, name, &s.labels);
    }
}
