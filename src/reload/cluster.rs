//! Cluster mode's health as `/readyz` shows it: whether this replica has read the shared store,
//! reaches it now, and applied what it holds. Written by the cluster layer, read by the admin listener.
//!
//! Owns: that state and its JSON. Must not: connect anywhere or apply changes (the cluster layer
//! does).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::json;

/// What the cluster layer reports.
#[derive(Default)]
pub struct ClusterHealth {
    /// The last exchange with Redis succeeded.
    connected: AtomicBool,
    /// The replica has read the shared snapshot once since it started (or seeded it).
    synced: AtomicBool,
    /// The cluster revision this replica's files hold.
    applied: AtomicU64,
    replica: Mutex<String>,
    error: Mutex<Option<String>>,
    /// Shared changes this replica refused or could not write
    /// (`hookgate_cluster_apply_failures_total`).
    apply_failures: AtomicU64,
    /// The last of them, until a snapshot applies whole.
    apply_error: Mutex<Option<String>>,
}

impl ClusterHealth {
    pub fn new(replica: &str) -> ClusterHealth {
        let h = ClusterHealth::default();
        *h.replica.lock().unwrap_or_else(|p| p.into_inner()) = replica.to_string();
        h
    }

    pub fn connected(&self) {
        self.connected.store(true, Ordering::Relaxed);
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub fn failed(&self, error: String) {
        self.connected.store(false, Ordering::Relaxed);
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    }

    /// A shared change was refused or could not be written (Redis itself answered).
    pub fn apply_failed(&self, error: String) {
        self.apply_failures.fetch_add(1, Ordering::Relaxed);
        *self.apply_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    }

    /// The shared snapshot applied whole.
    pub fn apply_ok(&self) {
        *self.apply_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub fn apply_failures(&self) -> u64 {
        self.apply_failures.load(Ordering::Relaxed)
    }

    pub fn synced(&self) {
        self.synced.store(true, Ordering::Relaxed);
    }

    pub fn set_applied(&self, revision: u64) {
        self.applied.store(revision, Ordering::Relaxed);
    }

    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Ready: the shared hooks were read once since start (or seeded). Losing Redis after that
    /// does not make the replica unready: it keeps serving its last generation (hook changes are
    /// refused meanwhile), and every replica going unready at once would leave a Service with no
    /// endpoints; the body says so as a `warning`. (The reload status adds: the revision read is
    /// the generation in force.)
    pub fn readiness(&self) -> (bool, serde_json::Value) {
        let connected = self.connected.load(Ordering::Relaxed);
        let synced = self.synced.load(Ordering::Relaxed);
        let error = self.error.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let apply_error = self
            .apply_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let replica = self
            .replica
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let warning = match (connected, synced) {
            (false, true) => Some("Redis is unreachable: this replica serves its last generation, refuses hook changes (503) and catches up when Redis is back"),
            (false, false) => Some("not ready: the shared hooks were never read (Redis unreachable since start)"),
            _ => None,
        };
        (
            synced,
            json!({
                "replica": replica,
                "redis_reachable": connected,
                "synced": synced,
                "revision": self.applied.load(Ordering::Relaxed),
                "error": error,
                "apply_failed": apply_error,
                "apply_failures": self.apply_failures(),
                "warning": warning,
            }),
        )
    }
}
