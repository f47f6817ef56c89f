//! console.log/warn/error reach the tracing logs with the hook name and request id; a second cb
//! call and an error after cb are logged.

mod engine_support;

use engine_support::*;
use serde_json::json;

#[test]
fn console_output_is_captured_with_hook_name_and_request_id() {
    let buffer = global_logs();

    let (_dir, h, engine) = single(
        r#"module.exports = function (cb) {
            console.log('hello', { a: 1 }, [2], 3);
            console.warn('careful: %s has %d tries left, %j', 'user1', 2, { ok: false });
            console.error(new Error('bad thing'));
            cb(null, 'first');
            cb(null, 'second');
            throw new Error('after cb');
        };"#,
        "",
        1,
    );
    assert_eq!(
        engine.call_blocking(&h, vec![], "req-42"),
        Ok(json!("first"))
    );
    drop(engine);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let line = |needle: &str| {
        logs.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no log line with {needle:?} in:\n{logs}"))
            .to_owned()
    };
    // util.format's rendering, as Node 20 prints `console.log('hello', { a: 1 }, [2], 3)`.
    let hello = line("hello { a: 1 } [ 2 ] 3");
    assert!(
        hello.contains("INFO")
            && hello.contains("hook=credentials-exchange/h")
            && hello.contains("request_id=req-42"),
        "{hello}"
    );
    assert!(line("careful: user1 has 2 tries left, {\"ok\":false}").contains("WARN"));
    assert!(line("bad thing").contains("ERROR"));
    assert!(line("cb was called more than once").contains("request_id=req-42"));
    assert!(line("error thrown after cb was called").contains("after cb"));
}
