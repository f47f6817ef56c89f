//! Every error of the management API in Auth0's shape, `{statusCode, error, message, errorCode}`,
//! and the one mapping from a store error to a status.
//!
//! Owns: that shape and that mapping. Must not: decide what is an error (the store, the request
//! validation and the auth layer do).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::admin::store::StoreError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub code: &'static str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            code,
        }
    }

    /// 400, a request body or query that does not fit the schema.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", message)
    }

    pub fn invalid_query(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query_string", message)
    }

    pub fn not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "inexistent_hook",
            "The hook does not exist.",
        )
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let message = e.to_string();
        let (status, code) = match &e {
            StoreError::NotFound => return ApiError::not_found(),
            StoreError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_body"),
            StoreError::Script(_) => (StatusCode::BAD_REQUEST, "invalid_script"),
            StoreError::Conflict(m) if m.starts_with("Secret") => {
                (StatusCode::CONFLICT, "secret_conflict")
            }
            StoreError::Conflict(_) => (StatusCode::CONFLICT, "hook_conflict"),
            StoreError::SecretNotFound(_) => (StatusCode::NOT_FOUND, "inexistent_secret"),
            StoreError::ReadOnly { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "store_read_only"),
            StoreError::Config(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_config_error"),
            StoreError::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_io_error"),
        };
        if status.is_server_error() {
            tracing::error!(error = %message, "management API: the change could not be stored");
        }
        ApiError::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "statusCode": self.status.as_u16(),
            "error": self.status.canonical_reason().unwrap_or(""),
            "message": self.message,
            "errorCode": self.code,
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Bearer realm=\"hookgate\""),
            );
        }
        resp
    }
}
