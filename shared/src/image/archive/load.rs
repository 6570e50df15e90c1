//! `docker load`: the images of a save tar into the store. `index.json`
//! (Docker 25+, skopeo's `oci-archive:`) is read first and its manifests
//! kept byte for byte, so digests survive the trip; images `manifest.json`
//! alone describes (Docker's and skopeo's `docker-archive:`, the 1.x-era
//! `<id>/layer.tar` layout) get an OCI manifest made for their layers as
//! they are. Every image is checked whole (each blob's digest and size,
//! each layer's diff ID against its config) before any blob is persisted,
//! and the index is updated once, last, as a pull commits.

use super::ingest::{self, Archive, Content};
use super::{IMAGE_NAME_ANNOTATION, INDEX_JSON, MANIFEST_JSON, ManifestItem, blob_path};
use crate::compression::Compression;
use crate::digest::Digest;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::{MediaKind, REF_NAME_ANNOTATION, Store, StoreError, descriptor_digest};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use serde_json::json;
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

/// An image checked and ready to store.
struct Plan {
    manifest: ManifestBytes,
    media_type: String,
    manifest_digest: Digest,
    manifest_size: u64,
    id: Digest,
    /// The real archive paths of its config and layers.
    blobs: Vec<String>,
    tags: Vec<Reference>,
}

enum ManifestBytes {
    /// A manifest of the archive, at this path, kept as it is.
    Archive(String),
    /// One made for an image `manifest.json` alone describes.
    Made(Vec<u8>),
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

fn json<T: serde::de::DeserializeOwned>(
    archive: &Archive,
    path: &str,
    by: &str,
) -> Result<Option<T>, LoadError> {
    if !archive.has(path) {
        return Ok(None);
    }
    let (_, content) = archive.get(path, by)?;
    let bytes = content.bytes(path)?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| LoadError::Invalid {
            what: path.to_string(),
            why: format!("malformed JSON: {e}"),
        })
}

/// Every image the archive describes, checked, in the order it lists them.
fn plan(archive: &Archive) -> Result<Vec<Plan>, LoadError> {
    let mut plans: Vec<Plan> = Vec::new();
    let index: Option<ImageIndex> = json(archive, INDEX_JSON, "the archive")?;
    for descriptor in index.iter().flat_map(|i| i.manifests()) {
        let tag = descriptor_name(descriptor);
        let digest = descriptor_digest(descriptor);
        if let Some(known) = plans.iter_mut().find(|p| p.manifest_digest == digest) {
            known.tags.extend(tag.filter(|t| !known.tags.contains(t)));
            continue;
        }
        let mut plan = match MediaKind::of(descriptor.media_type().as_ref()) {
            MediaKind::Manifest => oci_plan(archive, descriptor)?,
            MediaKind::Index => index_plan(archive, descriptor)?,
            MediaKind::Other => {
                return Err(LoadError::Invalid {
                    what: format!("{INDEX_JSON} entry {digest}"),
                    why: format!("not an image manifest ({})", descriptor.media_type()),
                });
            }
        };
        plan.tags.extend(tag);
        plans.push(plan);
    }
    let items: Vec<ManifestItem> = json(archive, MANIFEST_JSON, "the archive")?.unwrap_or_default();
    for item in items {
        let mut tags = Vec::new();
        for tag in item.repo_tags.iter().flatten() {
            let reference = Reference::parse(tag).map_err(|e| LoadError::Invalid {
                what: MANIFEST_JSON.to_string(),
                why: e.to_string(),
            })?;
            tags.push(reference);
        }
        let (_, config) = archive.get(&item.config, MANIFEST_JSON)?;
        let plan = match plans.iter_mut().find(|p| p.id == config.digest) {
            Some(known) => known,
            None => {
                plans.push(docker_plan(archive, &item)?);
                plans.last_mut().expect("just pushed")
            }
        };
        for tag in tags {
            if !plan.tags.contains(&tag) {
                plan.tags.push(tag);
            }
        }
    }
    Ok(plans)
}

/// The name an `index.json` entry gives its image: containerd's full name,
/// else an OCI ref name that is a reference rather than a bare tag
/// (`latest` names no repository).
fn descriptor_name(descriptor: &Descriptor) -> Option<Reference> {
    let annotations = descriptor.annotations().as_ref()?;
    let name = annotations.get(IMAGE_NAME_ANNOTATION).or_else(|| {
        annotations
            .get(REF_NAME_ANNOTATION)
            .filter(|n| n.contains([':', '/', '@']))
    })?;
    let reference = Reference::parse(name).ok()?;
    // A digest pins content; only a tag names an image in the store.
    match (reference.tag(), reference.digest()) {
        (Some(tag), Some(_)) => Some(reference.with_tag(tag)),
        (Some(_), None) => Some(reference),
        _ => None,
    }
}

/// The blob `descriptor` names, checked against its digest and size.
fn described<'a>(
    archive: &'a Archive,
    descriptor: &Descriptor,
    by: &str,
) -> Result<(String, &'a Content), LoadError> {
    let digest =
        Digest::from_str(descriptor.digest().as_ref()).map_err(|e| LoadError::Invalid {
            what: by.to_string(),
            why: e.to_string(),
        })?;
    let path = blob_path(digest.hex());
    let (real, content) = archive.get(&path, by)?;
    // The name was checked against the content as it came in.
    let check = if content.digest != digest {
        Err(StoreError::DigestMismatch {
            expected: digest,
            actual: content.digest.clone(),
        })
    } else if content.size != descriptor.size() {
        Err(StoreError::SizeMismatch {
            digest,
            expected: descriptor.size(),
            actual: content.size,
        })
    } else {
        Ok(())
    };
    check.map_err(|source| LoadError::Blob { path, source })?;
    Ok((real, content))
}

/// An image of the OCI layout: its manifest as it is, every blob checked.
fn oci_plan(archive: &Archive, descriptor: &Descriptor) -> Result<Plan, LoadError> {
    let digest = descriptor_digest(descriptor);
    let what = format!("image {digest}");
    let (manifest_path, content) = described(archive, descriptor, INDEX_JSON)?;
    let manifest: ImageManifest =
        serde_json::from_slice(&content.bytes(&manifest_path)?).map_err(|e| {
            LoadError::Invalid {
                what: manifest_path.clone(),
                why: format!("not an image manifest: {e}"),
            }
        })?;
    let (config_path, config) = described(archive, manifest.config(), &what)?;
    let diff_ids = diff_ids(&config.bytes(&config_path)?, &config_path)?;
    if diff_ids.len() != manifest.layers().len() {
        return Err(layer_count(&what, manifest.layers().len(), diff_ids.len()));
    }
    let mut blobs = vec![config_path];
    for (n, (layer, expected)) in manifest.layers().iter().zip(&diff_ids).enumerate() {
        let (path, content) = described(archive, layer, &what)?;
        check_diff_id(content, expected, &format!("layer {} of {what}", n + 1))?;
        blobs.push(path);
    }
    Ok(Plan {
        manifest: ManifestBytes::Archive(manifest_path),
        media_type: descriptor.media_type().to_string(),
        manifest_digest: digest,
        manifest_size: descriptor.size(),
        id: config.digest.clone(),
        blobs,
        tags: Vec::new(),
    })
}

/// A multi-platform index (skopeo's `copy --all`, Docker 27+ with
/// containerd): the index kept as it is and named by the tag, with every
/// platform whose manifest the archive holds, each checked whole; the
/// others stay out, as a pull keeps only the platforms it fetched.
fn index_plan(archive: &Archive, descriptor: &Descriptor) -> Result<Plan, LoadError> {
    let digest = descriptor_digest(descriptor);
    let (index_path, content) = described(archive, descriptor, INDEX_JSON)?;
    let index: ImageIndex =
        serde_json::from_slice(&content.bytes(&index_path)?).map_err(|e| LoadError::Invalid {
            what: index_path.clone(),
            why: format!("not an image index: {e}"),
        })?;
    let host = Platform::host();
    let mut blobs = Vec::new();
    let mut id: Option<(bool, Digest)> = None;
    for child in index.manifests() {
        let present = archive.has(&blob_path(descriptor_digest(child).hex()));
        if !present || MediaKind::of(child.media_type().as_ref()) != MediaKind::Manifest {
            continue;
        }
        let plan = oci_plan(archive, child)?;
        let is_host = child.platform().as_ref().is_some_and(|p| {
            host.matches(
                &p.os().to_string(),
                &p.architecture().to_string(),
                p.variant().as_deref(),
            )
        });
        if id.as_ref().is_none_or(|(host, _)| is_host && !host) {
            id = Some((is_host, plan.id.clone()));
        }
        blobs.extend(plan.blobs);
        if let ManifestBytes::Archive(path) = plan.manifest {
            blobs.push(path);
        }
    }
    let Some((_, id)) = id else {
        return Err(LoadError::Missing {
            path: "any of its platforms' manifests".to_string(),
            by: format!("index {digest}"),
        });
    };
    Ok(Plan {
        manifest: ManifestBytes::Archive(index_path),
        media_type: descriptor.media_type().to_string(),
        manifest_digest: digest,
        manifest_size: descriptor.size(),
        id,
        blobs,
        tags: Vec::new(),
    })
}

/// An image only `manifest.json` describes: its layers stored as they are
/// (uncompressed ones as plain `…layer.v1.tar`), under an OCI manifest made
/// here, since skopeo's `oci:` and umoci see only OCI manifests in a
/// layout. Made the same way from the same archive, it has the same digest.
fn docker_plan(archive: &Archive, item: &ManifestItem) -> Result<Plan, LoadError> {
    let (config_path, config) = archive.get(&item.config, MANIFEST_JSON)?;
    let id = config.digest.clone();
    let what = format!("image {id}");
    let diff_ids = diff_ids(&config.bytes(&config_path)?, &config_path)?;
    if diff_ids.len() != item.layers.len() {
        return Err(layer_count(&what, item.layers.len(), diff_ids.len()));
    }
    let mut blobs = vec![config_path];
    let mut layers = Vec::new();
    for (n, (layer, expected)) in item.layers.iter().zip(&diff_ids).enumerate() {
        let (path, content) = archive.get(layer, MANIFEST_JSON)?;
        check_diff_id(content, expected, &format!("layer {} of {what}", n + 1))?;
        blobs.push(path);
        layers.push((content.compression, content.digest.clone(), content.size));
    }
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(compression, digest, size)| {
            let media_type = match compression {
                Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
                Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
                Compression::None => "application/vnd.oci.image.layer.v1.tar",
            };
            json!({"mediaType": media_type, "digest": digest.to_string(), "size": size})
        })
        .collect();
    let media_type = "application/vnd.oci.image.manifest.v1+json";
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": id.to_string(),
            "size": config.size,
        },
        "layers": layers,
    });
    let bytes = serde_json::to_vec(&manifest).expect("JSON values serialise");
    Ok(Plan {
        manifest_digest: Digest::of(&bytes),
        manifest_size: bytes.len() as u64,
        manifest: ManifestBytes::Made(bytes),
        media_type: media_type.to_string(),
        id,
        blobs,
        tags: Vec::new(),
    })
}

fn layer_count(what: &str, layers: usize, diff_ids: usize) -> LoadError {
    LoadError::Invalid {
        what: what.to_string(),
        why: format!("{layers} layers, but its config lists {diff_ids} diff IDs"),
    }
}

/// A config's `rootfs.diff_ids`.
fn diff_ids(config: &[u8], path: &str) -> Result<Vec<Digest>, LoadError> {
    #[derive(serde::Deserialize)]
    struct Config {
        rootfs: RootFs,
    }
    #[derive(serde::Deserialize)]
    struct RootFs {
        #[serde(default)]
        diff_ids: Vec<Digest>,
    }
    serde_json::from_slice::<Config>(config)
        .map(|c| c.rootfs.diff_ids)
        .map_err(|e| LoadError::Invalid {
            what: path.to_string(),
            why: format!("not an image config: {e}"),
        })
}

fn check_diff_id(content: &Content, expected: &Digest, what: &str) -> Result<(), LoadError> {
    let actual = match content.diff_id() {
        Ok(actual) if actual == *expected => return Ok(()),
        Ok(actual) => actual.to_string(),
        Err(e) => format!("unreadable ({e})"),
    };
    Err(LoadError::DiffId {
        what: what.to_string(),
        expected: expected.clone(),
        actual,
    })
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
    use super::*;

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

    /// A one-layer OCI layout tar whose config claims `diff_id`.
    fn layout(layer: &[u8], diff_id: &Digest, ref_name: &str) -> Vec<u8> {
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": Digest::of(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": Digest::of(layer), "size": layer.len()}],
        }))
        .unwrap();
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "digest": Digest::of(&manifest), "size": manifest.len(),
                           "annotations": {REF_NAME_ANNOTATION: ref_name}}],
        }))
        .unwrap();
        let path = |bytes: &[u8]| blob_path(Digest::of(bytes).hex());
        tar_of(&[
            (&path(layer), layer),
            (&path(&config), &config),
            (&path(&manifest), &manifest),
            ("index.json", &index),
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        ])
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
