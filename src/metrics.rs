//! The Prometheus text writer: one metric at a time, in the text exposition format that the admin
//! listener's `/metrics` serves (`text/plain; version=0.0.4`).
//!
//! Owns: the format of a metric's lines (`# HELP`, `# TYPE`, the sample). Must not: know which
//! metrics exist or read any counter (each module writes its own, through here), or import
//! anything from the crate: it sits below everything that counts.

/// One metric in Prometheus' text exposition format, appended to `out`.
pub fn metric_line(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    out.push_str(&format!(
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
    ));
}
