//! The web-platform globals hooks and their packages use — URL, URLSearchParams, TextEncoder,
//! TextDecoder — give what Node 20 gives. Every expected value below was printed by Node 20
//! running the same hook body.

mod engine_support;

use engine_support::*;
use serde_json::json;

#[test]
fn url_and_search_params_parse_resolve_mutate_and_serialize_like_node() {
    let (_dir, h, engine) = single(
        r#"module.exports = function (cb) {
            const u = new URL('../x?a=1&b=2 3#h', 'https://user:pw@Example.com:8443/p/q/r');
            u.searchParams.append('c', 'é &');
            u.port = '443';
            const sp = new URLSearchParams({ q: 'a b', r: '1+2' });
            let invalid;
            try { new URL('not a url'); } catch (e) { invalid = [e.name, e.code]; }
            cb(null, { href: u.href, host: u.host, origin: u.origin, params: Array.from(u.searchParams),
                       sp: sp.toString(), parsed: Array.from(new URLSearchParams('?x=%20y+z&w')), invalid,
                       json: JSON.stringify({ u: new URL('http://a.example/p?q') }) });
        };"#,
        "",
        1,
    );
    let r = engine.call_blocking(&h, vec![], "r").unwrap();
    assert_eq!(
        r,
        json!({
            "href": "https://user:pw@example.com/p/x?a=1&b=2+3&c=%C3%A9+%26#h",
            "host": "example.com",
            "origin": "https://example.com",
            "params": [["a", "1"], ["b", "2 3"], ["c", "é &"]],
            "sp": "q=a+b&r=1%2B2",
            "parsed": [["x", " y z"], ["w", ""]],
            "invalid": ["TypeError", "ERR_INVALID_URL"],
            "json": "{\"u\":\"http://a.example/p?q\"}"
        })
    );
}

#[test]
fn text_encoder_and_decoder_round_trip_utf8_including_split_sequences() {
    let (_dir, h, engine) = single(
        r#"module.exports = function (cb) {
            const bytes = new TextEncoder().encode('héllo €');
            const d = new TextDecoder();
            const split = d.decode(bytes.subarray(0, 2), { stream: true }) + d.decode(bytes.subarray(2));
            let fatal;
            try { new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array([0xff])); } catch (e) { fatal = e.name; }
            cb(null, { bytes: Array.from(bytes), split, lossy: new TextDecoder().decode(new Uint8Array([0x61, 0xff])), fatal,
                       bom: new TextDecoder().decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])) });
        };"#,
        "",
        1,
    );
    let r = engine.call_blocking(&h, vec![], "r").unwrap();
    assert_eq!(
        r,
        json!({
            "bytes": [104, 195, 169, 108, 108, 111, 32, 226, 130, 172],
            "split": "héllo €",
            "lossy": "a\u{fffd}",
            "fatal": "TypeError",
            "bom": "a"
        })
    );
}
