//! Hostile egress: `[hooks.egress]` holds on every redirect hop (the allow-list refuses a hop to a
//! forbidden host before anything is sent to it, the redirection map sends a hop to its stub), the
//! log names the host actually reached, and `max_concurrent` caps the process's outbound requests
//! in flight so a hook opening thousands of fetches cannot take the file descriptors hookgate
//! needs to accept connections.

mod common;
mod engine_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::hookgate::Hookgate;
use common::oidc::{self, OidcServer};
use engine_support::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Every log line of this test binary (see `engine_support::global_logs`).
fn logs() -> &'static LogBuffer {
    global_logs()
}

/// The log line containing every one of `needles`; waits a little for it (the egress task logs
/// just before it hands the answer back).
fn log_line(needles: &[&str]) -> String {
    // Bounded, not timed: under a loaded machine (tests of this file run in parallel, the flood
    // ones keep the egress thread busy) a line can take seconds to come.
    for _ in 0..500 {
        let text = String::from_utf8(logs().0.lock().unwrap().clone()).unwrap();
        if let Some(l) = text.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            return l.to_owned();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = String::from_utf8(logs().0.lock().unwrap().clone()).unwrap();
    panic!("no log line with {needles:?} in:\n{text}");
}

/// A server answering every request with a redirect to `location`.
async fn redirecting_to(
    status: &'static str,
    location: String,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) {
    http_server(move |_| {
        (
            status,
            vec![("location".to_owned(), location.clone())],
            Vec::new(),
        )
    })
    .await
}

#[test]
fn a_redirect_from_an_allowed_host_to_a_forbidden_one_is_refused_before_anything_is_sent() {
    logs();
    let rt = rt();
    let (forbidden, mut forbidden_seen) = rt.block_on(echo_server());
    for status in ["302 Found", "307 Temporary Redirect"] {
        let (allowed, mut allowed_seen) =
            rt.block_on(redirecting_to(status, format!("{forbidden}/steal?token=1")));
        let (_dir, h, engine) = single(
            "module.exports = function (cb) { fetch('http://api.allowed.example/start', { method: 'POST', body: 'secret' }).then(function (r) { cb(null, 'reached ' + r.status); }, function (e) { cb(null, e.message + ' / ' + e.cause.code); }); };",
            &format!(
                "[egress]\nallow_hosts = [\"api.allowed.example\"]\n[egress.redirect]\n\"api.allowed.example\" = \"{allowed}\""
            ),
            1,
        );
        assert_eq!(
            rt.block_on(engine.call(&h, vec![], "r")).unwrap(),
            json!("fetch failed: host `127.0.0.1` is not in [hooks.egress] allow_hosts / ERR_HOOKGATE_EGRESS"),
            "after {status}"
        );
        assert_eq!(next_request(&rt, &mut allowed_seen)["path"], "/start");
        // The refusal came before any connection to the forbidden host: by the time the hook had
        // its answer, a request sent there would have been received.
        assert!(
            forbidden_seen.try_recv().is_err(),
            "the forbidden host received a request after {status}"
        );
        let line = log_line(&[
            "outbound request failed",
            "hops=api.allowed.example -> 127.0.0.1",
        ]);
        assert!(line.contains("host=127.0.0.1"), "{line}");
    }
}

#[test]
fn node_http_hands_the_redirect_back_without_following_it() {
    let rt = rt();
    let (forbidden, mut forbidden_seen) = rt.block_on(echo_server());
    let (allowed, _seen) = rt.block_on(redirecting_to("302 Found", format!("{forbidden}/x")));
    let (_dir, h, engine) = single(
        "const http = require('http'); module.exports = function (cb) { http.get('http://api.allowed.example/start', function (res) { res.resume(); cb(null, [res.statusCode, res.headers.location]); }).on('error', function (e) { cb(e); }); };",
        &format!(
            "[egress]\nallow_hosts = [\"api.allowed.example\"]\n[egress.redirect]\n\"api.allowed.example\" = \"{allowed}\""
        ),
        1,
    );
    assert_eq!(
        rt.block_on(engine.call(&h, vec![], "r")).unwrap(),
        json!([302, format!("{forbidden}/x")])
    );
    assert!(forbidden_seen.try_recv().is_err());
}

#[test]
fn a_redirect_to_a_host_in_the_redirection_map_goes_to_its_stub_and_the_log_names_that_host() {
    logs();
    let rt = rt();
    let (stub, mut stub_seen) = rt.block_on(echo_server());
    let (first, _seen) = rt.block_on(redirecting_to(
        "303 See Other",
        "https://stub.example/callback-3f9?x=1".to_owned(),
    ));
    let (_dir, h, engine) = single(
        "module.exports = async function (cb) { const r = await fetch('http://api.first.example/go', { method: 'POST', body: 'b', headers: { authorization: 'Bearer t' } }); cb(null, { status: r.status, url: r.url, redirected: r.redirected }); };",
        &format!(
            "[egress]\nallow_hosts = [\"api.first.example\", \"stub.example\"]\n[egress.redirect]\n\"api.first.example\" = \"{first}\"\n\"stub.example\" = \"{stub}\""
        ),
        1,
    );
    assert_eq!(
        rt.block_on(engine.call(&h, vec![], "r")).unwrap(),
        json!({ "status": 200, "url": "https://stub.example/callback-3f9?x=1", "redirected": true })
    );
    let req = next_request(&rt, &mut stub_seen);
    // 303: a GET without the body; another origin: without the credentials.
    assert_eq!(req["method"], "GET");
    assert_eq!(req["path"], "/callback-3f9?x=1");
    assert_eq!(req["headers"]["host"], "stub.example");
    assert_eq!(req["headers"].get("authorization"), None);
    assert_eq!(req["body"], "");
    let line = log_line(&["outbound request", "hops=api.first.example -> stub.example"]);
    assert!(line.contains("host=stub.example"), "{line}");
    assert!(line.contains("status=200"), "{line}");
}

#[test]
fn a_redirect_loop_ends_with_an_error() {
    let rt = rt();
    let (url, _seen) = rt.block_on(http_server(|seen| {
        let n: u32 = seen["path"].as_str().unwrap()[1..].parse().unwrap_or(0);
        (
            "302 Found",
            vec![("location".to_owned(), format!("/{}", n + 1))],
            Vec::new(),
        )
    }));
    let (_dir, h, engine) = single(
        &format!("module.exports = function (cb) {{ fetch('{url}/0').then(function () {{ cb(null, 'ended'); }}, function (e) {{ cb(null, e.cause.code); }}); }};"),
        "",
        1,
    );
    assert_eq!(
        rt.block_on(engine.call(&h, vec![], "r")).unwrap(),
        json!("ERR_HOOKGATE_TOO_MANY_REDIRECTS")
    );
}

/// An HTTP server that holds every connection `hold` before answering (`connection: close`, so
/// one request is one connection) and records the most connections it held unanswered at once.
struct Counting {
    url: String,
    open: Arc<AtomicUsize>,
    max_open: Arc<AtomicUsize>,
    served: Arc<AtomicUsize>,
}

async fn counting_server(hold: Duration) -> Counting {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let open = Arc::new(AtomicUsize::new(0));
    let max_open = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let (o, m, s) = (open.clone(), max_open.clone(), served.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let now = o.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            let (o, s) = (o.clone(), s.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                tokio::time::sleep(hold).await;
                // Counted out before the answer is written: the client's slot is released only
                // once it has read the answer, so the count never runs ahead of the client's.
                o.fetch_sub(1, Ordering::SeqCst);
                s.fetch_add(1, Ordering::SeqCst);
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Counting {
        url,
        open,
        max_open,
        served,
    }
}

#[test]
fn a_fetch_flood_from_one_hook_stays_under_max_concurrent_and_every_request_completes() {
    let rt = rt();
    let server = rt.block_on(counting_server(Duration::from_millis(10)));
    let (_dir, h, engine) = single(
        &format!(
            "module.exports = async function (cb) {{ const all = []; for (let i = 0; i < 200; i++) all.push(fetch('{}/' + i).then(function (r) {{ return r.status; }})); const s = await Promise.all(all); cb(null, s.filter(function (x) {{ return x === 200; }}).length); }};",
            server.url
        ),
        "timeout_ms = 20000\n[egress]\nmax_concurrent = 8",
        1,
    );
    assert_eq!(
        rt.block_on(engine.call(&h, vec![], "r")).unwrap(),
        json!(200)
    );
    assert_eq!(server.served.load(Ordering::SeqCst), 200);
    let max = server.max_open.load(Ordering::SeqCst);
    assert!(max <= 8, "{max} connections were open at once");
    let _ = &server.open;
}

const ROUTES: &str =
    "[[route]]\nname = \"token\"\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\n\
     upstream_path = \"/token\"\naudience_param = \"resource\"\n\
     [[route]]\nname = \"flood\"\npath = \"/flood/token\"\npoint = \"credentials-exchange\"\n\
     upstream_path = \"/token\"\naudience_param = \"resource\"\n";

#[test]
fn while_one_hook_floods_the_network_hookgate_keeps_answering_other_clients() {
    let idp = OidcServer::start();
    let rt = rt();
    let server = rt.block_on(counting_server(Duration::from_millis(50)));
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks").join("credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    // 3,000 requests started, cb called at once: the flood goes on after the answer.
    std::fs::write(
        hooks.join("flood.js"),
        format!(
            "module.exports = function (client, scope, audience, context, cb) {{ for (let i = 0; i < 3000; i++) fetch('{}/' + i).catch(function () {{}}); cb(null, {{}}); }};",
            server.url
        ),
    )
    .unwrap();
    let hg = Hookgate::start_in(
        dir,
        &idp.addr(),
        "",
        "",
        &format!(
            "{ROUTES}[hooks]\ndir = \"hooks\"\nworkers = 2\n[hooks.egress]\nmax_concurrent = 32\n\
             [[hooks.hook]]\nfile = \"credentials-exchange/flood.js\"\nroutes = [\"flood\"]\ntimeout_ms = 15000\n"
        ),
    );
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", oidc::POST_CLIENT_ID),
        ("client_secret", oidc::POST_CLIENT_SECRET),
        ("audience", oidc::AUDIENCE),
    ];
    rt.block_on(async {
        let client = reqwest::Client::new();
        let r = client
            .post(hg.url("/flood/token"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", hg.log());
        // The flood is under way once the cap's worth of connections has come.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while server.served.load(Ordering::SeqCst) < 64 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the flood never came\n{}",
                hg.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for _ in 0..10 {
            let r = client
                .post(hg.url("/oauth/token"))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", hg.log());
        }
        assert!(
            server.served.load(Ordering::SeqCst) < 3000,
            "the flood was over before the other client's requests: the test saw nothing"
        );
    });
    let max = server.max_open.load(Ordering::SeqCst);
    assert!(max <= 32, "{max} outbound connections were open at once");
}

#[test]
fn a_request_over_max_concurrent_waits_for_a_slot_until_its_hooks_timeout() {
    logs();
    let rt = rt();
    let silent = silent_server(&rt);
    let (url, mut seen) = rt.block_on(echo_server());
    // The first request holds the only slot and is never answered; the second waits for it.
    let (_dir, h, engine) = single(
        &format!(
            "module.exports = function (cb) {{ fetch('http://127.0.0.1:{silent}/hold').catch(function () {{}}); fetch('{url}/queued-7c1').catch(function () {{}}); cb(null, 'started'); }};"
        ),
        "timeout_ms = 500\n[egress]\nmax_concurrent = 1",
        1,
    );
    assert_eq!(
        rt.block_on(engine.call(&h, vec![], "r")).unwrap(),
        json!("started")
    );
    // The hook's deadline ends the wait (the worker abandons the request, or the egress's own
    // timeout, the same deadline, fires first): either way the log says it never had a slot.
    log_line(&[
        "still waiting for an outbound request slot",
        "the process's 1 of [hooks.egress] max_concurrent",
    ]);
    assert!(
        seen.try_recv().is_err(),
        "the queued request went out while the slot was held"
    );
}

#[test]
fn a_307_keeps_the_method_body_and_same_origin_credentials() {
    let rt = rt();
    let (url, mut seen) = rt.block_on(http_server(|seen| {
        if seen["path"] == "/old" {
            (
                "307 Temporary Redirect",
                vec![("location".to_owned(), "/new".to_owned())],
                Vec::new(),
            )
        } else {
            ("200 OK", Vec::new(), b"moved".to_vec())
        }
    }));
    let (_dir, h, engine) = single(
        &format!("module.exports = async function (cb) {{ const r = await fetch('{url}/old', {{ method: 'PUT', body: 'payload', headers: {{ authorization: 'Bearer t' }} }}); cb(null, [r.status, await r.text(), r.redirected]); }};"),
        "",
        1,
    );
    assert_eq!(
        rt.block_on(engine.call(&h, vec![], "r")).unwrap(),
        json!([200, "moved", true])
    );
    next_request(&rt, &mut seen);
    let req = next_request(&rt, &mut seen);
    assert_eq!(req["path"], "/new");
    assert_eq!(req["method"], "PUT");
    assert_eq!(req["body"], "payload");
    assert_eq!(req["headers"]["authorization"], "Bearer t");
}
