//! Hooks: which hook files exist, what each is set to do, and the loaded, compiled [`Generation`]
//! the points run. The layer between the points (which run a trigger's hooks for a request) and
//! the engine (which runs one hook's [`crate::engine::Script`]).
//!
//! Owns: each trigger's contract (`contract`: arguments, Runner payload, starter), discovery, secrets and compiling (`generation`), which export each trigger's hooks
//! must have at load (`probe`), and what a [`Hook`] adds to its script: trigger, targeting
//! (clients, routes), order, `on_error`, secrets. The `[hooks]` configuration and the trigger
//! ids are the configuration model's (`crate::config`).
//! Must not touch: running JS (the engine), requests or responses (the points), or swapping
//! generations (hot reload).

pub mod actions;
pub mod contract;
mod generation;
pub mod probe;
pub mod runner;

pub use actions::Kind;
pub use generation::{hook_id, Generation, Hook, LoadError};
