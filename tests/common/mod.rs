#![allow(dead_code)]
//! Shared test harness: hookgate started as the real binary on ephemeral ports, in front of either
//! a small Rust upstream (exact protocol tests) or node-oidc-provider (end-to-end tests).

pub mod hookgate;
pub mod oidc;
pub mod upstream;
