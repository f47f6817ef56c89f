//! Node's `http`, `https`, `zlib`, `crypto` and the built-in `aws-sdk` SNS client against local
//! servers: what packages built on them see (event order, headers, bodies, errors) is what Node 20
//! gives. Expected values were printed by Node 20 running the same hook bodies.

mod engine_support;

use std::io::Write;

use engine_support::*;
use hmac::Mac;
use serde_json::{json, Value};
use sha2::Digest;

#[test]
fn http_request_streams_the_body_and_reports_events_in_nodes_order() {
    let rt = rt();
    let (url, _seen) = rt.block_on(echo_server());
    let (_dir, h, engine) = single(
        r#"const http = require('http');
        module.exports = function (url, cb) {
          const u = new URL(url);
          const events = [];
          const req = http.request({ hostname: u.hostname, port: u.port, path: '/echo?x=1', method: 'POST',
                                     headers: { 'Content-Type': 'application/json', 'X-Token': 'abc' } }, (res) => {
            events.push('response');
            res.setEncoding('utf8');
            let body = '';
            res.on('data', (c) => { body += c; });
            res.on('end', () => {
              events.push('end');
              const seen = JSON.parse(body);
              cb(null, { status: res.statusCode, message: res.statusMessage, type: res.headers['content-type'], echo: res.headers['x-echo'],
                         method: seen.method, path: seen.path, token: seen.headers['x-token'], body: seen.body, events });
            });
          });
          req.on('socket', () => events.push('socket'));
          req.on('finish', () => events.push('finish'));
          req.write('{"a":');
          req.end('1}');
        };"#,
        "",
        1,
    );
    let r = rt.block_on(engine.call(&h, vec![json!(url)], "r")).unwrap();
    assert_eq!(
        r,
        json!({ "status": 200, "message": "OK", "type": "application/json", "echo": "yes", "method": "POST", "path": "/echo?x=1",
                "token": "abc", "body": "{\"a\":1}", "events": ["socket", "finish", "response", "end"] })
    );
}

#[test]
fn https_get_to_a_redirected_host_is_gunzipped_through_a_zlib_stream() {
    let rt = rt();
    let (url, mut seen) = rt.block_on(http_server(|_| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"hello gzip").unwrap();
        (
            "200 OK",
            vec![("content-encoding".into(), "gzip".into())],
            gz.finish().unwrap(),
        )
    }));
    let (_dir, h, engine) = single(
        r#"const https = require('https');
        const zlib = require('zlib');
        module.exports = function (cb) {
          https.get('https://api.crm.example/gz?x=1', { headers: { 'Accept-Encoding': 'gzip' } }, (res) => {
            const chunks = [];
            res.pipe(zlib.createGunzip())
              .on('data', (c) => chunks.push(c))
              .on('end', () => {
                let bad;
                try { zlib.gunzipSync(Buffer.from('not gzip')); } catch (e) { bad = [e.code, e.errno, e.message]; }
                cb(null, { encoding: res.headers['content-encoding'], text: Buffer.concat(chunks).toString(),
                           sync: zlib.inflateSync(zlib.deflateSync('round trip')).toString(), bad });
              })
              .on('error', cb);
          }).on('error', cb);
        };"#,
        &format!("[egress.redirect]\n\"api.crm.example\" = \"{url}\""),
        1,
    );
    let r = rt.block_on(engine.call(&h, vec![], "r")).unwrap();
    assert_eq!(
        r,
        json!({ "encoding": "gzip", "text": "hello gzip", "sync": "round trip",
                "bad": ["Z_DATA_ERROR", -3, "incorrect header check"] })
    );
    let req = next_request(&rt, &mut seen);
    assert_eq!(req["path"], "/gz?x=1");
    assert_eq!(req["headers"]["host"], "api.crm.example");
}

#[test]
fn a_request_timeout_then_abort_gives_nodes_events_and_socket_hang_up() {
    let rt = rt();
    let port = silent_server(&rt);
    let (_dir, h, engine) = single(
        r#"const http = require('http');
        module.exports = function (port, cb) {
          const ev = [];
          const req = http.request({ port, path: '/slow' });
          ['socket', 'finish', 'timeout', 'abort', 'error', 'close', 'response'].forEach((e) => req.on(e, (x) => ev.push(e + (x && x.code ? ':' + x.code + ':' + x.message : ''))));
          req.setTimeout(50, () => { ev.push('cb'); req.abort(); });
          req.end();
          setTimeout(() => cb(null, ev), 300);
        };"#,
        "",
        1,
    );
    let r = rt
        .block_on(engine.call(&h, vec![json!(port)], "r"))
        .unwrap();
    assert_eq!(
        r,
        json!([
            "socket",
            "finish",
            "timeout",
            "cb",
            "abort",
            "error:ECONNRESET:socket hang up",
            "close"
        ])
    );
}

#[test]
fn a_request_made_just_before_cb_still_goes_out() {
    let rt = rt();
    let (url, mut seen) = rt.block_on(echo_server());
    let (_dir, h, engine) = single(
        r#"const http = require('http');
        module.exports = function (url, cb) {
          const req = http.request(url + '/notify', { method: 'POST', headers: { 'Content-Type': 'application/json' } });
          req.end(JSON.stringify({ text: 'new signup' }));
          cb(null, 'answered');
        };"#,
        "",
        1,
    );
    assert_eq!(
        rt.block_on(engine.call(&h, vec![json!(url)], "r")),
        Ok(json!("answered"))
    );
    let req = next_request(&rt, &mut seen);
    assert_eq!(req["path"], "/notify");
    assert_eq!(req["body"], "{\"text\":\"new signup\"}");
}

#[test]
fn crypto_hashes_hmacs_and_random_values_match_node() {
    let (_dir, h, engine) = single(
        r#"const crypto = require('crypto');
        module.exports = function (cb) {
          const uuid = crypto.randomUUID();
          cb(null, {
            sha256: crypto.createHash('sha256').update('abc').digest('hex'),
            md5: crypto.createHash('md5').update(Buffer.from('abc')).digest('base64'),
            chunks: crypto.createHash('sha1').update('a').update('bc').digest('hex'),
            hmac: crypto.createHmac('sha256', 'key').update('The quick brown fox jumps over the lazy dog').digest('hex'),
            random: crypto.randomBytes(16).length,
            uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(uuid),
            equal: [crypto.timingSafeEqual(Buffer.from('ab'), Buffer.from('ab')), crypto.timingSafeEqual(Buffer.from('ab'), Buffer.from('ac'))],
          });
        };"#,
        "",
        1,
    );
    assert_eq!(
        engine.call_blocking(&h, vec![], "r").unwrap(),
        json!({
            "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "md5": "kAFQmDzST7DWlj99KOF/cg==",
            "chunks": "a9993e364706816aba3e25717850c26c9cd0d89d",
            "hmac": "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8",
            "random": 16,
            "uuid": true,
            "equal": [true, false]
        })
    );
}

const SNS_OK: &str = "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult><MessageId>mid-1</MessageId></PublishResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></PublishResponse>";
const SNS_BAD: &str = "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender</Type><Code>InvalidParameter</Code><Message>Invalid parameter: PhoneNumber Reason: +1 is not valid</Message></Error><RequestId>req-2</RequestId></ErrorResponse>";

#[test]
fn aws_sns_publish_sends_what_aws_sdk_v2_sends_signed_with_signature_v4() {
    let rt = rt();
    let (url, mut seen) = rt.block_on(http_server(|req| {
        let xml = vec![("content-type".to_owned(), "text/xml".to_owned())];
        if req["body"].as_str().unwrap().contains("PhoneNumber=%2B1&") {
            ("400 Bad Request", xml, SNS_BAD.as_bytes().to_vec())
        } else {
            ("200 OK", xml, SNS_OK.as_bytes().to_vec())
        }
    }));
    let (_dir, h, engine) = single(
        r#"const AWS = require('aws-sdk');
        module.exports = function (cb) {
          AWS.config.update({ region: 'us-east-1', accessKeyId: 'AKID', secretAccessKey: 'SECRET' });
          const sns = new AWS.SNS({ apiVersion: '2010-03-31' });
          sns.publish({ Message: 'Your code: 1234 & more', PhoneNumber: '+15555550123',
            MessageAttributes: { 'AWS.SNS.SMS.SMSType': { DataType: 'String', StringValue: 'Transactional' } } }).promise()
            .then(function (ok) {
              sns.publish({ Message: 'x', PhoneNumber: '+1' }, function (err) {
                cb(null, { ok, err: [err.name, err.code, err.message, err.statusCode, err.retryable] });
              });
            }, cb);
        };"#,
        &format!("[egress.redirect]\n\"sns.us-east-1.amazonaws.com\" = \"{url}\""),
        1,
    );
    let r = rt.block_on(engine.call(&h, vec![], "r")).unwrap();
    assert_eq!(
        r,
        json!({ "ok": { "ResponseMetadata": { "RequestId": "req-1" }, "MessageId": "mid-1" },
                "err": ["InvalidParameter", "InvalidParameter", "Invalid parameter: PhoneNumber Reason: +1 is not valid", 400, false] })
    );
    let req = next_request(&rt, &mut seen);
    assert_eq!(req["method"], "POST");
    assert_eq!(req["path"], "/");
    assert_eq!(req["headers"]["host"], "sns.us-east-1.amazonaws.com");
    // The body aws-sdk 2.1693.0 sent under Node 20 for the same call.
    let body = "Action=Publish&Message=Your%20code%3A%201234%20%26%20more&MessageAttributes.entry.1.Name=AWS.SNS.SMS.SMSType&MessageAttributes.entry.1.Value.DataType=String&MessageAttributes.entry.1.Value.StringValue=Transactional&PhoneNumber=%2B15555550123&Version=2010-03-31";
    assert_eq!(req["body"], body);
    assert_sigv4(&req, "AKID", "SECRET", "us-east-1", "sns");
}

/// Recompute AWS Signature V4 over what the server received; the Authorization header must match.
fn assert_sigv4(req: &Value, key_id: &str, secret: &str, region: &str, service: &str) {
    fn hmac(key: &[u8], data: &str) -> Vec<u8> {
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        m.update(data.as_bytes());
        m.finalize().into_bytes().to_vec()
    }
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let headers = &req["headers"];
    let auth = headers["authorization"].as_str().unwrap();
    let date = headers["x-amz-date"].as_str().unwrap();
    let day = &date[..8];
    let body_hash = hex(&sha2::Sha256::digest(
        req["body"].as_str().unwrap().as_bytes(),
    ));
    assert_eq!(headers["x-amz-content-sha256"], body_hash.as_str());
    let signed = ["host", "x-amz-content-sha256", "x-amz-date"];
    let canonical_headers: String = signed
        .iter()
        .map(|h| format!("{h}:{}\n", headers[*h].as_str().unwrap()))
        .collect();
    let canonical = format!(
        "POST\n/\n\n{canonical_headers}\n{}\n{body_hash}",
        signed.join(";")
    );
    let scope = format!("{day}/{region}/{service}/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex(&sha2::Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(format!("AWS4{secret}").as_bytes(), day);
    let k = hmac(&hmac(&hmac(&k, region), service), "aws4_request");
    let expected = format!(
        "AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={}, Signature={}",
        signed.join(";"),
        hex(&hmac(&k, &to_sign))
    );
    assert_eq!(auth, expected);
}
