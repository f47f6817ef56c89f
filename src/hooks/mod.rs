//! Hook discovery and configuration: which hook files exist, their settings, and the loaded,
//! compiled [`Generation`] the proxy runs. Also the CLI helpers (`hookgate test`, `hookgate new`),
//! and one file per extensibility point (`credentials_exchange`, ...): each knows how to build its
//! hooks' arguments from an exchange, how to apply their result, and how their errors map to HTTP.
//!
//! Owns: discovery, starters and default payloads. The `[hooks]` configuration and the trigger
//! ids are the configuration model's (`crate::config`), re-exported here.
//! Must not touch: running JS (see [`crate::engine`]) or building a point's arguments from a
//! request (the point code does).

pub mod cli;
pub mod credentials_exchange;
mod generation;
pub mod post_change_password;
pub mod post_user_registration;
pub mod pre_user_registration;
pub mod send_phone_message;
mod trigger;

pub use crate::config::{
    EgressConfig, HookSettings, HooksConfig, OnError, RedirectTarget, SecretSource,
};
pub use generation::{Generation, Hook, LoadError};
pub use trigger::{Trigger, UnknownTrigger};
