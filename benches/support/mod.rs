//! What the engine benchmarks share: the credentials-exchange arguments every measured call gets,
//! and the process's resident memory (for memory-per-worker figures).

use serde_json::{json, Value};

/// A client, two scopes, an audience and a context, as credentials-exchange receives them.
pub fn args() -> Vec<Value> {
    vec![
        json!({ "id": "abc", "name": "client", "tenant": "acme", "metadata": { "tier": "gold" } }),
        json!(["read:users", "write:users"]),
        json!("https://api.example.com"),
        json!({ "webtask": { "secrets": {} }, "body": { "grant_type": "client_credentials" } }),
    ]
}

/// VmRSS of this process, KiB (0 where /proc is missing).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
