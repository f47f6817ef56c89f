//! Outbound requests against a local HTTP server: the fetch global, work after cb completing on
//! the worker, and `[hooks.egress]` (allow-list, redirection with the Host header kept).

mod engine_support;

use engine_support::*;
use hookgate::engine::{Engine, HookError};
use serde_json::json;

#[test]
fn fetch_sends_method_headers_and_body_and_reads_the_response() {
    let rt = rt();
    let (url, _seen) = rt.block_on(echo_server());
    let (_dir, h, engine) = single(
        r#"module.exports = async function (url, cb) {
            const res = await fetch(url + '/echo?x=1', { method: 'post', headers: { 'X-Token': 'abc', 'Content-Type': 'application/json' }, body: JSON.stringify({ hello: 'world' }) });
            const data = await res.json();
            const missing = await fetch(url + '/missing');
            cb(null, { status: res.status, ok: res.ok, echo: res.headers.get('X-Echo'), method: data.method, path: data.path,
                       token: data.headers['x-token'], body: JSON.parse(data.body), missing: [missing.status, missing.ok, await missing.text()] });
        };"#,
        "",
        1,
    );
    let r = rt.block_on(engine.call(&h, vec![json!(url)], "r")).unwrap();
    assert_eq!(
        r,
        json!({ "status": 200, "ok": true, "echo": "yes", "method": "POST", "path": "/echo?x=1", "token": "abc",
                "body": {"hello": "world"}, "missing": [404, false, "{\"error\":\"nope\"}"] })
    );
}

#[test]
fn fetch_started_before_cb_completes_after_the_caller_has_its_answer() {
    let rt = rt();
    let (url, mut seen) = rt.block_on(echo_server());
    let (_dir, h, engine) = single(
        "module.exports = function (url, cb) { setTimeout(function () { fetch(url + '/after-cb', { method: 'POST', body: 'late' }); }, 20); cb(null, 'answered'); };",
        "",
        1,
    );
    let r = rt.block_on(engine.call(&h, vec![json!(url)], "r"));
    assert_eq!(r, Ok(json!("answered")));
    let req = next_request(&rt, &mut seen);
    assert_eq!(req["path"], "/after-cb");
    assert_eq!(req["body"], "late");
}

#[test]
fn fetch_to_a_host_outside_the_allow_list_is_refused() {
    let rt = rt();
    let (url, _seen) = rt.block_on(echo_server());
    let (_dir, h, engine) = single(
        "module.exports = function (url, cb) { fetch(url).then(function () { cb(null, 'reached'); }, function (e) { cb(null, [e.name, e.message]); }); };",
        "[fetch]\nallow_hosts = [\"*.example.com\"]",
        1,
    );
    let r = rt.block_on(engine.call(&h, vec![json!(url)], "r")).unwrap();
    assert_eq!(
        r,
        json!([
            "TypeError",
            "fetch failed: host `127.0.0.1` is not in [hooks.egress] allow_hosts"
        ])
    );
}

#[test]
fn a_fetch_that_outlives_the_hook_timeout_is_a_timeout() {
    let rt = rt();
    let url = format!("http://127.0.0.1:{}", silent_server(&rt));
    let (_dir, h, engine) = single(
        "module.exports = function (url, cb) { fetch(url).then(function () { cb(null, 'answered'); }); };",
        "timeout_ms = 300",
        1,
    );
    assert_eq!(
        rt.block_on(engine.call(&h, vec![json!(url)], "r")),
        Err(HookError::Timeout)
    );
    let _ = Engine::start(&config("")).unwrap();
}

#[test]
fn a_redirected_host_reaches_the_local_server_with_path_query_and_its_own_host_header() {
    let rt = rt();
    let (url, mut seen) = rt.block_on(echo_server());
    let (_dir, h, engine) = single(
        r#"module.exports = async function (cb) {
            const res = await fetch('https://api.crm.example/v1/contacts?email=a%40b.example', { method: 'PUT', body: new Uint8Array([104, 105]) });
            const bytes = new Uint8Array(await res.arrayBuffer());
            cb(null, { status: res.status, first: bytes[0] });
        };"#,
        &format!(
            "[egress]\nallow_hosts = [\"api.crm.example\"]\n[egress.redirect]\n\"api.crm.example\" = \"{url}\""
        ),
        1,
    );
    let r = rt.block_on(engine.call(&h, vec![], "r")).unwrap();
    assert_eq!(r, json!({ "status": 200, "first": u32::from(b'{') }));
    let req = next_request(&rt, &mut seen);
    assert_eq!(req["method"], "PUT");
    assert_eq!(req["path"], "/v1/contacts?email=a%40b.example");
    assert_eq!(req["headers"]["host"], "api.crm.example");
    assert_eq!(req["body"], "hi");
}

#[test]
fn the_allow_list_is_checked_on_the_host_the_hook_named_not_the_redirect_target() {
    let rt = rt();
    let (url, _seen) = rt.block_on(echo_server());
    let (_dir, h, engine) = single(
        "module.exports = function (cb) { fetch('http://evil.example/x').then(function () { cb(null, 'reached'); }, function (e) { cb(null, e.message); }); };",
        &format!(
            "[egress]\nallow_hosts = [\"api.crm.example\"]\n[egress.redirect]\n\"evil.example\" = \"{url}\""
        ),
        1,
    );
    assert_eq!(
        rt.block_on(engine.call(&h, vec![], "r")).unwrap(),
        json!("fetch failed: host `evil.example` is not in [hooks.egress] allow_hosts")
    );
}
