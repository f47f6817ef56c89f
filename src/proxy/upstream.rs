//! hookgate's own client to the identity server, for the routes whose exchange it owns.
//!
//! Passthrough requests never come here: pingora proxies them itself. Exchange routes must read,
//! parse and possibly rewrite the whole body, which pingora's in-flight rewriting cannot do past
//! its 64 KiB retry buffer, so they send the upstream a complete request, in one write, over
//! pingora's pooled transport connector, and read back a complete (bounded) response with
//! pingora's HTTP/1 client.
//!
//! Owns: connection reuse, timeouts, framing of the upstream request, and the kind of each
//! transport failure ([`upstream_error`]). Must not: know about hooks or any
//! particular extensibility point.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pingora::connectors::TransportConnector;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::protocols::http::v1::client::{http_req_header_to_wire, HttpSession};
use pingora::protocols::Stream;
use pingora::upstreams::peer::HttpPeer;
use pingora::upstreams::peer::Peer;
use tokio::io::AsyncWriteExt;

use crate::config::UpstreamConfig;
use crate::points::Failure;

/// Largest upstream answer an exchange route accepts. Token and signup answers are small; a
/// larger one means something is wrong upstream, and holding it whole in memory is not wise.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// A complete upstream answer.
#[derive(Debug)]
pub struct UpstreamResponse {
    pub header: ResponseHeader,
    pub body: Bytes,
}

pub struct Upstream {
    connector: TransportConnector,
    config: UpstreamConfig,
}

impl Upstream {
    pub fn new(config: UpstreamConfig) -> Self {
        Upstream {
            connector: TransportConnector::new(None),
            config,
        }
    }

    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    /// The peer pingora connects to, with the configured timeouts. Shared by the passthrough
    /// path and the exchange path so both behave alike.
    pub fn peer(&self) -> HttpPeer {
        let mut peer = HttpPeer::new(self.config.socket_addr, false, String::new());
        peer.options.connection_timeout = Some(self.config.connect_timeout);
        peer.options.total_connection_timeout = Some(self.config.connect_timeout);
        peer.options.read_timeout = Some(self.config.read_timeout);
        peer.options.write_timeout = Some(self.config.write_timeout);
        peer.options.idle_timeout = Some(self.config.keepalive_idle);
        peer
    }

    /// Send a complete request and read the complete answer.
    pub async fn send(
        &self,
        mut req: RequestHeader,
        body: Bytes,
    ) -> std::result::Result<UpstreamResponse, Failure> {
        // Exact framing: the body is whole, so it goes with a Content-Length, never chunked.
        req.remove_header("transfer-encoding");
        req.remove_header("content-length");
        if !body.is_empty() || req.method != http::Method::GET {
            req.insert_header("content-length", body.len().to_string())
                .map_err(|e| {
                    Failure::Internal(format!("cannot build the upstream request: {e}"))
                })?;
        }
        let wire = request_bytes(&req, &body)?;
        let head_only = req.method == http::Method::HEAD;
        let peer = self.peer();
        // A pooled connection may have been closed by the server while idle; that shows up as
        // an error before any byte of the answer. One retry on a fresh connection covers it.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (stream, reused) = self
                .connector
                .get_stream(&peer)
                .await
                .map_err(|e| self.transport_error(&e))?;
            match self.exchange(stream, &peer, &wire, head_only).await {
                Ok(resp) => return Ok(resp),
                Err(e) if reused && attempt == 1 && is_stale_connection(&e) => continue,
                Err(e) => return Err(self.transport_error(&e)),
            }
        }
    }

    /// One request on one connection. The request goes out in a single write: pingora's own
    /// client flushes the header before the body, which costs the upstream a second read (and
    /// node-oidc-provider a second turn of its event loop) for every token request.
    async fn exchange(
        &self,
        mut stream: Stream,
        peer: &HttpPeer,
        wire: &[u8],
        head_only: bool,
    ) -> Result<UpstreamResponse> {
        let write = async {
            stream.write_all(wire).await?;
            stream.flush().await
        };
        match tokio::time::timeout(self.config.write_timeout, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Error::e_because(ErrorType::WriteError, "writing the request", e),
            Err(_) => return Error::e_explain(ErrorType::WriteTimedout, "writing the request"),
        }
        let mut session = HttpSession::new_with_options(stream, peer);
        session.read_timeout = Some(self.config.read_timeout);
        // Informational answers (100 Continue, 103 Early Hints) come before the real one; a 101
        // is final (and the connection is not reused after it).
        loop {
            session.read_response().await?;
            match session.resp_header().map(|h| h.status.as_u16()) {
                Some(100 | 102..=199) => continue,
                _ => break,
            }
        }
        let mut buf = BytesMut::new();
        // The answer to a HEAD has no body whatever its Content-Length says. pingora's client
        // only knows that from a request it wrote itself, so here the body is not read and the
        // connection is not reused (HEAD on an exchange route is rare).
        if !head_only {
            while let Some(chunk) = session.read_body_ref().await? {
                if buf.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Error::e_explain(
                        ErrorType::InvalidHTTPHeader,
                        format!("the upstream answer exceeds {MAX_RESPONSE_BYTES} bytes"),
                    );
                }
                buf.extend_from_slice(chunk);
            }
        }
        let header = session
            .resp_header()
            .cloned()
            .ok_or_else(|| Error::explain(ErrorType::InvalidHTTPHeader, "no response header"))?;
        // `respect_keepalive` reads the server's `Connection` header and HTTP version.
        if !head_only {
            session.respect_keepalive();
            if let Some(stream) = session.reuse().await {
                self.connector.release_stream(
                    stream,
                    peer.reuse_hash(),
                    Some(self.config.keepalive_idle),
                );
            }
        }
        Ok(UpstreamResponse {
            header,
            body: buf.freeze(),
        })
    }

    fn transport_error(&self, e: &Error) -> Failure {
        upstream_error(&self.config.address, e, self.config.read_timeout)
    }
}

/// The request line, headers and body, as they go on the wire.
fn request_bytes(req: &RequestHeader, body: &[u8]) -> std::result::Result<Vec<u8>, Failure> {
    let head = http_req_header_to_wire(req).ok_or_else(|| {
        Failure::Internal("cannot build the upstream request: forbidden bytes in its line".into())
    })?;
    let mut wire = Vec::with_capacity(head.len() + body.len());
    wire.extend_from_slice(&head);
    wire.extend_from_slice(body);
    Ok(wire)
}

fn is_stale_connection(e: &Error) -> bool {
    matches!(
        e.etype(),
        ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
    )
}

/// The one mapping from a failure to reach the upstream to its kind: timeouts, unreachable, or
/// a bad answer (written as 504, 502 and 502: `respond::render`).
pub fn upstream_error(address: &str, e: &Error, read_timeout: Duration) -> Failure {
    match e.etype() {
        ErrorType::ConnectTimedout => Failure::UpstreamTimedOut(format!(
            "the identity server at {address} did not accept a connection in time"
        )),
        ErrorType::ReadTimedout | ErrorType::WriteTimedout => Failure::UpstreamTimedOut(format!(
            "the identity server at {address} did not answer within {} ms",
            read_timeout.as_millis()
        )),
        ErrorType::ConnectRefused | ErrorType::ConnectNoRoute | ErrorType::ConnectError => {
            Failure::UpstreamUnreachable(format!("the identity server at {address} is unreachable"))
        }
        _ => Failure::UpstreamInvalid(format!(
            "bad answer from the identity server at {address}: {}",
            e.etype().as_str()
        )),
    }
}
