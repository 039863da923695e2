//! Reading `/v2/...` paths. Repository names contain slashes, so the route is found from the
//! end of the path (`/manifests/<ref>`, `/blobs/<digest>`, `/tags/list`, …), and the name is
//! validated from the raw, undecoded path: an escaped `%2e%2e` is refused, never decoded.

use super::errcode::{ErrorCode, RegistryError, RegistryResult};
use crate::domain::oci::RepositoryName;

/// A `/v2` route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V2Route {
    /// `GET /v2/` (the path is empty).
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/tags/list`.
    Tags(RepositoryName),
    /// `/v2/<name>/manifests/<reference>`.
    Manifest(RepositoryName, String),
    /// `/v2/<name>/blobs/<digest>`.
    Blob(RepositoryName, String),
    /// `/v2/<name>/blobs/uploads/`.
    Uploads(RepositoryName),
    /// `/v2/<name>/blobs/uploads/<id>`.
    Upload(RepositoryName, String),
    /// `/v2/<name>/referrers/<digest>`.
    Referrers(RepositoryName, String),
}

/// A repository name. A name of one component is well formed for OCI, but Berth's names start
/// with a registry: no registry holds it, so it is unknown rather than invalid.
fn name(raw: &str) -> RegistryResult<RepositoryName> {
    RepositoryName::parse(raw).map_err(|e| {
        if !raw.contains('/') && RepositoryName::parse(&format!("r/{raw}")).is_ok() {
            return RegistryError::new(
                ErrorCode::NameUnknown,
                format!("repository name {raw} is not known: repositories live in a registry, as <registry>/{raw}"),
            );
        }
        RegistryError::new(ErrorCode::NameInvalid, e.to_string())
    })
}

/// Parses the part of the path after `/v2/`.
pub fn parse(rest: &str) -> RegistryResult<V2Route> {
    if rest.is_empty() {
        return Ok(V2Route::Base);
    }
    if rest == "_catalog" {
        return Ok(V2Route::Catalog);
    }
    // The last segment (a reference, digest or upload id) never holds a slash, so the route
    // is read from the segment before it; the rest is the name, whatever it contains.
    if let Some((prefix, last)) = rest.rsplit_once('/') {
        if let Some(repo) = prefix.strip_suffix("/blobs/uploads") {
            return Ok(if last.is_empty() {
                V2Route::Uploads(name(repo)?)
            } else {
                V2Route::Upload(name(repo)?, last.to_owned())
            });
        }
        if let Some(repo) = prefix.strip_suffix("/manifests") {
            return Ok(V2Route::Manifest(name(repo)?, last.to_owned()));
        }
        if let Some(repo) = prefix.strip_suffix("/blobs") {
            if last == "uploads" {
                return Ok(V2Route::Uploads(name(repo)?));
            }
            return Ok(V2Route::Blob(name(repo)?, last.to_owned()));
        }
        if let Some(repo) = prefix.strip_suffix("/referrers") {
            return Ok(V2Route::Referrers(name(repo)?, last.to_owned()));
        }
        if let (Some(repo), "list") = (prefix.strip_suffix("/tags"), last) {
            return Ok(V2Route::Tags(name(repo)?));
        }
    }
    Err(RegistryError::new(
        ErrorCode::NameUnknown,
        format!("no registry endpoint at /v2/{rest}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_found_from_the_end_of_the_path() {
        let repo = |s: &str| RepositoryName::parse(s).unwrap();
        assert_eq!(parse("").unwrap(), V2Route::Base);
        assert_eq!(parse("_catalog").unwrap(), V2Route::Catalog);
        assert_eq!(
            parse("r/a/b/tags/list").unwrap(),
            V2Route::Tags(repo("r/a/b"))
        );
        assert_eq!(
            parse("r/blobs/manifests/latest").unwrap(),
            V2Route::Manifest(repo("r/blobs"), "latest".into())
        );
        assert_eq!(
            parse("r/a/blobs/uploads/").unwrap(),
            V2Route::Uploads(repo("r/a"))
        );
        assert_eq!(
            parse("r/a/blobs/uploads/123").unwrap(),
            V2Route::Upload(repo("r/a"), "123".into())
        );
        assert_eq!(
            parse("r/a/blobs/sha256:x").unwrap(),
            V2Route::Blob(repo("r/a"), "sha256:x".into())
        );
        assert_eq!(
            parse("r/blobs/blobs/uploads/").unwrap(),
            V2Route::Uploads(repo("r/blobs"))
        );
        assert_eq!(
            parse("r/manifests/blobs/sha256:x").unwrap(),
            V2Route::Blob(repo("r/manifests"), "sha256:x".into())
        );
        assert_eq!(
            parse("r/a/referrers/sha256:x").unwrap(),
            V2Route::Referrers(repo("r/a"), "sha256:x".into())
        );
    }

    #[test]
    fn a_name_of_one_well_formed_component_is_unknown_not_invalid() {
        let err = parse("nginx/manifests/latest").unwrap_err();
        assert_eq!(err.code(), ErrorCode::NameUnknown);
        let err = parse("Nginx/manifests/latest").unwrap_err();
        assert_eq!(err.code(), ErrorCode::NameInvalid);
    }

    #[test]
    fn traversal_in_any_form_is_an_invalid_name() {
        for path in [
            "r/../etc/manifests/latest",
            "r/%2e%2e/x/manifests/latest",
            "/etc/passwd/blobs/sha256:x",
            "r/a%00/tags/list",
        ] {
            let err = parse(path).unwrap_err();
            assert_eq!(err.code(), ErrorCode::NameInvalid, "{path}");
        }
    }
}
