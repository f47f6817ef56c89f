//! Node's behaviour on failure, where the Node-compatibility suite (`tests/node_compat.rs`)
//! cannot show it: its Node reference removes Node 20's `fetch` (Auth0's Node had none), and it
//! cannot redirect a host to a closed port on one side only. The Node values pinned here were
//! read from Node 20 (`fetch('http://127.0.0.1:<closed>/')` and friends); the TLS case asks a
//! live Node. Also here: the unhandled-rejection timing, `[hooks] node_version`, and fetch's
//! redirect modes.

mod engine_support;

use std::time::{Duration, Instant};

use engine_support::*;
use serde_json::{json, Value};

/// Every log line of this test binary (see `engine_support::global_logs`).
fn logs() -> &'static LogBuffer {
    global_logs()
}

/// The log so far, once it has a line containing `needle` (bounded wait: the line is written by
/// the worker after the call's answer may already be back).
fn logs_with(needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = String::from_utf8_lossy(&logs().0.lock().unwrap()).into_owned();
        if text.contains(needle) || Instant::now() >= deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port on 127.0.0.1 with nothing listening: bound, then released.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Every field a hook might read from an error, and its own keys in order.
const DESCRIBE: &str = r#"
    const describe = (e) => e && ({
        name: e.name, message: e.message, errno: e.errno, code: e.code, syscall: e.syscall,
        address: e.address, port: e.port, hostname: e.hostname, keys: Object.keys(e),
    });
"#;

#[test]
fn fetch_to_a_refused_port_rejects_with_fetch_failed_and_nodes_connect_error_as_cause() {
    let rt = rt();
    let port = closed_port();
    let (_dir, h, engine) = single(
        &format!(
            "{DESCRIBE} module.exports = function (url, cb) {{
                fetch(url).then(() => cb(null, 'reached'), (e) => cb(null, {{ error: describe(e), cause: describe(e.cause) }}));
            }};"
        ),
        "",
        1,
    );
    let url = format!("http://127.0.0.1:{port}/v1/x");
    let r = rt.block_on(engine.call(&h, vec![json!(url)], "r")).unwrap();
    assert_eq!(
        r,
        json!({
            "error": { "name": "TypeError", "message": "fetch failed", "keys": [] },
            "cause": {
                "name": "Error", "message": format!("connect ECONNREFUSED 127.0.0.1:{port}"),
                "errno": -111, "code": "ECONNREFUSED", "syscall": "connect",
                "address": "127.0.0.1", "port": port,
                "keys": ["errno", "code", "syscall", "address", "port"]
            }
        })
    );
}

#[test]
fn fetch_to_an_unknown_host_has_nodes_getaddrinfo_enotfound_as_cause() {
    let rt = rt();
    let (_dir, h, engine) = single(
        &format!(
            "{DESCRIBE} module.exports = function (url, cb) {{
                fetch(url).then(() => cb(null, 'reached'), (e) => cb(null, {{ message: e.message, cause: describe(e.cause) }}));
            }};"
        ),
        "",
        1,
    );
    let r = rt
        .block_on(engine.call(&h, vec![json!("http://nohost.invalid/x")], "r"))
        .unwrap();
    assert_eq!(
        r,
        json!({
            "message": "fetch failed",
            "cause": {
                "name": "Error", "message": "getaddrinfo ENOTFOUND nohost.invalid",
                "errno": -3008, "code": "ENOTFOUND", "syscall": "getaddrinfo",
                "hostname": "nohost.invalid",
                "keys": ["errno", "code", "syscall", "hostname"]
            }
        })
    );
}

/// The hook asked for api.crm.example:443; where `[hooks.egress.redirect]` sent it is hookgate's
/// business. Nothing the hook sees names the target or hookgate's HTTP client.
#[test]
fn a_redirected_host_that_refuses_names_the_hooks_host_not_the_redirect_target() {
    let rt = rt();
    let port = closed_port();
    let (_dir, h, engine) = single(
        &format!(
            "{DESCRIBE} module.exports = function (cb) {{
                const https = require('https');
                https.get('https://api.crm.example/v1/contacts', () => cb(null, 'reached'))
                    .on('error', (e) => fetch('https://api.crm.example/v1/contacts')
                        .then(() => cb(null, 'reached'), (f) => cb(null, {{ http: describe(e), fetch: describe(f.cause) }})));
            }};"
        ),
        &format!("[egress.redirect]\n\"api.crm.example\" = \"http://127.0.0.1:{port}\""),
        1,
    );
    let r = rt.block_on(engine.call(&h, vec![], "r")).unwrap();
    let expected = json!({
        "name": "Error", "message": "connect ECONNREFUSED api.crm.example:443",
        "errno": -111, "code": "ECONNREFUSED", "syscall": "connect",
        "address": "api.crm.example", "port": 443,
        "keys": ["errno", "code", "syscall", "address", "port"]
    });
    assert_eq!(r, json!({ "http": expected, "fetch": expected }));
    let text = r.to_string();
    assert!(
        !text.contains(&port.to_string())
            && !text.contains("reqwest")
            && !text.contains("error sending request"),
        "the hook saw the redirect target or the client: {text}"
    );
    let _: Value = r;
}

/// Node reports a rejection only if it is still unhandled once the microtask queue has drained:
/// a promise awaited a few microtasks after it rejected (what axios and `Promise.all` patterns
/// do) is no error, and one never handled is logged.
#[test]
fn a_rejection_handled_a_few_microtasks_later_is_not_logged_and_a_never_handled_one_is() {
    logs();
    let rt = rt();
    let (_dir, h, engine) = single(
        r#"module.exports = async function (cb) {
            const early = Promise.reject(new Error('handled-after-two-awaits'));
            await null;
            await null;
            try { await early; } catch (e) {}
            Promise.reject(new Error('never-handled-rejection'));
            cb(null, 'done');
        };"#,
        "",
        1,
    );
    assert_eq!(
        rt.block_on(engine.call(&h, vec![], "req-rejections")),
        Ok(json!("done"))
    );
    let text = logs_with("never-handled-rejection");
    assert!(
        text.lines().any(|l| l
            .contains("unhandled promise rejection: Error: never-handled-rejection")
            && l.contains("request_id=req-rejections")),
        "the unhandled rejection was not logged:\n{text}"
    );
    assert!(
        !text.contains("handled-after-two-awaits"),
        "a rejection handled before the microtask queue drained was logged:\n{text}"
    );
}

/// `[hooks] node_version`: what `process.version` says (Auth0's Runner ran Node 12); the
/// default stays Node 20's.
#[test]
fn process_version_is_the_configured_node_version_and_node_20_by_default() {
    let rt = rt();
    let source = "module.exports = function (cb) { cb(null, [process.version, process.versions.node, process.versions.modules, process.release.lts, require('process').version]); };";
    let (_dir, h, engine) = single(source, "node_version = \"v12.22.12\"", 1);
    assert_eq!(
        rt.block_on(engine.call(&h, vec![], "r")).unwrap(),
        json!(["v12.22.12", "12.22.12", "72", "Erbium", "v12.22.12"])
    );
    let (_dir, h, engine) = single(source, "", 1);
    assert_eq!(
        rt.block_on(engine.call(&h, vec![], "r")).unwrap(),
        json!(["v20.11.1", "20.11.1", "115", "Iron", "v20.11.1"])
    );
}

/// A server that answers `/r` with a 302 to `/t`, and `/t` with 200.
async fn redirecting_server() -> String {
    let (url, _seen) = http_server(|seen| {
        if seen["path"] == "/r" {
            (
                "302 Found",
                vec![("location".to_owned(), "/t".to_owned())],
                b"moved".to_vec(),
            )
        } else {
            ("200 OK", vec![], b"target".to_vec())
        }
    })
    .await;
    url
}

/// undici (Node 20's fetch): `redirect: 'manual'` hands back the 3xx itself, `'error'` rejects
/// `TypeError: fetch failed` with cause `unexpected redirect`, the default follows. Values as
/// Node 20 printed them against the same server.
#[test]
fn fetch_redirect_manual_returns_the_3xx_and_error_rejects_as_undici_does() {
    let rt = rt();
    let url = rt.block_on(redirecting_server());
    let (_dir, h, engine) = single(
        r#"module.exports = async function (url, cb) {
            const m = await fetch(url + '/r', { redirect: 'manual' });
            const manual = [m.status, m.redirected, m.headers.get('location'), await m.text()];
            let error;
            try { await fetch(url + '/r', { redirect: 'error' }); error = 'resolved'; }
            catch (e) { error = [e.name, e.message, e.cause && e.cause.name, e.cause && e.cause.message]; }
            const f = await fetch(url + '/r');
            cb(null, { manual, error, follow: [f.status, f.redirected, await f.text()] });
        };"#,
        "",
        1,
    );
    let r = rt.block_on(engine.call(&h, vec![json!(url)], "r")).unwrap();
    assert_eq!(
        r,
        json!({
            "manual": [302, false, "/t", "moved"],
            "error": ["TypeError", "fetch failed", "Error", "unexpected redirect"],
            "follow": [200, true, "target"]
        })
    );
}

/// An https server on 127.0.0.1 with a self-signed certificate (`tests/node-compat/tls/`, made
/// with `openssl req -x509`), run by Node, which also reports what its own `https.get` says
/// about it. Lives as long as the returned child (its stdin is the pipe).
fn self_signed_server() -> (std::process::Child, u16, Value) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node-compat/tls");
    let script = r#"
        const https = require('https'), fs = require('fs'), path = require('path');
        const dir = process.argv[1];
        const s = https.createServer({ key: fs.readFileSync(path.join(dir, 'self-signed.key')),
                                       cert: fs.readFileSync(path.join(dir, 'self-signed.crt')) }, (q, r) => r.end('ok'));
        s.listen(0, '127.0.0.1', () => {
            const port = s.address().port;
            https.get('https://127.0.0.1:' + port + '/').on('error', (e) => {
                process.stdout.write(JSON.stringify({ port, node: { message: e.message, code: e.code, keys: Object.keys(e) } }) + '\n');
            });
        });
        process.stdin.on('end', () => process.exit(0));
        process.stdin.resume();
    "#;
    let mut child = Command::new("node")
        .arg("-e")
        .arg(script)
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node on PATH");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: Value = serde_json::from_str(&line).expect("the server's ready line");
    (
        child,
        ready["port"].as_u64().unwrap() as u16,
        ready["node"].clone(),
    )
}

/// A certificate Node refuses fails under hookgate with Node's code and message (OpenSSL's
/// `self-signed certificate`), for `https` and as `fetch`'s cause, not as a generic hang-up.
#[test]
fn a_self_signed_certificate_fails_with_nodes_tls_error() {
    let (mut server, port, node) = self_signed_server();
    assert_eq!(
        node,
        json!({ "message": "self-signed certificate", "code": "DEPTH_ZERO_SELF_SIGNED_CERT", "keys": ["code"] }),
        "Node's own answer changed"
    );
    let rt = rt();
    let (_dir, h, engine) = single(
        r#"module.exports = function (url, cb) {
            const d = (e) => ({ message: e.message, code: e.code, keys: Object.keys(e) });
            require('https').get(url).on('error', (e) =>
                fetch(url).then(() => cb(null, 'reached'), (f) => cb(null, { https: d(e), fetch: d(f.cause) })));
        };"#,
        "",
        1,
    );
    let url = format!("https://127.0.0.1:{port}/");
    let r = rt.block_on(engine.call(&h, vec![json!(url)], "r")).unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(r, json!({ "https": node, "fetch": node }));
}
