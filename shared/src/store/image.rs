//! Images as the store sees them: a manifest, its config (whose digest is the
//! image ID, Docker's rule), and the tags that lead to it. Resolving a user's
//! target (a reference, or an ID prefix) to one image lives here.

use super::index::tag_of;
use super::{Store, StoreError};
use crate::digest::Digest;
use crate::platform::Platform;
use crate::reference::Reference;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

/// What a descriptor's media type says the blob is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// An image manifest: OCI or Docker v2 schema 2.
    Manifest,
    /// A multi-platform index: OCI index or Docker manifest list.
    Index,
    Other,
}

impl MediaKind {
    pub fn of(media_type: &str) -> MediaKind {
        match media_type {
            "application/vnd.oci.image.manifest.v1+json"
            | "application/vnd.docker.distribution.manifest.v2+json" => MediaKind::Manifest,
            "application/vnd.oci.image.index.v1+json"
            | "application/vnd.docker.distribution.manifest.list.v2+json" => MediaKind::Index,
            _ => MediaKind::Other,
        }
    }
}

/// One image manifest in the store.
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest's descriptor, without any tag annotation.
    pub descriptor: Descriptor,
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    /// The tags that resolve to this manifest (directly, or through an index
    /// whose entry for the host platform it is).
    pub tags: Vec<Reference>,
}

impl Image {
    /// The image ID: the config blob's digest.
    pub fn id(&self) -> Digest {
        descriptor_digest(self.manifest.config())
    }
}

/// The digest of a descriptor in our own type. oci-spec has already checked
/// its syntax; only a non-sha256 algorithm can fail, and the store holds none.
pub fn descriptor_digest(descriptor: &Descriptor) -> Digest {
    descriptor
        .digest()
        .to_string()
        .parse()
        .unwrap_or_else(|_| Digest::of(descriptor.digest().to_string().as_bytes()))
}

impl Store {
    /// Parses a manifest blob.
    pub fn read_manifest(&self, digest: &Digest) -> Result<ImageManifest, StoreError> {
        let bytes = self.read_blob(digest)?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            path: self.blob_path(digest),
            source,
        })
    }

    /// Parses an index blob.
    pub fn read_image_index(&self, digest: &Digest) -> Result<ImageIndex, StoreError> {
        let bytes = self.read_blob(digest)?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            path: self.blob_path(digest),
            source,
        })
    }

    /// Every image manifest reachable from `index.json` whose blob is
    /// present, with the tags that lead to it, in index order.
    pub fn images(&self) -> Result<Vec<Image>, StoreError> {
        let host = Platform::host();
        let mut images: Vec<Image> = Vec::new();
        let mut add = |descriptor: &Descriptor, tag: Option<Reference>, store: &Store| {
            let digest = descriptor_digest(descriptor);
            if let Some(existing) = images.iter_mut().find(|i| i.manifest_digest == digest) {
                existing.tags.extend(tag);
                return Ok(());
            }
            let manifest = store.read_manifest(&digest)?;
            let mut descriptor = descriptor.clone();
            descriptor.set_annotations(None);
            images.push(Image {
                descriptor,
                manifest_digest: digest,
                manifest,
                tags: tag.into_iter().collect(),
            });
            Ok::<(), StoreError>(())
        };
        for descriptor in self.read_index()?.manifests() {
            let digest = descriptor_digest(descriptor);
            let tag = tag_of(descriptor);
            match MediaKind::of(descriptor.media_type().as_ref()) {
                MediaKind::Manifest if self.has_blob(&digest) => add(descriptor, tag, self)?,
                MediaKind::Index if self.has_blob(&digest) => {
                    let index = self.read_image_index(&digest)?;
                    let present: Vec<&Descriptor> = index
                        .manifests()
                        .iter()
                        .filter(|d| MediaKind::of(d.media_type().as_ref()) == MediaKind::Manifest)
                        .filter(|d| self.has_blob(&descriptor_digest(d)))
                        .collect();
                    let preferred = present
                        .iter()
                        .position(|d| platform_matches(d, &host))
                        .unwrap_or(0);
                    for (i, child) in present.iter().enumerate() {
                        let child_tag = if i == preferred { tag.clone() } else { None };
                        add(child, child_tag, self)?;
                    }
                }
                _ => {}
            }
        }
        Ok(images)
    }

    /// Resolves what a user typed: a reference first (as Docker does), then
    /// an image ID or unique ID prefix, with or without `sha256:`.
    pub fn resolve_image(&self, target: &str) -> Result<Image, StoreError> {
        let images = self.images()?;
        if let Ok(reference) = Reference::parse(target) {
            let found = images.iter().find(|image| match reference.digest() {
                Some(digest) => image.manifest_digest == *digest,
                None => image.tags.contains(&reference),
            });
            if let Some(image) = found {
                return Ok(image.clone());
            }
        }
        let prefix = target.strip_prefix("sha256:").unwrap_or(target);
        let is_prefix = !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !is_prefix {
            return Err(StoreError::NoSuchImage(target.to_string()));
        }
        let mut matching: Vec<&Image> = images
            .iter()
            .filter(|image| image.id().hex().starts_with(prefix))
            .collect();
        let mut ids: Vec<String> = matching.iter().map(|i| i.id().to_string()).collect();
        ids.sort();
        ids.dedup();
        match ids.len() {
            0 => Err(StoreError::NoSuchImage(target.to_string())),
            1 => Ok(matching.swap_remove(0).clone()),
            _ => Err(StoreError::Ambiguous {
                prefix: target.to_string(),
                candidates: ids,
            }),
        }
    }
}

impl Store {
    /// Docker's `tag`: makes `target` name the image `source` resolves to.
    /// No data is copied; only `index.json` changes.
    pub fn tag_image(&self, source: &str, target: &Reference) -> Result<Image, StoreError> {
        if target.digest().is_some() {
            return Err(StoreError::TagWithDigest(target.to_string()));
        }
        let image = self.resolve_image(source)?;
        self.tag(target, image.descriptor.clone())?;
        Ok(image)
    }
}

fn platform_matches(descriptor: &Descriptor, platform: &Platform) -> bool {
    descriptor.platform().as_ref().is_some_and(|p| {
        platform.matches(
            &p.os().to_string(),
            &p.architecture().to_string(),
            p.variant().as_deref(),
        )
    })
}
