//! Which route takes a request, what the upstream is sent, and which requests are refused
//! because they would reach a hooked endpoint around its hooks.
//!
//! The rule: no request whose canonical path (see [`super::path`]) belongs to a route with a
//! point — its `path` or its `upstream_path`, in any case — reaches the upstream unhooked.
//!
//! 1. Routes are tried in file order. A route with a point takes a request at its `path` and at
//!    its `upstream_path` (the upstream's own spelling of the endpoint runs the same hooks).
//! 2. A request no hooked route took, whose path (or, for a rewriting route, whose forwarded
//!    path) belongs to a hooked route, is refused: 405 with `Allow` for another method, 400 for
//!    the route's method in a spelling it does not take (another case on a `case_sensitive`
//!    route, a prefix route rewriting into it). A passthrough route listed before a hooked one
//!    never takes the hooked route's request from it. Two exceptions: an exact passthrough
//!    route that names the path takes the methods the hooked route does not (explicit wins),
//!    and `OPTIONS` passes (CORS preflights; no server issues a token to one).
//!
//! Owns: that decision, as a pure function of the routes, the method and the normalised target.
//! Must not: read bodies, run hooks, or write anything (`super` writes the refusal).

use pingora::http::RequestHeader;

use super::respond::{render, OAuthError};
use crate::config::path::{normalize, Target};
use crate::config::{PathMatch, Route};
use crate::points::{self, Failure, Shape};

/// Headers some servers route on instead of the request line (IIS, Symfony, Zend): a client
/// would choose the path after hookgate routed on another.
const PATH_OVERRIDES: [&str; 2] = ["x-original-url", "x-rewrite-url"];
/// Headers some frameworks read as the method instead of the request line.
const METHOD_OVERRIDES: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// What happens to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Route `index` takes it; `upstream` is the path and query the upstream is sent.
    Route { index: usize, upstream: String },
    /// No route: hookgate's own answers (JWKS, discovery), else forwarded as `upstream`.
    Unrouted { upstream: String },
    /// Refused before anything reaches the upstream; `allow` is the `Allow` header of a 405.
    Refuse {
        error: OAuthError,
        allow: Option<String>,
    },
}

/// Decide for a request with `method` (upper case, as received) and its normalised `target`.
pub fn decide(routes: &[Route], method: &str, target: &Target) -> Decision {
    let path = target.path.as_str();
    // The hooked route a passthrough route would have carried the request around.
    let mut around = None;
    for (index, route) in routes.iter().enumerate() {
        if !route.allows(method) {
            continue;
        }
        let Some(rest) = route.take(path) else {
            continue;
        };
        let upstream = route.upstream_target(target, rest);
        if route.kind.trigger().is_some() {
            return Decision::Route { index, upstream };
        }
        let forwarded = route.upstream_canonical(path, rest);
        match guard(routes, path).or_else(|| guard(routes, &forwarded)) {
            // A hooked route further down may still take it (its upstream_path, say).
            Some(hooked) if !passes(route, hooked, method) => {
                around.get_or_insert(hooked);
            }
            _ => return Decision::Route { index, upstream },
        }
    }
    if let Some(hooked) = around {
        return refuse(hooked, method);
    }
    match guard(routes, path) {
        Some(hooked) if method != "OPTIONS" => refuse(hooked, method),
        _ => Decision::Unrouted {
            upstream: target.forward(path),
        },
    }
}

/// Remove from a passthrough request what would make the upstream read another path than
/// the one hookgate routed on, or, on a hooked route's path (where only the methods the route
/// does not take pass), another method.
pub fn strip_overrides(routes: &[Route], upstream: &mut RequestHeader) {
    // Most requests carry none of these: one pass over the names they have, instead of a
    // lookup per header and the path normalised again.
    let carries = |upstream: &RequestHeader, names: &[&str]| {
        upstream.headers.keys().any(|k| names.contains(&k.as_str()))
    };
    if carries(upstream, &PATH_OVERRIDES) {
        for h in PATH_OVERRIDES {
            upstream.remove_header(h);
        }
    }
    let guarded =
        || normalize(upstream.uri.path()).is_ok_and(|(path, _)| guard(routes, &path).is_some());
    if carries(upstream, &METHOD_OVERRIDES) && guarded() {
        for h in METHOD_OVERRIDES {
            upstream.remove_header(h);
        }
    }
}

/// The first hooked route the canonical `path` belongs to.
fn guard<'r>(routes: &'r [Route], path: &str) -> Option<&'r Route> {
    routes.iter().find(|r| r.guards(path))
}

/// Whether a passthrough `route` may carry a request that belongs to `hooked`.
fn passes(route: &Route, hooked: &Route, method: &str) -> bool {
    method == "OPTIONS" || (route.match_kind == PathMatch::Exact && !hooked.allows(method))
}

fn refuse(hooked: &Route, method: &str) -> Decision {
    let allow = hooked.methods.join(", ");
    let (failure, allow) = if hooked.allows(method) {
        (
            Failure::BadRequest(format!(
                "this request would reach a hooked endpoint around its hooks: send {allow} {}",
                hooked.path
            )),
            None,
        )
    } else {
        (
            Failure::MethodNotAllowed(format!(
                "{method} is not allowed here: {} takes {allow}",
                hooked.path
            )),
            Some(allow),
        )
    };
    // Each route answers in its point's shape: signup clients parse Auth0's signup errors.
    let shape = points::for_route(&hooked.kind).map_or(Shape::OAuth, |p| p.shape());
    Decision::Refuse {
        error: render(&failure, shape),
        allow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::proxy::path::parse_target;

    const ROUTES: &str = "[upstream]\naddress = \"127.0.0.1:1\"\n[token]\nsigning_key = \"k.pem\"\n\
        [[route]]\nname = \"first\"\npath = \"/token\"\n\
        [[route]]\nname = \"token\"\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\nupstream_path = \"/token\"\n\
        [[route]]\nname = \"signup\"\npath = \"/dbconnections/signup\"\npoint = \"pre-user-registration\"\nupstream_path = \"/api/users\"\n\
        [[route]]\nname = \"sms\"\npath = \"/hooks/sms\"\npoint = \"send-phone-message\"\nwebhook_secret = { env = \"S\" }\n\
        [[route]]\nname = \"strict\"\npath = \"/Strict\"\ncase_sensitive = true\npoint = \"post-change-password\"\n\
        [[route]]\nname = \"token-get\"\npath = \"/oauth/token\"\nmethods = [\"GET\"]\n\
        [[route]]\nname = \"api\"\npath = \"/api/\"\nmatch = \"prefix\"\n\
        [[route]]\nname = \"v1\"\npath = \"/v1/\"\nmatch = \"prefix\"\nupstream_path = \"/\"\n";

    fn routes() -> Vec<Route> {
        let env = |k: &str| (k == "S").then(|| "s".to_string());
        Config::parse(std::path::Path::new("t.toml"), ROUTES, &env)
            .unwrap()
            .routes
    }

    fn decide_raw(method: &str, raw: &str) -> Decision {
        decide(
            &routes(),
            method,
            &parse_target(raw.as_bytes()).unwrap().unwrap(),
        )
    }

    /// `route name -> upstream target`, or `status error`.
    fn outcome(method: &str, raw: &str) -> String {
        let routes = routes();
        match decide_raw(method, raw) {
            Decision::Route { index, upstream } => format!("{} {upstream}", routes[index].name),
            Decision::Unrouted { upstream } => format!("- {upstream}"),
            Decision::Refuse { error, allow } => {
                format!("{} {}", error.status, allow.unwrap_or_default())
            }
        }
    }

    #[test]
    fn every_spelling_of_a_hooked_endpoint_runs_its_hooks_or_is_refused() {
        for (method, raw, expected) in [
            ("POST", "/oauth/token", "token /token"),
            ("POST", "/oauth/token?x=1", "token /token?x=1"),
            ("POST", "/token", "token /token"),
            ("POST", "/TOKEN", "token /token"),
            ("POST", "/token/", "token /token"),
            ("POST", "//oauth/token", "token /token"),
            ("POST", "/oauth/./token", "token /token"),
            ("POST", "/oauth/%74oken", "token /token"),
            ("POST", "/oauth/token;x", "token /token"),
            ("POST", "/OAuth/Token/", "token /token"),
            ("POST", "http://idp.example/oauth/token", "token /token"),
            ("POST", "/api/users", "signup /api/users"),
            ("POST", "/API/Users/", "signup /api/users"),
            ("POST", "/hooks//sms/", "sms /hooks/sms"),
            // Another method: refused, naming the one the route takes...
            ("PUT", "/oauth/token", "405 POST"),
            ("HEAD", "/Token/", "first /Token/"),
            ("HEAD", "/oauth/token", "405 POST"),
            ("GET", "/hooks/sms", "405 POST"),
            // ...unless an exact route names it, or a CORS preflight.
            ("GET", "/oauth/token", "token-get /oauth/token"),
            // A passthrough route listed first does not take a hooked route's request from it,
            // but takes the methods the hooked route does not.
            ("GET", "/token", "first /token"),
            ("OPTIONS", "/oauth/token", "- /oauth/token"),
            ("OPTIONS", "/token", "first /token"),
            // A prefix passthrough route is not an explicit exception.
            ("GET", "/api/users", "405 POST"),
            ("POST", "/api/other", "api /api/other"),
            // A rewrite into a hooked endpoint is caught on the forwarded path.
            ("POST", "/v1/token", "400 "),
            ("POST", "/v1/TOKEN", "400 "),
            ("GET", "/v1/token", "405 POST"),
            ("GET", "/v1/jwks", "v1 /jwks"),
            // A case-sensitive route takes its spelling only; the others are refused.
            ("POST", "/Strict", "strict /Strict"),
            ("POST", "/strict", "400 "),
            ("POST", "/STRICT/", "400 "),
            // Everything else passes, canonical.
            ("GET", "/a//b/./c/?q=%2F", "- /a/b/c/?q=%2F"),
            ("POST", "/tokens", "- /tokens"),
        ] {
            assert_eq!(outcome(method, raw), expected, "{method} {raw}");
        }
    }

    #[test]
    fn refusals_answer_in_the_routes_shape() {
        let Decision::Refuse { error, .. } = decide_raw("GET", "/api/users") else {
            panic!("refused")
        };
        let body: serde_json::Value = serde_json::from_slice(&error.body()).unwrap();
        assert_eq!(body["statusCode"], 405, "signup shape: {body}");
        let Decision::Refuse { error, .. } = decide_raw("PUT", "/oauth/token") else {
            panic!("refused")
        };
        let body: serde_json::Value = serde_json::from_slice(&error.body()).unwrap();
        assert_eq!(body["error"], "invalid_request", "OAuth shape: {body}");
    }
}
