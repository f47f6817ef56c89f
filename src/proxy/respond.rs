//! The one place that writes hookgate's own answers to the client: the one mapping from a domain
//! failure ([`Failure`]) to status, code and body, per error shape ([`render`]); OAuth-shaped
//! JSON errors and locally built JSON responses, always with an exact `Content-Length`.
//!
//! Must not: decide *which* failure a situation is — the points and the transport do; this only
//! says how each is written.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;
use serde_json::json;

use crate::points::{Failure, Shape};

/// How a failure is answered in a shape: status, code and description, and for the signup shape
/// the error class `name` (`PreUserRegistrationError` for a hook's denial, else by status).
pub fn render(failure: &Failure, shape: Shape) -> OAuthError {
    use Failure::*;
    let (status, error, description) = match failure {
        BadRequest(d) => (400, "invalid_request", d),
        Refused { code, description } | HookDenied { code, description } => {
            (400, *code, description)
        }
        Unauthorized(d) => (401, "invalid_token", d),
        MethodNotAllowed(d) => (405, "invalid_request", d),
        BodyTooSlow(d) => (408, "invalid_request", d),
        BodyTooLarge(d) => (413, "invalid_request", d),
        HeadTooLarge(d) => (431, "invalid_request", d),
        HookFailed(d) | Internal(d) => (500, "server_error", d),
        UpstreamUnreachable(d) => (502, "temporarily_unavailable", d),
        UpstreamInvalid(d) => (502, "server_error", d),
        Overloaded(d) | Unavailable(d) => (503, "temporarily_unavailable", d),
        HookTimedOut(d) | UpstreamTimedOut(d) => (504, "temporarily_unavailable", d),
    };
    let err = OAuthError::new(status, error, description.clone());
    match (shape, failure) {
        (Shape::OAuth | Shape::Webhook, _) => err,
        (Shape::Signup, HookDenied { .. }) => OAuthError {
            shape: ErrorShape::Signup {
                name: "PreUserRegistrationError",
            },
            ..err
        },
        (Shape::Signup, _) => err.signup(),
    }
}

/// An error as written: in the OAuth shape `{"error","error_description"}` (RFC 6749 §5.2), or,
/// on signup routes, in the shape of Auth0's `/dbconnections/signup` (see [`ErrorShape::Signup`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
    pub shape: ErrorShape,
}

/// How an error's body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"error","error_description"}`: token endpoints and everything else.
    OAuth,
    /// `{"name","code","description","statusCode"}`: what Auth0's `/dbconnections/signup`
    /// answers and what signup clients (auth0.js, Lock, the SDKs) parse: they show
    /// `description` to the user and branch on `code`. A client migrated from Auth0 keeps working
    /// only if a denied signup looks the same, so every error of a signup route, hookgate's own
    /// included (bad body, upstream down), has this shape. `name` is the error class:
    /// `PreUserRegistrationError` for a hook's denial, else `BadRequestError` (4xx) or
    /// `ServerError` (5xx).
    Signup { name: &'static str },
}

impl OAuthError {
    pub fn new(status: u16, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status,
            error,
            description: description.into(),
            shape: ErrorShape::OAuth,
        }
    }

    /// The same error in the signup shape; a `name` already chosen is kept.
    pub fn signup(mut self) -> Self {
        if self.shape == ErrorShape::OAuth {
            let name = if self.status >= 500 {
                "ServerError"
            } else {
                "BadRequestError"
            };
            self.shape = ErrorShape::Signup { name };
        }
        self
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", description)
    }

    pub fn server_error(description: impl Into<String>) -> Self {
        Self::new(500, "server_error", description)
    }

    pub fn body(&self) -> Bytes {
        let body = match self.shape {
            ErrorShape::OAuth => {
                json!({ "error": self.error, "error_description": self.description })
            }
            ErrorShape::Signup { name } => json!({
                "name": name,
                "code": self.error,
                "description": self.description,
                "statusCode": self.status,
            }),
        };
        Bytes::from(body.to_string())
    }

    /// Write this error as the whole response. hookgate's own 401s come from bearer-protected
    /// endpoints, which RFC 6750 §3 says must name the scheme.
    pub async fn write(&self, session: &mut Session) -> Result<()> {
        let challenge = (self.status == 401).then(|| {
            format!(
                "Bearer error=\"{}\", error_description=\"{}\"",
                self.error,
                self.description.replace('"', "'")
            )
        });
        write_json_with(
            session,
            self.status,
            self.body(),
            challenge.as_deref(),
            None,
        )
        .await
    }

    /// [`Self::write`], with an `Allow` header when given (a 405 must name the methods).
    pub async fn write_with_allow(&self, session: &mut Session, allow: Option<&str>) -> Result<()> {
        write_json_with(session, self.status, self.body(), None, allow).await
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.error, self.description)
    }
}

/// Write a complete JSON response. Token-endpoint answers must not be cached (RFC 6749 §5.1),
/// and nothing hookgate answers itself is worth caching, so every one says so.
pub async fn write_json(session: &mut Session, status: u16, body: Bytes) -> Result<()> {
    write_json_with(session, status, body, None, None).await
}

async fn write_json_with(
    session: &mut Session,
    status: u16,
    body: Bytes,
    www_authenticate: Option<&str>,
    allow: Option<&str>,
) -> Result<()> {
    let mut header = ResponseHeader::build(status, Some(6))?;
    if let Some(challenge) = www_authenticate {
        header.insert_header("www-authenticate", challenge)?;
    }
    if let Some(allow) = allow {
        header.insert_header("allow", allow)?;
    }
    header.insert_header("content-type", "application/json")?;
    header.insert_header("content-length", body.len().to_string())?;
    header.insert_header("cache-control", "no-store")?;
    header.insert_header("pragma", "no-cache")?;
    session
        .write_response_header(Box::new(header), false)
        .await?;
    session.write_response_body(Some(body), true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_kind_has_one_status_and_code() {
        let d = || "d".to_string();
        for (failure, status, code) in [
            (Failure::BadRequest(d()), 400, "invalid_request"),
            (
                Failure::Refused {
                    code: "invalid_signup",
                    description: d(),
                },
                400,
                "invalid_signup",
            ),
            (
                Failure::HookDenied {
                    code: "invalid_scope",
                    description: d(),
                },
                400,
                "invalid_scope",
            ),
            (Failure::Unauthorized(d()), 401, "invalid_token"),
            (Failure::MethodNotAllowed(d()), 405, "invalid_request"),
            (Failure::BodyTooSlow(d()), 408, "invalid_request"),
            (Failure::BodyTooLarge(d()), 413, "invalid_request"),
            (Failure::HeadTooLarge(d()), 431, "invalid_request"),
            (Failure::HookFailed(d()), 500, "server_error"),
            (Failure::Internal(d()), 500, "server_error"),
            (
                Failure::UpstreamUnreachable(d()),
                502,
                "temporarily_unavailable",
            ),
            (Failure::UpstreamInvalid(d()), 502, "server_error"),
            (Failure::Overloaded(d()), 503, "temporarily_unavailable"),
            (Failure::Unavailable(d()), 503, "temporarily_unavailable"),
            (Failure::HookTimedOut(d()), 504, "temporarily_unavailable"),
            (
                Failure::UpstreamTimedOut(d()),
                504,
                "temporarily_unavailable",
            ),
        ] {
            for shape in [Shape::OAuth, Shape::Signup, Shape::Webhook] {
                let e = render(&failure, shape);
                assert_eq!(
                    (e.status, e.error, e.description.as_str()),
                    (status, code, "d")
                );
            }
            // The webhook's callers read the OAuth shape.
            assert_eq!(
                render(&failure, Shape::Webhook).body(),
                render(&failure, Shape::OAuth).body()
            );
        }
    }

    #[test]
    fn signup_errors_are_named_after_their_class() {
        let name = |f: Failure| match render(&f, Shape::Signup).shape {
            ErrorShape::Signup { name } => name,
            other => panic!("{other:?}"),
        };
        let denied = Failure::HookDenied {
            code: "invalid_signup",
            description: "no".into(),
        };
        assert_eq!(name(denied.clone()), "PreUserRegistrationError");
        assert_eq!(name(Failure::BadRequest("x".into())), "BadRequestError");
        assert_eq!(name(Failure::Unavailable("x".into())), "ServerError");
        let body: serde_json::Value =
            serde_json::from_slice(&render(&denied, Shape::Signup).body()).unwrap();
        assert_eq!(
            body,
            json!({"name": "PreUserRegistrationError", "code": "invalid_signup", "description": "no", "statusCode": 400})
        );
        let body: serde_json::Value =
            serde_json::from_slice(&render(&denied, Shape::OAuth).body()).unwrap();
        assert_eq!(
            body,
            json!({"error": "invalid_signup", "error_description": "no"})
        );
    }
}
