//! Hostile transport: clients that trickle, oversize or garble their request heads, and requests
//! caught in flight by a SIGTERM. Raw TCP clients against the real binary and the Rust echo
//! upstream (`/slow/<ms>` answers after a delay).
//!
//! Bounds in here are generous limits on how long a test may hang, never timing assertions.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::hookgate::Hookgate;
use common::upstream::Upstream;
use common::wait_for;
use serde_json::Value;

/// Read what the server sends until it closes (at most `limit`).
fn read_until_close(s: &mut TcpStream, limit: Duration) -> String {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "no close within {limit:?} ({e}); got so far: {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Read one response with a Content-Length body (a connection that stays open).
fn read_response(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if out.len() >= end + 4 + len {
                return text;
            }
        }
    }
}

/// The JSON body of a raw response.
fn json_body(response: &str) -> Value {
    let (_, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not a response: {response:?}"));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {response:?}"))
}

#[test]
fn a_client_trickling_header_lines_is_answered_408_at_the_header_deadline() {
    let up = Upstream::start();
    let hg = Hookgate::start(&up.address(), "header_read_timeout_ms = 1000", "", "");
    let mut s = TcpStream::connect(hg.addr).unwrap();
    // A first, ordinary request on the connection: the deadline is for each head, not the
    // connection.
    s.write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut s).starts_with("HTTP/1.1 200"));
    // Then a head that never ends: a header line every 300 ms, for much longer than the
    // deadline (pingora alone times each read, so this would be held open for ever).
    let mut writer = s.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        let _ = writer.write_all(b"GET /second HTTP/1.1\r\nHost: x\r\n");
        let stop = Instant::now() + Duration::from_secs(30);
        while Instant::now() < stop {
            std::thread::sleep(Duration::from_millis(300));
            if writer.write_all(b"X-Trickle: 1\r\n").is_err() {
                return;
            }
        }
    });
    let response = read_until_close(&mut s, Duration::from_secs(20));
    assert!(response.starts_with("HTTP/1.1 408"), "{response:?}");
    let body = json_body(&response);
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("1000 ms"),
        "{body}"
    );
    trickle.join().unwrap();
    assert!(
        !up.seen
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("/second")),
        "the unfinished request never reaches the upstream"
    );
}

#[test]
fn a_connection_that_sends_nothing_is_closed_at_the_header_deadline() {
    let up = Upstream::start();
    let hg = Hookgate::start(&up.address(), "header_read_timeout_ms = 500", "", "");
    let mut s = TcpStream::connect(hg.addr).unwrap();
    // pingora alone would keep it for its 60 s keep-alive timeout.
    assert_eq!(read_until_close(&mut s, Duration::from_secs(20)), "");
}

#[test]
fn a_request_pingora_cannot_parse_is_answered_in_the_oauth_json_shape() {
    let up = Upstream::start();
    let hg = Hookgate::start(&up.address(), "", "", "");
    for head in [
        &b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(hg.addr).unwrap();
        s.write_all(head).unwrap();
        let response = read_until_close(&mut s, Duration::from_secs(20));
        assert!(response.starts_with("HTTP/1.1 400"), "{response:?}");
        let body = json_body(&response);
        assert_eq!(body["error"], "invalid_request", "{response}");
        assert!(
            response
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{response}"
        );
    }
}

const TOKEN_ROUTE: &str = "[[route]]\nname = \"token\"\npath = \"/oauth/token\"\n\
    point = \"credentials-exchange\"\nupstream_path = \"/slow/{ms}\"\n";

fn token_route(upstream_ms: u64) -> String {
    TOKEN_ROUTE.replace("{ms}", &upstream_ms.to_string())
}

const FORM: &str = "grant_type=client_credentials&client_id=a&client_secret=b";

fn token_request(extra_header: &str) -> Vec<u8> {
    format!(
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\n{extra_header}\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{FORM}",
        FORM.len()
    )
    .into_bytes()
}

#[test]
fn oversized_headers_on_an_exchange_route_get_431_without_contacting_the_upstream() {
    let up = Upstream::start();
    let hg = Hookgate::start(
        &up.address(),
        "max_header_bytes = 8192",
        "",
        &token_route(0),
    );
    let big = format!("X-Big: {}\r\n", "a".repeat(20_000));
    let mut s = TcpStream::connect(hg.addr).unwrap();
    s.write_all(&token_request(&big)).unwrap();
    let response = read_until_close(&mut s, Duration::from_secs(20));
    assert!(response.starts_with("HTTP/1.1 431"), "{response:?}");
    let body = json_body(&response);
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"].as_str().unwrap().contains("8192"),
        "names the limit: {body}"
    );
    assert!(
        up.seen.lock().unwrap().is_empty(),
        "the upstream was contacted: {:?}",
        up.seen.lock().unwrap()
    );
    // Under the limit, the same request goes through.
    let mut s = TcpStream::connect(hg.addr).unwrap();
    s.write_all(&token_request("X-Small: a\r\n")).unwrap();
    assert!(read_response(&mut s).starts_with("HTTP/1.1 200"));
}

/// Send a token request on a fresh connection; returns it once the upstream has the request.
fn token_in_flight(hg: &Hookgate, up: &Upstream, upstream_ms: u64) -> TcpStream {
    let mut s = TcpStream::connect(hg.addr).unwrap();
    s.write_all(&token_request("")).unwrap();
    let path = format!("/slow/{upstream_ms}");
    wait_for(
        "the upstream to get the request",
        Duration::from_secs(10),
        || up.seen.lock().unwrap().iter().any(|l| l.contains(&path)),
    );
    s
}

const SIGNUP_ROUTE: &str = "[[route]]\nname = \"signup\"\npath = \"/dbconnections/signup\"\n\
    point = \"pre-user-registration\"\nupstream_path = \"/slow/60001\"\n";

#[test]
fn sigterm_answers_exchange_requests_still_in_flight_503_in_their_routes_shape() {
    let up = Upstream::start();
    let mut hg = Hookgate::start(
        &up.address(),
        "grace_period_secs = 1",
        "read_timeout_ms = 120000",
        &format!("{}{SIGNUP_ROUTE}", token_route(60_000)),
    );
    let mut token = token_in_flight(&hg, &up, 60_000);
    let mut signup = TcpStream::connect(hg.addr).unwrap();
    let body = r#"{"email":"a@b.example","password":"pw-123456","connection":"db"}"#;
    signup
        .write_all(
            format!(
                "POST /dbconnections/signup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    wait_for(
        "the upstream to get the signup",
        Duration::from_secs(10),
        || {
            up.seen
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("/slow/60001"))
        },
    );
    hg.signal("TERM");
    let response = read_until_close(&mut token, Duration::from_secs(20));
    assert!(
        response.starts_with("HTTP/1.1 503"),
        "{response:?}\n{}",
        hg.log()
    );
    assert_eq!(json_body(&response)["error"], "temporarily_unavailable");
    let response = read_until_close(&mut signup, Duration::from_secs(20));
    assert!(response.starts_with("HTTP/1.1 503"), "{response:?}");
    let body = json_body(&response);
    assert_eq!(
        (&body["code"], &body["statusCode"]),
        (&Value::from("temporarily_unavailable"), &Value::from(503)),
        "Auth0's signup error shape: {body}"
    );
    let status = hg
        .wait_exit(Duration::from_secs(20))
        .expect("hookgate exits after answering");
    assert!(status.success(), "{status}");
}

#[test]
fn sigterm_lets_an_exchange_request_use_the_whole_grace_period() {
    // The upstream answers 4.3 s after it gets the request, inside a 5 s grace period (before,
    // pingora stopped its runtimes at grace − 1 s and the request was cut without an answer).
    let up = Upstream::start();
    let mut hg = Hookgate::start(
        &up.address(),
        "grace_period_secs = 5",
        "read_timeout_ms = 60000",
        &token_route(4_300),
    );
    let mut s = token_in_flight(&hg, &up, 4_300);
    hg.signal("TERM");
    let response = read_until_close(&mut s, Duration::from_secs(20));
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "{response:?}\n{}",
        hg.log()
    );
    assert!(hg.wait_exit(Duration::from_secs(20)).is_some());
}
