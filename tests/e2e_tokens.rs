//! Tokens and discovery end to end (issue 18): hookgate in front of node-oidc-provider.
//!
//! The invariant pinned here: every token hookgate hands out — re-signed by hookgate because a
//! hook changed it, or the identity server's own because no hook did — verifies against the
//! JWKS that hookgate's discovery document names, with a standard JWT library. Also: the
//! server's JWKS at hookgate's JWKS path is not hidden, RFC 8414 documents are rewritten,
//! client credentials are presented the way the server accepts them, and a default audience
//! keeps audience-less requests working against a server that issues opaque tokens without one.

mod common;

use common::hookgate::Hookgate;
use common::oidc::{self, OidcServer};
use common::upstream::{json_response, serve, Server};
use http_body_util::{BodyExt, Full};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
use serde_json::{json, Value};

/// Adds a claim (so hookgate re-signs) and records the audience it was given.
const MARK_HOOK: &str = r#"
module.exports = function (client, scope, audience, context, cb) {
  var token = { scope: scope };
  token['https://example.com/mark'] = 'hooked';
  token['https://example.com/audience'] = audience || null;
  cb(null, token);
};
"#;

/// Changes nothing: hookgate passes the server's token through.
const UNCHANGED_HOOK: &str = r#"
module.exports = function (client, scope, audience, context, cb) {
  console.log('unchanged hook ran for ' + client.id);
  cb(null, { scope: scope });
};
"#;

/// The odd client of `tests/oidc/clients.json`: registered for Basic, with a secret that only
/// reaches the server intact when form-encoded before base64 (RFC 6749 §2.3.1).
const ODD_CLIENT: (&str, &str) = ("m2m-basic-odd", "a+b%c:d e/f");
/// Registered `client_secret_post`; the server issues it an opaque token when no `resource` is
/// sent (node-oidc-provider's default behaviour).
const OPAQUE_CLIENT: (&str, &str) = ("m2m-opaque", "m2m-opaque-secret");

/// The token route; `route_extra` goes into its table.
fn config(route_extra: &str, rest: &str) -> String {
    format!(
        "[[route]]\nname = \"token\"\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\n\
         upstream_path = \"/token\"\naudience_param = \"resource\"\n{route_extra}\n\
         [hooks]\ndir = \"hooks\"\n\
         [[hooks.hook]]\nfile = \"credentials-exchange/mark.js\"\n\
         clients = [\"m2m-post\", \"m2m-opaque\", \"m2m-basic-odd\"]\n\
         [[hooks.hook]]\nfile = \"credentials-exchange/unchanged.js\"\nclients = [\"m2m-basic\"]\n\
         {rest}\n"
    )
}

fn hookgate(upstream: &str, route_extra: &str, rest: &str) -> Hookgate {
    hookgate_in(tempfile::tempdir().unwrap(), upstream, route_extra, rest)
}

fn hookgate_in(dir: tempfile::TempDir, upstream: &str, route_extra: &str, rest: &str) -> Hookgate {
    let hooks = dir.path().join("hooks").join("credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("mark.js"), MARK_HOOK).unwrap();
    std::fs::write(hooks.join("unchanged.js"), UNCHANGED_HOOK).unwrap();
    Hookgate::start_in(dir, upstream, "", "", &config(route_extra, rest))
}

struct Setup {
    idp: OidcServer,
    hg: Hookgate,
    /// The strict front, when the server is held to registered client authentication.
    _front: Option<Server>,
}

fn setup(route_extra: &str, rest: &str) -> Setup {
    let idp = OidcServer::start();
    let hg = hookgate(&idp.addr(), route_extra, rest);
    Setup {
        idp,
        hg,
        _front: None,
    }
}

/// hookgate in front of [`strict_server`].
fn setup_strict(route_extra: &str, rest: &str) -> Setup {
    let (idp, front) = strict_server();
    let hg = hookgate(&front.addr.to_string(), route_extra, rest);
    Setup {
        idp,
        hg,
        _front: Some(front),
    }
}

/// Clients held to their registered `token_endpoint_auth_method`.
const STRICT: [(&str, &str); 3] = [
    (oidc::POST_CLIENT_ID, "client_secret_post"),
    (oidc::BASIC_CLIENT_ID, "client_secret_basic"),
    ("m2m-basic-odd", "client_secret_basic"),
];

/// node-oidc-provider as a strict server (Ory Hydra, for one) behaves: a client authenticating
/// otherwise than registered gets 401 `invalid_client`. node-oidc-provider itself accepts Basic
/// and `client_secret_post` alike for either registration, so a front refuses the mismatch and
/// forwards everything else to it unchanged.
fn strict_server() -> (OidcServer, Server) {
    let idp = OidcServer::start();
    let base = idp.base_url();
    let http = reqwest::Client::new();
    let front = serve(move |req: hyper::Request<hyper::body::Incoming>| {
        let (base, http) = (base.clone(), http.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            if parts.method == "POST" && parts.uri.path() == "/token" {
                if let Some(why) = wrong_auth_method(&parts.headers, &body) {
                    return json_response(
                        401,
                        &json!({"error": "invalid_client", "error_description": why}),
                    );
                }
            }
            let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let mut out = http.request(parts.method.clone(), format!("{base}{target}"));
            for (name, value) in parts.headers.iter() {
                if name != "host" && name != "content-length" {
                    out = out.header(name, value);
                }
            }
            let resp = out.body(body).send().await.unwrap();
            let mut answer = hyper::Response::builder().status(resp.status().as_u16());
            if let Some(ct) = resp.headers().get("content-type") {
                answer = answer.header("content-type", ct.clone());
            }
            let bytes = resp.bytes().await.unwrap();
            answer.body(BodyExt::boxed(Full::new(bytes))).unwrap()
        }
    });
    (idp, front)
}

/// Why a strict server refuses this token request's client authentication, if it does.
fn wrong_auth_method(headers: &hyper::HeaderMap, body: &[u8]) -> Option<String> {
    use base64::Engine as _;
    let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (id, method) = if get("client_secret").is_some() {
        (get("client_id")?, "client_secret_post")
    } else {
        let auth = headers.get("authorization")?.to_str().ok()?;
        let b64 = auth.strip_prefix("Basic ")?;
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        let raw = String::from_utf8(raw).ok()?;
        (raw.split(':').next()?.to_string(), "client_secret_basic")
    };
    let registered = STRICT.iter().find(|(c, _)| *c == id)?.1;
    (registered != method).then(|| format!("{id} is registered for {registered}, not {method}"))
}

/// A client-credentials request through hookgate: `basic` sends the credentials as HTTP Basic,
/// else in the body; `audience` is left out when `None`.
async fn token(
    hg: &Hookgate,
    (id, secret): (&str, &str),
    basic: bool,
    audience: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("scope", "read:users"),
    ];
    if let Some(a) = audience {
        form.push(("audience", a));
    }
    let mut req = reqwest::Client::new().post(hg.url("/oauth/token"));
    if basic {
        req = req.basic_auth(id, Some(secret));
    } else {
        form.push(("client_id", id));
        form.push(("client_secret", secret));
    }
    req.form(&form).send().await.unwrap()
}

/// The access token of a 200 answer (panics with the answer and hookgate's log otherwise).
async fn access_token(hg: &Hookgate, resp: reqwest::Response) -> String {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}\n{}", hg.log());
    body["access_token"].as_str().unwrap().to_string()
}

/// The JWKS a resource server finds by following hookgate's discovery document.
async fn jwks_through_discovery(hg: &Hookgate) -> (String, JwkSet) {
    let discovery: Value = reqwest::get(hg.url(oidc::DISCOVERY_PATH))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap().to_string();
    let set: JwkSet = reqwest::get(&jwks_uri).await.unwrap().json().await.unwrap();
    (jwks_uri, set)
}

/// Verify `jwt` as a resource server following hookgate's discovery would: the JWKS its
/// `jwks_uri` names, the key the token's `kid` picks, a standard JWT library.
async fn verify_through_discovery(s: &Setup, jwt: &str) -> Value {
    let (jwks_uri, set) = jwks_through_discovery(&s.hg).await;
    let header = decode_header(jwt).unwrap();
    let kid = header.kid.as_deref().expect("tokens carry a kid");
    let jwk = set.find(kid).unwrap_or_else(|| {
        let kids: Vec<_> = set.keys.iter().map(|k| k.common.key_id.clone()).collect();
        panic!("no key `{kid}` in the JWKS at {jwks_uri} (it has {kids:?})")
    });
    let mut v = Validation::new(header.alg);
    v.set_audience(&[oidc::AUDIENCE]);
    v.set_issuer(&[&s.idp.issuer]);
    decode::<Value>(jwt, &DecodingKey::from_jwk(jwk).unwrap(), &v)
        .unwrap_or_else(|e| panic!("the token does not verify with {jwks_uri}: {e}"))
        .claims
}

/// The server's own JWKS, fetched directly.
async fn server_kids(idp: &OidcServer) -> Vec<String> {
    let set: Value = reqwest::get(idp.jwks_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_token_hookgate_hands_out_verifies_against_the_jwks_its_discovery_names() {
    let s = setup_strict(
        "upstream_client_auth = \"same\"\ndefault_audience = \"https://api.example.com/\"",
        "[clients.m2m-post]\nupstream_client_auth = \"post\"\n",
    );
    let server_kids = server_kids(&s.idp).await;
    let post = (oidc::POST_CLIENT_ID, oidc::POST_CLIENT_SECRET);
    let basic = (oidc::BASIC_CLIENT_ID, oidc::BASIC_CLIENT_SECRET);
    let mut tokens = vec![
        // Re-signed by hookgate: a hook added a claim.
        (
            "re-signed",
            token(&s.hg, post, false, Some(oidc::AUDIENCE)).await,
        ),
        // The server's own: the hook returned the scope unchanged.
        (
            "untouched",
            token(&s.hg, basic, true, Some(oidc::AUDIENCE)).await,
        ),
        // Re-signed, Basic credentials presented in the body, no audience (the default).
        ("translated", token(&s.hg, post, true, None).await),
        // The server's own, from the default audience.
        ("default audience", token(&s.hg, basic, true, None).await),
    ];
    // The server's own, the upstream's endpoint called through hookgate (same route, same hooks).
    tokens.push((
        "upstream path",
        reqwest::Client::new()
            .post(s.hg.url("/token"))
            .basic_auth(basic.0, Some(basic.1))
            .form(&[
                ("grant_type", "client_credentials"),
                ("resource", oidc::AUDIENCE),
            ])
            .send()
            .await
            .unwrap(),
    ));
    let mut server_signed = 0;
    for (what, resp) in tokens {
        let jwt = access_token(&s.hg, resp).await;
        let kid = decode_header(&jwt).unwrap().kid.unwrap();
        let claims = verify_through_discovery(&s, &jwt).await;
        if server_kids.contains(&kid) {
            server_signed += 1;
            assert!(claims.get("https://example.com/mark").is_none(), "{what}");
        } else {
            assert_eq!(claims["https://example.com/mark"], "hooked", "{what}");
        }
    }
    assert_eq!(server_signed, 3, "three of the tokens are the server's own");
    assert!(s.hg.log().contains("unchanged hook ran for m2m-basic"));
}

#[tokio::test(flavor = "multi_thread")]
async fn hookgates_jwks_lists_its_keys_first_then_the_servers_current_keys() {
    let s = setup("", "");
    let (jwks_uri, set) = jwks_through_discovery(&s.hg).await;
    assert_eq!(jwks_uri, s.hg.url("/.well-known/jwks.json"));
    let kids: Vec<String> = set
        .keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect();
    let server = server_kids(&s.idp).await;
    assert_eq!(kids.len(), 1 + server.len(), "{kids:?}");
    assert!(!server.contains(&kids[0]), "hookgate's own key comes first");
    assert_eq!(
        &kids[1..],
        &server[..],
        "then the server's, as it publishes them"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_servers_jwks_at_hookgates_jwks_path_is_not_hidden() {
    // node-oidc-provider serves its JWKS at /jwks: make that hookgate's JWKS path too.
    let s = setup(
        "",
        "[token]\nsigning_key = \"hookgate.pem\"\njwks_path = \"/jwks\"\n",
    );
    let (jwks_uri, set) = jwks_through_discovery(&s.hg).await;
    assert_eq!(jwks_uri, s.hg.url("/jwks"));
    for kid in server_kids(&s.idp).await {
        assert!(
            set.find(&kid).is_some(),
            "the server's key {kid} is published"
        );
    }
    let basic = (oidc::BASIC_CLIENT_ID, oidc::BASIC_CLIENT_SECRET);
    let post = (oidc::POST_CLIENT_ID, oidc::POST_CLIENT_SECRET);
    for (client, as_basic) in [(basic, true), (post, false)] {
        let jwt = access_token(
            &s.hg,
            token(&s.hg, client, as_basic, Some(oidc::AUDIENCE)).await,
        )
        .await;
        verify_through_discovery(&s, &jwt).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rfc8414_discovery_documents_point_at_hookgates_jwks() {
    let s = setup("", "");
    let direct: Value = reqwest::get(format!(
        "{}/.well-known/oauth-authorization-server",
        s.idp.base_url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        direct["jwks_uri"],
        s.idp.jwks_url(),
        "the server serves RFC 8414"
    );
    for spelling in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/OAuth-Authorization-Server/",
    ] {
        let resp = reqwest::get(s.hg.url(spelling)).await.unwrap();
        assert_eq!(resp.status(), 200, "{spelling}");
        let doc: Value = resp.json().await.unwrap();
        assert_eq!(
            doc["jwks_uri"],
            s.hg.url("/.well-known/jwks.json"),
            "{spelling}"
        );
        assert_eq!(doc["issuer"], direct["issuer"], "the rest is the server's");
        assert_eq!(
            doc["grant_types_supported"],
            direct["grant_types_supported"]
        );
    }
}

/// A stand-in identity server with a path in its issuer (RFC 8414 §3: the document lives at
/// `/.well-known/oauth-authorization-server/<issuer path>`), and a JWKS that reuses the `kid`
/// of hookgate's key for a key of its own.
#[tokio::test(flavor = "multi_thread")]
async fn path_suffixed_documents_are_rewritten_and_an_upstream_kid_never_shadows_hookgates() {
    let dir = tempfile::tempdir().unwrap();
    let pem = hookgate::token::keys::generate_pem(hookgate::token::Alg::ES256).unwrap();
    std::fs::write(dir.path().join("hookgate.pem"), &pem).unwrap();
    let ours = hookgate::token::SigningKey::from_pem(pem.as_bytes()).unwrap();
    let other = |kid: &str| {
        let k = hookgate::token::SigningKey::from_pem(
            hookgate::token::keys::generate_pem(hookgate::token::Alg::ES256)
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        let mut jwk = k.public_jwk().clone();
        jwk["kid"] = json!(kid);
        jwk
    };
    let (collider, theirs) = (other(&ours.kid), other("their-key"));
    let jwks = json!({ "keys": [collider.clone(), theirs] });
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let server = {
        let seen = seen.clone();
        serve(move |req| {
            let (jwks, seen) = (jwks.clone(), seen.clone());
            async move {
                let path = req.uri().path().to_string();
                seen.lock().unwrap().push(path.clone());
                let host = req.headers()["host"].to_str().unwrap().to_string();
                let doc = json!({
                    "issuer": format!("http://{host}/tenant-x"),
                    "jwks_uri": format!("http://{host}/tenant-x/keys"),
                });
                match path.as_str() {
                    "/.well-known/openid-configuration"
                    | "/.well-known/oauth-authorization-server/tenant-x" => {
                        json_response(200, &doc)
                    }
                    "/tenant-x/keys" => json_response(200, &jwks),
                    _ => json_response(404, &json!({"error": "not_found"})),
                }
            }
        })
    };
    let hg = hookgate_in(dir, &server.addr.to_string(), "", "");

    let resp = reqwest::get(hg.url("/.well-known/oauth-authorization-server/tenant-x"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["jwks_uri"], hg.url("/.well-known/jwks.json"));
    assert!(doc["issuer"].as_str().unwrap().ends_with("/tenant-x"));
    assert!(seen
        .lock()
        .unwrap()
        .contains(&"/.well-known/oauth-authorization-server/tenant-x".to_string()));

    let resp = reqwest::get(hg.url("/.well-known/jwks.json"))
        .await
        .unwrap();
    assert!(resp.headers().get("x-hookgate-upstream-keys").is_none());
    let set: Value = resp.json().await.unwrap();
    let keys = set["keys"].as_array().unwrap();
    let with_our_kid: Vec<&Value> = keys.iter().filter(|k| k["kid"] == ours.kid).collect();
    assert_eq!(
        with_our_kid,
        vec![ours.public_jwk()],
        "only hookgate's key has its kid"
    );
    assert!(keys.iter().all(|k| k["x"] != collider["x"]), "{set}");
    assert!(keys.iter().any(|k| k["kid"] == "their-key"), "{set}");
    assert!(hg.log().contains("kids of hookgate's own keys"), "logged");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_upstream_jwks_still_serves_hookgates_keys_flagged() {
    // Nothing listens there: discovery and the server's JWKS both fail.
    let port = common::hookgate::free_port();
    let hg = hookgate(&format!("127.0.0.1:{port}"), "", "");
    let resp = reqwest::get(hg.url("/.well-known/jwks.json"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-hookgate-upstream-keys"], "unavailable");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let set: JwkSet = resp.json().await.unwrap();
    assert_eq!(set.keys.len(), 1, "hookgate's own key");
    assert!(hg
        .log()
        .contains("without fresh keys of the identity server"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_client_calling_with_basic_gets_its_token_only_with_translation() {
    let (idp, front) = strict_server();
    let post = (oidc::POST_CLIENT_ID, oidc::POST_CLIENT_SECRET);
    let same = hookgate(&front.addr.to_string(), "", "");
    let resp = token(&same, post, true, Some(oidc::AUDIENCE)).await;
    assert_eq!(
        resp.status(),
        401,
        "the server refuses Basic for a post client"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    let translating = hookgate(
        &front.addr.to_string(),
        "upstream_client_auth = \"post\"",
        "",
    );
    let jwt = access_token(
        &translating,
        token(&translating, post, true, Some(oidc::AUDIENCE)).await,
    )
    .await;
    let s = Setup {
        idp,
        hg: translating,
        _front: Some(front),
    };
    let claims = verify_through_discovery(&s, &jwt).await;
    assert_eq!(claims["client_id"], oidc::POST_CLIENT_ID);
    // Posting already is left as it is.
    access_token(&s.hg, token(&s.hg, post, false, Some(oidc::AUDIENCE)).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_basic_client_posting_its_credentials_gets_its_token_only_with_translation() {
    let (_idp, front) = strict_server();
    let same = hookgate(&front.addr.to_string(), "", "");
    for client in [
        (oidc::BASIC_CLIENT_ID, oidc::BASIC_CLIENT_SECRET),
        ODD_CLIENT,
    ] {
        let resp = token(&same, client, false, Some(oidc::AUDIENCE)).await;
        assert_eq!(resp.status(), 401, "{}", client.0);
    }
    let translating = hookgate(
        &front.addr.to_string(),
        "upstream_client_auth = \"basic\"",
        "",
    );
    for client in [
        (oidc::BASIC_CLIENT_ID, oidc::BASIC_CLIENT_SECRET),
        ODD_CLIENT,
    ] {
        // The odd secret (`+`, `%`, `:`, space, `/`) only survives form-encoding before base64.
        access_token(
            &translating,
            token(&translating, client, false, Some(oidc::AUDIENCE)).await,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registered_clients_upstream_client_auth_wins_over_the_routes() {
    let s = setup_strict(
        "upstream_client_auth = \"basic\"",
        "[clients.m2m-post]\nupstream_client_auth = \"post\"\n",
    );
    let post = (oidc::POST_CLIENT_ID, oidc::POST_CLIENT_SECRET);
    for as_basic in [true, false] {
        access_token(
            &s.hg,
            token(&s.hg, post, as_basic, Some(oidc::AUDIENCE)).await,
        )
        .await;
    }
    // The route's setting still holds for the others.
    access_token(
        &s.hg,
        token(&s.hg, ODD_CLIENT, false, Some(oidc::AUDIENCE)).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_in_both_places_naming_different_clients_are_refused() {
    let s = setup_strict("upstream_client_auth = \"post\"", "");
    let resp = reqwest::Client::new()
        .post(s.hg.url("/oauth/token"))
        .basic_auth(oidc::POST_CLIENT_ID, Some(oidc::POST_CLIENT_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", oidc::BASIC_CLIENT_ID),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_default_audience_an_opaque_token_server_fails_audience_less_requests() {
    // node-oidc-provider's default: no `resource`, an opaque token; the hook's change cannot
    // be applied to it, so the request fails (token.opaque_tokens = "deny").
    let s = setup("", "");
    let resp = token(&s.hg, OPAQUE_CLIENT, false, None).await;
    assert_eq!(resp.status(), 500);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "server_error");
    // With the audience named, the same client gets a (re-signed) JWT.
    let jwt = access_token(
        &s.hg,
        token(&s.hg, OPAQUE_CLIENT, false, Some(oidc::AUDIENCE)).await,
    )
    .await;
    verify_through_discovery(&s, &jwt).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_routes_default_audience_is_sent_when_the_request_names_none() {
    let s = setup("default_audience = \"https://api.example.com/\"", "");
    let jwt = access_token(&s.hg, token(&s.hg, OPAQUE_CLIENT, false, None).await).await;
    let claims = verify_through_discovery(&s, &jwt).await;
    assert_eq!(claims["aud"], oidc::AUDIENCE);
    assert_eq!(
        claims["https://example.com/audience"],
        oidc::AUDIENCE,
        "the hook sees the default audience"
    );
    // An empty audience names none either.
    let resp = reqwest::Client::new()
        .post(s.hg.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", OPAQUE_CLIENT.0),
            ("client_secret", OPAQUE_CLIENT.1),
            ("audience", ""),
            ("resource", ""),
        ])
        .send()
        .await
        .unwrap();
    let jwt = access_token(&s.hg, resp).await;
    assert_eq!(
        verify_through_discovery(&s, &jwt).await["aud"],
        oidc::AUDIENCE
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clients_default_audience_wins_over_the_routes_and_a_named_audience_over_both() {
    // The server refuses the route's audience (unknown resource): a request that gets it fails
    // with the server's invalid_target, which shows what was sent.
    let s = setup(
        "default_audience = \"https://unknown.example/\"",
        "[clients.m2m-opaque]\ndefault_audience = \"https://api.example.com/\"\n",
    );
    let jwt = access_token(&s.hg, token(&s.hg, OPAQUE_CLIENT, false, None).await).await;
    assert_eq!(
        verify_through_discovery(&s, &jwt).await["aud"],
        oidc::AUDIENCE
    );

    let post = (oidc::POST_CLIENT_ID, oidc::POST_CLIENT_SECRET);
    let resp = token(&s.hg, post, false, None).await;
    assert_eq!(resp.status(), 400, "the route's default reached the server");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_target");
    let jwt = access_token(&s.hg, token(&s.hg, post, false, Some(oidc::AUDIENCE)).await).await;
    verify_through_discovery(&s, &jwt).await;
}
