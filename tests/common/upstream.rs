//! A small Rust upstream for exact protocol tests. It answers:
//! - `/stream/<bytes>`: a chunked body of that many bytes (a repeating pattern);
//! - `/slow/<ms>`: waits, then answers like the echo;
//! - anything else: a JSON echo of what it received — method, path and query, headers in order,
//!   body length and SHA-256 — with the status from the request's `x-want-status` header.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};

pub struct Upstream {
    pub addr: SocketAddr,
    /// Every request seen, in arrival order (method, path and query).
    pub seen: Arc<Mutex<Vec<String>>>,
    /// Dropping it stops the server.
    _server: Server,
}

pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn handle(req: Request<Incoming>, seen: Arc<Mutex<Vec<String>>>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    seen.lock()
        .unwrap()
        .push(format!("{} {target}", req.method()));
    if let Some(n) = path.strip_prefix("/stream/") {
        let n: usize = n.parse().unwrap();
        let data = pattern(n);
        let chunks: Vec<Result<Frame<Bytes>, Infallible>> = data
            .chunks(16 * 1024)
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        let body = frames_body(chunks);
        return Response::builder()
            .header("x-stream-sha256", sha256_hex(&data))
            .body(BodyExt::boxed(body))
            .unwrap();
    }
    if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
    }
    let status: u16 = req
        .headers()
        .get("x-want-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let method = req.method().to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let echo = serde_json::json!({
        "method": method,
        "target": target,
        "headers": headers,
        "body_len": body.len(),
        "body_sha256": sha256_hex(&body),
        "body": String::from_utf8_lossy(&body[..body.len().min(4096)]),
    });
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-upstream", "echo")
        .body(BodyExt::boxed(Full::new(Bytes::from(echo.to_string()))))
        .unwrap()
}

/// A body that yields prepared frames one by one, so the response goes out chunked.
fn frames_body(
    frames: Vec<Result<Frame<Bytes>, Infallible>>,
) -> impl hyper::body::Body<Data = Bytes, Error = Infallible> + Send + Sync + 'static {
    struct Frames(std::collections::VecDeque<Result<Frame<Bytes>, Infallible>>);
    impl hyper::body::Body for Frames {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            std::task::Poll::Ready(self.0.pop_front())
        }
    }
    Frames(frames.into())
}

/// A small HTTP/1.1 server on 127.0.0.1:0, on its own thread and runtime so that tests of any
/// flavour can use it; it stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub fn serve<F, Fut>(handler: F) -> Server
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let accept = async {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| {
                            let handler = handler.clone();
                            async move { Ok::<_, Infallible>(handler(req).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            };
            tokio::select! {
                _ = accept => {},
                _ = stop_rx => {},
            }
        });
    });
    Server {
        addr: addr_rx.recv().unwrap(),
        _stop: stop_tx,
    }
}

/// A JSON response.
pub fn json_response(status: u16, body: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(BodyExt::boxed(Full::new(Bytes::from(body.to_string()))))
        .unwrap()
}

impl Upstream {
    pub fn start() -> Upstream {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let server = serve(move |req| handle(req, seen2.clone()));
        Upstream {
            addr: server.addr,
            seen,
            _server: server,
        }
    }

    pub fn address(&self) -> String {
        self.addr.to_string()
    }
}
