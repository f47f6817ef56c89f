//! The Prometheus text writer: one metric at a time, in the text exposition format that the admin
//! listener's `/metrics` serves (`text/plain; version=0.0.4`), and the few lock-free counter
//! shapes that labelled metrics need (a latency [`Histogram`], counts by route and status:
//! [`ROUTE_REQUESTS`]).
//!
//! Owns: the format of a metric's lines (`# HELP`, `# TYPE`, samples, label escaping), the
//! histogram's buckets, and the per-route request counts (the proxy counts every answered
//! request here; route names come from the configuration and statuses are numbers, so the
//! label sets stay bounded). Must not: know the other metrics (each module keeps and writes its
//! own, through here), or import anything from the crate: it sits below everything that counts.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

/// One metric in Prometheus' text exposition format, appended to `out`.
pub fn metric_line(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    out.push_str(&format!(
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
    ));
}

/// The `# HELP` and `# TYPE` lines of a metric whose samples follow.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Upper bounds (seconds) of [`Histogram`]'s buckets: a hook answering in a millisecond up to
/// one running into a 20 s timeout.
pub const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A latency histogram: a count per bucket (not cumulative; summed when written), the sum and
/// the count. Atomics only: observing never takes a lock.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_ns
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The `_bucket`, `_sum` and `_count` samples of `name` with `labels` (`a="x",b="y"`,
    /// already escaped), cumulative as Prometheus reads them.
    pub fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (b, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Requests answered, by route and status: `hookgate_route_requests_total{route,status}`.
pub static ROUTE_REQUESTS: LazyLock<RouteRequests> = LazyLock::new(RouteRequests::default);

/// Counts by route name and status. A route seen before costs a read lock and two lookups;
/// only a new (route, status) pair takes the write lock.
#[derive(Debug, Default)]
pub struct RouteRequests {
    by_route: RwLock<HashMap<String, Arc<RouteCounts>>>,
}

#[derive(Debug, Default)]
struct RouteCounts {
    by_status: RwLock<Vec<(u16, AtomicU64)>>,
}

/// At most this many routes are counted (routes come from the configuration; the cap only
/// guards against a bug turning something else into a label).
const MAX_ROUTES: usize = 1024;

impl RouteRequests {
    /// Count one request of `route` (`-`: a request no route took) answered with `status` (0:
    /// none was written, the client left).
    pub fn count(&self, route: &str, status: u16) {
        let counts = {
            let map = self.by_route.read().unwrap_or_else(|e| e.into_inner());
            map.get(route).cloned()
        };
        let counts = match counts {
            Some(c) => c,
            None => {
                let mut map = self.by_route.write().unwrap_or_else(|e| e.into_inner());
                if map.len() >= MAX_ROUTES && !map.contains_key(route) {
                    return;
                }
                map.entry(route.to_owned()).or_default().clone()
            }
        };
        {
            let statuses = counts.by_status.read().unwrap_or_else(|e| e.into_inner());
            if let Some((_, n)) = statuses.iter().find(|(s, _)| *s == status) {
                n.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut statuses = counts.by_status.write().unwrap_or_else(|e| e.into_inner());
        match statuses.iter().find(|(s, _)| *s == status) {
            Some((_, n)) => {
                n.fetch_add(1, Ordering::Relaxed);
            }
            None => statuses.push((status, AtomicU64::new(1))),
        }
    }

    /// The family's lines (only the header while nothing was counted).
    pub fn write(&self, out: &mut String) {
        let name = "hookgate_route_requests_total";
        header(
            out,
            name,
            "counter",
            "Requests answered, by route (`-`: no route took it) and status (0: the client left before an answer).",
        );
        let map = self.by_route.read().unwrap_or_else(|e| e.into_inner());
        let mut routes: Vec<_> = map.iter().collect();
        routes.sort_by(|a, b| a.0.cmp(b.0));
        for (route, counts) in routes {
            let route = escape_label(route);
            let mut statuses: Vec<(u16, u64)> = counts
                .by_status
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(s, n)| (*s, n.load(Ordering::Relaxed)))
                .collect();
            statuses.sort_unstable();
            for (status, n) in statuses {
                let _ = writeln!(out, "{name}{{route=\"{route}\",status=\"{status}\"}} {n}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_count_everything() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(7));
        h.observe(Duration::from_secs(100));
        let mut out = String::new();
        h.write(&mut out, "x", "hook=\"a\"");
        assert!(
            out.contains("x_bucket{hook=\"a\",le=\"0.001\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{hook=\"a\",le=\"0.01\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("x_bucket{hook=\"a\",le=\"30\"} 2\n"), "{out}");
        assert!(
            out.contains("x_bucket{hook=\"a\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("x_count{hook=\"a\"} 3\n"), "{out}");
    }

    #[test]
    fn route_requests_are_counted_by_route_and_status_with_escaped_labels() {
        let r = RouteRequests::default();
        r.count("token", 200);
        r.count("token", 200);
        r.count("token", 400);
        r.count("we\"ird", 200);
        let mut out = String::new();
        r.write(&mut out);
        assert!(out.contains("hookgate_route_requests_total{route=\"token\",status=\"200\"} 2\n"));
        assert!(out.contains("hookgate_route_requests_total{route=\"token\",status=\"400\"} 1\n"));
        assert!(out.contains("route=\"we\\\"ird\""), "{out}");
    }
}
