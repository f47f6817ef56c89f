//! What one call did besides its result: its console lines, its outbound requests, its CPU time
//! and how long it took — a [`CallReport`], handed to the [`Reporter`] its caller gave the engine
//! once the call is over, event loop included (a hook's work after `cb`, a fire-and-forget
//! notification, is part of its run).
//!
//! Owns: the report's shape, the [`Reporter`] (called exactly once per call, even for a call no
//! worker ever started), the per-call capture a worker keeps while a report is asked for, and
//! redacting a URL before it is kept ([`redact_url`]). A call without a reporter captures
//! nothing: no allocation, no clock read beyond what the engine does anyway.
//! Must not: store, filter or publish reports (the `runs` layer does), or change anything a hook
//! sees or the tracing lines the engine writes (console lines still go to the log).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::HookError;

/// A console line's level: `console.debug`/`trace` are `debug`, `log`/`info`/`dir` are `info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    /// The level numbers the console glue passes (0 debug ... 3 error).
    pub(crate) fn from_console(level: i32) -> Level {
        match level {
            i32::MIN..=0 => Level::Debug,
            1 => Level::Info,
            2 => Level::Warn,
            _ => Level::Error,
        }
    }
}

/// One console line of a call, as written to the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsoleLine {
    pub level: Level,
    /// Milliseconds since the call started on its worker.
    pub at_ms: f64,
    pub message: String,
}

/// One outbound request of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundRequest {
    pub method: String,
    /// The URL the hook named, with every query value and any user info replaced by
    /// `REDACTED` and the fragment dropped ([`redact_url`]): API keys travel in queries.
    pub url: String,
    /// The host the request reached last (after redirects); for a request refused before it was
    /// sent, the host the hook named.
    pub host: String,
    /// Every host requested, in order, when redirects were followed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hops: Vec<String>,
    /// The answer's status (the last hop's).
    pub status: Option<u16>,
    /// Why there is no answer: Node's code and message (`ECONNREFUSED: connect ...`), a refusal
    /// by `[hooks.egress]`, or the call ending first.
    pub error: Option<String>,
    pub duration_ms: f64,
}

/// What a call did. Built by the worker when the call ends.
#[derive(Debug, Clone)]
pub struct CallReport {
    /// A worker ran the call. False: it never started (no worker free within the queue
    /// deadline, or the engine stopped): `result` says which, nothing else is filled.
    pub started: bool,
    /// How `cb` settled (the value itself went to the caller).
    pub result: Result<(), HookError>,
    /// From the call's submission until cb settled: what its caller waited, queue included.
    pub answered_in: Duration,
    /// From the call's submission until it ended, its work after cb included.
    pub ran: Duration,
    /// CPU time its JS used on the worker thread.
    pub cpu: Duration,
    pub console: Vec<ConsoleLine>,
    /// Lines were dropped (over `[hooks] max_log_bytes`) or cut (a line over 8 KiB).
    pub console_truncated: bool,
    pub requests: Vec<OutboundRequest>,
    /// Requests made beyond the [`MAX_REQUESTS`] kept.
    pub requests_omitted: usize,
}

/// Outbound requests kept per call; a hook looping over fetches is told how many more it made.
pub const MAX_REQUESTS: usize = 100;

type Sink = Box<dyn FnOnce(CallReport) + Send>;

/// Where a call's report goes: called exactly once, on the worker thread that ran the call when
/// it ends (so it must be quick and never block: push and return), or on the caller's thread for
/// a call that never started. Dropped unused (a worker lost to a panic), it reports a crash.
pub struct Reporter {
    sink: Option<Sink>,
    /// When the call was handed to the engine (durations count from here).
    since: Instant,
}

impl Reporter {
    pub fn new(sink: impl FnOnce(CallReport) + Send + 'static) -> Reporter {
        Reporter {
            sink: Some(Box::new(sink)),
            since: Instant::now(),
        }
    }

    fn send(mut self, report: CallReport) {
        if let Some(sink) = self.sink.take() {
            sink(report);
        }
    }

    /// The call never ran: `error` says why (overloaded, the engine stopped).
    pub(crate) fn not_run(self, error: HookError) {
        let waited = self.since.elapsed();
        self.send(CallReport {
            started: false,
            result: Err(error),
            answered_in: waited,
            ran: waited,
            cpu: Duration::ZERO,
            console: Vec::new(),
            console_truncated: false,
            requests: Vec::new(),
            requests_omitted: 0,
        });
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if let Some(sink) = self.sink.take() {
            let waited = self.since.elapsed();
            sink(CallReport {
                started: false,
                result: Err(HookError::Crashed(
                    "the worker running the hook was lost before the call ended".into(),
                )),
                answered_in: waited,
                ran: waited,
                cpu: Duration::ZERO,
                console: Vec::new(),
                console_truncated: false,
                requests: Vec::new(),
                requests_omitted: 0,
            });
        }
    }
}

/// A request under way, by its JS-side id.
struct Pending {
    id: u64,
    started: Instant,
    index: usize,
}

/// What a worker keeps of a call whose caller asked for a report.
pub(crate) struct Capture {
    reporter: Reporter,
    started: Instant,
    answered: Option<(Instant, Result<(), HookError>)>,
    pub cpu: Duration,
    console: Vec<ConsoleLine>,
    truncated: bool,
    requests: Vec<OutboundRequest>,
    pending: Vec<Pending>,
    omitted: usize,
}

impl Capture {
    pub fn new(reporter: Reporter) -> Capture {
        Capture {
            reporter,
            started: Instant::now(),
            answered: None,
            cpu: Duration::ZERO,
            console: Vec::new(),
            truncated: false,
            requests: Vec::new(),
            pending: Vec::new(),
            omitted: 0,
        }
    }

    pub fn line(&mut self, level: i32, message: String) {
        self.console.push(ConsoleLine {
            level: Level::from_console(level),
            at_ms: ms(self.started.elapsed()),
            message,
        });
    }

    pub fn truncated(&mut self) {
        self.truncated = true;
    }

    pub fn settled(&mut self, settled: &Result<serde_json::Value, HookError>) {
        if self.answered.is_none() {
            let result = match settled {
                Ok(_) => Ok(()),
                Err(e) => Err(e.clone()),
            };
            self.answered = Some((Instant::now(), result));
        }
    }

    pub fn request_started(&mut self, id: u64, method: &str, url: &str) {
        if self.requests.len() >= MAX_REQUESTS {
            self.omitted += 1;
            return;
        }
        self.pending.push(Pending {
            id,
            started: Instant::now(),
            index: self.requests.len(),
        });
        self.requests.push(OutboundRequest {
            method: method.to_owned(),
            url: redact_url(url),
            host: url_host(url),
            hops: Vec::new(),
            status: None,
            error: None,
            duration_ms: 0.0,
        });
    }

    /// Request `id` ended: its status or why it failed, and the hosts it went through.
    pub fn request_done(&mut self, id: u64, outcome: Result<u16, String>, hops: Vec<String>) {
        let Some(at) = self.pending.iter().position(|p| p.id == id) else {
            return;
        };
        let p = self.pending.swap_remove(at);
        let r = &mut self.requests[p.index];
        r.duration_ms = ms(p.started.elapsed());
        match outcome {
            Ok(status) => r.status = Some(status),
            Err(e) => r.error = Some(e),
        }
        if let Some(last) = hops.last() {
            r.host = last.clone();
        }
        if hops.len() > 1 {
            r.hops = hops;
        }
    }

    /// The call is over: requests still under way were stopped (`why`), and the report goes out.
    pub fn finish(mut self, why_unfinished: &str) {
        for p in std::mem::take(&mut self.pending) {
            let r = &mut self.requests[p.index];
            r.duration_ms = ms(p.started.elapsed());
            r.error = Some(why_unfinished.to_owned());
        }
        let now = Instant::now();
        let since = self.reporter.since;
        let (answered, result) = self
            .answered
            .take()
            .unwrap_or((now, Err(HookError::Timeout)));
        let report = CallReport {
            started: true,
            result,
            answered_in: answered.saturating_duration_since(since),
            ran: now.saturating_duration_since(since),
            cpu: self.cpu,
            console: std::mem::take(&mut self.console),
            console_truncated: self.truncated,
            requests: std::mem::take(&mut self.requests),
            requests_omitted: self.omitted,
        };
        let reporter = std::mem::replace(&mut self.reporter, Reporter::inert());
        reporter.send(report);
    }
}

impl Reporter {
    /// A reporter that reports nothing (what a finished capture leaves behind).
    fn inert() -> Reporter {
        Reporter {
            sink: None,
            since: Instant::now(),
        }
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// The host of a URL as written (lower case), or "" if it has none.
fn url_host(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default()
}

/// `url` as kept in a report: every query value and any user info replaced by `REDACTED`, the
/// fragment dropped; query keys, scheme, host, port and path stay (what the request was for). A
/// URL that does not parse keeps only what comes before its `?` or `#`.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return url.split(['?', '#']).next().unwrap_or_default().to_owned();
    };
    if !u.username().is_empty() || u.password().is_some() {
        let _ = u.set_username("REDACTED");
        let _ = u.set_password(None);
    }
    u.set_fragment(None);
    if let Some(query) = u.query().filter(|q| !q.is_empty()) {
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) => format!("{key}=REDACTED"),
                None => pair.to_owned(),
            })
            .collect();
        u.set_query(Some(&redacted.join("&")));
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_and_user_info_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact_url(
                "https://user:pw@api.example.com:8443/v1/send?api_key=s3cret&to=%2B1555&flag#frag"
            ),
            "https://REDACTED@api.example.com:8443/v1/send?api_key=REDACTED&to=REDACTED&flag"
        );
        assert_eq!(redact_url("http://127.0.0.1/path"), "http://127.0.0.1/path");
        assert_eq!(redact_url("not a url?token=abc"), "not a url");
    }

    #[test]
    fn a_reporter_dropped_unused_reports_once_as_a_crash() {
        let (tx, rx) = std::sync::mpsc::channel();
        drop(Reporter::new(move |r| tx.send(r).unwrap()));
        let r = rx.recv().unwrap();
        assert!(!r.started);
        assert!(matches!(r.result, Err(HookError::Crashed(_))));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_capture_reports_pending_requests_as_unfinished_and_an_unsettled_call_as_timeout() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut c = Capture::new(Reporter::new(move |r| tx.send(r).unwrap()));
        c.line(1, "hello".into());
        c.request_started(1, "GET", "https://a.example/x?k=v");
        c.request_started(2, "POST", "https://b.example/y");
        c.request_done(2, Ok(201), vec!["b.example".into(), "c.example".into()]);
        c.finish("stopped: the call ended");
        let r = rx.recv().unwrap();
        assert!(r.started);
        assert_eq!(r.result, Err(HookError::Timeout));
        assert_eq!(r.console[0].message, "hello");
        assert_eq!(r.console[0].level, Level::Info);
        assert_eq!(r.requests[0].url, "https://a.example/x?k=REDACTED");
        assert_eq!(
            r.requests[0].error.as_deref(),
            Some("stopped: the call ended")
        );
        assert_eq!(r.requests[1].status, Some(201));
        assert_eq!(r.requests[1].host, "c.example");
        assert_eq!(r.requests[1].hops, vec!["b.example", "c.example"]);
    }
}
