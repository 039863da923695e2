//! How `/helm` refuses a request: the status from the data plane's one error table
//! ([`ErrorCode`]) and `{"error": "<message>"}`, the shape ChartMuseum clients read.

use poem::http::HeaderValue;
use poem::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppError;
use crate::domain::ResourceName;
use crate::registry::errcode::{ErrorCode, RegistryError};

/// A `/helm` error response.
#[derive(Debug)]
pub struct HelmError(RegistryError);

/// The result of a `/helm` handler.
pub type HelmResult<T> = Result<T, HelmError>;

impl HelmError {
    /// An error with a message for people.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(RegistryError::new(code, message))
    }

    /// The upload is not a valid chart, and the message says why.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ChartInvalid, message)
    }

    /// Nothing is at the path.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// A chart (or one version of it) that is not listed.
    pub fn no_chart(registry: &ResourceName, name: &str, version: Option<&str>) -> Self {
        match version {
            Some(version) => Self::not_found(format!(
                "chart {name} version {version} is not in registry {registry}"
            )),
            None => Self::not_found(format!("chart {name} is not in registry {registry}")),
        }
    }

    /// Credentials are needed: a Basic challenge, which `helm repo add --username --password`
    /// answers.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self(
            RegistryError::new(ErrorCode::Unauthorized, message)
                .header("WWW-Authenticate", "Basic realm=\"berth\""),
        )
    }
}

impl IntoResponse for HelmError {
    fn into_response(self) -> Response {
        let mut response = Response::builder()
            .status(self.0.status_code())
            .content_type("application/json")
            .body(json!({ "error": self.0.message() }).to_string());
        for (name, value) in self.0.headers() {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.headers_mut().insert(*name, value);
            }
        }
        response
    }
}

impl From<RegistryError> for HelmError {
    fn from(e: RegistryError) -> Self {
        Self(e)
    }
}

impl From<AppError> for HelmError {
    fn from(e: AppError) -> Self {
        Self(crate::registry::app_error(e))
    }
}

impl From<crate::event_store::StoreError> for HelmError {
    fn from(e: crate::event_store::StoreError) -> Self {
        Self(e.into())
    }
}

impl From<crate::storage::StorageError> for HelmError {
    fn from(e: crate::storage::StorageError) -> Self {
        Self(e.into())
    }
}
