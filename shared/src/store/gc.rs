//! Garbage collection by mark and sweep: every blob reachable from
//! `index.json` stays, with the unpacked layers its images need; the rest
//! goes. Writers hold a shared lease while their blobs are not yet tagged;
//! the collector takes the lease lock exclusively, so it never sweeps a blob
//! an unfinished pull or build is about to reference, nor an image leased
//! for a container being created, nor the states a build pinned.

use super::image::{MediaKind, descriptor_digest};
use super::{Store, StoreError, io_error};
use crate::digest::Digest;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::path::Path;

/// A held lease lock: shared for writers, exclusive for the collector.
pub struct Lease {
    _file: File,
}

/// What a collection freed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reclaimed {
    pub blobs: Vec<Digest>,
    pub layers: usize,
    pub bytes: u64,
}

impl Store {
    fn lease_file(&self) -> Result<File, StoreError> {
        let path = self.locks_dir().join("gc.lock");
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error(&path))
    }

    /// A writer's lease: while held, no collection runs, so blobs written
    /// but not yet tagged survive.
    pub fn lease(&self) -> Result<Lease, StoreError> {
        let file = self.lease_file()?;
        file.lock_shared()
            .map_err(io_error(self.locks_dir().join("gc.lock")))?;
        Ok(Lease { _file: file })
    }

    /// The collector's exclusive lock; waits for every writer's lease.
    pub fn exclusive_lease(&self) -> Result<Lease, StoreError> {
        let file = self.lease_file()?;
        file.lock()
            .map_err(io_error(self.locks_dir().join("gc.lock")))?;
        Ok(Lease { _file: file })
    }

    /// The collector's lock if no writer holds a lease now, without waiting.
    pub fn try_exclusive_lease(&self) -> Result<Option<Lease>, StoreError> {
        let file = self.lease_file()?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Lease { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(io_error(self.locks_dir().join("gc.lock"))(e))
            }
        }
    }

    /// Removes every blob and unpacked layer that `index.json` no longer
    /// reaches. The caller proves it holds the exclusive lease.
    pub fn collect_garbage(&self, _exclusive: &Lease) -> Result<Reclaimed, StoreError> {
        let guard = self.lock_index()?;
        let mut blobs = HashSet::new();
        let mut chains = HashSet::new();
        for descriptor in guard.manifests() {
            self.mark(
                &descriptor_digest(descriptor),
                MediaKind::of(descriptor.media_type().as_ref()),
                &mut blobs,
                &mut chains,
            )?;
        }
        // An image a container is being created from stays, tagged or not,
        // and so does every state a running build still needs.
        let leased = self.leased_images(true)?.into_iter().map(|l| l.manifest);
        let pinned = self.pinned_content(true)?.into_iter();
        for manifest in leased.chain(pinned.flat_map(|p| p.manifests)) {
            self.mark(&manifest, MediaKind::Manifest, &mut blobs, &mut chains)?;
        }
        let mut reclaimed = Reclaimed::default();
        let blobs_dir = self.blobs_dir();
        for entry in fs::read_dir(&blobs_dir).map_err(io_error(&blobs_dir))? {
            let entry = entry.map_err(io_error(&blobs_dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(digest) = format!("sha256:{name}").parse::<Digest>() else {
                continue; // not ours to judge
            };
            if blobs.contains(&digest) {
                continue;
            }
            reclaimed.bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
            fs::remove_file(entry.path()).map_err(io_error(entry.path()))?;
            let _ = fs::remove_file(self.root.join("cache/layer-sizes").join(&name));
            reclaimed.blobs.push(digest);
        }
        let layers_dir = self.root.join("layers");
        for entry in fs::read_dir(&layers_dir).map_err(io_error(&layers_dir))? {
            let entry = entry.map_err(io_error(&layers_dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !Digest::is_hex64(&name) || chains.contains(&name) {
                continue;
            }
            reclaimed.bytes += disk_usage(&entry.path());
            fs::remove_dir_all(entry.path()).map_err(io_error(entry.path()))?;
            reclaimed.layers += 1;
        }
        // Temp blobs of killed pulls and builds are garbage too, and count.
        let swept = self.sweep_temp_files()?;
        reclaimed.bytes += swept.bytes;
        // Scratch directories whose owner died (build overlays, layers
        // half unpacked), with what they left mounted.
        reclaimed.bytes += self.sweep_scratch("");
        drop(guard);
        Ok(reclaimed)
    }

    /// Marks `digest` and everything it references.
    fn mark(
        &self,
        digest: &Digest,
        kind: MediaKind,
        blobs: &mut HashSet<Digest>,
        chains: &mut HashSet<String>,
    ) -> Result<(), StoreError> {
        if !blobs.insert(digest.clone()) || !self.has_blob(digest) {
            return Ok(());
        }
        match kind {
            MediaKind::Manifest => {
                let manifest = self.read_manifest(digest)?;
                let config = descriptor_digest(manifest.config());
                blobs.insert(config.clone());
                for layer in manifest.layers() {
                    blobs.insert(descriptor_digest(layer));
                }
                if let Ok(bytes) = self.read_blob(&config) {
                    chains.extend(chain_ids(&bytes).iter().map(|c| c.hex().to_string()));
                }
            }
            MediaKind::Index => {
                for child in self.read_image_index(digest)?.manifests() {
                    let child_kind = MediaKind::of(child.media_type().as_ref());
                    self.mark(&descriptor_digest(child), child_kind, blobs, chains)?;
                }
            }
            MediaKind::Other => {}
        }
        Ok(())
    }
}

/// The chain IDs of an image config's layers: chain(0) = diff(0),
/// chain(n) = sha256(chain(n-1) + " " + diff(n)), as the OCI spec defines.
pub fn chain_ids(config: &[u8]) -> Vec<Digest> {
    let Ok(config) = serde_json::from_slice::<serde_json::Value>(config) else {
        return Vec::new();
    };
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|d| d.as_str()?.parse().ok())
                .collect::<Vec<Digest>>()
        })
        .unwrap_or_default();
    let mut chains: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let next = match chains.last() {
            None => diff,
            Some(parent) => Digest::of(format!("{parent} {diff}").as_bytes()),
        };
        chains.push(next);
    }
    chains
}

pub(super) fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return if meta.is_file() { meta.len() } else { 0 };
    }
    fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| disk_usage(&e.path())).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let config = serde_json::json!({"rootfs": {"type": "layers", "diff_ids": [a.to_string(), b.to_string()]}});
        let chains = chain_ids(config.to_string().as_bytes());
        assert_eq!(chains[0], a);
        assert_eq!(chains[1], Digest::of(format!("{a} {b}").as_bytes()));
    }
}
