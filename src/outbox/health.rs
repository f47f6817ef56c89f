//! The outbox's health: can an event be stored right now? What `/readyz` reports, what
//! `/metrics` counts, and the pre-flight a route runs before the upstream changes anything.
//!
//! Owns: the counters and the last error of the outbox's writes, and the free-space reserve.
//! Must not: touch the file (`super::Outbox` does and reports here).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::metrics::metric_line;

/// Why an event cannot be stored now: said in the log, and in `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwritable(pub String);

impl std::fmt::Display for Unwritable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Default)]
pub(super) struct Health {
    /// The process needs the file: it was opened once (at start, or by a reload).
    pub wanted: AtomicBool,
    /// The last write (or the last reopen and probe) succeeded.
    pub writable: AtomicBool,
    pub write_failures: AtomicU64,
    pub reopens: AtomicU64,
    /// Requests refused before the upstream was called, because their event could not be stored.
    pub refused: AtomicU64,
    /// Events not stored after the upstream had answered 2xx (their requests failed; logged).
    pub unrecorded: AtomicU64,
    /// The last failure: when, what.
    pub last_error: Mutex<Option<(SystemTime, String)>>,
    /// When the last recovery (reopen and probe) was tried, ms since the epoch.
    pub last_recovery_ms: AtomicU64,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Health {
    pub fn failed(&self, error: String) {
        // Said once when it breaks (the recovery that follows fails quietly until it works).
        if self.writable.swap(false, Ordering::AcqRel) {
            tracing::error!(
                error,
                "the outbox cannot be written: requests with post hooks are refused until it can \
                 (it is reopened about once a second)"
            );
        }
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((SystemTime::now(), error));
    }

    pub fn succeeded(&self) {
        if !self.writable.swap(true, Ordering::AcqRel) && self.wanted.load(Ordering::Acquire) {
            tracing::info!("the outbox is writable again");
        }
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(_, e)| e.clone())
    }

    /// Can an event be stored now, as far as is known without writing one: the last write
    /// succeeded and the disk keeps `min_free` bytes free (a full disk fails a write, and redb
    /// then refuses every later one until the file is reopened).
    pub fn check(&self, path: &Path, min_free: u64) -> Result<(), Unwritable> {
        if !self.writable.load(Ordering::Acquire) {
            let why = self
                .last_error()
                .unwrap_or_else(|| "the outbox is not open".into());
            return Err(Unwritable(format!("the last outbox write failed: {why}")));
        }
        if min_free > 0 {
            if let Some(free) = free_bytes(path) {
                if free < min_free {
                    return Err(Unwritable(format!(
                        "{free} bytes free on the outbox's disk, below the reserve of {min_free} \
                         (outbox.min_free_mb)"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The `outbox` object of `/readyz`.
    pub fn detail(&self, path: &Path, min_free: u64) -> (bool, serde_json::Value) {
        let check = self.check(path, min_free);
        let last = self
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(at, e)| json!({ "at_unix": unix(*at), "error": e }));
        let body = json!({
            "path": path.display().to_string(),
            "writable": check.is_ok(),
            "problem": check.as_ref().err().map(|e| e.0.clone()),
            "free_bytes": free_bytes(path),
            "min_free_bytes": min_free,
            "write_failures": self.write_failures.load(Ordering::Relaxed),
            "refused": self.refused.load(Ordering::Relaxed),
            "unrecorded": self.unrecorded.load(Ordering::Relaxed),
            "last_error": last,
        });
        (check.is_ok(), body)
    }

    pub fn metrics(&self, out: &mut String, path: &Path, min_free: u64) {
        metric_line(
            out,
            "hookgate_outbox_writable",
            "gauge",
            "1 while an event can be stored (the last write succeeded, the disk keeps its reserve).",
            self.check(path, min_free).is_ok() as u64,
        );
        if let Some(free) = free_bytes(path) {
            metric_line(
                out,
                "hookgate_outbox_free_bytes",
                "gauge",
                "Bytes free on the outbox's disk.",
                free,
            );
        }
        for (name, help, counter) in [
            (
                "hookgate_outbox_write_failures_total",
                "Outbox writes that failed (a failure reopens the file and tries once more; that counts again if it fails).",
                &self.write_failures,
            ),
            (
                "hookgate_outbox_reopens_total",
                "Times the outbox file was reopened after a failure.",
                &self.reopens,
            ),
            (
                "hookgate_outbox_refused_total",
                "Requests refused (503) before the upstream was called: their event could not be stored.",
                &self.refused,
            ),
            (
                "hookgate_outbox_unrecorded_total",
                "Requests the upstream accepted whose event could not be stored (answered 500, logged for replay).",
                &self.unrecorded,
            ),
        ] {
            metric_line(out, name, "counter", help, counter.load(Ordering::Relaxed));
        }
    }
}

/// Bytes an unprivileged writer may still use on the file system holding `path` (its folder
/// when the file does not exist yet). `None` when it cannot be told.
pub fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let probe = if path.exists() {
        path
    } else {
        path.parent().filter(|p| !p.as_os_str().is_empty())?
    };
    let c = std::ffi::CString::new(probe.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `stat` a valid, writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}
