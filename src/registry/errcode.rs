//! The one table of OCI distribution error codes and the HTTP statuses they answer with. Every
//! `/v2` failure leaves as `{"errors": [{"code", "message", "detail"}]}`; `/helm` answers with
//! the same statuses in the shape its clients read (see [`super::helm`]).

use poem::http::{HeaderValue, StatusCode};
use poem::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error code of the distribution specification (plus the few Berth needs beside them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The blob is not in the repository.
    BlobUnknown,
    /// The upload is invalid (e.g. a chunk out of order).
    BlobUploadInvalid,
    /// The upload session does not exist.
    BlobUploadUnknown,
    /// The digest is malformed or does not match the content.
    DigestInvalid,
    /// A manifest references a blob the repository lacks.
    ManifestBlobUnknown,
    /// The manifest is malformed or unacceptable.
    ManifestInvalid,
    /// The manifest is not in the repository.
    ManifestUnknown,
    /// The repository name is invalid.
    NameInvalid,
    /// A manifest is pushed to a reference that is neither a valid tag nor a digest.
    TagInvalid,
    /// The `n` of a paged list is not a number.
    PaginationNumberInvalid,
    /// The repository (its registry) is not known.
    NameUnknown,
    /// A size is wrong (e.g. a manifest too large).
    SizeInvalid,
    /// Authentication is required.
    Unauthorized,
    /// Access is denied.
    Denied,
    /// The tag exists and may not move (an immutable chart version).
    TagImmutable,
    /// A Helm chart upload is not a valid chart.
    ChartInvalid,
    /// What the path names does not exist (outside the specification's codes).
    NotFound,
    /// The body is larger than the route accepts.
    TooLarge,
    /// An upstream proxy's remote failed (unreachable, refusing, or sending bad content).
    UpstreamFailed,
    /// A token request the endpoint cannot take (a grant type other than password and
    /// refresh_token).
    TokenRequestInvalid,
    /// The operation is not supported here.
    Unsupported,
    /// Too many requests.
    TooManyRequests,
    /// A requested range cannot be served.
    RangeInvalid,
    /// A dependency is unavailable; retry later.
    Unavailable,
    /// The server failed.
    Internal,
}

impl ErrorCode {
    /// The code and status of each error, in one place.
    ///
    /// Where a malformed request could be answered more than one way, Berth answers as CNCF
    /// Distribution does, so that clients and suites written against it read the same status:
    /// - a manifest reference that is neither a tag nor a digest: 404 `MANIFEST_UNKNOWN` on
    ///   `GET`, `HEAD` and `DELETE` (nothing can exist under it; Distribution's routes never
    ///   match it), and 400 `TAG_INVALID` (or `DIGEST_INVALID`) on `PUT`;
    /// - a blob path whose digest is a malformed `algorithm:hex`: 400 `DIGEST_INVALID`; one
    ///   that is not even shaped like a digest: 404 `BLOB_UNKNOWN`.
    ///
    /// And where Berth keeps its own answer:
    /// - a name that breaks the repository grammar is 400 `NAME_INVALID`, the specification's
    ///   code for it; Distribution's routes answer a bare 404, which a pusher would read as a
    ///   repository to create. A well-formed name outside every registry is 404
    ///   `NAME_UNKNOWN`, as there;
    /// - an unknown upload is 404 `BLOB_UPLOAD_UNKNOWN`, the specification's code (Distribution
    ///   says `BLOB_UPLOAD_INVALID` with the same status);
    /// - a chunk that does not start at the upload's offset is 416, as the specification says
    ///   (Distribution 2.8 accepts it);
    /// - a malformed `n` is 400 `PAGINATION_NUMBER_INVALID`, where Distribution 2.8 ignores it
    ///   and lists everything: a limit the client asked for is never silently dropped.
    pub fn describe(self) -> (&'static str, StatusCode) {
        use ErrorCode::*;
        match self {
            BlobUnknown => ("BLOB_UNKNOWN", StatusCode::NOT_FOUND),
            BlobUploadInvalid => ("BLOB_UPLOAD_INVALID", StatusCode::BAD_REQUEST),
            BlobUploadUnknown => ("BLOB_UPLOAD_UNKNOWN", StatusCode::NOT_FOUND),
            DigestInvalid => ("DIGEST_INVALID", StatusCode::BAD_REQUEST),
            ManifestBlobUnknown => ("MANIFEST_BLOB_UNKNOWN", StatusCode::NOT_FOUND),
            ManifestInvalid => ("MANIFEST_INVALID", StatusCode::BAD_REQUEST),
            ManifestUnknown => ("MANIFEST_UNKNOWN", StatusCode::NOT_FOUND),
            NameInvalid => ("NAME_INVALID", StatusCode::BAD_REQUEST),
            TagInvalid => ("TAG_INVALID", StatusCode::BAD_REQUEST),
            PaginationNumberInvalid => ("PAGINATION_NUMBER_INVALID", StatusCode::BAD_REQUEST),
            NameUnknown => ("NAME_UNKNOWN", StatusCode::NOT_FOUND),
            SizeInvalid => ("SIZE_INVALID", StatusCode::BAD_REQUEST),
            Unauthorized => ("UNAUTHORIZED", StatusCode::UNAUTHORIZED),
            Denied => ("DENIED", StatusCode::FORBIDDEN),
            TagImmutable => ("DENIED", StatusCode::CONFLICT),
            ChartInvalid => ("CHART_INVALID", StatusCode::BAD_REQUEST),
            NotFound => ("NOT_FOUND", StatusCode::NOT_FOUND),
            TooLarge => ("SIZE_INVALID", StatusCode::PAYLOAD_TOO_LARGE),
            UpstreamFailed => ("UNAVAILABLE", StatusCode::BAD_GATEWAY),
            TokenRequestInvalid => ("UNSUPPORTED", StatusCode::BAD_REQUEST),
            Unsupported => ("UNSUPPORTED", StatusCode::METHOD_NOT_ALLOWED),
            TooManyRequests => ("TOOMANYREQUESTS", StatusCode::TOO_MANY_REQUESTS),
            RangeInvalid => ("BLOB_UPLOAD_INVALID", StatusCode::RANGE_NOT_SATISFIABLE),
            Unavailable => ("UNAVAILABLE", StatusCode::SERVICE_UNAVAILABLE),
            Internal => ("UNKNOWN", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

/// A `/v2` error response.
#[derive(Debug)]
pub struct RegistryError {
    code: ErrorCode,
    status: Option<StatusCode>,
    message: String,
    detail: Value,
    headers: Vec<(&'static str, String)>,
}

impl RegistryError {
    /// An error with a message for people.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            status: None,
            message: message.into(),
            detail: Value::Null,
            headers: Vec::new(),
        }
    }

    /// Answers with another status than the code's usual one (e.g. 413 for `SIZE_INVALID`).
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// Adds machine-readable detail.
    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    /// Adds a response header (e.g. `WWW-Authenticate`, `Range`).
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The status it answers with.
    pub fn status_code(&self) -> StatusCode {
        self.status.unwrap_or(self.code.describe().1)
    }

    /// Its message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The headers it adds.
    pub fn headers(&self) -> &[(&'static str, String)] {
        &self.headers
    }

    /// An internal failure: logged with its cause, shown without it.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        let chain = crate::event_store::error_chain(error);
        let reference = uuid::Uuid::now_v7();
        tracing::error!(error = %chain, %reference, "registry request failed");
        Self::new(
            ErrorCode::Internal,
            format!("something failed on the server (reference {reference})"),
        )
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (code, usual) = self.code.describe();
        let status = self.status.unwrap_or(usual);
        let mut error = json!({ "code": code, "message": self.message });
        if !self.detail.is_null() {
            error["detail"] = self.detail;
        }
        let mut response = Response::builder()
            .status(status)
            .content_type("application/json")
            .body(json!({ "errors": [error] }).to_string());
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

impl From<crate::storage::StorageError> for RegistryError {
    fn from(e: crate::storage::StorageError) -> Self {
        Self::internal(&e)
    }
}

impl From<crate::event_store::StoreError> for RegistryError {
    fn from(e: crate::event_store::StoreError) -> Self {
        if e.is_transient() {
            return Self::new(
                ErrorCode::Unavailable,
                "the database is unavailable; retry shortly",
            )
            .header("Retry-After", "5");
        }
        Self::internal(&e)
    }
}

/// A `/v2` handler's result.
pub type RegistryResult<T> = Result<T, RegistryError>;
