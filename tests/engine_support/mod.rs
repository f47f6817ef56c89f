//! Shared helpers of the engine tests: hook folders in a tempdir, loading, a small HTTP server.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use hookgate::config::{HooksConfig, Trigger};
use hookgate::engine::Engine;
use hookgate::hooks::{Generation, Hook};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A hooks folder with `files` (paths relative to it).
pub fn hooks_dir(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

/// `[hooks]` parsed from TOML, with `dir = "."`.
pub fn config(toml_text: &str) -> HooksConfig {
    let mut cfg: HooksConfig = toml::from_str(toml_text).unwrap();
    cfg.dir = ".".into();
    cfg
}

pub fn load(dir: &Path, cfg: &HooksConfig) -> Generation {
    match Generation::load(cfg, dir) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

/// The loaded hook called `name` (`trigger-id/stem`).
pub fn hook(generation: &Generation, name: &str) -> Arc<Hook> {
    let trigger: Trigger = name.split('/').next().unwrap().parse().unwrap();
    generation
        .hooks_for(trigger, None, None)
        .into_iter()
        .find(|h| h.name == name)
        .unwrap_or_else(|| panic!("no hook {name}"))
}

/// One hook file as `credentials-exchange/<stem>.js`, loaded, plus an engine with `workers`.
pub fn single(source: &str, toml_text: &str, workers: usize) -> (TempDir, Arc<Hook>, Engine) {
    let dir = hooks_dir(&[("credentials-exchange/h.js", source)]);
    let mut cfg = config(toml_text);
    cfg.workers = Some(workers);
    let generation = load(dir.path(), &cfg);
    let h = hook(&generation, "credentials-exchange/h");
    let engine = Engine::start(&cfg).unwrap();
    (dir, h, engine)
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// What a test server answers: status line, headers, body.
pub type Answer = (&'static str, Vec<(String, String)>, Vec<u8>);

/// An HTTP/1.1 server on 127.0.0.1:0 that reports each request on the channel as
/// `{method, path, headers (lower-case names), body}` and answers with `respond(request)`.
/// Must be started inside a tokio runtime.
pub async fn http_server(
    respond: impl Fn(&Value) -> Answer + Send + Sync + 'static,
) -> (String, mpsc::UnboundedReceiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    let respond = Arc::new(respond);
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let (tx, respond) = (tx.clone(), respond.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, content_length) = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        break (i + 4, len);
                    }
                };
                while buf.len() < head_end + content_length {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let mut lines = head.lines();
                let mut first = lines.next().unwrap().split(' ');
                let (method, path) = (
                    first.next().unwrap().to_owned(),
                    first.next().unwrap().to_owned(),
                );
                let headers: serde_json::Map<String, Value> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_lowercase(), json!(v.trim())))
                    .collect();
                let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
                let seen =
                    json!({ "method": method, "path": path, "headers": headers, "body": body });
                let _ = tx.send(seen.clone());
                let (status, headers, body) = respond(&seen);
                let mut resp = format!("HTTP/1.1 {status}\r\n");
                for (k, v) in headers {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str(&format!(
                    "content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                ));
                let mut out = resp.into_bytes();
                out.extend_from_slice(&body);
                let _ = sock.write_all(&out).await;
            });
        }
    });
    (url, rx)
}

/// [`http_server`] that echoes the request as JSON (`/missing` answers 404).
pub async fn echo_server() -> (String, mpsc::UnboundedReceiver<Value>) {
    http_server(|seen| {
        let json_type = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("x-echo".to_owned(), "yes".to_owned()),
        ];
        if seen["path"] == "/missing" {
            ("404 Not Found", json_type, b"{\"error\":\"nope\"}".to_vec())
        } else {
            ("200 OK", json_type, seen.to_string().into_bytes())
        }
    })
    .await
}

/// The next request `server` saw; fails the test if none comes within 10 s.
pub fn next_request(
    rt: &tokio::runtime::Runtime,
    seen: &mut mpsc::UnboundedReceiver<Value>,
) -> Value {
    rt.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(10), seen.recv()).await
    })
    .expect("the server saw no request within 10 s")
    .expect("server channel open")
}

/// A server on 127.0.0.1:0 that accepts connections and never answers; its port.
pub fn silent_server(rt: &tokio::runtime::Runtime) -> u16 {
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        let mut held = Vec::new();
        loop {
            let (s, _) = listener.accept().await.unwrap();
            held.push(s);
        }
    });
    port
}

/// Log output written into memory, for tests that read what hookgate logged.
#[derive(Clone, Default)]
pub struct LogBuffer(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this test binary, from debug up: one global subscriber, since the engine's
/// workers and egress runtime log from their own threads; tests find their own lines by the
/// unique names, paths or request ids they use.
pub fn global_logs() -> &'static LogBuffer {
    static LOGS: std::sync::OnceLock<LogBuffer> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = LogBuffer::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        logs
    })
}

/// Hooks named `credentials-exchange/<stem>` from `(stem, source)`, with `toml` as `[hooks]`.
pub fn engine_with(
    hooks: &[(&str, &str)],
    toml_text: &str,
) -> (tempfile::TempDir, Generation, Engine) {
    let files: Vec<(String, &str)> = hooks
        .iter()
        .map(|(stem, src)| (format!("credentials-exchange/{stem}.js"), *src))
        .collect();
    let files: Vec<(&str, &str)> = files.iter().map(|(f, s)| (f.as_str(), *s)).collect();
    let dir = hooks_dir(&files);
    let cfg = config(toml_text);
    let generation = load(dir.path(), &cfg);
    let engine = Engine::start(&cfg).unwrap();
    (dir, generation, engine)
}

pub fn named(generation: &Generation, stem: &str) -> Arc<Hook> {
    hook(generation, &format!("credentials-exchange/{stem}"))
}
