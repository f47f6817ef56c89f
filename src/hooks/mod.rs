//! Hook discovery and configuration: which hook files exist, their settings, and the loaded,
//! compiled [`Generation`] the proxy runs. Also the CLI helpers (`hookgate test`, `hookgate new`).
//! What each extensibility point does with a request lives in `src/points/`.
//!
//! Owns: the `[hooks]` configuration, triggers, discovery, starters and default payloads.
//! Must not touch: running JS (see [`crate::engine`]) or building a point's arguments from a
//! request (the point code does).

pub mod cli;
mod generation;
mod settings;
mod trigger;

pub use generation::{Generation, Hook, LoadError};
pub use settings::{
    EgressConfig, HookSettings, HooksConfig, OnError, RedirectTarget, SecretSource,
};
pub use trigger::{Trigger, UnknownTrigger};
