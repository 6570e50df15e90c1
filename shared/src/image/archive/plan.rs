//! What a save tar's images are, checked whole before anything is stored:
//! each `index.json` entry (an image manifest kept byte for byte, or a
//! multi-platform index with the platforms the archive holds), then each
//! `manifest.json` image no entry covered (its layers under an OCI manifest
//! made here). Every blob is matched to its descriptor's digest and size,
//! every layer's uncompressed digest to its config's diff ID.

use super::ingest::{Archive, Content};
use super::load::LoadError;
use super::{IMAGE_NAME_ANNOTATION, INDEX_JSON, MANIFEST_JSON, ManifestItem, blob_path};
use crate::compression::Compression;
use crate::digest::Digest;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::{MediaKind, REF_NAME_ANNOTATION, StoreError, descriptor_digest};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde_json::json;
use std::str::FromStr;

/// An image checked and ready to store.
pub(super) struct Plan {
    pub manifest: ManifestBytes,
    pub media_type: String,
    pub manifest_digest: Digest,
    pub manifest_size: u64,
    pub id: Digest,
    /// The real archive paths of its config and layers.
    pub blobs: Vec<String>,
    pub tags: Vec<Reference>,
}

pub(super) enum ManifestBytes {
    /// A manifest of the archive, at this path, kept as it is.
    Archive(String),
    /// One made for an image `manifest.json` alone describes.
    Made(Vec<u8>),
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
pub(super) fn plan(archive: &Archive) -> Result<Vec<Plan>, LoadError> {
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
        // BuildKit's attestations ride in indexes as `unknown/unknown`
        // manifests whose config is no image config: not a platform.
        let attestation = child
            .platform()
            .as_ref()
            .is_some_and(|p| p.os().to_string() == "unknown");
        if !present
            || attestation
            || MediaKind::of(child.media_type().as_ref()) != MediaKind::Manifest
        {
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
