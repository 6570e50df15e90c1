//! Images as the store sees them: a manifest, its config (whose digest is the
//! image ID, Docker's rule), and the tags that lead to it. Resolving a user's
//! target (a reference, or an ID prefix) to one image lives here.

use super::index::tag_of;
use super::{Store, StoreError};
use crate::digest::Digest;
use crate::platform::Platform;
use crate::reference::Reference;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use std::collections::HashMap;

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

/// A manifest `index.json` reaches, with the entries that name it.
struct Reach {
    digest: Digest,
    descriptor: Descriptor,
    named: Vec<Descriptor>,
}

/// An image as `index.json` names it, before its manifest is read.
#[derive(Debug, Clone)]
pub struct ImageEntry {
    /// The manifest's descriptor, without any tag annotation.
    pub descriptor: Descriptor,
    pub manifest_digest: Digest,
    pub tags: Vec<Reference>,
    pub repo_digests: Vec<Reference>,
    pub tagged_at: Option<std::time::SystemTime>,
    /// Reached only as another platform's entry of a multi-platform index
    /// (`ctr-run --platform linux/arm64` of a tag pulled for the host): it
    /// is kept and removed with that index, never on its own.
    pub index_child: bool,
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
    /// `repository@digest` for each tagged repository, the digest being what
    /// the tag names (an index's digest for a multi-platform tag).
    pub repo_digests: Vec<Reference>,
    /// When a tag was last pointed here, if berth recorded it.
    pub tagged_at: Option<std::time::SystemTime>,
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

/// `descriptor` without its annotations, made without copying them (a
/// listing of thousands of tags makes one per image).
fn without_annotations(descriptor: &Descriptor) -> Descriptor {
    let mut bare = Descriptor::new(
        descriptor.media_type().clone(),
        descriptor.size(),
        descriptor.digest().clone(),
    );
    bare.set_urls(descriptor.urls().clone());
    bare.set_platform(descriptor.platform().clone());
    bare.set_artifact_type(descriptor.artifact_type().clone());
    bare.set_data(descriptor.data().clone());
    bare
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

    /// The manifests `index.json` reaches, each with the index entries that
    /// name it (directly, or as an index whose host-platform child it is),
    /// in index order. Reads no manifest, only multi-platform index blobs.
    fn reachable_manifests(&self) -> Result<Vec<Reach>, StoreError> {
        let host = Platform::host();
        let mut reach: Vec<Reach> = Vec::new();
        let mut position: HashMap<Digest, usize> = HashMap::new();
        let mut add = |manifest: &Descriptor, named: Option<&Descriptor>| {
            let digest = descriptor_digest(manifest);
            let i = *position.entry(digest.clone()).or_insert_with(|| {
                let descriptor = without_annotations(manifest);
                reach.push(Reach {
                    digest,
                    descriptor,
                    named: Vec::new(),
                });
                reach.len() - 1
            });
            reach[i].named.extend(named.cloned());
        };
        for descriptor in self.read_index()?.manifests() {
            let digest = descriptor_digest(descriptor);
            match MediaKind::of(descriptor.media_type().as_ref()) {
                MediaKind::Manifest => add(descriptor, Some(descriptor)),
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
                        add(child, (i == preferred).then_some(descriptor));
                    }
                }
                _ => {}
            }
        }
        Ok(reach)
    }

    /// What the index says of the manifest `reach` leads to: its tags,
    /// repository digests and last tag time. Reads no blob.
    fn entry_of(&self, reach: &Reach) -> ImageEntry {
        let mut entry = ImageEntry {
            descriptor: reach.descriptor.clone(),
            manifest_digest: reach.digest.clone(),
            tags: Vec::new(),
            repo_digests: Vec::new(),
            tagged_at: None,
            index_child: reach.named.is_empty(),
        };
        for named in &reach.named {
            let Some(tag) = tag_of(named) else { continue };
            let repo_digest = tag.by_digest(descriptor_digest(named));
            if !entry.repo_digests.contains(&repo_digest) {
                entry.repo_digests.push(repo_digest);
            }
            entry.tags.push(tag);
            entry.tagged_at = entry.tagged_at.max(tagged_at(named));
        }
        entry
    }

    /// Reads the manifest `reach` leads to. A descriptor whose blob is
    /// absent (a partial copy by another tool) names no image.
    fn image_of(&self, reach: &Reach) -> Result<Option<Image>, StoreError> {
        let manifest = match self.read_manifest(&reach.digest) {
            Err(StoreError::MissingBlob(_)) => return Ok(None),
            other => other?,
        };
        let entry = self.entry_of(reach);
        Ok(Some(Image {
            descriptor: entry.descriptor,
            manifest_digest: entry.manifest_digest,
            manifest,
            tags: entry.tags,
            repo_digests: entry.repo_digests,
            tagged_at: entry.tagged_at,
        }))
    }

    /// `resolve_image_on` when a platform is asked for, else `resolve_image`.
    pub fn resolve_image_for(
        &self,
        target: &str,
        platform: Option<&Platform>,
    ) -> Result<Image, StoreError> {
        match platform {
            Some(platform) => self.resolve_image_on(target, platform),
            None => self.resolve_image(target),
        }
    }

    /// `resolve_image` for one platform: through a multi-platform tag, that
    /// platform's manifest if its blob is here; an image named any other way
    /// must declare that platform. Otherwise `NoSuchImage`, so that a pull
    /// policy fetches the platform asked for.
    pub fn resolve_image_on(&self, target: &str, platform: &Platform) -> Result<Image, StoreError> {
        let missing = || StoreError::NoSuchImage(format!("{target} for {platform}"));
        if let Ok(reference) = Reference::parse(target)
            && reference.digest().is_none()
            && let Some(tagged) = self
                .read_index()?
                .manifests()
                .iter()
                .find(|d| tag_of(d).as_ref() == Some(&reference))
                .cloned()
            && MediaKind::of(tagged.media_type().as_ref()) == MediaKind::Index
        {
            let digest = descriptor_digest(&tagged);
            if !self.has_blob(&digest) {
                return Err(missing());
            }
            let index = self.read_image_index(&digest)?;
            let Some(wanted) = index
                .manifests()
                .iter()
                .filter(|d| MediaKind::of(d.media_type().as_ref()) == MediaKind::Manifest)
                .find(|d| platform_matches(d, platform) && self.has_blob(&descriptor_digest(d)))
                .map(descriptor_digest)
            else {
                return Err(missing());
            };
            let reach = self.reachable_manifests()?;
            return reach
                .iter()
                .find(|r| r.digest == wanted)
                .map(|r| self.image_of(r))
                .transpose()?
                .flatten()
                .ok_or_else(missing);
        }
        let image = self.resolve_image(target)?;
        let declared = Platform::of_config(&self.read_blob(&image.id())?);
        if platform.matches(
            &declared.os,
            &declared.architecture,
            declared.variant.as_deref(),
        ) {
            Ok(image)
        } else {
            Err(missing())
        }
    }

    /// Every image `index.json` names, read from the index alone (no
    /// manifest is opened): the cheap start of a listing.
    pub fn image_entries(&self) -> Result<Vec<ImageEntry>, StoreError> {
        Ok(self
            .reachable_manifests()?
            .iter()
            .map(|reach| self.entry_of(reach))
            .collect())
    }

    /// Every image manifest reachable from `index.json` whose blob is
    /// present, with the tags that lead to it, in index order.
    pub fn images(&self) -> Result<Vec<Image>, StoreError> {
        let mut images = Vec::new();
        for reach in self.reachable_manifests()? {
            images.extend(self.image_of(&reach)?);
        }
        Ok(images)
    }

    /// Resolves what a user typed: a reference first (as Docker does), then
    /// an image ID or unique ID prefix, with or without `sha256:`.
    pub fn resolve_image(&self, target: &str) -> Result<Image, StoreError> {
        if let Ok(reference) = Reference::parse(target) {
            // By name: only the one manifest named needs reading.
            let reach = self.reachable_manifests()?;
            let found = reach.iter().find(|r| match reference.digest() {
                Some(digest) => {
                    r.digest == *digest || r.named.iter().any(|n| descriptor_digest(n) == *digest)
                }
                None => r
                    .named
                    .iter()
                    .any(|n| tag_of(n).as_ref() == Some(&reference)),
            });
            if let Some(image) = found.map(|r| self.image_of(r)).transpose()?.flatten() {
                return Ok(image);
            }
        }
        let images = self.images()?;
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

fn tagged_at(descriptor: &Descriptor) -> Option<std::time::SystemTime> {
    let annotations = descriptor.annotations().as_ref()?;
    crate::format::human::parse_rfc3339(annotations.get(super::TAGGED_AT_ANNOTATION)?)
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
