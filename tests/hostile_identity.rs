//! Hostile identity: clients that try to be someone else, and signups that try to set what only
//! hooks may set.
//!
//! - Targeting by client uses the client named by the identity server's verified token, whatever
//!   spelling of the credentials the request used (node-oidc-provider, two clients A and B, a
//!   hook limited to A that widens the scope and adds a claim).
//! - Every spelling of `app_metadata` in a signup body is stripped before the upstream (the Rust
//!   echo upstream reports what it received).

mod common;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use common::hookgate::Hookgate;
use common::oidc::{self, OidcServer};
use common::upstream::{self, Upstream};
use hookgate::token::{keys::generate_pem, Alg, SigningKey};
use serde_json::{json, Value};

/// Clients of `tests/oidc/clients.json` whose Basic credentials differ between the standard and
/// URL-safe alphabets and carry padding (the `?>` in the secrets), so every spelling is distinct.
const A: (&str, &str) = ("tenant-a", "s?>a-secret");
const B: (&str, &str) = ("tenant-b", "s?>b-secret");

const TOKEN_ROUTE: &str =
    "[[route]]\nname = \"token\"\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\n\
     upstream_path = \"/token\"\naudience_param = \"resource\"\n";

/// Meant for tenant A only: a privilege a client-limited hook grants.
const A_ONLY_HOOK: &str = r#"
module.exports = function (client, scope, audience, context, cb) {
  cb(null, { scope: (scope || []).concat(['admin:all']), 'https://example.com/tenant-a-only': client.id });
};
"#;

/// Runs for everyone: records which client hookgate said it was.
const EVERYONE_HOOK: &str = r#"
module.exports = function (client, scope, audience, context, cb) {
  cb(null, { scope: scope, 'https://example.com/client_seen': client.id });
};
"#;

struct Setup {
    _idp: OidcServer,
    hg: Hookgate,
}

fn setup() -> Setup {
    let idp = OidcServer::start();
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks").join("credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("a-only.js"), A_ONLY_HOOK).unwrap();
    std::fs::write(hooks.join("everyone.js"), EVERYONE_HOOK).unwrap();
    let hooks_table = format!(
        "[hooks]\ndir = \"hooks\"\n\
         [[hooks.hook]]\nfile = \"credentials-exchange/everyone.js\"\norder = 1\n\
         [[hooks.hook]]\nfile = \"credentials-exchange/a-only.js\"\norder = 2\nclients = [\"{}\"]\n",
        A.0
    );
    let hg = Hookgate::start_in(
        dir,
        &idp.addr(),
        "",
        "",
        &format!("{TOKEN_ROUTE}{hooks_table}"),
    );
    Setup { _idp: idp, hg }
}

/// One way of presenting a client's credentials.
struct Spelling {
    name: &'static str,
    /// The raw `Authorization` header, if any.
    authorization: Option<String>,
    /// Extra form parameters (client_secret_post).
    form: Vec<(&'static str, String)>,
    /// node-oidc-provider 9 accepts it (so a token must come back).
    upstream_accepts: bool,
}

fn spellings((id, secret): (&'static str, &'static str)) -> Vec<Spelling> {
    let raw = format!("{id}:{secret}");
    let padded = STANDARD.encode(&raw);
    let unpadded = STANDARD_NO_PAD.encode(&raw);
    let url_safe = URL_SAFE_NO_PAD.encode(&raw);
    assert!(padded.ends_with('=') && padded.contains(['+', '/']));
    assert_ne!(
        url_safe, unpadded,
        "the alphabets must differ for this test to mean anything"
    );
    // RFC 6749 §2.3.1: the parts are form-urlencoded first; the server decodes the escape.
    let escaped = STANDARD.encode(format!("{}%2D{}:{secret}", &id[..6], &id[7..]));
    let basic = |name, token: String, accepts| Spelling {
        name,
        authorization: Some(token),
        form: vec![],
        upstream_accepts: accepts,
    };
    vec![
        basic("padded", format!("Basic {padded}"), true),
        basic("unpadded", format!("Basic {unpadded}"), true),
        basic("lower-case scheme", format!("basic {unpadded}"), true),
        basic("form-escaped id", format!("Basic {escaped}"), true),
        basic("surrounding spaces", format!("  Basic {padded}  "), true),
        // node-oidc-provider refuses these; other servers take them.
        basic("url-safe", format!("Basic {url_safe}"), false),
        basic("two spaces", format!("Basic  {padded}"), false),
        basic("tab", format!("Basic\t{padded}"), false),
        Spelling {
            name: "client_secret_post",
            authorization: None,
            form: vec![("client_id", id.into()), ("client_secret", secret.into())],
            upstream_accepts: true,
        },
    ]
}

/// Ask for a token with one spelling; the answer's status and, on 200, the token's claims
/// (unverified: what a resource server would read after verifying hookgate's signature).
async fn token(s: &Setup, spelling: &Spelling, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form: Vec<(&str, String)> = vec![
        ("grant_type", "client_credentials".into()),
        ("resource", oidc::AUDIENCE.into()),
        ("scope", "read:users".into()),
    ];
    form.extend(spelling.form.iter().cloned());
    form.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let mut req = reqwest::Client::new()
        .post(s.hg.url("/oauth/token"))
        .form(&form);
    if let Some(a) = &spelling.authorization {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status != 200 {
        return (status, body);
    }
    let jwt = body["access_token"].as_str().unwrap();
    let payload = jwt.split('.').nth(1).unwrap();
    let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    (status, claims)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_limited_hook_runs_for_its_client_in_every_spelling_and_for_no_other() {
    let s = setup();
    for spelling in spellings(B) {
        let (status, claims) = token(&s, &spelling, &[]).await;
        if spelling.upstream_accepts {
            assert_eq!(status, 200, "B {}: {claims}\n{}", spelling.name, s.hg.log());
        }
        if status == 200 {
            assert_eq!(claims["client_id"], B.0, "B {}", spelling.name);
            assert_eq!(
                claims["https://example.com/client_seen"], B.0,
                "B {}: hooks see the token's client",
                spelling.name
            );
            assert!(
                claims.get("https://example.com/tenant-a-only").is_none(),
                "B {} got A's hook: {claims}",
                spelling.name
            );
            assert_eq!(claims["scope"], "read:users", "B {}", spelling.name);
        }
    }
    for spelling in spellings(A) {
        let (status, claims) = token(&s, &spelling, &[]).await;
        if spelling.upstream_accepts {
            assert_eq!(status, 200, "A {}: {claims}\n{}", spelling.name, s.hg.log());
        }
        if status == 200 {
            assert_eq!(
                claims["https://example.com/tenant-a-only"], A.0,
                "A {} did not get its hook: {claims}",
                spelling.name
            );
            assert_eq!(
                claims["scope"], "read:users admin:all",
                "A {}",
                spelling.name
            );
        }
    }
}

/// A name, an `Authorization` header, form parameters.
type Attempt = (
    &'static str,
    Option<String>,
    Vec<(&'static str, &'static str)>,
);

#[tokio::test(flavor = "multi_thread")]
async fn a_client_naming_another_client_never_gets_that_clients_hook() {
    let s = setup();
    let b_basic = STANDARD_NO_PAD.encode(format!("{}:{}", B.0, B.1));
    let attempts: Vec<Attempt> = vec![
        // B's credentials, A's name in the body.
        (
            "basic B + body client_id A",
            Some(format!("Basic {b_basic}")),
            vec![("client_id", A.0)],
        ),
        // A's name in Basic with B's secret.
        (
            "basic A with B's secret",
            Some(format!(
                "Basic {}",
                STANDARD_NO_PAD.encode(format!("{}:{}", A.0, B.1))
            )),
            vec![],
        ),
        // An unreadable Basic header next to B's post credentials.
        (
            "garbage basic + post B",
            Some("Basic !!!".into()),
            vec![("client_id", B.0), ("client_secret", B.1)],
        ),
    ];
    for (name, authorization, form) in attempts {
        let spelling = Spelling {
            name: "attempt",
            authorization,
            form: vec![],
            upstream_accepts: false,
        };
        let (status, claims) = token(&s, &spelling, &form).await;
        if status == 200 {
            assert!(
                claims.get("https://example.com/tenant-a-only").is_none(),
                "{name} got A's hook: {claims}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A token server that names whichever client it is told to (node-oidc-provider cannot be made to
// disagree with the credentials), or issues opaque tokens.

/// Denies, naming the client: whether it ran, and for whom, shows in the answer.
const A_ONLY_DENY: &str = r#"
module.exports = function (client, scope, audience, context, cb) {
  cb(new InvalidScopeError('a-only ran for ' + client.id));
};
"#;

/// `Some(client)`: a JWT naming that client; `None`: an opaque token.
fn token_server(names: Option<&'static str>) -> upstream::Server {
    let signer = SigningKey::from_pem(generate_pem(Alg::ES256).unwrap().as_bytes()).unwrap();
    let signer = std::sync::Arc::new(signer);
    let jwk = signer.public_jwk().clone();
    upstream::serve(move |req: hyper::Request<hyper::body::Incoming>| {
        let jwk = jwk.clone();
        let token = names.map(|client| {
            signer
                .sign(
                    Some("at+jwt"),
                    &json!({ "sub": client, "client_id": client, "scope": "read",
                             "aud": "https://api/", "exp": 4_000_000_000u64 }),
                )
                .unwrap()
        });
        async move {
            let body = match req.uri().path() {
                "/jwks" => json!({ "keys": [jwk] }),
                _ => json!({
                    "access_token": token.unwrap_or_else(|| "2YotnFZFEjr1zCsicMWpAA".into()),
                    "token_type": "Bearer", "scope": "read"
                }),
            };
            upstream::json_response(200, &body)
        }
    })
}

fn hookgate_before(server: &upstream::Server) -> Hookgate {
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks").join("credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("a-only.js"), A_ONLY_DENY).unwrap();
    let extra = format!(
        "{TOKEN_ROUTE}[token]\nsigning_key = \"hookgate.pem\"\nupstream_jwks_url = \"http://{}/jwks\"\n\
         opaque_tokens = \"pass\"\n\
         [hooks]\ndir = \"hooks\"\n[[hooks.hook]]\nfile = \"credentials-exchange/a-only.js\"\nclients = [\"{}\"]\n",
        server.addr, A.0
    );
    std::fs::write(
        dir.path().join("hookgate.pem"),
        generate_pem(Alg::ES256).unwrap(),
    )
    .unwrap();
    Hookgate::start_in(dir, &server.addr.to_string(), "", "", &extra)
}

async fn post_token(
    hg: &Hookgate,
    authorization: Option<String>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut params = vec![("grant_type", "client_credentials")];
    params.extend_from_slice(form);
    let mut req = reqwest::Client::new()
        .post(hg.url("/oauth/token"))
        .form(&params);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_naming_another_client_than_the_token_lose_to_the_token() {
    // The request says A; the identity server's token says B.
    let server = token_server(Some(B.0));
    let hg = hookgate_before(&server);
    let basic = format!("Basic {}", STANDARD.encode(format!("{}:{}", A.0, A.1)));
    let (status, body) = post_token(&hg, Some(basic), &[]).await;
    assert_eq!(status, 200, "A's hook must not run for B's token: {body}");
    assert!(
        hg.log()
            .contains("name another client than the identity server's token"),
        "{}",
        hg.log()
    );
    // The token naming A runs it, whatever the credentials said.
    let server = token_server(Some(A.0));
    let hg = hookgate_before(&server);
    let (status, body) = post_token(&hg, None, &[("client_id", B.0)]).await;
    assert_eq!(
        (status, &body["error_description"]),
        (400, &json!("a-only ran for tenant-a"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_an_opaque_token_only_credentials_naming_exactly_one_client_count() {
    let server = token_server(None);
    let hg = hookgate_before(&server);
    let unpadded = format!(
        "Basic {}",
        STANDARD_NO_PAD.encode(format!("{}:{}", A.0, A.1))
    );
    let url_safe = format!(
        "Basic {}",
        URL_SAFE_NO_PAD.encode(format!("{}:{}", A.0, A.1))
    );
    // Read as leniently as servers read them: A's hook runs for A.
    for basic in [unpadded.clone(), url_safe] {
        let (status, body) = post_token(&hg, Some(basic.clone()), &[]).await;
        assert_eq!(
            (status, &body["error_description"]),
            (400, &json!("a-only ran for tenant-a")),
            "{basic}"
        );
    }
    // Credentials that name two clients, or none hookgate can read, name no one.
    for (authorization, form) in [
        (Some(unpadded), vec![("client_id", B.0)]),
        (Some("Basic !!!".to_string()), vec![("client_id", A.0)]),
        (None, vec![]),
    ] {
        let (status, body) = post_token(&hg, authorization.clone(), &form).await;
        assert_eq!(status, 200, "{authorization:?} {form:?}: {body}");
    }
}

// ---------------------------------------------------------------------------------------------
// app_metadata from the client, in every spelling.

const SIGNUP_ROUTE: &str = r#"
[[route]]
name = "signup"
path = "/dbconnections/signup"
point = "pre-user-registration"
[route.signup]
user_id = "/body_sha256"
"#;

const SIGNUP_HOOK: &str = r#"
module.exports = function (user, context, cb) {
  cb(null, { user: { app_metadata: { plan: 'free' } } });
};
"#;

fn signup_hookgate(upstream: &Upstream) -> Hookgate {
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks").join("pre-user-registration");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("plan.js"), SIGNUP_HOOK).unwrap();
    Hookgate::start_in(
        dir,
        &upstream.address(),
        "",
        "",
        &format!("{SIGNUP_ROUTE}[hooks]\ndir = \"hooks\"\n"),
    )
}

/// Post a raw body; the echo upstream's answer (it reports the body it received).
async fn raw_signup(hg: &Hookgate, content_type: &str, body: String) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(hg.url("/dbconnections/signup"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn no_spelling_of_app_metadata_from_the_client_reaches_the_identity_server() {
    let upstream = Upstream::start();
    let hg = signup_hookgate(&upstream);
    let base = "email=eve%40example.com&password=pw-123456&connection=db&client_id=spa";
    let form_keys = [
        "app_metadata=%7B%22role%22%3A%22admin%22%7D",
        "app_metadata[role]=admin",
        "app_metadata%5Brole%5D=admin",
        "app_metadata%255Brole%255D=admin",
        "app_metadata.role=admin",
        "APP_METADATA[role]=admin",
        "App_Metadata%5Brole%5D%5Blevel%5D=admin",
        "app.metadata[role]=admin",
        "app+metadata[role]=admin",
        "app_metadata[]=admin",
    ];
    for key in form_keys {
        let (status, answer) = raw_signup(
            &hg,
            "application/x-www-form-urlencoded",
            format!("{base}&{key}"),
        )
        .await;
        assert_eq!(status, 200, "{key}: {answer}\n{}", hg.log());
        let forwarded = answer["body"].as_str().unwrap();
        assert!(
            !forwarded.contains("admin"),
            "{key} reached the upstream: {forwarded}"
        );
        assert!(
            forwarded.contains("plan"),
            "the hook's app_metadata is forwarded: {forwarded}"
        );
    }
    let json_bodies = [
        json!({ "app_metadata": { "role": "admin" } }),
        json!({ "app_metadata[role]": "admin" }),
        json!({ "app_metadata.role": "admin" }),
        json!({ "App_Metadata": { "role": "admin" } }),
        json!({ "app_metadata%5Brole%5D": "admin" }),
    ];
    for extra in json_bodies {
        let mut body = json!({ "email": "eve@example.com", "password": "pw-123456",
                               "connection": "db", "client_id": "spa" });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = raw_signup(&hg, "application/json", body.to_string()).await;
        assert_eq!(status, 200, "{extra}: {answer}");
        let forwarded = answer["body"].as_str().unwrap();
        assert!(
            !forwarded.contains("admin"),
            "{extra} reached the upstream: {forwarded}"
        );
        let forwarded: Value = serde_json::from_str(forwarded).unwrap();
        assert_eq!(forwarded["app_metadata"], json!({ "plan": "free" }));
    }
    let log = hg.log();
    assert!(log.contains("carried app_metadata; removed"), "{log}");
}
