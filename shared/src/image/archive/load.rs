//! `docker load`: the images of a save tar into the store. `index.json`
//! (Docker 25+, skopeo's `oci-archive:`) is read first and its manifests
//! kept byte for byte, so digests survive the trip; images `manifest.json`
//! alone describes (Docker's and skopeo's `docker-archive:`, the 1.x-era
//! `<id>/layer.tar` layout) get an OCI manifest made for their layers as
//! they are. Every image is checked whole (`plan`: each blob's digest and
//! size, each layer's diff ID against its config) before any blob is
//! persisted, and the index is updated once, last, as a pull commits.

use super::ingest::{self, Archive};
use super::plan::{ManifestBytes, Plan, plan};
use crate::digest::Digest;
use crate::reference::Reference;
use crate::store::{Store, StoreError, descriptor_digest};
use oci_spec::image::{Descriptor, MediaType};
use std::io::{self, Read};
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("empty input: expected an image archive (a tar, plain or gzip/zstd-compressed)")]
    Empty,
    #[error("reading the archive: {0}")]
    Read(#[source] io::Error),
    #[error("not an image archive (a tar, plain or gzip/zstd-compressed), or a truncated one: {0}")]
    NotTar(#[source] io::Error),
    #[error("the archive is truncated: {path} should hold {size} bytes, it ends after {got}")]
    Truncated { path: String, size: u64, got: u64 },
    #[error("archive entry {path:?} refused: {why}")]
    Entry { path: String, why: String },
    #[error("{path}: {source}")]
    Blob {
        path: String,
        #[source]
        source: StoreError,
    },
    #[error("{by} names {path}, which is not in the archive")]
    Missing { path: String, by: String },
    #[error("{what}: {why}")]
    Invalid { what: String, why: String },
    #[error("{what}: diff ID mismatch: the image config says {expected}, the content is {actual}")]
    DiffId {
        what: String,
        expected: Digest,
        actual: String,
    },
    #[error("no manifest.json or index.json in the archive: not an image archive")]
    NoImages,
}

/// One image as it was stored.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The image ID: its config's digest.
    pub id: Digest,
    pub manifest_digest: Digest,
    /// The tags now naming it (none: loaded untagged).
    pub tags: Vec<Reference>,
    /// Tags that named another image before, with that image's ID.
    pub replaced: Vec<(Reference, Digest)>,
}

/// Loads every image of the archive `input` carries into `store`.
pub fn load(store: &Store, input: impl Read) -> Result<Vec<Loaded>, LoadError> {
    // Held until the index names the new blobs: no collection sweeps them.
    let _lease = store.lease()?;
    // Temp files of killed loads and pulls are of no use; live ones are
    // locked and stay. Best effort, as a pull does it.
    let _ = store.sweep_temp_files();
    let mut archive = ingest::ingest(store, input)?;
    let plans = plan(&archive)?;
    if plans.is_empty() {
        return Err(LoadError::NoImages);
    }
    commit(store, &mut archive, plans)
}
/// Persists every image's blobs (verified temp files renamed; small ones
/// through the store's writer), then names them all in one index update.
fn commit(
    store: &Store,
    archive: &mut Archive,
    plans: Vec<Plan>,
) -> Result<Vec<Loaded>, LoadError> {
    for plan in &plans {
        let manifest_path = match &plan.manifest {
            ManifestBytes::Archive(path) => Some(path),
            ManifestBytes::Made(bytes) => {
                store.put_blob(bytes)?;
                None
            }
        };
        for path in plan.blobs.iter().chain(manifest_path) {
            if let Some(content) = archive.take(path) {
                content.persist(store)?;
            }
        }
    }
    let mut guard = store.lock_index()?;
    let mut loaded = Vec::new();
    for plan in plans {
        let descriptor = Descriptor::new(
            MediaType::from(plan.media_type.as_str()),
            plan.manifest_size,
            oci_spec::image::Digest::from_str(&plan.manifest_digest.to_string())
                .expect("a sha256 digest is a valid OCI digest"),
        );
        let mut replaced = Vec::new();
        for tag in &plan.tags {
            if let Some(old) = guard.lookup_tag(tag)
                && descriptor_digest(old) != plan.manifest_digest
                && let Ok(manifest) = store.read_manifest(&descriptor_digest(old))
            {
                replaced.push((tag.clone(), descriptor_digest(manifest.config())));
            }
            guard.set_tag(tag, descriptor.clone());
        }
        if plan.tags.is_empty() {
            guard.add_untagged(descriptor);
        }
        loaded.push(Loaded {
            id: plan.id,
            manifest_digest: plan.manifest_digest,
            tags: plan.tags,
            replaced,
        });
    }
    guard.save()?;
    Ok(loaded)
}
#[cfg(test)]
mod tests {
    use super::super::blob_path;
    use super::*;
    use crate::store::REF_NAME_ANNOTATION;
    use serde_json::json;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, bytes) in files {
            let mut h = tar::Header::new_ustar();
            h.set_mode(0o644);
            h.set_size(bytes.len() as u64);
            tar.append_data(&mut h, path, *bytes).unwrap();
        }
        tar.into_inner().unwrap()
    }

    fn path_of(bytes: &[u8]) -> String {
        blob_path(Digest::of(bytes).hex())
    }

    /// The blobs of a one-layer image whose config is `config` and
    /// claims `diff_id`, and its manifest.
    fn image(layer: &[u8], config: serde_json::Value) -> (Vec<(String, Vec<u8>)>, Vec<u8>) {
        let config = serde_json::to_vec(&config).unwrap();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": Digest::of(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": Digest::of(layer), "size": layer.len()}],
        }))
        .unwrap();
        let files = vec![
            (path_of(layer), layer.to_vec()),
            (path_of(&config), config),
            (path_of(&manifest), manifest.clone()),
        ];
        (files, manifest)
    }

    fn config(diff_id: &Digest) -> serde_json::Value {
        json!({"architecture": "amd64", "os": "linux",
               "rootfs": {"type": "layers", "diff_ids": [diff_id]}})
    }

    /// A layout tar of `files` whose index names `top` (of `media_type`).
    fn layout_of(
        mut files: Vec<(String, Vec<u8>)>,
        top: &[u8],
        media_type: &str,
        ref_name: &str,
    ) -> Vec<u8> {
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": media_type, "digest": Digest::of(top),
                           "size": top.len(),
                           "annotations": {REF_NAME_ANNOTATION: ref_name}}],
        }))
        .unwrap();
        files.push(("index.json".to_string(), index));
        let files: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_slice()))
            .collect();
        tar_of(&files)
    }

    /// A one-layer OCI layout tar whose config claims `diff_id`.
    fn layout(layer: &[u8], diff_id: &Digest, ref_name: &str) -> Vec<u8> {
        let (files, manifest) = image(layer, config(diff_id));
        let media_type = "application/vnd.oci.image.manifest.v1+json";
        layout_of(files, &manifest, media_type, ref_name)
    }

    #[test]
    fn an_index_s_attestation_manifests_are_no_platform() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = tar_of(&[("f", b"content")]);
        let (mut files, manifest) = image(&layer, config(&Digest::of(&layer)));
        let statement = br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#;
        let (attestation, attestation_manifest) = image(
            statement,
            json!({"mediaType": "application/vnd.in-toto+json"}),
        );
        files.extend(attestation);
        let entry = |m: &[u8], os: &str, arch: &str| {
            json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": Digest::of(m), "size": m.len(),
                   "platform": {"os": os, "architecture": arch}})
        };
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [entry(&manifest, "linux", "amd64"),
                          entry(&attestation_manifest, "unknown", "unknown")],
        }))
        .unwrap();
        files.push((path_of(&index), index.clone()));
        let media_type = "application/vnd.oci.image.index.v1+json";
        let tar = layout_of(files, &index, media_type, "docker.io/library/x:1");
        let loaded = load(&store, &tar[..]).unwrap();
        assert_eq!(loaded[0].manifest_digest, Digest::of(&index));
        assert!(store.has_blob(&Digest::of(&manifest)));
        assert!(!store.has_blob(&Digest::of(&attestation_manifest)));
    }

    #[test]
    fn a_layer_whose_content_is_not_its_diff_id_is_refused_and_nothing_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = tar_of(&[("f", b"content")]);
        let lie = Digest::of(b"some other layer");
        let err = load(&store, &layout(&layer, &lie, "x:1")[..]).unwrap_err();
        assert!(matches!(err, LoadError::DiffId { .. }), "{err}");
        assert!(err.to_string().contains(&Digest::of(&layer).to_string()));
        assert_eq!(std::fs::read_dir(store.blobs_dir()).unwrap().count(), 0);
        assert!(store.read_index().unwrap().manifests().is_empty());

        let loaded = load(&store, &layout(&layer, &Digest::of(&layer), "x:1")[..]).unwrap();
        assert_eq!(loaded[0].tags, [Reference::parse("x:1").unwrap()]);
    }

    #[test]
    fn a_bare_oci_ref_name_is_a_tag_of_no_repository() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = tar_of(&[("f", b"content")]);
        let loaded = load(&store, &layout(&layer, &Digest::of(&layer), "latest")[..]).unwrap();
        assert!(loaded[0].tags.is_empty(), "{:?}", loaded[0].tags);
        let entry = store.read_index().unwrap().manifests()[0].clone();
        assert!(entry.annotations().is_none());
    }
}
