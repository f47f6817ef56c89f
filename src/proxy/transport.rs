//! Below HTTP: what hookgate guards on a client connection that pingora 0.9 does not.
//!
//! Every accepted connection's stream is wrapped in a [`Guarded`] before pingora's HTTP/1 code
//! sees it ([`Guard`] is the `ServerApp` that does the wrapping around pingora's proxy):
//!
//! - **A total deadline for request heads** (`server.header_read_timeout_ms`). pingora times
//!   each read of a head separately (60 s keep-alive timeout), so a client sending a header line
//!   every 20 s holds its connection forever. Here the clock starts when a connection opens, or
//!   when the first byte of a later request on it arrives, and stops at the blank line ending
//!   the head; when it runs out, the client gets a 408 in the OAuth JSON shape and the
//!   connection closes (an opened connection that sent nothing at all is closed silently).
//! - **pingora's own error answers in the OAuth shape.** pingora answers a request it cannot
//!   parse (bad syntax, over 256 headers, a head over 1 MiB) with an empty 400 before any
//!   `ProxyHttp` phase runs, so hookgate has no hook there. Its error answers are recognisable
//!   (`Server: Pingora`, `Content-Length: 0`, 4xx/5xx; nothing else hookgate sends has that
//!   header), and are replaced on the way out by the same status with a JSON body.
//!
//! The head scanner is byte-level and does not parse HTTP: it sees a head end at the first
//! blank line after the head begins, and a response begin at a write starting `HTTP/1.`
//! (1xx interim answers excepted). A write while the clock runs stops it (an answer is still
//! going out, so what is read is not a new head). Bytes read after a complete answer and before
//! the next head (the rest of a body the upstream answered early) start the clock again: such
//! a connection is closed at the deadline, after its answer.
//!
//! Must not: know routes or anything above the connection.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID,
    UniqueIDType,
};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::respond::OAuthError;

/// Wraps each connection of `inner` (pingora's HTTP proxy) in a [`Guarded`] stream.
pub struct Guard<A> {
    pub inner: Arc<A>,
    pub header_timeout: Duration,
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Guard<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let guarded = Guarded::new(stream, self.header_timeout);
        self.inner.process_new(Box::new(guarded), shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A head is being read; `read` bytes of it so far, `started` once a byte other than CR or
    /// LF came (empty lines before a request line are allowed, RFC 9112 §2.2, and end nothing).
    Head { read: usize, started: bool },
    /// The head is complete; the request is being handled.
    Handling,
    /// A response began; the next byte read starts a new head.
    Idle,
}

/// A client connection with a deadline on request heads and pingora's errors made JSON.
#[derive(Debug)]
pub struct Guarded {
    inner: Stream,
    timeout: Duration,
    phase: Phase,
    /// The last two bytes read in the head, to find its end across reads.
    tail: [u8; 2],
    deadline: Pin<Box<Sleep>>,
    /// A 408 being written when the deadline has passed: the bytes and how many are out.
    answering: Option<(Vec<u8>, usize)>,
    /// Our JSON answer replacing one of pingora's, and the length of pingora's write.
    replacing: Option<(Vec<u8>, usize, usize)>,
}

impl Guarded {
    pub fn new(inner: Stream, timeout: Duration) -> Guarded {
        Guarded {
            inner,
            timeout,
            phase: Phase::Head {
                read: 0,
                started: false,
            },
            tail: [0, 0],
            deadline: Box::pin(tokio::time::sleep(timeout)),
            answering: None,
            replacing: None,
        }
    }

    /// Feed bytes just read to the head scanner.
    fn scan(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.phase == Phase::Idle {
            self.phase = Phase::Head {
                read: 0,
                started: false,
            };
            self.tail = [0, 0];
            self.deadline.as_mut().reset(Instant::now() + self.timeout);
        }
        let Phase::Head { read, mut started } = self.phase else {
            return;
        };
        // A head ends at an empty line: "\n\n" or "\n\r\n" (httparse takes bare LF too), once a
        // byte other than CR or LF came. Only line feeds can end it, so look at those alone
        // (memchr), with the two bytes before each (from `tail` across reads).
        let from = if started {
            Some(0)
        } else {
            bytes.iter().position(|&b| b != b'\r' && b != b'\n')
        };
        if let Some(from) = from {
            started = true;
            let before = |i: usize, back: usize| match i.checked_sub(back) {
                Some(j) => bytes[j],
                None => self.tail[2 - (back - i)],
            };
            for i in memchr::memchr_iter(b'\n', &bytes[from..]).map(|i| i + from) {
                let (b1, b2) = (before(i, 1), before(i, 2));
                if b1 == b'\n' || (b1 == b'\r' && b2 == b'\n') {
                    self.tail = [b1, b'\n'];
                    self.phase = Phase::Handling;
                    return;
                }
            }
        }
        self.tail = match bytes {
            [.., a, b] => [*a, *b],
            [b] => [self.tail[1], *b],
            [] => self.tail,
        };
        self.phase = Phase::Head {
            read: read + bytes.len(),
            started,
        };
    }

    /// Write as much of `bytes[*sent..]` as the socket takes; `Ready` once all is out.
    fn push(
        inner: &mut Stream,
        cx: &mut Context<'_>,
        bytes: &[u8],
        sent: &mut usize,
    ) -> Poll<io::Result<()>> {
        while *sent < bytes.len() {
            let n = ready!(Pin::new(&mut *inner).poll_write(cx, &bytes[*sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *sent += n;
        }
        Pin::new(&mut *inner).poll_flush(cx)
    }
}

/// A complete JSON response of our own, closing the connection.
fn json_response(err: &OAuthError, reason: &str) -> Vec<u8> {
    let body = err.body();
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nconnection: close\r\n\r\n",
        err.status,
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// Is this write one of pingora's own error answers (`gen_error_response`)? Only its whole
/// head is written at once, and only pingora names itself in `Server`.
fn pingora_error_status(buf: &[u8]) -> Option<u16> {
    let rest = buf
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| buf.strip_prefix(b"HTTP/1.0 "))?;
    let status: u16 = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
    if !(400..600).contains(&status) || buf.len() > 1024 || !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let head = String::from_utf8_lossy(buf).to_ascii_lowercase();
    (head.contains("\r\nserver: pingora\r\n") && head.contains("\r\ncontent-length: 0\r\n"))
        .then_some(status)
}

/// The JSON answer that replaces pingora's empty one.
fn replacement(status: u16) -> Vec<u8> {
    let (err, reason) = match status {
        400 => (
            OAuthError::invalid_request(
                "the request could not be parsed: a malformed request line or header, more than \
                 256 headers, or a head larger than 1 MiB",
            ),
            "Bad Request",
        ),
        405 => (
            OAuthError::new(405, "invalid_request", "this method is not supported"),
            "Method Not Allowed",
        ),
        s if s < 500 => (
            OAuthError::new(s, "invalid_request", "the request was refused"),
            "Error",
        ),
        s => (
            OAuthError::new(s, "server_error", "the request could not be handled"),
            "Error",
        ),
    };
    json_response(&err, reason)
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some((bytes, sent)) = &mut this.answering {
            // Best effort: the connection is being given up either way.
            let _ = ready!(Self::push(&mut this.inner, cx, bytes, sent));
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request head deadline",
            )));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.phase != Phase::Handling {
                    this.scan(&buf.filled()[before..]);
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        let Phase::Head { read, .. } = this.phase else {
            return Poll::Pending;
        };
        ready!(this.deadline.as_mut().poll(cx));
        if read == 0 {
            // Opened and silent: nothing to answer; end of stream closes it quietly.
            tracing::debug!("a connection sent no request within the header deadline; closed");
            return Poll::Ready(Ok(()));
        }
        tracing::warn!(
            bytes = read,
            timeout_ms = this.timeout.as_millis() as u64,
            "a request head did not arrive within server.header_read_timeout_ms; answering 408"
        );
        let err = OAuthError::new(
            408,
            "invalid_request",
            format!(
                "the request headers did not arrive within {} ms",
                this.timeout.as_millis()
            ),
        );
        this.answering = Some((json_response(&err, "Request Timeout"), 0));
        // Come back through the answering branch above.
        Pin::new(this).poll_read(cx, buf)
    }
}

use std::future::Future as _;

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none() {
            if let Some(status) = pingora_error_status(buf) {
                this.replacing = Some((replacement(status), 0, buf.len()));
            }
        }
        if let Some((bytes, sent, len)) = &mut this.replacing {
            let len = *len;
            let done = ready!(Self::push(&mut this.inner, cx, bytes, sent));
            this.replacing = None;
            return Poll::Ready(done.map(|()| len));
        }
        match this.phase {
            // A final response begins: the next byte read begins the next head.
            Phase::Handling if buf.starts_with(b"HTTP/1.") && buf.get(9) != Some(&b'1') => {
                this.phase = Phase::Idle
            }
            // Writing while a head is (thought to be) read: the previous answer is still going
            // out (it began before its request's body was all read). Not a head: no deadline.
            Phase::Head { .. } => this.phase = Phase::Idle,
            _ => {}
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for Guarded {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for Guarded {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for Guarded {}

impl GetTimingDigest for Guarded {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        self.inner.get_timing_digest()
    }
}

impl GetProxyDigest for Guarded {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
}

impl GetSocketDigest for Guarded {
    fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
        self.inner.get_socket_digest()
    }
}

#[async_trait]
impl Peek for Guarded {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guarded() -> Guarded {
        let (a, _b) = tokio::io::duplex(64);
        Guarded::new(Box::new(a), Duration::from_secs(10))
    }

    #[tokio::test]
    async fn the_head_ends_at_the_first_empty_line_after_the_request_line() {
        let mut g = guarded();
        g.scan(b"\r\n\r\n");
        assert!(
            matches!(g.phase, Phase::Head { .. }),
            "leading empty lines end nothing"
        );
        g.scan(b"GET / HTTP/1.1\r\nHost: x\r");
        assert!(matches!(g.phase, Phase::Head { .. }));
        g.scan(b"\n\r");
        assert!(matches!(g.phase, Phase::Head { .. }));
        g.scan(b"\nbody");
        assert_eq!(g.phase, Phase::Handling);
        g.phase = Phase::Idle;
        g.scan(b"GET / HTTP/1.1\n\n");
        assert_eq!(g.phase, Phase::Handling, "bare LF");
    }

    /// The byte-at-a-time scanner the line-feed search replaced: the reference it must agree with.
    fn reference_end(chunks: &[Vec<u8>]) -> Option<(usize, usize)> {
        let (mut started, mut tail) = (false, [0u8, 0u8]);
        for (c, chunk) in chunks.iter().enumerate() {
            for (i, &b) in chunk.iter().enumerate() {
                let ends = started
                    && b == b'\n'
                    && (tail[1] == b'\n' || (tail[1] == b'\r' && tail[0] == b'\n'));
                started |= b != b'\r' && b != b'\n';
                tail = [tail[1], b];
                if ends {
                    return Some((c, i));
                }
            }
        }
        None
    }

    proptest::proptest! {
        /// However a head is cut into reads, the scanner ends it in the read the byte-wise
        /// scanner did, and not before.
        #[test]
        fn the_head_end_is_found_in_the_same_read_as_byte_by_byte(
            chunks in proptest::collection::vec(
                proptest::collection::vec(proptest::sample::select(vec![b'\r', b'\n', b'a', b' ']), 0..12),
                1..8,
            )
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let _enter = rt.enter();
            let mut g = guarded();
            let mut found = None;
            for (c, chunk) in chunks.iter().enumerate() {
                g.scan(chunk);
                if g.phase == Phase::Handling {
                    found = Some(c);
                    break;
                }
            }
            proptest::prop_assert_eq!(found, reference_end(&chunks).map(|(c, _)| c));
        }
    }

    #[test]
    fn only_pingoras_own_error_heads_are_replaced() {
        let pingora = b"HTTP/1.1 400 Bad Request\r\nServer: Pingora\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\nCache-Control: private, no-store\r\n\r\n";
        assert_eq!(pingora_error_status(pingora), Some(400));
        let ours = json_response(&OAuthError::invalid_request("x"), "Bad Request");
        assert_eq!(pingora_error_status(&ours), None);
        let upstream = b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(pingora_error_status(upstream), None);
        let ok = b"HTTP/1.1 200 OK\r\nServer: Pingora\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(pingora_error_status(ok), None);
        let text = String::from_utf8(replacement(400)).unwrap();
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(text.contains("\"error\":\"invalid_request\""), "{text}");
    }
}
