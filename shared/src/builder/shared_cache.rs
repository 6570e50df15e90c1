//! The build cache shared through a registry (`--cache-to`, `--cache-from`),
//! so CI runners on many machines reuse each other's steps. The cache is an
//! OCI image index whose entries are the steps' images, each annotated with
//! the cache key that produced it: any registry stores it, skopeo and
//! crane read it, and importing it is pulling images.
//!
//! BuildKit's registry cache (a `cacheconfig.v0` config describing a DAG
//! of its own cache keys) is not used: its keys are BuildKit's, which no
//! other builder computes, so its records could never be hits here.

use super::cache::{self, CacheKey};
use super::error::BuildError;
use crate::digest::Digest;
use crate::reference::Reference;
use crate::registry::{PullOptions, Puller, PushError, PushOptions, Pushed, Pusher};
use crate::store::{Store, StoreError};
use oci_spec::image::{Descriptor, MediaType};
use serde_json::json;
use std::collections::BTreeMap;
use std::str::FromStr;

/// The annotation naming the cache key of an entry's image.
pub const KEY_ANNOTATION: &str = "io.berth.build-cache.key";

/// Pushes `entries` (cache key → the step image it produced) as one index
/// named `to`.
pub fn export(
    store: &Store,
    entries: &BTreeMap<String, Digest>,
    to: &Reference,
    options: PushOptions,
) -> Result<Pushed, BuildError> {
    let mut manifests = Vec::new();
    for (key, manifest) in entries {
        let size = store
            .blob_path(manifest)
            .metadata()
            .map_err(|_| StoreError::MissingBlob(manifest.clone()))?
            .len();
        manifests.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest.to_string(),
            "size": size,
            "annotations": { KEY_ANNOTATION: key },
        }));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
        "annotations": { "io.berth.build-cache": "v1" },
    });
    let bytes = serde_json::to_vec(&index).expect("JSON serialises");
    let digest = store.put_blob(&bytes)?;
    let descriptor = Descriptor::new(
        MediaType::ImageIndex,
        bytes.len() as u64,
        oci_spec::image::Digest::from_str(&digest.to_string())
            .map_err(|e| BuildError::Invalid(e.to_string()))?,
    );
    let mut pusher = Pusher::new(store, options).map_err(push_error)?;
    pusher.push_as(to, descriptor, &mut ()).map_err(push_error)
}

/// Pulls the cache `from` names and records each of its entries in the
/// local cache; returns how many. The steps' images stay untagged, as the
/// local cache's own do.
pub fn import(store: &Store, from: &Reference, options: PullOptions) -> Result<usize, BuildError> {
    let mut puller = Puller::new(store, options)?;
    let bytes = puller.manifest_bytes(from)?;
    let index: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| BuildError::Invalid(format!("--cache-from {from}: not a build cache: {e}")))?;
    let Some(entries) = index["manifests"].as_array() else {
        return Err(BuildError::Invalid(format!(
            "--cache-from {from}: not a build cache: no manifests"
        )));
    };
    let mut imported = 0;
    for entry in entries {
        let (Some(key), Some(digest)) = (
            entry["annotations"][KEY_ANNOTATION]
                .as_str()
                .and_then(CacheKey::from_hex),
            entry["digest"]
                .as_str()
                .and_then(|d| d.parse::<Digest>().ok()),
        ) else {
            continue; // not one of ours: a cache may be shared with more
        };
        let by_digest = from.by_digest(digest.clone());
        puller.pull(&by_digest, &mut ())?;
        // The pull named it `repo@digest`; the cache names it now.
        let mut guard = store.lock_index()?;
        guard.remove_tag(&by_digest);
        guard.save()?;
        cache::record(store, &key, &digest)?;
        imported += 1;
    }
    Ok(imported)
}

fn push_error(error: PushError) -> BuildError {
    match error {
        PushError::Registry(e) => BuildError::Pull(e.into()),
        PushError::Store(e) => BuildError::Store(e),
        other => BuildError::Invalid(format!("--cache-to: {other}")),
    }
}
