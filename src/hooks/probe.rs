//! The load-time probe of a generation's hooks: which export each trigger's hooks must have,
//! handed with their scripts to the engine's evaluator ([`crate::engine::probe`]), which runs each
//! module once in a scratch runtime and words the problems.
//!
//! Owns: the trigger → required export table. Must not touch: running JS (the engine does) or
//! the generation (its caller, `Generation::load`, turns problems into a rejected generation).

use std::sync::Arc;

use crate::engine::probe::{Probed, Shape};
use crate::engine::Script;

use super::Hook;
use crate::config::{HooksConfig, Trigger};

/// What a hook of `trigger` must export: a Hook's function, or an Action's `onExecute<Trigger>`.
fn expected(trigger: Trigger) -> Shape {
    Shape::FunctionOrMember(super::actions::export_name(trigger))
}

/// Evaluate every hook's module: per hook, in order, whether it is a Hook (a function), an
/// Action (an `onExecute…` member), or the problem line of one that cannot work
/// (`file:line:col: ...` where the failure has a place). Blocks until done.
pub fn probe(cfg: &HooksConfig, hooks: &[Arc<Hook>]) -> Vec<Probed> {
    let scripts: Vec<_> = hooks
        .iter()
        .map(|h| (Arc::<Script>::clone(h), expected(h.trigger)))
        .collect();
    crate::engine::probe::probe(cfg, &scripts)
}
