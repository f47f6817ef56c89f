//! hookgate: run Auth0 Hooks unmodified in front of the identity server you already have.
pub mod engine;
pub mod hooks;
