//! Pieces every resource shares: package types, paging, ETags and preconditions.

use poem_openapi::Enum;

use super::error::ApiError;
use super::schema::{Count, Label, Name};
use crate::app::{Context, Idempotency};
use crate::domain::{Labels, PackageType, ResourceName, text};
use crate::projections::resource_queries::{ListQuery, SortKey};
use sha2::Digest;

/// What a registry or proxy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "PackageType", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PackageTypeDto {
    /// Container images and OCI artifacts.
    Docker,
    /// Helm charts.
    Helm,
}

impl From<PackageTypeDto> for PackageType {
    fn from(value: PackageTypeDto) -> Self {
        match value {
            PackageTypeDto::Docker => Self::Docker,
            PackageTypeDto::Helm => Self::Helm,
        }
    }
}

impl From<PackageType> for PackageTypeDto {
    fn from(value: PackageType) -> Self {
        match value {
            PackageType::Docker => Self::Docker,
            PackageType::Helm => Self::Helm,
        }
    }
}

/// How a list is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SortField {
    /// By name.
    Name,
    /// By creation time (then name).
    CreatedAt,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SortOrder {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// Default and largest page sizes.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// The largest page a client may ask for.
pub const MAX_PAGE_SIZE: u32 = 500;

/// The `page_size` parameter, whose bounds the spec states and [`ListParams`] checks.
pub type PageSize = Count<1, MAX_PAGE_SIZE>;

/// The list filters and page every list operation takes.
pub struct ListParams {
    /// Only this package type.
    pub package_type: Option<PackageTypeDto>,
    /// Only resources with this label.
    pub label: Option<String>,
    /// Only names containing this text.
    pub search: Option<String>,
    /// Sort field.
    pub sort: Option<SortField>,
    /// Sort direction.
    pub order: Option<SortOrder>,
    /// Page size.
    pub page_size: Option<u32>,
    /// Cursor from the previous page.
    pub page_token: Option<String>,
}

impl ListParams {
    /// The query these parameters describe.
    pub fn into_query(self) -> Result<ListQuery, ApiError> {
        let page_size = self.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        if page_size == 0 || page_size > MAX_PAGE_SIZE {
            return Err(ApiError::invalid(
                "VALIDATION_FAILED",
                "page_size",
                format!("page_size must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        let offset = match self.page_token.as_deref() {
            None | Some("") => 0,
            Some(token) => decode_token(token).ok_or_else(|| {
                ApiError::invalid(
                    "VALIDATION_FAILED",
                    "page_token",
                    "page_token must be the next_page_token of a previous page (a whole number)",
                )
            })?,
        };
        Ok(ListQuery {
            package_type: self.package_type.map(Into::into),
            label: self.label.filter(|l| !l.is_empty()),
            search: self.search.filter(|s| !s.is_empty()),
            sort: match self.sort {
                Some(SortField::CreatedAt) => SortKey::CreatedAt,
                _ => SortKey::Name,
            },
            descending: self.order == Some(SortOrder::Desc),
            offset,
            limit: u64::from(page_size),
        })
    }
}

/// The cursor for the page that starts at `offset`: the offset itself, so that the spec can
/// state its form (a whole number) and clients can tell a mistyped one from a stale one.
pub fn page_token(offset: u64) -> String {
    offset.to_string()
}

fn decode_token(token: &str) -> Option<u64> {
    token.parse().ok()
}

/// The `ETag` for a version.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// Parses an `If-Match` header (`"3"`, `3` or `W/"3"`).
pub fn if_match(header: Option<&str>) -> Result<Option<u64>, ApiError> {
    let Some(value) = header.map(str::trim) else {
        return Ok(None);
    };
    if value == "*" {
        return Ok(None);
    }
    value
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map(Some)
        .map_err(|_| {
            ApiError::invalid(
                "VALIDATION_FAILED",
                "If-Match",
                "If-Match must be a version ETag such as \"3\"",
            )
        })
}

/// Whether `If-None-Match` already names this version.
pub fn not_modified(header: Option<&str>, version: u64) -> bool {
    header.is_some_and(|value| {
        value
            .split(',')
            .any(|tag| tag.trim() == "*" || tag.trim().trim_start_matches("W/") == etag(version))
    })
}

/// The longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Turns an `Idempotency-Key` into the command id it stands for (per caller) and a digest of
/// the request, so that a retry is recognised and a reuse for another request is refused.
pub fn idempotency<T: poem_openapi::types::ToJSON>(
    ctx: &mut Context,
    key: Option<&str>,
    operation: &str,
    body: &T,
) -> Result<(), ApiError> {
    let Some(key) = key else { return Ok(()) };
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::invalid(
            "VALIDATION_FAILED",
            "Idempotency-Key",
            format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
        ));
    }
    let command_id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("berth idempotency\n{}\n{key}", ctx.actor).as_bytes(),
    );
    let request = format!("{operation}\n{}", body.to_json().unwrap_or_default());
    let digest = sha2::Sha256::digest(request.as_bytes());
    ctx.idempotency = Some(Idempotency {
        command_id,
        fingerprint: digest.iter().map(|b| format!("{b:02x}")).collect(),
    });
    Ok(())
}

/// A 404 with this message.
pub fn not_found(message: String) -> ApiError {
    ApiError::NotFound(poem_openapi::payload::Json(super::error::ErrorBody {
        code: "NOT_FOUND".into(),
        message,
        field: None,
    }))
}

/// A time as RFC 3339.
pub fn rfc3339(time: time::OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| time.to_string())
}

/// Parses a name or key field.
pub fn name(field: &str, value: &str) -> Result<ResourceName, ApiError> {
    ResourceName::parse(value)
        .map_err(|e| ApiError::invalid("NAME_INVALID", field, format!("{field} {e}")))
}

/// Parses a list of names (e.g. upstreams).
pub fn names(field: &str, values: &[Name]) -> Result<Vec<ResourceName>, ApiError> {
    values.iter().map(|v| name(field, v)).collect()
}

/// Parses a description.
pub fn description(value: Option<&str>) -> Result<Option<String>, ApiError> {
    text::description(value).map_err(|e| {
        ApiError::invalid(
            "VALIDATION_FAILED",
            "description",
            format!("description {e}"),
        )
    })
}

/// Parses labels.
pub fn labels(values: &[Label]) -> Result<Labels, ApiError> {
    Labels::parse(values)
        .map_err(|e| ApiError::invalid("VALIDATION_FAILED", "labels", format!("labels {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_foreign_ones_are_refused() {
        assert_eq!(decode_token(&page_token(150)), Some(150));
        assert_eq!(decode_token("garbage!"), None);
        assert_eq!(decode_token("-1"), None);
    }

    #[test]
    fn if_match_accepts_strong_and_weak_version_tags() {
        assert_eq!(if_match(Some("\"3\"")).unwrap(), Some(3));
        assert_eq!(if_match(Some("W/\"4\"")).unwrap(), Some(4));
        assert!(if_match(Some("\"x\"")).is_err());
        assert!(not_modified(Some("\"2\", \"5\""), 5));
        assert!(!not_modified(Some("\"2\""), 5));
    }
}
