//! `[[route]]`: which requests hookgate takes, the extensibility point each one starts, and the
//! options of that point (the body shape the upstream wants, the audience and client
//! credentials, the signup and change-password mappings, the send-phone-message webhook secret).
//! A route's [`RouteKind`] is its point with that point's options only: each kind carries its
//! own struct ([`TokenRoute`], [`SignupRoute`], [`ChangePasswordMapping`], [`PhoneRoute`]), built
//! once at load, where an option given on a route of another kind is refused.
//!
//! Owns: a route's shape and validation (each option only on the routes whose point reads it),
//! and matching a canonical path against a route ([`Route::take`], [`Route::guards`],
//! [`Route::upstream_target`]). Routes apply live on reload: nothing here needs a restart.
//! Must not: read requests, decide refusals or write answers; the proxy does, from this model.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::clients::ClientAuth;
use super::path::{self, Target};
use super::secrets::{read_secret, Secret, SecretSource};
use super::trigger::Trigger;
use super::Validator;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    name: Option<String>,
    #[serde(default = "default_methods")]
    methods: Vec<Spanned<String>>,
    path: Spanned<String>,
    #[serde(default, rename = "match")]
    match_kind: PathMatch,
    #[serde(default)]
    case_sensitive: bool,
    point: Option<Spanned<String>>,
    upstream_path: Option<Spanned<String>>,
    upstream_body: Option<Spanned<UpstreamBody>>,
    audience_param: Option<Spanned<String>>,
    upstream_client_auth: Option<Spanned<ClientAuth>>,
    default_audience: Option<Spanned<String>>,
    webhook_secret: Option<Spanned<SecretSource>>,
    signup: Option<Spanned<SignupMapping>>,
    change_password: Option<Spanned<RawChangePassword>>,
}

fn default_methods() -> Vec<Spanned<String>> {
    Vec::new()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathMatch {
    #[default]
    Exact,
    Prefix,
}

/// The shape of a request body: an RFC 6749 form or a JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    Form,
    Json,
}

impl BodyFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Form => "application/x-www-form-urlencoded",
            BodyFormat::Json => "application/json",
        }
    }
}

/// How a token route sends the client's parameters upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamBody {
    /// In the shape the client sent.
    Same,
    Form,
    Json,
}

impl UpstreamBody {
    pub fn format(self, incoming: BodyFormat) -> BodyFormat {
        match self {
            UpstreamBody::Same => incoming,
            UpstreamBody::Form => BodyFormat::Form,
            UpstreamBody::Json => BodyFormat::Json,
        }
    }
}

/// `[route.signup]` of a pre-user-registration route: where a legacy server's signup body keeps
/// what Auth0's `/dbconnections/signup` calls `username`, `email`, ... The defaults are Auth0's
/// names. A location is a top-level field name, or a JSON pointer (`/user/email`) for nested
/// JSON bodies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignupMapping {
    /// In the incoming body.
    pub username: String,
    pub email: String,
    pub password: String,
    pub phone_number: String,
    pub connection: String,
    /// Where the metadata go in the forwarded body.
    pub user_metadata: String,
    pub app_metadata: String,
    /// JSON pointer to the created user's id in the upstream's answer.
    pub user_id: String,
    /// `context.connection.name` when the body names none.
    pub default_connection: String,
    /// `context.connection.id`. Default: the connection's name.
    pub connection_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChangePassword {
    id: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    email: Option<Spanned<String>>,
    client_id: Option<Spanned<String>>,
    connection: Option<Spanned<String>>,
    default_connection: Option<String>,
}

/// Where a value is found for a post-change-password event. Legacy servers identify the user in
/// different places, so each field of the hook's `user` names its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `body:/user/id` or `body:email`: the request's (form or JSON) body.
    Body(String),
    /// `response:/_id`: the upstream's JSON answer.
    Response(String),
    /// `header:x-user-id`: a request header.
    Header(String),
    /// `jwt:sub`: a claim of the request's `Authorization: Bearer` JWT. Read, not verified: the
    /// event exists only after the upstream accepted the request, and the upstream verifies it.
    Jwt(String),
}

impl Location {
    fn parse(text: &str) -> Result<Location, String> {
        let (source, path) = text.split_once(':').ok_or_else(|| {
            format!("`{text}` names no source: write body:NAME, response:/POINTER, header:NAME or jwt:CLAIM")
        })?;
        if path.is_empty() {
            return Err(format!("`{text}` names no field"));
        }
        // What can be checked before any request: a location that could never match anything.
        if source == "header" && http::HeaderName::from_bytes(path.as_bytes()).is_err() {
            return Err(format!(
                "`{path}` is not a header name, so this can never match: write header:X-User-Id"
            ));
        }
        if matches!(source, "body" | "response" | "jwt") && path.starts_with('/') {
            let bad_escape = path
                .split('~')
                .skip(1)
                .any(|rest| !rest.starts_with(['0', '1']));
            if bad_escape {
                return Err(format!(
                    "`{path}` is not a valid JSON pointer (`~` must be `~0` or `~1`), so this can never match"
                ));
            }
        }
        let path = path.to_string();
        Ok(match source {
            "body" => Location::Body(path),
            "response" => Location::Response(path),
            "header" => Location::Header(path.to_ascii_lowercase()),
            "jwt" => Location::Jwt(path),
            other => {
                return Err(format!(
                    "unknown source `{other}`: use body, response, header or jwt"
                ))
            }
        })
    }
}

/// `[route.change_password]`: where a post-change-password route finds the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangePasswordMapping {
    pub id: Location,
    pub username: Location,
    pub email: Location,
    pub client_id: Location,
    pub connection: Location,
    pub default_connection: String,
}

impl Default for ChangePasswordMapping {
    fn default() -> Self {
        ChangePasswordMapping {
            id: Location::Jwt("sub".into()),
            username: Location::Body("username".into()),
            email: Location::Body("email".into()),
            client_id: Location::Body("client_id".into()),
            connection: Location::Body("connection".into()),
            default_connection: "Username-Password-Authentication".into(),
        }
    }
}

impl Default for SignupMapping {
    fn default() -> Self {
        SignupMapping {
            username: "username".into(),
            email: "email".into(),
            password: "password".into(),
            phone_number: "phone_number".into(),
            connection: "connection".into(),
            user_metadata: "user_metadata".into(),
            app_metadata: "app_metadata".into(),
            user_id: "/_id".into(),
            default_connection: "Username-Password-Authentication".into(),
            connection_id: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    /// Upper-case method names; empty means any method.
    pub methods: Vec<String>,
    /// Canonical (see [`super::path`]): what requests' canonical paths are compared with.
    pub path: String,
    pub match_kind: PathMatch,
    /// Whether `/OAuth/Token` is another path than `/oauth/token` (default: the same). Requests
    /// in another case never pass a hooked route unhooked either way: they are refused.
    pub case_sensitive: bool,
    /// As written: exact routes send the upstream exactly this.
    pub upstream_path: Option<String>,
    /// `upstream_path`, canonical.
    pub upstream_key: Option<String>,
    /// The point the route starts (its `point`), with that point's own options.
    pub kind: RouteKind,
}

/// What a route does with the requests it takes: pass them through, or start a point, with the
/// options of that point only (an option of another point is refused at load).
#[derive(Debug, Clone)]
pub enum RouteKind {
    /// No `point`: requests go upstream untouched.
    Passthrough,
    /// `point = "credentials-exchange"`.
    CredentialsExchange(TokenRoute),
    /// `point = "pre-user-registration"` (and post-user-registration's event).
    Signup(SignupRoute),
    /// `point = "post-change-password"`: `[route.change_password]`.
    ChangePassword(ChangePasswordMapping),
    /// `point = "send-phone-message"`.
    SendPhoneMessage(PhoneRoute),
}

impl RouteKind {
    /// The point the route starts; `None` for passthrough.
    pub fn trigger(&self) -> Option<Trigger> {
        match self {
            RouteKind::Passthrough => None,
            RouteKind::CredentialsExchange(_) => Some(Trigger::CredentialsExchange),
            RouteKind::Signup(_) => Some(Trigger::PreUserRegistration),
            RouteKind::ChangePassword(_) => Some(Trigger::PostChangePassword),
            RouteKind::SendPhoneMessage(_) => Some(Trigger::SendPhoneMessage),
        }
    }
}

/// Each kind's options, for tests that read what a route was given.
#[cfg(test)]
impl RouteKind {
    pub(crate) fn token(&self) -> &TokenRoute {
        match self {
            RouteKind::CredentialsExchange(o) => o,
            other => panic!("not a credentials-exchange route: {other:?}"),
        }
    }

    pub(crate) fn signup(&self) -> &SignupRoute {
        match self {
            RouteKind::Signup(o) => o,
            other => panic!("not a pre-user-registration route: {other:?}"),
        }
    }

    pub(crate) fn change_password(&self) -> &ChangePasswordMapping {
        match self {
            RouteKind::ChangePassword(o) => o,
            other => panic!("not a post-change-password route: {other:?}"),
        }
    }

    pub(crate) fn phone(&self) -> &PhoneRoute {
        match self {
            RouteKind::SendPhoneMessage(o) => o,
            other => panic!("not a send-phone-message route: {other:?}"),
        }
    }
}

/// A credentials-exchange (token) route's own options.
#[derive(Debug, Clone)]
pub struct TokenRoute {
    /// The body shape the upstream wants (default: form, as RFC 6749 says).
    pub upstream_body: UpstreamBody,
    /// The upstream's name for Auth0's `audience` (e.g. RFC 8707 `resource`).
    pub audience_param: String,
    /// How the client's credentials go upstream (a registered client's own setting wins).
    pub upstream_client_auth: ClientAuth,
    /// The audience a client-credentials request gets when it names none (a registered
    /// client's own `default_audience` wins).
    pub default_audience: Option<String>,
}

/// A pre-user-registration (signup) route's own options.
#[derive(Debug, Clone)]
pub struct SignupRoute {
    /// The body shape the upstream wants (default: the shape the client sent).
    pub upstream_body: UpstreamBody,
    /// `[route.signup]`: where the signup fields are (Auth0's names by default).
    pub signup: SignupMapping,
}

/// A send-phone-message route's own options.
#[derive(Debug, Clone)]
pub struct PhoneRoute {
    /// The bearer secret the identity server must present (required).
    pub webhook_secret: Secret,
}

impl Route {
    /// If this route takes a request for the canonical `path`: what follows the route's path
    /// (`""` for an exact match). A route with a point also takes its `upstream_path`: the
    /// upstream's own spelling of the endpoint reaches it only through the hooks.
    pub fn take<'a>(&self, path: &'a str) -> Option<&'a str> {
        self.at(path, &self.path, self.case_sensitive).or_else(|| {
            let key = self
                .upstream_key
                .as_deref()
                .filter(|_| self.kind.trigger().is_some())?;
            self.at(path, key, self.case_sensitive)
        })
    }

    fn at<'a>(&self, path: &'a str, key: &str, case_sensitive: bool) -> Option<&'a str> {
        match self.match_kind {
            PathMatch::Exact => path::same(path, key, case_sensitive).then_some(""),
            PathMatch::Prefix => path::under(path, key, case_sensitive),
        }
    }

    pub fn allows(&self, method: &str) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| m == method)
    }

    /// Whether the canonical `path` belongs to this route's hooks: a route with a point, at its
    /// path or its `upstream_path` (or under them, for a prefix route), in any case, as an
    /// upstream that ignores case would read it.
    pub fn guards(&self, path: &str) -> bool {
        self.kind.trigger().is_some()
            && (self.at(path, &self.path, false).is_some()
                || self
                    .upstream_key
                    .as_deref()
                    .is_some_and(|k| self.at(path, k, false).is_some()))
    }

    /// The canonical path the upstream gets for a request this route took (`rest` from
    /// [`Self::take`]), `client` being the request's canonical path.
    pub fn upstream_canonical(&self, client: &str, rest: &str) -> String {
        match (&self.upstream_key, self.match_kind) {
            (None, _) => client.to_string(),
            (Some(to), PathMatch::Exact) => to.clone(),
            (Some(to), PathMatch::Prefix) => path::join(to, rest),
        }
    }

    /// The path and query to send upstream for a request this route took (`rest` from
    /// [`Self::take`]). An exact route's `upstream_path` is sent as written; a hooked exact
    /// route without one sends its own path, so every spelling gets the same answer.
    pub fn upstream_target(&self, target: &Target, rest: &str) -> String {
        let exact = match (&self.upstream_path, self.match_kind, self.kind.trigger()) {
            (Some(to), PathMatch::Exact, _) => to,
            (None, PathMatch::Exact, Some(_)) => &self.path,
            _ => return target.forward(&self.upstream_canonical(&target.path, rest)),
        };
        match &target.query {
            Some(q) => format!("{exact}?{q}"),
            None => exact.clone(),
        }
    }
}

impl Validator<'_> {
    /// that form, so `/oauth/token/` in the file means `/oauth/token`.
    pub(super) fn route_path(&mut self, value: &Spanned<String>, key: &str) -> String {
        let text = value.get_ref();
        if !text.starts_with('/') {
            self.error(value.span(), key, "must start with `/`");
            return text.clone();
        }
        if text.contains('?') || text.contains('#') {
            self.error(value.span(), key, "a path, without `?` or `#`");
        }
        match path::normalize(text) {
            Ok((path, _)) => path,
            Err(why) => {
                self.error(value.span(), key, format!("`{text}`: {why}"));
                text.clone()
            }
        }
    }

    /// `[[route]]`, in file order.
    pub(super) fn routes(
        &mut self,
        raw: Vec<Spanned<RawRoute>>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<Route> {
        let mut routes = Vec::new();
        for (i, r) in raw.into_iter().enumerate() {
            let span = r.span();
            let r = r.into_inner();
            let key = |k: &str| format!("route[{i}].{k}");
            let path = self.route_path(&r.path, &key("path"));
            let point = match &r.point {
                None => None,
                Some(p) => match Trigger::route_point(p.get_ref()) {
                    Some(point) => Some(point),
                    None => {
                        let known: Vec<_> = Trigger::ROUTE_POINTS.iter().map(|p| p.id()).collect();
                        self.error(
                            p.span(),
                            key("point"),
                            format!(
                                "unknown extensibility point `{}`; expected one of: {} (post-user-registration runs after a pre-user-registration route)",
                                p.get_ref(),
                                known.join(", ")
                            ),
                        );
                        None
                    }
                },
            };
            let mut methods = Vec::new();
            for m in &r.methods {
                let up = m.get_ref().to_ascii_uppercase();
                if up.is_empty() || !up.bytes().all(|b| b.is_ascii_alphabetic()) {
                    self.error(
                        m.span(),
                        key("methods"),
                        format!("`{}` is not an HTTP method", m.get_ref()),
                    );
                }
                methods.push(up);
            }
            if point.is_some() && methods.is_empty() {
                methods.push("POST".to_string());
            }
            let upstream_key = r
                .upstream_path
                .as_ref()
                .map(|up| self.route_path(up, &key("upstream_path")));
            let kind = self.route_kind(&r, point, &key, span.clone(), env);
            let name = r.name.unwrap_or_else(|| format!("route{i}"));
            if routes.iter().any(|x: &Route| x.name == name) {
                self.error(
                    span,
                    key("name"),
                    format!("the route name `{name}` is used twice"),
                );
            }
            routes.push(Route {
                name,
                methods,
                path,
                match_kind: r.match_kind,
                case_sensitive: r.case_sensitive,
                upstream_path: r.upstream_path.map(Spanned::into_inner),
                upstream_key,
                kind,
            });
        }
        routes
    }

    /// The route's kind, built from its `point` and the options of that point, once. An option
    /// of another point is reported at its key (and dropped): each option belongs to the kinds
    /// that read it. Checked in the order of the keys below, so problems are listed that way.
    fn route_kind(
        &mut self,
        r: &RawRoute,
        point: Option<Trigger>,
        key: &dyn Fn(&str) -> String,
        span: std::ops::Range<usize>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> RouteKind {
        let token = point == Some(Trigger::CredentialsExchange);
        let signup = point == Some(Trigger::PreUserRegistration);
        let upstream_body = self.only(
            &r.upstream_body,
            token || signup,
            key("upstream_body"),
            "only credentials-exchange and pre-user-registration routes rewrite the body",
        );
        let change_password = match &r.change_password {
            Some(m) if point == Some(Trigger::PostChangePassword) => {
                Some(self.change_password(m.get_ref(), key))
            }
            given => {
                self.misplaced(
                    given,
                    key("change_password"),
                    "only post-change-password routes map change-password fields",
                );
                None
            }
        };
        let signup_map = self.only(
            &r.signup,
            signup,
            key("signup"),
            "only pre-user-registration (signup) routes map signup fields",
        );
        if let Some(m) = &r.signup {
            if !m.get_ref().user_id.starts_with('/') {
                self.error(
                    m.span(),
                    key("signup.user_id"),
                    format!(
                        "`{}` is not a JSON pointer: write it like \"/_id\" or \"/user/id\"",
                        m.get_ref().user_id
                    ),
                );
            }
        }
        let audience_param = self.only(
            &r.audience_param,
            token,
            key("audience_param"),
            "only credentials-exchange routes map the audience",
        );
        let upstream_client_auth = self.only(
            &r.upstream_client_auth,
            token,
            key("upstream_client_auth"),
            "only credentials-exchange routes present client credentials",
        );
        let default_audience = self.only(
            &r.default_audience,
            token,
            key("default_audience"),
            "only credentials-exchange routes have an audience",
        );
        if let Some(a) = &r.default_audience {
            if a.get_ref().trim().is_empty() {
                self.error(a.span(), key("default_audience"), "the audience is empty");
            }
        }
        let webhook_secret = match &r.webhook_secret {
            Some(source) if point == Some(Trigger::SendPhoneMessage) => {
                match read_secret(
                    source.get_ref(),
                    self.path.parent().unwrap_or(Path::new(".")),
                    env,
                ) {
                    Ok(v) if !v.is_empty() => Some(Secret(v)),
                    Ok(_) => {
                        self.error(source.span(), key("webhook_secret"), "the secret is empty");
                        None
                    }
                    Err(e) => {
                        self.error(source.span(), key("webhook_secret"), e);
                        None
                    }
                }
            }
            given => {
                self.misplaced(
                    given,
                    key("webhook_secret"),
                    "only send-phone-message routes take a webhook secret",
                );
                None
            }
        };
        match point {
            None => RouteKind::Passthrough,
            Some(Trigger::CredentialsExchange) => RouteKind::CredentialsExchange(TokenRoute {
                upstream_body: upstream_body.unwrap_or(UpstreamBody::Form),
                audience_param: audience_param.unwrap_or_else(|| "audience".into()),
                upstream_client_auth: upstream_client_auth.unwrap_or_default(),
                default_audience,
            }),
            Some(Trigger::PreUserRegistration) => RouteKind::Signup(SignupRoute {
                upstream_body: upstream_body.unwrap_or(UpstreamBody::Same),
                signup: signup_map.unwrap_or_default(),
            }),
            Some(Trigger::PostChangePassword) => {
                RouteKind::ChangePassword(change_password.unwrap_or_default())
            }
            Some(Trigger::SendPhoneMessage) => match webhook_secret {
                Some(webhook_secret) => RouteKind::SendPhoneMessage(PhoneRoute { webhook_secret }),
                None => {
                    if r.webhook_secret.is_none() {
                        self.error(
                            span,
                            key("webhook_secret"),
                            "a send-phone-message route needs `webhook_secret = { env = \"VAR\" }` (or `{ file = \"path\" }`): \
                             the bearer secret your identity server sends, so that nobody else can send SMS through your hooks",
                        );
                    }
                    // The error above (or the secret's own) refuses the configuration: this
                    // kind is never used.
                    RouteKind::Passthrough
                }
            },
            // `Trigger::route_point` never names it: its hooks run from a signup route's event.
            Some(Trigger::PostUserRegistration) => RouteKind::Passthrough,
        }
    }

    /// `given` as written when the route's kind reads it (`read`); else [`Self::misplaced`].
    fn only<T: Clone>(
        &mut self,
        given: &Option<Spanned<T>>,
        read: bool,
        key: String,
        why: &str,
    ) -> Option<T> {
        match given {
            Some(value) if read => Some(value.get_ref().clone()),
            _ => {
                self.misplaced(given, key, why);
                None
            }
        }
    }

    /// An option given on a route whose kind does not read it: an error at its line saying
    /// `why`.
    fn misplaced<T>(&mut self, given: &Option<Spanned<T>>, key: String, why: &str) {
        if let Some(value) = given {
            self.error(value.span(), key, why);
        }
    }

    /// `[route.change_password]` of a post-change-password route: each location parsed, the
    /// defaults for the rest.
    fn change_password(
        &mut self,
        m: &RawChangePassword,
        key: &dyn Fn(&str) -> String,
    ) -> ChangePasswordMapping {
        let mut change_password = ChangePasswordMapping::default();
        let fields = [
            ("id", &m.id, &mut change_password.id),
            ("username", &m.username, &mut change_password.username),
            ("email", &m.email, &mut change_password.email),
            ("client_id", &m.client_id, &mut change_password.client_id),
            ("connection", &m.connection, &mut change_password.connection),
        ];
        for (name, given, slot) in fields {
            if let Some(text) = given {
                match Location::parse(text.get_ref()) {
                    Ok(loc) => *slot = loc,
                    Err(e) => self.error(text.span(), key(&format!("change_password.{name}")), e),
                }
            }
        }
        if let Some(c) = &m.default_connection {
            change_password.default_connection = c.clone();
        }
        change_password
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse, MINIMAL};
    use super::*;
    use crate::config::Config;

    #[test]
    fn unknown_point_is_reported_at_its_line() {
        let text = format!(
            "{MINIMAL}\n[[route]]\npath = \"/oauth/token\"\npoint = \"credential-exchange\"\n"
        );
        let err = parse(&text).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].line, 6);
        assert_eq!(err.0[0].key, "route[0].point");
        assert!(err.0[0].message.contains("credentials-exchange"));
    }

    #[test]
    fn every_point_option_is_refused_on_a_route_of_another_kind() {
        let text = format!(
            "{MINIMAL}[[route]]\npath = \"/x\"\nupstream_body = \"json\"\naudience_param = \"resource\"\n\
             upstream_client_auth = \"basic\"\ndefault_audience = \"urn:a\"\nwebhook_secret = {{ env = \"S\" }}\n\
             [route.change_password]\nid = \"jwt:sub\"\n[route.signup]\nemail = \"mail\"\n"
        );
        let err = parse(&text).unwrap_err();
        let got: Vec<_> = err
            .0
            .iter()
            .map(|e| (e.key.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "route[0].upstream_body",
                    "only credentials-exchange and pre-user-registration routes rewrite the body"
                ),
                (
                    "route[0].change_password",
                    "only post-change-password routes map change-password fields"
                ),
                (
                    "route[0].signup",
                    "only pre-user-registration (signup) routes map signup fields"
                ),
                (
                    "route[0].audience_param",
                    "only credentials-exchange routes map the audience"
                ),
                (
                    "route[0].upstream_client_auth",
                    "only credentials-exchange routes present client credentials"
                ),
                (
                    "route[0].default_audience",
                    "only credentials-exchange routes have an audience"
                ),
                (
                    "route[0].webhook_secret",
                    "only send-phone-message routes take a webhook secret"
                ),
            ]
        );
        let lines: Vec<_> = err.0.iter().map(|e| e.line).collect();
        assert_eq!(lines[0], 5, "each at its own line: {lines:?}");
        assert_eq!(lines[3..], [6, 7, 8, 9]);
    }

    #[test]
    fn send_phone_message_routes_need_a_webhook_secret() {
        let route = "[[route]]\npath = \"/sms\"\npoint = \"send-phone-message\"\n";
        let err = parse(&format!("{MINIMAL}{route}")).unwrap_err().to_string();
        assert!(err.contains("route[0].webhook_secret"), "{err}");
        let with = format!("{MINIMAL}{route}webhook_secret = {{ env = \"SMS_SECRET\" }}\n");
        let err = parse(&with).unwrap_err().to_string();
        assert!(
            err.contains("environment variable SMS_SECRET is not set"),
            "{err}"
        );
        let env = |k: &str| (k == "SMS_SECRET").then(|| "s3".to_string());
        let c = Config::parse(Path::new("t.toml"), &with, &env).unwrap();
        assert_eq!(c.routes[0].kind.phone().webhook_secret, Secret("s3".into()));
        assert_eq!(
            format!("{:?}", c.routes[0].kind.phone().webhook_secret),
            "Secret(..)",
            "never printed"
        );
        let elsewhere = format!(
            "{MINIMAL}[[route]]\npath = \"/x\"\nwebhook_secret = {{ env = \"SMS_SECRET\" }}\n"
        );
        let err = Config::parse(Path::new("t.toml"), &elsewhere, &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("only send-phone-message routes"), "{err}");
    }

    #[test]
    fn change_password_mapping_names_each_source_and_stays_on_its_routes() {
        let text = format!(
            "{MINIMAL}[[route]]\npath = \"/pw\"\npoint = \"post-change-password\"\n\
             [route.change_password]\nid = \"response:/user/id\"\nusername = \"header:X-User\"\nemail = \"jwt:email\"\n"
        );
        let c = parse(&text).unwrap();
        let m = c.routes[0].kind.change_password();
        assert_eq!(m.id, Location::Response("/user/id".into()));
        assert_eq!(m.username, Location::Header("x-user".into()));
        assert_eq!(m.email, Location::Jwt("email".into()));
        assert_eq!(
            m.client_id,
            Location::Body("client_id".into()),
            "defaults stay"
        );
        assert!(c.outbox_needed());
        let text = format!(
            "{MINIMAL}[[route]]\npath = \"/pw\"\npoint = \"post-change-password\"\n\
             [route.change_password]\nid = \"cookie:sid\"\nemail = \"email\"\n\
             [[route]]\npath = \"/x\"\n[route.change_password]\nid = \"jwt:sub\"\n"
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("route[0].change_password.id") && err.contains("unknown source `cookie`"),
            "{err}"
        );
        assert!(
            err.contains("route[0].change_password.email") && err.contains("names no source"),
            "{err}"
        );
        assert!(
            err.contains("route[1].change_password")
                && err.contains("only post-change-password routes"),
            "{err}"
        );
    }

    #[test]
    fn a_change_password_mapping_that_can_never_match_is_refused_at_load() {
        let text = format!(
            "{MINIMAL}[[route]]\npath = \"/pw\"\npoint = \"post-change-password\"\n\
             [route.change_password]\nid = \"response:/user~2id\"\nusername = \"header:X User\"\n\
             email = \"body:/a~1b/~0c\"\n"
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("route[0].change_password.id") && err.contains("can never match"),
            "{err}"
        );
        assert!(
            err.contains("route[0].change_password.username") && err.contains("not a header name"),
            "{err}"
        );
        assert!(
            !err.contains("change_password.email"),
            "valid escapes pass: {err}"
        );
    }

    #[test]
    fn routes_match_by_method_and_path() {
        let text = format!(
            "{MINIMAL}[[route]]\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\nupstream_path = \"/token\"\n\
             [[route]]\npath = \"/api/\"\nmatch = \"prefix\"\nmethods = [\"get\"]\nupstream_path = \"/v2/\"\n\
             [token]\nsigning_key = \"keys/k.pem\"\n"
        );
        let c = parse(&text).unwrap();
        let token = c.route_for("POST", "/oauth/token").unwrap();
        assert_eq!(token.kind.trigger(), Some(Trigger::CredentialsExchange));
        assert!(
            c.route_for("GET", "/oauth/token").is_none(),
            "point routes default to POST"
        );
        assert!(c.route_for("POST", "/oauth/token/x").is_none());
        let api = c.route_for("GET", "/api/users").unwrap();
        let target = |raw: &str| {
            crate::proxy::path::parse_target(raw.as_bytes())
                .unwrap()
                .unwrap()
        };
        let upstream = |r: &Route, raw: &str| {
            let t = target(raw);
            r.upstream_target(&t, r.take(&t.path).unwrap())
        };
        assert_eq!(upstream(api, "/api/users?a=1"), "/v2/users?a=1");
        assert_eq!(upstream(api, "/API//users/?a=1"), "/v2/users/?a=1");
        assert_eq!(upstream(api, "/api"), "/v2");
        assert!(
            c.route_for("GET", "/apix").is_none(),
            "prefixes are whole segments"
        );
        assert_eq!(upstream(token, "/oauth/token"), "/token");
        assert_eq!(upstream(token, "/oauth/token/?x"), "/token?x");
        assert_eq!(
            c.route_for("POST", "/token").unwrap().name,
            token.name,
            "a hooked route also takes its upstream_path"
        );
    }

    #[test]
    fn route_paths_are_canonical_and_case_is_a_route_setting() {
        let text = format!(
            "{MINIMAL}[[route]]\npath = \"/a//b/\"\n[[route]]\npath = \"/C\"\ncase_sensitive = true\n\
             [[route]]\npath = \"/x%2Fy\"\n[[route]]\npath = \"/q?x\"\n"
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("route[2].path") && err.contains("%2F"),
            "{err}"
        );
        assert!(err.contains("route[3].path"), "{err}");
        let text = format!(
            "{MINIMAL}[[route]]\npath = \"/a//b/\"\n[[route]]\npath = \"/C\"\ncase_sensitive = true\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.routes[0].path, "/a/b");
        assert!(
            c.route_for("GET", "/A/B").is_some(),
            "case-insensitive by default"
        );
        assert!(c.route_for("GET", "/C").is_some());
        assert!(c.route_for("GET", "/c").is_none());
    }
}
