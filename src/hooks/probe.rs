//! The load-time probe of a generation's hooks: which export each trigger's hooks must have,
//! handed with their scripts to the engine's evaluator ([`crate::engine::probe`]), which runs each
//! module once in a scratch runtime and words the problems.
//!
//! Owns: the trigger → required export table. Must not touch: running JS (the engine does) or
//! the generation (its caller, `Generation::load`, turns problems into a rejected generation).

use std::sync::Arc;

use crate::engine::probe::Shape;
use crate::engine::Script;

use super::Hook;
use crate::config::{HooksConfig, Trigger};

/// What a hook of `trigger` must export. Auth0 Actions (not accepted yet) will map their
/// triggers to a shape of their own here.
fn expected(_trigger: Trigger) -> Shape {
    Shape::Function
}

/// Evaluate every hook's module; one problem line per hook that cannot work
/// (`file:line:col: ...` where the failure has a place). Blocks until done.
pub fn probe(cfg: &HooksConfig, hooks: &[Arc<Hook>]) -> Vec<String> {
    let scripts: Vec<_> = hooks
        .iter()
        .map(|h| (Arc::<Script>::clone(h), expected(h.trigger)))
        .collect();
    crate::engine::probe::probe(cfg, &scripts)
}
