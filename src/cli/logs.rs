//! `hookgate logs [--follow] [--hook H] [--json]`: what hooks did — outcome, duration, console
//! lines, outbound requests, errors — from the run records of the running hookgate
//! (`GET /api/hookgate/runs`), and with `--follow` its live tail (`GET /api/hookgate/runs/stream`,
//! server-sent events, resumed with `Last-Event-ID` when the connection drops, so no record is
//! printed twice or skipped while hookgate still holds it).
//!
//! Run records live in the running process (and its `[runs] dir` file, which it holds open), so
//! this command needs a running hookgate and says so when none answers.
//!
//! Owns: the subcommand's arguments, reading the event stream, and how a record prints. Must not:
//! know how records are kept (`crate::runs` in the server does).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use super::remote::Remote;
use super::Failure;
use crate::admin::store::Store;
use crate::config::Config;

/// How long `--follow` keeps reconnecting to a hookgate that stopped answering before it gives
/// up.
const RECONNECT_FOR: Duration = Duration::from_secs(30);

/// `hookgate logs`.
pub fn run(
    config: &Path,
    follow: bool,
    hook: Option<&str>,
    json: bool,
    limit: usize,
) -> Result<(), Failure> {
    let c = Config::load(config).map_err(|e| Failure::invalid(e.to_string()))?;
    let Some(remote) = Remote::find(&c, &["read:logs"])? else {
        return Err(Failure::failed(not_running(&c)));
    };
    let filter = hook.map(|h| Filter::new(&c, h)).transpose()?;
    let mut query = format!("/api/hookgate/runs?limit={limit}");
    if let Some(f) = &filter {
        query.push_str("&hook=");
        query.push_str(&form_urlencoded::byte_serialize(f.query.as_bytes()).collect::<String>());
    }
    let page = remote.call(Method::GET, &query, None).map_err(|e| {
        if e.status == 404 {
            Failure::failed(format!(
                "{} serves no run records (GET /api/hookgate/runs answered 404: {}); it was built without them: upgrade it",
                remote.describe(),
                e.failure.message.trim_start_matches("hookgate: ")
            ))
        } else {
            e.failure
        }
    })?;
    let mut records: Vec<Value> = page["records"].as_array().cloned().unwrap_or_default();
    // The page is newest first; a log reads oldest first.
    records.reverse();
    let mut last_id = None;
    let stdout = std::io::stdout();
    for r in &records {
        print_record(&mut stdout.lock(), r, json);
        last_id = r["id"].as_u64().max(last_id);
    }
    if !follow {
        if records.is_empty() && !json {
            eprintln!("no run records{}", hook_note(hook));
        }
        return Ok(());
    }
    tail(&remote, filter.as_ref(), json, last_id)
}

fn hook_note(hook: Option<&str>) -> String {
    hook.map(|h| format!(" of hook {h}")).unwrap_or_default()
}

/// Why `hookgate logs` cannot run, and what to do.
fn not_running(c: &Config) -> String {
    let path = c.path.display();
    if c.admin.tokens.is_empty() {
        format!(
            "`hookgate logs` reads the run records of a running hookgate through its management API, and {path} starts none: add an [[admin.token]] with the scope read:logs to it (see config/hookgate.toml), then start hookgate (`hookgate serve --config {path}`)"
        )
    } else {
        format!(
            "`hookgate logs` reads the run records of a running hookgate, and none answers at {} ([admin] api_listen of {path}): start it (`hookgate serve --config {path}`), or point --config at the configuration it runs with",
            c.admin.api_listen
        )
    }
}

/// Which records `--hook` keeps: the API's `hook` parameter takes an id or `<trigger>/<name>`;
/// a bare name is looked up in the files (names are unique) to give it that.
struct Filter {
    query: String,
    id: Option<String>,
}

impl Filter {
    fn new(c: &Config, hook: &str) -> Result<Filter, Failure> {
        if hook.starts_with("hk-") || hook.contains('/') {
            return Ok(Filter {
                query: hook.to_string(),
                id: None,
            });
        }
        let found = Store::for_config(c)
            .find_by_name(hook)
            .map_err(|e| Failure::failed(e.to_string()))?;
        match found {
            Some(h) => Ok(Filter {
                query: format!("{}/{}", h.trigger.id(), h.name),
                id: Some(h.id),
            }),
            None => Err(Failure::failed(format!(
                "no hook named `{hook}` in {}: name it by id (hk-…) or <trigger>/<name> (`hookgate hooks list` shows them; a deleted hook's records are still found that way)",
                Store::for_config(c).hooks_dir().display()
            ))),
        }
    }

    fn keeps(&self, r: &Value) -> bool {
        let id = r["hook_id"].as_str();
        let name = r["hook"].as_str();
        id == Some(self.query.as_str())
            || name == Some(self.query.as_str())
            || (self.id.is_some() && id == self.id.as_deref())
    }
}

/// One event of a server-sent event stream.
#[derive(Debug, Default, PartialEq)]
struct Event {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

/// Splits a server-sent event stream into events, as its bytes arrive.
#[derive(Default)]
struct SseParser {
    buf: String,
    current: Event,
    has_data: bool,
}

impl SseParser {
    /// Feed bytes; the events they complete.
    fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        self.buf.push_str(&String::from_utf8_lossy(chunk));
        let mut out = Vec::new();
        while let Some(i) = self.buf.find('\n') {
            let line: String = self.buf.drain(..=i).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if self.has_data || self.current.id.is_some() || self.current.event.is_some() {
                    out.push(std::mem::take(&mut self.current));
                }
                self.has_data = false;
                continue;
            }
            if line.starts_with(':') {
                continue; // a comment: keep-alive
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "id" => self.current.id = Some(value.to_string()),
                "event" => self.current.event = Some(value.to_string()),
                "data" => {
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        out
    }
}

/// Follow the live tail until interrupted; reconnect with `Last-Event-ID` when it drops.
fn tail(
    remote: &Remote,
    filter: Option<&Filter>,
    json: bool,
    mut last_id: Option<u64>,
) -> Result<(), Failure> {
    let mut down_since: Option<Instant> = None;
    let mut reconnecting = false;
    loop {
        if reconnecting {
            last_id = resume_point(remote, last_id);
        }
        reconnecting = true;
        let result: Result<(), String> = remote.rt.block_on(async {
            let mut req = remote
                .request(Method::GET, "/api/hookgate/runs/stream")
                .header("accept", "text/event-stream")
                // The stream lasts as long as hookgate runs: no overall timeout.
                .timeout(Duration::from_secs(60 * 60 * 24 * 365));
            if let Some(id) = last_id {
                req = req.header("last-event-id", id.to_string());
            }
            let mut resp = req.send().await.map_err(|e| cut(remote, &e))?;
            let status = resp.status().as_u16();
            if status != 200 {
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                return Err(format!(
                    "the live tail answered {status}: {}",
                    body["message"].as_str().unwrap_or("no reason given")
                ));
            }
            down_since = None;
            let mut parser = SseParser::default();
            loop {
                let chunk = match resp.chunk().await {
                    Ok(Some(c)) => c,
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(cut(remote, &e)),
                };
                for ev in parser.feed(&chunk) {
                    match ev.event.as_deref() {
                        Some("missed") => {
                            let n: Value = serde_json::from_str(&ev.data).unwrap_or(Value::Null);
                            eprintln!(
                                "({} run record(s) missed: hookgate dropped them before this tail read them)",
                                n["missed"]
                            );
                        }
                        Some("run") | None => {
                            let Ok(record) = serde_json::from_str::<Value>(&ev.data) else {
                                continue;
                            };
                            if let Some(id) = ev.id.as_deref().and_then(|i| i.parse().ok()) {
                                last_id = Some(id);
                            }
                            if filter.is_none_or(|f| f.keeps(&record)) {
                                let stdout = std::io::stdout();
                                let mut out = stdout.lock();
                                print_record(&mut out, &record, json);
                                let _ = out.flush();
                            }
                        }
                        Some(_) => {}
                    }
                }
            }
        });
        // Cut: by hookgate stopping or restarting, or the network. Resume where it stopped.
        let why = match result {
            Ok(()) => "the live tail ended".to_string(),
            Err(e) if e.starts_with("the live tail answered 4") => {
                return Err(Failure::failed(e));
            }
            Err(e) => e,
        };
        let since = *down_since.get_or_insert_with(Instant::now);
        if since.elapsed() > RECONNECT_FOR {
            return Err(Failure::failed(format!(
                "{} stopped answering for {} s ({why}); run `hookgate logs --follow` again once it is back",
                remote.describe(),
                RECONNECT_FOR.as_secs()
            )));
        }
        eprintln!("({why}; reconnecting)");
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Why the tail was cut, in a few words (a certificate problem in full: it will not go away).
fn cut(remote: &Remote, e: &reqwest::Error) -> String {
    if e.is_connect() {
        let full = remote.unreachable(e).message;
        if full.contains("certificate") {
            return full;
        }
        return format!("{} does not answer", remote.describe());
    }
    if e.is_body() || e.is_decode() || e.is_request() {
        return "the connection was closed".into();
    }
    remote.unreachable(e).message
}

/// Where to resume after the tail was cut: the last record printed, unless hookgate restarted
/// with its records in memory only (ids start again at 1, and resuming after the old id would
/// hide every new record): then from the live records on.
fn resume_point(remote: &Remote, last_id: Option<u64>) -> Option<u64> {
    let last = last_id?;
    let Ok(page) = remote.call(Method::GET, "/api/hookgate/runs?limit=1", None) else {
        return last_id; // still down: the next attempt says so
    };
    let newest = page["records"][0]["id"].as_u64();
    if newest.is_none_or(|n| n < last) {
        eprintln!("(hookgate restarted without its earlier run records: following the new ones)");
        return newest;
    }
    last_id
}

/// One record: a JSON line with `--json`, else a header line and one indented line per console
/// line, outbound request and error.
fn print_record(out: &mut impl Write, r: &Value, json: bool) {
    if json {
        let _ = writeln!(out, "{r}");
        return;
    }
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let mut head = format!(
        "{}  {}  {}  {:.1} ms",
        s(&r["start"]),
        s(&r["hook"]),
        s(&r["outcome"]),
        r["duration_ms"].as_f64().unwrap_or(0.0)
    );
    for (key, label) in [
        ("route", "route"),
        ("request_id", "request"),
        ("event_id", "event"),
        ("client_id", "client"),
    ] {
        if let Some(v) = r[key].as_str() {
            head.push_str(&format!("  {label}={v}"));
        }
    }
    let _ = writeln!(out, "{head}");
    for line in r["console"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "    {}: {}",
            line["level"].as_str().unwrap_or("log"),
            line["message"].as_str().unwrap_or_default()
        );
    }
    if r["console_truncated"].as_bool() == Some(true) {
        let _ = writeln!(out, "    (console output truncated)");
    }
    for req in r["requests"].as_array().into_iter().flatten() {
        let answer = match (req["status"].as_u64(), req["error"].as_str()) {
            (Some(status), _) => status.to_string(),
            (None, Some(e)) => format!("failed: {e}"),
            (None, None) => "-".into(),
        };
        let _ = writeln!(
            out,
            "    -> {} {} {answer} ({:.1} ms)",
            s(&req["method"]),
            s(&req["url"]),
            req["duration_ms"].as_f64().unwrap_or(0.0)
        );
    }
    if let Some(e) = r["error"].as_object() {
        let _ = writeln!(
            out,
            "    error {}: {}",
            e.get("class").and_then(Value::as_str).unwrap_or("Error"),
            e.get("message").and_then(Value::as_str).unwrap_or_default()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_sent_events_split_across_chunks_come_out_whole() {
        let mut p = SseParser::default();
        assert!(p.feed(b": keep-alive\n\nid: 7\nevent: ru").is_empty());
        let evs = p.feed(b"n\ndata: {\"id\":7}\n\nevent: missed\r\ndata: {\"missed\":3}\r\n\r\n");
        assert_eq!(
            evs,
            vec![
                Event {
                    id: Some("7".into()),
                    event: Some("run".into()),
                    data: "{\"id\":7}".into()
                },
                Event {
                    id: None,
                    event: Some("missed".into()),
                    data: "{\"missed\":3}".into()
                },
            ]
        );
    }

    #[test]
    fn a_record_prints_its_console_requests_and_error() {
        let r = serde_json::json!({
            "id": 3, "hook": "credentials-exchange/add-claim", "outcome": "error",
            "start": "2026-12-01T21:00:00.000Z", "duration_ms": 2.0, "client_id": "m2m",
            "console": [{"level": "info", "at_ms": 0.1, "message": "hello"}],
            "requests": [{"method": "GET", "url": "https://api.example.com/x", "status": 200, "duration_ms": 1.0}],
            "error": {"class": "Error", "message": "boom"}
        });
        let mut out = Vec::new();
        print_record(&mut out, &r, false);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "2026-12-01T21:00:00.000Z  credentials-exchange/add-claim  error  2.0 ms  client=m2m\n    info: hello\n    -> GET https://api.example.com/x 200 (1.0 ms)\n    error Error: boom\n"
        );
    }
}
