#![allow(dead_code)]
//! Shared test harness: hookgate started as the real binary on ephemeral ports, in front of either
//! a small Rust upstream (exact protocol tests) or node-oidc-provider (end-to-end tests).

pub mod hookgate;
pub mod oidc;
pub mod redis;
pub mod upstream;

/// Poll `ok` until it holds, at most `limit`; panics naming `what` otherwise. For eventual
/// conditions (a delivery, a reload), never for timing.
pub fn wait_for(what: &str, limit: std::time::Duration, mut ok: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("timed out waiting for {what}");
}
