//! OCI image layouts built on disk for the tests: real gzip layers, a config, a manifest, and
//! optionally a multi-platform index.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::push::{OCI_MANIFEST, bytes_for};

/// A descriptor of content written to the layout.
#[derive(Debug, Clone)]
pub struct Written {
    /// `sha256:…`.
    pub digest: String,
    /// Bytes.
    pub size: usize,
}

fn put(dir: &Path, bytes: &[u8]) -> Written {
    let hex = format!("{:x}", Sha256::digest(bytes));
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).unwrap();
    Written {
        digest: format!("sha256:{hex}"),
        size: bytes.len(),
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Writes an image manifest with `layers` layers of about `layer_size` bytes into the layout
/// at `dir`, and returns the manifest's descriptor and bytes.
pub fn image(
    dir: &Path,
    seed: u8,
    layers: usize,
    layer_size: usize,
    arch: &str,
) -> (Written, Vec<u8>) {
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for i in 0..layers {
        let raw: Vec<u8> = (0..layer_size)
            .map(|n| (n as u8).wrapping_mul(31) ^ seed ^ (i as u8))
            .collect();
        diff_ids.push(format!("sha256:{:x}", Sha256::digest(&raw)));
        let layer = put(dir, &gzip(&raw));
        descriptors.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer.digest, "size": layer.size
        }));
    }
    let config = put(
        dir,
        json!({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}})
            .to_string()
            .as_bytes(),
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest, "size": config.size},
        "layers": descriptors,
    })
    .to_string()
    .into_bytes();
    (put(dir, &manifest), manifest)
}

/// Writes `index.json` and `oci-layout` naming `manifest` as `tag`.
pub fn tag(dir: &Path, manifest: &Written, media_type: &str, tag: &str) {
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": media_type, "digest": manifest.digest, "size": manifest.size,
            "annotations": {"org.opencontainers.image.ref.name": tag}}]
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// Writes a two-platform index (amd64 and arm64) into the layout and returns its descriptor.
pub fn multi_arch(dir: &Path) -> Written {
    let platforms: Vec<Value> = [("amd64", 1u8), ("arm64", 2u8)]
        .into_iter()
        .map(|(arch, seed)| {
            let (manifest, _) = image(dir, seed, 2, 20_000, arch);
            json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest.digest,
                "size": manifest.size, "platform": {"architecture": arch, "os": "linux"}})
        })
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": platforms});
    put(dir, index.to_string().as_bytes())
}

/// An image written into the OCI layout at `dir` that container runtimes can unpack: each of
/// its `layers` layers is a real gzip-compressed tar holding one file of `file_size` bytes
/// (the layers of [`image`] are not tars, which only registries accept). Tagged `tag`.
pub fn unpackable_image(dir: &Path, seed: u8, layers: usize, file_size: usize, tag: &str) -> Image {
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for i in 0..layers {
        let content = bytes_for(&format!("{seed}/{i}"), file_size);
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("layer-{i}.bin"), content.as_slice())
            .unwrap();
        let tar = builder.into_inner().unwrap();
        diff_ids.push(format!("sha256:{:x}", Sha256::digest(&tar)));
        let layer = put(dir, &gzip(&tar));
        let media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
        descriptors
            .push(json!({"mediaType": media_type, "digest": layer.digest, "size": layer.size}));
    }
    let config = json!({"architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}});
    let config = put(dir, config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config.digest, "size": config.size},
        "layers": descriptors,
    });
    let manifest = put(dir, manifest.to_string().as_bytes());
    self::tag(dir, &manifest, OCI_MANIFEST, tag);
    Image {
        manifest,
        config: config.digest,
        diff_ids,
    }
}

/// What [`unpackable_image`] wrote.
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest's descriptor.
    pub manifest: Written,
    /// The config's digest (podman's image ID, with the `sha256:` prefix).
    pub config: String,
    /// The digests of the uncompressed layer tars, in order.
    pub diff_ids: Vec<String>,
}
