//! The one place control-plane HTTP statuses are decided: every failure becomes
//! `{code, message, field}` with the status its code implies.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

use crate::app::AppError;
use crate::auth::AuthError;
use crate::domain::registry::RegistryError;
use crate::domain::upstream_proxy::UpstreamProxyError;
use crate::event_store::{StoreError, error_chain};

/// An error as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
#[oai(rename = "ApiError", example)]
pub struct ErrorBody {
    /// A stable code to switch on, e.g. `NAME_INVALID`, `ALREADY_EXISTS`, `NOT_FOUND`.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// The request field at fault, when one is.
    #[oai(skip_serializing_if_is_none)]
    pub field: Option<String>,
}

impl poem_openapi::types::Example for ErrorBody {
    fn example() -> Self {
        Self {
            code: "NAME_INVALID".into(),
            message: "name must start with a lowercase letter".into(),
            field: Some("name".into()),
        }
    }
}

/// Every error response of the control-plane API.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is invalid; `field` names the culprit.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No bearer token, or not a valid one.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    /// The token lacks the scope this operation needs.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such resource.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The name exists, the resource is in use, or an upstream it names does not exist or
    /// holds another package type.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// `If-Match` names a version the resource is no longer at.
    #[oai(status = 412)]
    PreconditionFailed(Json<ErrorBody>),
    /// The request body is larger than the API reads.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The `Idempotency-Key` was already used for a different request.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// Something failed on the server; the log has the cause.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// A dependency (the database) is unavailable; retry later.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] String),
}

fn body(code: &str, message: impl Into<String>, field: Option<&str>) -> Json<ErrorBody> {
    Json(ErrorBody {
        code: code.to_owned(),
        message: message.into(),
        field: field.map(str::to_owned),
    })
}

impl ApiError {
    /// A 400 naming the field and the rule it breaks.
    pub fn invalid(code: &str, field: &str, message: impl Into<String>) -> Self {
        Self::BadRequest(body(code, message, Some(field)))
    }

    /// A 413 for a body over `limit` bytes.
    pub fn too_large(limit: usize) -> Self {
        Self::PayloadTooLarge(body(
            "PAYLOAD_TOO_LARGE",
            format!("the request body may be at most {limit} bytes"),
            None,
        ))
    }

    /// 401 with the bearer challenge.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized(
            body("UNAUTHORIZED", message, None),
            "Bearer realm=\"berth\"".to_owned(),
        )
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::MissingScope(_) => Self::Forbidden(body("FORBIDDEN", e.to_string(), None)),
            other => Self::unauthorized(other.to_string()),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let message = e.to_string();
        match e {
            RegistryError::AlreadyExists(_) | RegistryError::NameTaken(..) => {
                Self::Conflict(body("ALREADY_EXISTS", message, Some("name")))
            }
            RegistryError::NotFound => Self::NotFound(body("NOT_FOUND", message, None)),
            RegistryError::UnknownUpstream(_) => {
                Self::Conflict(body("UNKNOWN_UPSTREAM", message, Some("upstreams")))
            }
            RegistryError::UpstreamTypeMismatch { .. } => {
                Self::Conflict(body("UPSTREAM_TYPE_MISMATCH", message, Some("upstreams")))
            }
            RegistryError::UpstreamListedTwice(_) => {
                Self::BadRequest(body("UPSTREAM_DUPLICATE", message, Some("upstreams")))
            }
        }
    }
}

impl From<UpstreamProxyError> for ApiError {
    fn from(e: UpstreamProxyError) -> Self {
        use UpstreamProxyError as E;
        let message = e.to_string();
        match e {
            E::AlreadyExists(_) | E::NameTaken(..) => {
                Self::Conflict(body("ALREADY_EXISTS", message, Some("key")))
            }
            E::NotFound => Self::NotFound(body("NOT_FOUND", message, None)),
            E::InUse { .. } => Self::Conflict(body("IN_USE", message, None)),
            E::SourceRequired | E::SourceNotForHelm => {
                Self::BadRequest(body("VALIDATION_FAILED", message, Some("source")))
            }
            E::UrlNotForDockerHub | E::UrlRequired(_) => {
                Self::BadRequest(body("VALIDATION_FAILED", message, Some("url")))
            }
            E::PasswordRequired => {
                Self::BadRequest(body("VALIDATION_FAILED", message, Some("auth.password")))
            }
            E::TagTtlTooLong(_) => Self::BadRequest(body(
                "VALIDATION_FAILED",
                message,
                Some("cache.tag_ttl_seconds"),
            )),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            tracing::warn!(error = %error_chain(&e), "database unavailable");
            return Self::Unavailable(
                body(
                    "UNAVAILABLE",
                    "the database is unavailable; retry shortly",
                    None,
                ),
                "5".to_owned(),
            );
        }
        let request_id = uuid::Uuid::now_v7();
        tracing::error!(error = %error_chain(&e), %request_id, "internal error");
        Self::Internal(body(
            "INTERNAL",
            format!("something failed on the server (reference {request_id})"),
            None,
        ))
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Registry(e) => e.into(),
            AppError::UpstreamProxy(e) => e.into(),
            AppError::VersionMismatch { .. } => {
                Self::PreconditionFailed(body("PRECONDITION_FAILED", e.to_string(), None))
            }
            AppError::Repository(e) => Self::NotFound(body("NOT_FOUND", e.to_string(), None)),
            AppError::IdempotencyKeyReused => Self::Unprocessable(body(
                "IDEMPOTENCY_KEY_REUSED",
                e.to_string(),
                Some("Idempotency-Key"),
            )),
            AppError::Conflict(message) => Self::Conflict(body("CONFLICT", message, None)),
            AppError::Store(e) => e.into(),
        }
    }
}

/// Turns errors raised outside the handlers (unparseable bodies, bad parameters, a missing
/// token) into the same JSON error body; responses that already are JSON pass unchanged.
pub async fn normalize(error: poem::Error) -> Response {
    let status = error.status();
    let message = error.to_string();
    let response = error.into_response();
    let is_json = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let api_error = match status {
        StatusCode::UNAUTHORIZED => ApiError::unauthorized("a valid bearer token is required"),
        StatusCode::NOT_FOUND => ApiError::NotFound(body("NOT_FOUND", "no such route", None)),
        StatusCode::METHOD_NOT_ALLOWED => {
            return response;
        }
        s if s.is_client_error() => ApiError::BadRequest(body("BAD_REQUEST", message, None)),
        _ => ApiError::Internal(body("INTERNAL", "something failed on the server", None)),
    };
    api_error.into_response()
}
