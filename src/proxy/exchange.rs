//! Exchange routes: hookgate owns the whole exchange instead of letting pingora stream it.
//!
//! The body is read whole (bounded by `server.max_body_bytes`, and by a read timeout so a
//! slow-drip client cannot hold a request open forever), the request goes upstream through
//! [`super::upstream::Upstream`], and the answer is written back with an exact
//! `Content-Length`. The extensibility points plug in between those steps.
//!
//! Before any of it, a request head larger than `server.max_header_bytes` is answered 431 (the
//! upstream would refuse it, and the refusal would look like the upstream's failure). While it
//! runs, a SIGTERM whose grace period ends ([`end_grace`]) makes the exchange answer 503
//! `temporarily_unavailable` in its route's shape instead of being cut by the exit.
//!
//! ```text
//! head size ─▶ body (bounded) ─▶ point.before_upstream ─┬─ Forward ─▶ upstream ─▶ point.after_upstream ─▶ answer
//!                                                       └─ Answer ─────────────────────────────────────▶ answer
//! any failure ─▶ respond::render in the point's shape
//! ```
//!
//! Must not: name any point or know its hook contract: the route's point comes from
//! [`crate::points::for_route`], and what it declares (its phases, its error shape) is all this
//! file uses.

use std::sync::LazyLock;

use bytes::{Bytes, BytesMut};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::protocols::http::v1::common::is_expect_continue_req;
use pingora::proxy::Session;
use tokio::sync::watch;

use super::respond::render;
use super::upstream::UpstreamResponse;
use super::{Proxy, RequestCtx};
use crate::config::Config;
use crate::points::{
    self, Answer, Before, Context, Events, Failure, HeaderEdit, HookChain, Phases, Request, Tokens,
};
use crate::wire::headers::Headers;

/// Hop-by-hop headers (RFC 9110 §7.6.1) never cross the proxy on the exchange path: hookgate
/// frames both sides itself.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
];

/// Set once a SIGTERM's grace period is over (the server's shutdown, `server.rs`): exchange
/// requests still in flight then answer 503 in their route's shape instead of being cut when the
/// process exits.
static GRACE_OVER: LazyLock<watch::Sender<bool>> = LazyLock::new(|| watch::channel(false).0);

/// The grace period is over: every exchange request still in flight answers 503 now.
pub fn end_grace() {
    GRACE_OVER.send_replace(true);
}

async fn grace_over() {
    let mut rx = GRACE_OVER.subscribe();
    // The sender is a static: it is never dropped, so this only returns once the flag is set.
    let _ = rx.wait_for(|over| *over).await;
}

/// Handle an exchange route completely; the response has been written when this returns Ok.
pub async fn handle(proxy: &Proxy, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
    let live = ctx.live.clone();
    let route = live
        .route(ctx.route)
        .expect("exchange::handle is only called for a matched route");
    let point = points::for_route(&route.kind)
        .expect("exchange::handle is only called for a route whose point a route can start");
    // A head larger than the upstream takes would come back as a reset or a 431 blamed on the
    // upstream (a 502): refuse it here, before the body is read or the upstream is contacted.
    let limit = live.config.server.max_header_bytes;
    let size = head_size(session.req_header());
    if size > limit {
        session.set_keepalive(None);
        let err = Failure::HeadTooLarge(format!(
            "the request headers are {size} bytes; at most {limit} are accepted (server.max_header_bytes)"
        ));
        return render(&err, point.shape()).write(session).await;
    }
    let answered = {
        let work = exchange(proxy, &*point, session, ctx);
        tokio::pin!(work);
        tokio::select! {
            biased;
            done = &mut work => Some(done),
            _ = grace_over() => None,
        }
    };
    if let Some(done) = answered {
        return done;
    }
    // Shutting down and the grace period is over. The work was dropped where it stood; answer
    // unless part of an answer is already on the wire (then closing is all that is left).
    session.set_keepalive(None);
    if session.response_written().is_some() {
        return Error::e_explain(ErrorType::WriteError, "cut by shutdown mid-answer");
    }
    tracing::warn!(request_id = %ctx.request_id(), route = %route.name, "grace period over while in flight; answering 503");
    let err = Failure::Unavailable("hookgate is shutting down; retry the request".into());
    render(&err, point.shape()).write(session).await
}

/// The size of a request head as sent: request line and header lines with their line ends.
fn head_size(req: &RequestHeader) -> usize {
    let line = req.method.as_str().len() + req.uri.to_string().len() + 12;
    req.headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + line
        + 2
}

/// The exchange itself: body, point, upstream, answer.
async fn exchange(
    proxy: &Proxy,
    point: &dyn Phases,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<()> {
    let live = ctx.live.clone();
    let route = live
        .route(ctx.route)
        .expect("exchange::handle is only called for a matched route");
    let body = match read_body(&live.config, session).await {
        Ok(body) => body,
        Err(err) => {
            // The rest of the body is unread: this connection cannot carry another request.
            session.set_keepalive(None);
            return render(&err, point.shape()).write(session).await;
        }
    };
    let mut req = session.req_header().clone();
    // What routing decided the upstream reads (`super::routing`).
    if let Some(uri) = &ctx.upstream_uri {
        req.set_uri(uri.clone());
    }
    strip_for_upstream(&mut req);
    super::routing::strip_overrides(&live.config.routes, &mut req);
    let request_id = ctx.request_id().to_string();
    let request_id = request_id.as_str();
    let facts = live.generation.has_actions().then(|| {
        let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
        crate::hooks::actions::facts(
            session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip().to_string()),
            header("host"),
            header("user-agent"),
            crate::wire::headers::request_language(header("accept-language")),
            req.method.as_str(),
            &live.config.tenant.name,
        )
    });
    let cx = Context {
        request_id,
        route: &route.name,
        request: Request {
            headers: text_headers(&req),
            body,
        },
        config: &live.config,
        tokens: Tokens {
            upstream_keys: &proxy.upstream_keys,
            signing: live.keys.as_ref(),
        },
        hooks: HookChain {
            engine: &proxy.engine,
            generation: &live.generation,
            generation_number: live.number,
            runs: &proxy.runs,
            inflight: &proxy.inflight,
            request_id,
            route: &route.name,
            facts,
        },
        events: Events {
            outbox: &proxy.outbox,
            request_id,
            route: &route.name,
        },
    };
    let answer = match point.before_upstream(&cx).await {
        Ok(Before::Answer(answer)) => own_answer(answer),
        Ok(Before::Forward(forward, pending)) => {
            let body = forward.body.unwrap_or_else(|| cx.request.body.clone());
            match edit(&mut req, forward.headers) {
                Err(err) => Err(err),
                Ok(()) => match proxy.upstream.send(req, body).await {
                    Err(err) => Err(err),
                    Ok(resp) => {
                        let answer = Answer {
                            status: resp.header.status.as_u16(),
                            body: resp.body,
                        };
                        point
                            .after_upstream(&cx, pending, answer)
                            .await
                            .map(|answer| UpstreamResponse {
                                header: resp.header,
                                body: answer.body,
                            })
                    }
                },
            }
        }
        Err(err) => Err(err),
    };
    match answer {
        Ok(resp) => write_upstream_response(session, resp).await,
        Err(err) => {
            let err = render(&err, point.shape());
            if matches!(err.status, 502 | 504) {
                tracing::warn!(request_id, route = %route.name, error = %err, "upstream failed");
            }
            err.write(session).await
        }
    }
}

/// The request's headers as the point reads them: text, names in lower case.
fn text_headers(req: &RequestHeader) -> Headers {
    let mut headers = Headers::new();
    for (name, value) in req.headers.iter() {
        headers.push(name.as_str(), value.to_str().ok());
    }
    headers
}

/// Apply a point's changes to the request head, in order.
fn edit(req: &mut RequestHeader, edits: Vec<HeaderEdit>) -> std::result::Result<(), Failure> {
    for e in edits {
        match e {
            HeaderEdit::Set(name, value) => {
                req.insert_header(name, value).map_err(|e| {
                    Failure::Internal(format!("cannot build the upstream request: {e}"))
                })?;
            }
            HeaderEdit::Remove(name) => {
                req.remove_header(name);
            }
        }
    }
    Ok(())
}

/// An answer a point gives itself (the upstream was not called): JSON.
fn own_answer(answer: Answer) -> std::result::Result<UpstreamResponse, Failure> {
    let internal = |e: Box<Error>| Failure::Internal(e.to_string());
    let mut header = ResponseHeader::build(answer.status, Some(2)).map_err(internal)?;
    header
        .insert_header("content-type", "application/json")
        .map_err(internal)?;
    Ok(UpstreamResponse {
        header,
        body: answer.body,
    })
}

/// Read the whole request body, refusing more than the limit and a client that sends too slowly.
pub async fn read_body(
    config: &Config,
    session: &mut Session,
) -> std::result::Result<Bytes, Failure> {
    let limit = config.server.max_body_bytes;
    let too_large =
        || Failure::BodyTooLarge(format!("the request body is larger than {limit} bytes"));
    let declared = session
        .req_header()
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    // A client that asked to be told before sending its body (curl does above 1 KiB) would
    // otherwise wait out its own timer, a second for curl, on every request.
    if is_expect_continue_req(session.req_header()) {
        session.write_continue_response().await.map_err(|e| {
            Failure::BadRequest(format!(
                "cannot answer Expect: 100-continue: {}",
                e.etype().as_str()
            ))
        })?;
    }
    // One deadline for the whole body, not per chunk: a client dripping a byte at a time must
    // not hold the request open for longer than the timeout.
    let timeout = config.server.body_read_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = BytesMut::new();
    loop {
        let chunk = match tokio::time::timeout_at(deadline, session.read_request_body()).await {
            Err(_) => {
                return Err(Failure::BodyTooSlow(format!(
                    "the request body did not arrive within {} ms",
                    timeout.as_millis()
                )))
            }
            Ok(Err(e)) => {
                return Err(Failure::BadRequest(format!(
                    "cannot read the request body: {}",
                    e.etype().as_str()
                )))
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => chunk,
        };
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// What of the client's request head does not go upstream on an exchange route.
fn strip_for_upstream(req: &mut RequestHeader) {
    for h in HOP_BY_HOP {
        req.remove_header(h);
    }
    // hookgate has the whole body and sends it at once: the expectation was met here, and an
    // upstream asked again would only answer an extra 100 Continue.
    req.remove_header("expect");
    // hookgate reads the upstream's answer (the token, the new user): a gzipped one would be
    // refused as not JSON. Most HTTP clients ask for gzip, and many servers compress JSON.
    req.remove_header("accept-encoding");
}

/// Write an upstream (or rewritten) answer downstream with exact framing.
pub async fn write_upstream_response(session: &mut Session, resp: UpstreamResponse) -> Result<()> {
    let mut header =
        ResponseHeader::build(resp.header.status, Some(resp.header.headers.len() + 1))?;
    for (name, value) in resp.header.headers.iter() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            header.append_header(name.clone(), value.clone())?;
        }
    }
    header.insert_header("content-length", resp.body.len().to_string())?;
    session
        .write_response_header(Box::new(header), false)
        .await?;
    session.write_response_body(Some(resp.body), true).await
}
