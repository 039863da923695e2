//! The web console: a small browser app, embedded in the binary and served at `/`.
//!
//! The app is plain ES modules and CSS under `src/console/`, served as written: no build step, so
//! `cargo build` alone makes a complete binary. It talks only to the published REST API, with
//! the token the user signs in with; this module only serves its files.

use std::io::Write;
use std::sync::LazyLock;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use poem::http::{StatusCode, header};
use poem::web::Path;
use poem::{Endpoint, IntoResponse, Request, Response, handler};
use sha2::{Digest as _, Sha256};

use crate::domain::oci::Digest;

/// One embedded file.
struct Asset {
    name: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal) => {
        Asset {
            name: $name,
            body: include_bytes!(concat!("console/", $name)),
        }
    };
}

static ASSETS: &[Asset] = &[
    asset!("index.html"),
    asset!("style.css"),
    asset!("app.js"),
    asset!("api.js"),
    asset!("dom.js"),
    asset!("names.js"),
    asset!("list.js"),
    asset!("forms.js"),
    asset!("fields.js"),
    asset!("upstreams.js"),
    asset!("detail.js"),
    asset!("history.js"),
    asset!("danger.js"),
];

/// What is sent for an asset: its ETag (a hash of its bytes, so a new build never serves a
/// stale file; weak, as it covers both encodings) and its gzip-compressed bytes.
struct Prepared {
    etag: String,
    gzip: Bytes,
}

static PREPARED: LazyLock<Vec<Prepared>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| Prepared {
            etag: format!(
                "W/\"{}\"",
                &Digest::from_sha256(&Sha256::digest(a.body)).hex()[..16]
            ),
            gzip: Bytes::from(gzip(a.body)),
        })
        .collect()
});

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .expect("compressing into memory cannot fail")
}

/// The page only loads its own scripts and styles and only talks to this origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// `GET /`: the console's page.
pub fn page() -> impl Endpoint {
    poem::get(index).head(index)
}

/// `GET /console/:file`: the page's scripts and styles.
pub fn files() -> impl Endpoint {
    poem::get(file).head(file)
}

#[handler]
fn index(request: &Request) -> Response {
    serve(request, 0)
}

#[handler]
fn file(request: &Request, Path(name): Path<String>) -> Response {
    match ASSETS.iter().position(|a| a.name == name) {
        Some(i) => serve(request, i),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn serve(request: &Request, i: usize) -> Response {
    let asset = &ASSETS[i];
    let prepared = &PREPARED[i];
    let etag = prepared.etag.as_str();
    let fresh = header_text(request, header::IF_NONE_MATCH)
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let builder = Response::builder()
        .header(header::ETAG, etag)
        .header(header::VARY, "Accept-Encoding")
        // Revalidate every time: the files are tiny and a 304 costs one round trip.
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header("Referrer-Policy", "no-referrer")
        .header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    if fresh {
        return builder.status(StatusCode::NOT_MODIFIED).finish();
    }
    let builder = builder.content_type(content_type(asset.name));
    let gzip_accepted = header_text(request, header::ACCEPT_ENCODING)
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    if gzip_accepted {
        builder
            .header(header::CONTENT_ENCODING, "gzip")
            .body(prepared.gzip.clone())
    } else {
        builder.body(asset.body)
    }
}

fn header_text(request: &Request, name: header::HeaderName) -> Option<&str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => "text/javascript; charset=utf-8",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_embedded() {
        let mut imports = 0;
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(asset.body).unwrap();
            for (_, rest) in text
                .match_indices("from \"./")
                .map(|(i, _)| text.split_at(i + 8))
            {
                let target = &rest[..rest.find('"').unwrap()];
                imports += 1;
                assert!(
                    ASSETS.iter().any(|a| a.name == target),
                    "{} imports {target}, which is not embedded",
                    asset.name
                );
            }
        }
        assert!(
            imports >= ASSETS.len() - 3,
            "only {imports} imports were found"
        );
    }
}
