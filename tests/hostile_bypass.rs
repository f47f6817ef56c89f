//! Hostile: no spelling of a hooked endpoint reaches the identity server around its hooks, and
//! no client chooses the `jwks_uri` discovery serves.
//!
//! Requests are written on a raw socket: HTTP client libraries clean paths up (`/./`, `%2e`)
//! before sending, and the point is what hookgate does with the bytes an attacker sends.
//! Invariant pinned: every token a client obtains through hookgate carries the mark of the hook
//! of its route.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use base64::Engine;
use common::hookgate::Hookgate;
use common::oidc::{self, OidcServer};
use common::upstream::Upstream;
use serde_json::{json, Value};

const MARK: &str = "https://hookgate.test/hooked";

/// The shipped configuration's token route.
const TOKEN_ROUTE: &str =
    "[[route]]\nname = \"token\"\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\n\
     upstream_path = \"/token\"\nupstream_body = \"form\"\naudience_param = \"resource\"\n";

/// A scope-narrowing hook, the security control under test: `delete:users` never leaves, and
/// the token says the hook ran.
const NARROWING_HOOK: &str = r#"
module.exports = function (client, scope, audience, context, cb) {
  var access_token = {};
  access_token.scope = (scope || []).filter(function (s) { return s !== 'delete:users'; });
  access_token['https://hookgate.test/hooked'] = true;
  cb(null, access_token);
};
"#;

/// One answer, read whole from a raw socket.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}",
                self.head,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Send `method target` exactly as written, with `headers` (each line ending in CRLF) and
/// `body`, on a fresh connection; read the answer until the server closes.
fn raw(addr: SocketAddr, method: &str, target: &str, headers: &str, body: &str) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no answer head: {:?}", String::from_utf8_lossy(&out)));
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let mut body = out[split + 4..].to_vec();
    let status = head[9..12].parse().unwrap();
    let answer = Answer {
        status,
        head,
        body: Vec::new(),
    };
    if answer
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body);
    }
    Answer { body, ..answer }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or_else(|| {
                panic!(
                    "truncated chunked body; rest: {:?}",
                    String::from_utf8_lossy(data)
                )
            });
        let size = std::str::from_utf8(&data[..line_end]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn form_body() -> String {
    format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&resource={}&scope=read%3Ausers+delete%3Ausers",
        oidc::POST_CLIENT_ID,
        oidc::POST_CLIENT_SECRET,
        "https%3A%2F%2Fapi.example.com%2F"
    )
}

const FORM: &str = "Content-Type: application/x-www-form-urlencoded\r\n";

fn start_token(idp: &OidcServer, extra: &str) -> Hookgate {
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("narrow.js"), NARROWING_HOOK).unwrap();
    Hookgate::start_in(dir, &idp.addr(), "", "", &format!("{TOKEN_ROUTE}{extra}"))
}

/// The claims of a JWT, unverified (the mark and the algorithm are what is checked).
fn claims(jwt: &str) -> (Value, Value) {
    let part = |i: usize| -> Value {
        let b64 = jwt.split('.').nth(i).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(b64)
                .unwrap(),
        )
        .unwrap()
    };
    (part(0), part(1))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// 200, and the token passed the hook.
    Hooked,
    /// hookgate refused it with this status, in JSON.
    Refused(u16),
    /// Passed on to the upstream, which issued no token for it.
    NoToken,
}

/// Every token in a 200 carries the hook's mark, and nothing the hook removed.
fn assert_hooked(what: &str, a: &Answer) {
    let body = a.json();
    let token = body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: a 200 without a token: {body}"));
    let (header, claims) = claims(token);
    assert_eq!(
        claims[MARK], true,
        "{what}: a token that skipped the hook: {claims}"
    );
    assert_eq!(claims["scope"], "read:users", "{what}: {claims}");
    assert_eq!(
        header["alg"], "ES256",
        "{what}: re-signed by hookgate: {header}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_spelling_of_the_token_endpoint_runs_the_hooks_or_is_refused() {
    use Expect::*;
    let idp = OidcServer::start();
    // Without hookgate, the upstream's own endpoint hands out the unhooked scope: that is the
    // token each spelling below could reach.
    let direct = raw(
        idp.addr().parse().unwrap(),
        "POST",
        "/token",
        FORM,
        &form_body(),
    );
    assert_eq!(direct.status, 200);
    assert_eq!(direct.json()["scope"], "read:users delete:users");

    let hg = start_token(&idp, "");
    let cases: &[(&str, &str, Expect)] = &[
        ("POST", "/oauth/token", Hooked),
        // The upstream's spelling, in every way a server might read it.
        ("POST", "/token", Hooked),
        ("POST", "/TOKEN", Hooked),
        ("POST", "/Token", Hooked),
        ("POST", "/token/", Hooked),
        ("POST", "/token//", Hooked),
        ("POST", "//token", Hooked),
        ("POST", "/./token", Hooked),
        ("POST", "/../token", Hooked),
        ("POST", "/x/../token", Hooked),
        ("POST", "/%2e%2e/token", Hooked),
        ("POST", "/%74oken", Hooked),
        ("POST", "/%74%6F%6B%65%6E", Hooked),
        ("POST", "/token;x", Hooked),
        ("POST", "/token;jsessionid=0", Hooked),
        ("POST", "/token?x=1", Hooked),
        ("POST", "/token#x", Hooked),
        // Absolute-form whose authority is not the Host: refused by pingora itself.
        ("POST", "http://attacker.example/token", NoToken),
        ("POST", "http://127.0.0.1/token", NoToken),
        // The route's spelling.
        ("POST", "//oauth/token", Hooked),
        ("POST", "/oauth//token", Hooked),
        ("POST", "/oauth/./token", Hooked),
        ("POST", "/oauth/x/../token", Hooked),
        ("POST", "/x/../oauth/token", Hooked),
        ("POST", "/oauth/%74oken", Hooked),
        ("POST", "/oauth/%2e/token", Hooked),
        ("POST", "/oauth/x/%2E%2e/token", Hooked),
        ("POST", "/oauth/token;x", Hooked),
        ("POST", "/oauth;x/token", Hooked),
        ("POST", "/OAUTH/TOKEN", Hooked),
        ("POST", "/oauth/token/", Hooked),
        ("POST", "/oauth/token/.", Hooked),
        ("POST", "/oauth/token/%2e", Hooked),
        ("POST", "/oauth/token/x/%2E%2E", Hooked),
        // Ambiguous between servers: refused.
        ("POST", "/oauth%2Ftoken", Refused(400)),
        ("POST", "/oauth%2ftoken", Refused(400)),
        ("POST", "/oauth%5Ctoken", Refused(400)),
        ("POST", "/oauth\\token", Refused(400)),
        ("POST", "\\token", Refused(400)),
        ("POST", "/token%00", Refused(400)),
        ("POST", "/token%", Refused(400)),
        ("POST", "/%zztoken", Refused(400)),
        ("POST", "token", Refused(400)),
        ("POST", "*", Refused(400)),
        ("POST", "foo:bar://attacker.example/token", Refused(400)),
        // Another method: refused, with Allow.
        ("GET", "/token", Refused(405)),
        ("GET", "/oauth/token", Refused(405)),
        ("PUT", "/token", Refused(405)),
        ("PATCH", "/TOKEN/", Refused(405)),
        ("DELETE", "/oauth/token", Refused(405)),
        ("post", "/token", Refused(405)),
        // Other paths pass, canonical; the upstream has no token endpoint there.
        ("POST", "/token%3Bx", NoToken),
        ("POST", "/token%20", NoToken),
        ("POST", "/tokens", NoToken),
        ("POST", "/token.", NoToken),
        ("POST", "/%2574oken", NoToken),
        ("POST", "/token%3F", NoToken),
        ("POST", "/token%23", NoToken),
        ("POST", "/token%2e", NoToken),
        // The Kelvin sign folds to `k` under Unicode case folding; hookgate folds ASCII only.
        ("POST", "/to%E2%84%AAen", NoToken),
        ("POST", "/to\u{212A}en", NoToken),
        ("OPTIONS", "/token", NoToken),
    ];
    // Absolute-form (for the Host it names): routed by its path.
    let absolute = [
        format!("http://{}/token", hg.addr),
        format!("HTTP://{}/OAUTH/./TOKEN/", hg.addr),
        format!("http://{}/oauth/token", hg.addr),
    ];
    let cases = cases
        .iter()
        .copied()
        .chain(absolute.iter().map(|t| ("POST", t.as_str(), Hooked)));
    let mut report = Vec::new();
    for (method, target, expect) in cases {
        let what = format!("{method} {target}");
        let a = raw(hg.addr, method, target, FORM, &form_body());
        report.push(format!("{what} -> {}", a.status));
        match expect {
            Hooked => {
                assert_eq!(
                    a.status,
                    200,
                    "{what}: {}",
                    String::from_utf8_lossy(&a.body)
                );
                assert_hooked(&what, &a);
            }
            Refused(status) => {
                assert_eq!(
                    a.status,
                    status,
                    "{what}: {}",
                    String::from_utf8_lossy(&a.body)
                );
                let body = a.json();
                assert_eq!(body["error"], "invalid_request", "{what}: {body}");
                assert!(body["error_description"].is_string(), "{what}: {body}");
                if status == 405 {
                    assert_eq!(a.header("allow"), Some("POST"), "{what}");
                }
            }
            NoToken => {
                assert_ne!(
                    a.status,
                    200,
                    "{what}: {}",
                    String::from_utf8_lossy(&a.body)
                );
                assert!(
                    !String::from_utf8_lossy(&a.body).contains("access_token"),
                    "{what}"
                );
            }
        }
    }
    eprintln!("{}", report.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_upstreams_spelling_gets_the_routes_whole_treatment() {
    let idp = OidcServer::start();
    let hg = start_token(&idp, "");
    // Auth0's JSON body and `audience`, which node-oidc-provider refuses itself: translated
    // as on the route, so the answer is the route's.
    let body = json!({
        "grant_type": "client_credentials",
        "client_id": oidc::POST_CLIENT_ID,
        "client_secret": oidc::POST_CLIENT_SECRET,
        "audience": oidc::AUDIENCE,
        "scope": "read:users delete:users",
    })
    .to_string();
    for target in ["/oauth/token", "/token", "/Token/"] {
        let a = raw(
            hg.addr,
            "POST",
            target,
            "Content-Type: application/json\r\n",
            &body,
        );
        assert_eq!(
            a.status,
            200,
            "{target}: {}",
            String::from_utf8_lossy(&a.body)
        );
        assert_hooked(target, &a);
        assert_eq!(
            claims(a.json()["access_token"].as_str().unwrap()).1["aud"],
            oidc::AUDIENCE
        );
    }
    // A HEAD has no body to carry the error, but still the status and Allow.
    let a = raw(hg.addr, "HEAD", "/token", "", "");
    assert_eq!(a.status, 405);
    assert_eq!(a.header("allow"), Some("POST"));
}

/// The same rule on every route with a point: signup (with an upstream_path), the
/// send-phone-message webhook (answered by hookgate) and change-password.
#[tokio::test(flavor = "multi_thread")]
async fn every_hooked_route_guards_its_spellings() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks");
    for (trigger, file, code) in [
        (
            "pre-user-registration",
            "mark.js",
            "module.exports = function (user, context, cb) { cb(null, { user: { user_metadata: { hooked: true } } }); };",
        ),
        (
            "send-phone-message",
            "sms.js",
            "module.exports = function (recipient, text, context, cb) { cb(null, { MessageID: 'hooked-' + recipient }); };",
        ),
    ] {
        std::fs::create_dir_all(hooks.join(trigger)).unwrap();
        std::fs::write(hooks.join(trigger).join(file), code).unwrap();
    }
    std::env::set_var("HOOKGATE_TEST_BYPASS_SMS", "sms-secret");
    let routes = "[[route]]\nname = \"signup\"\npath = \"/dbconnections/signup\"\npoint = \"pre-user-registration\"\n\
         upstream_path = \"/api/users\"\n[route.signup]\nuser_id = \"/body_sha256\"\n\
         [[route]]\nname = \"sms\"\npath = \"/hooks/sms\"\npoint = \"send-phone-message\"\n\
         webhook_secret = { env = \"HOOKGATE_TEST_BYPASS_SMS\" }\n\
         [[route]]\nname = \"change-password\"\npath = \"/dbconnections/change_password\"\npoint = \"post-change-password\"\n\
         [outbox]\npath = \"outbox.redb\"\n";
    let hg = Hookgate::start_in(dir, &up.address(), "", "", routes);
    let json = "Content-Type: application/json\r\n";
    let signup = json!({"email": "a@example.com", "password": "pw-123456", "username": "a",
                        "user_metadata": {"hooked": false}})
    .to_string();
    let mut hooked_signups = 0;
    for target in [
        "/dbconnections/signup",
        "/api/users",
        "/API/Users/",
        "//api/./users",
        "/api/%75sers",
        "/dbconnections/signup;x",
        &format!("http://{}/api/users", hg.addr),
    ] {
        let a = raw(hg.addr, "POST", target, json, &signup);
        assert_eq!(
            a.status,
            200,
            "{target}: {}",
            String::from_utf8_lossy(&a.body)
        );
        let forwarded: Value = serde_json::from_str(a.json()["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            forwarded["user_metadata"]["hooked"], true,
            "{target}: {forwarded}"
        );
        assert_eq!(a.json()["target"], "/api/users", "{target}");
        hooked_signups += 1;
    }
    for (method, target) in [
        ("GET", "/api/users"),
        ("PUT", "/API/USERS/"),
        ("GET", "/dbconnections/signup"),
    ] {
        let a = raw(hg.addr, method, target, json, &signup);
        assert_eq!(a.status, 405, "{method} {target}");
        assert_eq!(a.header("allow"), Some("POST"));
        assert_eq!(
            a.json()["statusCode"],
            405,
            "the signup route's error shape"
        );
    }
    let sms = json!({"recipient": "+15555550100", "text": "code 1", "context": {}}).to_string();
    let bearer = "Authorization: Bearer sms-secret\r\nContent-Type: application/json\r\n";
    for target in ["/hooks/sms", "/hooks//sms/", "/HOOKS/%73ms"] {
        let a = raw(hg.addr, "POST", target, bearer, &sms);
        assert_eq!(
            a.status,
            200,
            "{target}: {}",
            String::from_utf8_lossy(&a.body)
        );
        assert_eq!(a.json()["MessageID"], "hooked-+15555550100");
    }
    for (method, target) in [
        ("GET", "/hooks/sms"),
        ("PUT", "/hooks/sms/"),
        ("GET", "/dbconnections/change_password"),
        ("DELETE", "/dbconnections//change_password"),
    ] {
        let a = raw(hg.addr, method, target, bearer, "");
        assert_eq!(a.status, 405, "{method} {target}");
        assert_eq!(a.json()["error"], "invalid_request");
    }
    let seen = up.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec!["POST /api/users".to_string(); hooked_signups],
        "the upstream saw only hooked signups, under one spelling"
    );
}

/// The discovery document as served through hookgate, fetched with extra request headers.
fn discovery(hg: &Hookgate, target: &str, headers: &str) -> Value {
    let a = raw(hg.addr, "GET", target, headers, "");
    assert_eq!(
        a.status,
        200,
        "{target}: {}",
        String::from_utf8_lossy(&a.body)
    );
    a.json()
}

const HOSTILE_FORWARDING: &str =
    "X-Forwarded-Proto: javascript\r\nX-Forwarded-Host: attacker.example/x#\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn discovery_ignores_forwarded_headers_unless_configured() {
    let idp = OidcServer::start();
    let hg = start_token(&idp, "");
    let ours = format!("http://{}/.well-known/jwks.json", hg.addr);
    for headers in [
        "",
        HOSTILE_FORWARDING,
        "X-Forwarded-Proto: https\r\nX-Forwarded-Host: attacker.example\r\n",
    ] {
        let doc = discovery(&hg, oidc::DISCOVERY_PATH, headers);
        assert_eq!(doc["jwks_uri"], ours, "{headers:?}");
        assert_eq!(doc["issuer"], idp.issuer, "the rest is the upstream's");
    }
    // Every spelling of the discovery path is hookgate's answer, never the upstream's keys.
    for target in [
        "/.well-known//openid-configuration/",
        "/.WELL-KNOWN/openid-configuration",
        "/x/../.well-known/%6Fpenid-configuration",
    ] {
        assert_eq!(discovery(&hg, target, "")["jwks_uri"], ours, "{target}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_forwarded_headers_are_honoured_only_when_valid() {
    let idp = OidcServer::start();
    let hg = start_token(
        &idp,
        "[token]\nsigning_key = \"hookgate.pem\"\ntrust_forwarded_headers = true\n",
    );
    let doc = discovery(
        &hg,
        oidc::DISCOVERY_PATH,
        "X-Forwarded-Proto: https\r\nX-Forwarded-Host: id.example.com:8443\r\n",
    );
    assert_eq!(
        doc["jwks_uri"],
        "https://id.example.com:8443/.well-known/jwks.json"
    );
    let doc = discovery(&hg, oidc::DISCOVERY_PATH, HOSTILE_FORWARDING);
    assert_eq!(
        doc["jwks_uri"],
        format!("http://{}/.well-known/jwks.json", hg.addr),
        "invalid values fall back to the Host"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn public_url_is_the_jwks_base_whatever_the_request_says() {
    let idp = OidcServer::start();
    let hg = start_token(
        &idp,
        "[token]\nsigning_key = \"hookgate.pem\"\npublic_url = \"https://id.example.com/\"\n\
         trust_forwarded_headers = true\n",
    );
    for headers in [
        "",
        HOSTILE_FORWARDING,
        "X-Forwarded-Host: attacker.example\r\n",
    ] {
        let doc = discovery(&hg, oidc::DISCOVERY_PATH, headers);
        assert_eq!(
            doc["jwks_uri"],
            "https://id.example.com/.well-known/jwks.json"
        );
    }
}

/// Headers some servers route on instead of the request line never reach the upstream on
/// passthrough, and method overrides are dropped where only the hooked route's other methods
/// pass.
#[tokio::test(flavor = "multi_thread")]
async fn path_and_method_override_headers_never_reach_the_upstream() {
    let up = Upstream::start();
    let routes = format!(
        "{TOKEN_ROUTE}[[route]]\nname = \"token-get\"\npath = \"/token\"\nmethods = [\"GET\"]\n"
    );
    let hg = Hookgate::start(&up.address(), "", "", &routes);
    let overrides = "X-Original-URL: /token\r\nX-Rewrite-URL: /token\r\n\
                     X-HTTP-Method-Override: POST\r\nX-HTTP-Method: POST\r\nX-Method-Override: POST\r\n";
    let names = |a: &Answer| -> Vec<String> {
        a.json()["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h[0].as_str().unwrap().to_ascii_lowercase())
            .collect()
    };
    let a = raw(hg.addr, "GET", "/token", overrides, "");
    assert_eq!(a.status, 200, "the explicit GET route passes");
    assert_eq!(a.json()["target"], "/token");
    let seen = names(&a);
    for h in [
        "x-original-url",
        "x-rewrite-url",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    ] {
        assert!(
            !seen.contains(&h.to_string()),
            "{h} reached the upstream: {seen:?}"
        );
    }
    // Exchange routes too (a grant hooks do not handle: the upstream's echo comes back).
    let headers = format!("{FORM}{overrides}");
    let a = raw(
        hg.addr,
        "POST",
        "/oauth/token",
        &headers,
        "grant_type=password",
    );
    assert_eq!(a.json()["target"], "/token");
    let seen = names(&a);
    for h in ["x-original-url", "x-rewrite-url", "x-http-method-override"] {
        assert!(
            !seen.contains(&h.to_string()),
            "{h} reached the upstream: {seen:?}"
        );
    }
    let a = raw(hg.addr, "POST", "/api/things", overrides, "");
    assert_eq!(a.json()["target"], "/api/things");
    let seen = names(&a);
    assert!(!seen.contains(&"x-original-url".to_string()), "{seen:?}");
    assert!(
        seen.contains(&"x-http-method-override".to_string()),
        "elsewhere, method overrides are the application's business: {seen:?}"
    );
}
