//! What each fuzz target checks, one function per target, shared by the cargo-fuzz targets in
//! `tests/fuzz/fuzz_targets/` and by `tests/fuzz_corpus.rs`, which replays the committed corpus
//! through the very same functions on every `cargo test`. Each takes raw bytes, feeds them to
//! a parser of untrusted input, and asserts more than "no panic" where that is cheap: what
//! parses prints back to what was parsed.

use std::io::Write;

use berth::auth::{Principal, Scopes};
use berth::domain::manifest::{self, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use berth::domain::oci::{Digest, Reference, RepositoryName, Tag};
use berth::domain::{ResourceName, chart};
use berth::registry::ranges::{byte_range, content_range_start};
use berth::registry::token::{TokenRequest, grants};

/// A fuzz target: checks one input.
pub type Target = fn(&[u8]);

/// Every target, by the name of its corpus directory and fuzz binary.
pub const TARGETS: &[(&str, Target)] = &[
    ("resource_name", resource_name),
    ("repository_name", repository_name),
    ("reference", reference),
    ("digest", digest),
    ("content_range", content_range),
    ("manifest", manifest),
    ("chart_yaml", chart_yaml),
    ("chart_archive", chart_archive),
    ("token_request", token_request),
];

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// The input as text with what `parse` makes of it, when it is text and parses.
fn parsed<T, E>(data: &[u8], parse: impl Fn(&str) -> Result<T, E>) -> Option<(&str, T)> {
    let value = text(data)?;
    parse(value).ok().map(|parsed| (value, parsed))
}

/// Registry names and upstream-proxy keys: a name that parses is itself, re-parses equal, and
/// can head a repository name.
pub fn resource_name(data: &[u8]) {
    let Some((value, name)) = parsed(data, ResourceName::parse) else {
        return;
    };
    assert_eq!(name.as_str(), value);
    assert_eq!(ResourceName::parse(&name.to_string()), Ok(name.clone()));
    let repository = RepositoryName::parse(&format!("{name}/app"));
    assert!(
        repository.is_ok() || value.len() + 4 > berth::domain::oci::MAX_REPOSITORY_LEN,
        "{value:?} names a registry but cannot head a repository: {repository:?}"
    );
}

/// Repository names: a name that parses splits into a valid registry and its path, and the
/// two put together again are the name.
pub fn repository_name(data: &[u8]) {
    let Some((value, name)) = parsed(data, RepositoryName::parse) else {
        return;
    };
    let registry = name.registry();
    assert_eq!(format!("{registry}/{}", name.path()), value);
    assert_eq!(RepositoryName::parse(name.as_str()), Ok(name.clone()));
}

/// Manifest references: a tag or a digest, which prints back to what was parsed.
pub fn reference(data: &[u8]) {
    let Some((value, reference)) = parsed(data, Reference::parse) else {
        return;
    };
    assert_eq!(reference.to_string(), value);
    assert_eq!(Reference::parse(value), Ok(reference.clone()));
    if let Reference::Tag(tag) = &reference {
        assert_eq!(Tag::parse(tag.as_str()), Ok(tag.clone()));
    }
}

/// Digests: a parsed digest re-parses equal and is the digest of the bytes its hex spells.
pub fn digest(data: &[u8]) {
    let Some((value, digest)) = parsed(data, Digest::parse) else {
        return;
    };
    assert_eq!(digest.as_str(), value);
    assert_eq!(Digest::parse(&digest.to_string()), Ok(digest.clone()));
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&digest.hex()[2 * i..2 * i + 2], 16).expect("hex digits"))
        .collect();
    assert_eq!(Digest::from_sha256(&bytes), digest);
}

/// `Content-Range` of upload chunks and `Range` of blob reads (against a blob size taken from
/// the first byte): a range that parses lies within the blob.
pub fn content_range(data: &[u8]) {
    let Some((&size, rest)) = data.split_first() else {
        return;
    };
    let Some(value) = text(rest) else { return };
    if let Some(start) = content_range_start(value) {
        assert!(value.contains(&start.to_string()), "{value:?} -> {start}");
    }
    let size = u64::from(size);
    if let Some((first, last)) = byte_range(value, size) {
        assert!(
            first <= last && last < size,
            "{value:?} of {size} -> {first}-{last}"
        );
    }
}

/// Image manifests and indexes, pushed with a `Content-Type` chosen by the first byte: what
/// parses has a supported media type and references only valid digests.
pub fn manifest(data: &[u8]) {
    const TYPES: [Option<&str>; 6] = [
        None,
        Some(OCI_MANIFEST),
        Some(OCI_INDEX),
        Some(DOCKER_MANIFEST),
        Some(DOCKER_LIST),
        Some("application/json; charset=utf-8"),
    ];
    let Some((&choice, body)) = data.split_first() else {
        return;
    };
    let content_type = TYPES[usize::from(choice) % TYPES.len()];
    let Ok(parsed) = manifest::parse(body, content_type) else {
        return;
    };
    assert!(
        [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST]
            .contains(&parsed.media_type.as_str())
    );
    assert_eq!(parsed.is_index(), parsed.blobs.is_empty());
    for descriptor in parsed.blobs.iter().chain(&parsed.manifests) {
        assert_eq!(
            Digest::parse(descriptor.digest.as_str()),
            Ok(descriptor.digest.clone())
        );
    }
}

/// `Chart.yaml`: what parses names a chart and carries a SemVer 2 version.
pub fn chart_yaml(data: &[u8]) {
    let Some(value) = text(data) else { return };
    if let Ok(metadata) = chart::parse_chart_yaml(value) {
        assert!(!metadata.name.is_empty());
        assert!(semver::Version::parse(&metadata.version).is_ok());
    }
}

/// Chart archives. An even first byte passes the rest as the archive itself (the gzip layer
/// is fuzzed too); an odd one gzips the rest first, so that mutations reach the tar reader.
pub fn chart_archive(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let archive = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(rest).expect("gzip into memory");
        encoder.finish().expect("gzip into memory")
    };
    if let Ok(metadata) = chart::parse_archive(&archive) {
        assert!(semver::Version::parse(&metadata.version).is_ok());
        assert!(
            chart::split_file_name(&format!("{}-{}", metadata.name, metadata.version))
                .contains(&(metadata.name.clone(), metadata.version.clone()))
        );
    }
}

/// Token requests: the query, the OAuth2 form of a `POST` and the `Authorization` header, split
/// at 0xff bytes. Whatever is granted names valid repositories and only known actions.
pub fn token_request(data: &[u8]) {
    let mut parts = data.split(|&b| b == 0xff);
    let query = parts.next().unwrap_or_default();
    let post_form = parts.next();
    let authorization = parts
        .next()
        .and_then(|h| poem::http::HeaderValue::from_bytes(h).ok());
    let mut request = poem::Request::builder();
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let presented = berth::registry::access::presented_token(&request.finish());
    let Ok(asked) = TokenRequest::parse(query, post_form, presented) else {
        return;
    };
    let admin = Principal {
        subject: "fuzz".into(),
        scopes: Scopes::parse("admin"),
        access: None,
    };
    for grant in grants(Some(&admin), &asked.scopes, &[]) {
        assert!(RepositoryName::parse(&grant.name).is_ok(), "{}", grant.name);
        assert!(
            grant
                .actions
                .iter()
                .all(|a| ["pull", "push", "delete"].contains(&a.as_str()))
        );
    }
}
