//! Leases (containerd's idea): files under `locks/leases/`, each held with
//! an flock by the process it serves; one whose holder died is no longer
//! locked, so it pins nothing and is swept.
//!
//! - An image lease names the image a container is being created from:
//!   removal, pruning and collection treat that image as in use.
//! - A content lease lists the manifests a build still needs: collection
//!   keeps what they reach, tagged or not, so a build need not hold the
//!   writers' lock (and keep every img-rm and img-prune waiting) while its
//!   RUN steps run.

use super::gc::Lease;
use super::image::Image;
use super::{Store, StoreError, io_error};
use crate::digest::Digest;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::PathBuf;

/// A held lease on one image; dropping it (or dying) ends it.
#[derive(Debug)]
pub struct ImageLease {
    path: PathBuf,
    // Closing it releases the flock that keeps the lease alive.
    _file: File,
}

impl Drop for ImageLease {
    fn drop(&mut self) {
        // If this fails the file stays, unlocked once we close it: swept.
        let _ = fs::remove_file(&self.path);
    }
}

/// A live lease, as collectors see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeasedImage {
    /// The image ID (`sha256:…` of its config), as container records name it.
    pub image: String,
    pub manifest: Digest,
    /// The process creating a container from it.
    pub pid: u32,
}

/// A held content lease; dropping it (or dying) ends it.
#[derive(Debug)]
pub struct ContentLease {
    path: PathBuf,
    // Closing it releases the flock that keeps the lease alive.
    _file: File,
}

impl Drop for ContentLease {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// A live content lease, as collectors see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedContent {
    /// The process that needs the content (a build).
    pub pid: u32,
    /// Manifests whose config, layers and unpacked layers stay.
    pub manifests: Vec<Digest>,
}

const IMAGE_LEASE: &str = "lease-";
const CONTENT_LEASE: &str = "pins-";

impl ContentLease {
    /// Replaces what the lease pins with `manifests`. Taking the writers'
    /// lock (shown by `_writers`) means no collection is under way, so the
    /// new list is whole before any collector reads it; the old file stays
    /// locked until the new one has its name.
    pub fn pin(
        &mut self,
        store: &Store,
        _writers: &Lease,
        manifests: impl IntoIterator<Item = Digest>,
    ) -> Result<(), StoreError> {
        let pinned = PinnedContent {
            pid: std::process::id(),
            manifests: manifests.into_iter().collect(),
        };
        let (path, file) = store.write_locked(CONTENT_LEASE, &pinned, Some(&self.path))?;
        self.path = path;
        self._file = file;
        Ok(())
    }
}

impl Store {
    fn leases_dir(&self) -> PathBuf {
        self.locks_dir().join("leases")
    }

    /// Resolves an image with `resolve` and leases it, both under the
    /// writers' shared lock (`gc.lock`): a removal or collection runs
    /// wholly before (and the image is not found) or wholly after (and it
    /// sees the lease), never in between.
    pub fn lease_image<E: From<StoreError>>(
        &self,
        resolve: impl FnOnce(&Store) -> Result<Image, E>,
    ) -> Result<(Image, ImageLease), E> {
        let _writers = self.lease()?;
        let image = resolve(self)?;
        let lease = self.write_lease(&LeasedImage {
            image: image.id().to_string(),
            manifest: image.manifest_digest.clone(),
            pid: std::process::id(),
        })?;
        Ok((image, lease))
    }

    fn write_lease(&self, leased: &LeasedImage) -> Result<ImageLease, StoreError> {
        let (path, file) = self.write_locked(IMAGE_LEASE, leased, None)?;
        Ok(ImageLease { path, _file: file })
    }

    /// A content lease pinning `manifests` (`_writers`: see
    /// [`ContentLease::pin`]). Taken when there is something to pin, not
    /// before: an empty lease would cost a file for nothing.
    pub fn content_lease(
        &self,
        _writers: &Lease,
        manifests: impl IntoIterator<Item = Digest>,
    ) -> Result<ContentLease, StoreError> {
        let pinned = PinnedContent {
            pid: std::process::id(),
            manifests: manifests.into_iter().collect(),
        };
        let (path, file) = self.write_locked(CONTENT_LEASE, &pinned, None)?;
        Ok(ContentLease { path, _file: file })
    }

    /// Writes a lease under a hidden temp name, locks it, then names it (a
    /// new `kind…` name, or `replacing` an older lease of ours): a named
    /// lease that is not locked is always a dead one.
    fn write_locked(
        &self,
        kind: &str,
        what: &impl Serialize,
        replacing: Option<&PathBuf>,
    ) -> Result<(PathBuf, File), StoreError> {
        let dir = self.leases_dir();
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{kind}"))
            .tempfile_in(&dir)
            .map_err(io_error(&dir))?;
        let bytes = serde_json::to_vec(what).expect("leases serialise");
        tmp.write_all(&bytes).map_err(io_error(tmp.path()))?;
        tmp.as_file().lock().map_err(io_error(tmp.path()))?;
        match replacing {
            Some(path) => {
                let file = tmp.persist(path).map_err(|e| io_error(path)(e.error))?;
                Ok((path.clone(), file))
            }
            None => {
                let name = tmp
                    .path()
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix('.'))
                    .expect("tempfile names what we prefixed")
                    .to_string();
                let path = dir.join(name);
                let file = tmp
                    .persist_noclobber(&path)
                    .map_err(|e| io_error(&path)(e.error))?;
                Ok((path, file))
            }
        }
    }

    /// The images leased by live processes. With `sweep` (the collector,
    /// holding the exclusive lock, so no lease is half-written), dead
    /// leases and temp files are removed as they are found.
    pub fn leased_images(&self, sweep: bool) -> Result<Vec<LeasedImage>, StoreError> {
        self.live_leases(IMAGE_LEASE, sweep)
    }

    /// The content pinned by live builds; `sweep` as for images.
    pub fn pinned_content(&self, sweep: bool) -> Result<Vec<PinnedContent>, StoreError> {
        self.live_leases(CONTENT_LEASE, sweep)
    }

    fn live_leases<T: DeserializeOwned>(
        &self,
        kind: &str,
        sweep: bool,
    ) -> Result<Vec<T>, StoreError> {
        let dir = self.leases_dir();
        let entries = match fs::read_dir(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            other => other.map_err(io_error(&dir))?,
        };
        let mut live = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error(&dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                if sweep {
                    let _ = fs::remove_file(&path);
                }
                continue;
            }
            if !name.starts_with(kind) {
                continue;
            }
            let Ok(file) = File::open(&path) else {
                continue; // ended while we looked
            };
            match file.try_lock_shared() {
                Err(fs::TryLockError::WouldBlock) => {}
                Ok(()) => {
                    if sweep {
                        let _ = fs::remove_file(&path);
                    }
                    continue;
                }
                Err(fs::TryLockError::Error(e)) => return Err(io_error(&path)(e)),
            }
            // Held: its holder wrote it whole before naming it. Read through
            // our descriptor: the holder may be removing it right now.
            let mut bytes = Vec::new();
            (&file).read_to_end(&mut bytes).map_err(io_error(&path))?;
            let leased = serde_json::from_slice(&bytes)
                .map_err(|source| StoreError::Json { path, source })?;
            live.push(leased);
        }
        Ok(live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_lives_while_held_and_is_gone_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let leased = LeasedImage {
            image: Digest::of(b"config").to_string(),
            manifest: Digest::of(b"manifest"),
            pid: std::process::id(),
        };
        let lease = store.write_lease(&leased).unwrap();
        assert_eq!(store.leased_images(true).unwrap(), vec![leased]);
        drop(lease);
        assert!(store.leased_images(false).unwrap().is_empty());
        assert_eq!(fs::read_dir(store.leases_dir()).unwrap().count(), 0);
    }

    #[test]
    fn a_content_lease_lists_what_it_last_pinned_and_only_that() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let writers = store.lease().unwrap();
        let mut lease = store.content_lease(&writers, []).unwrap();
        let pinned = |store: &Store| -> Vec<Vec<Digest>> {
            store
                .pinned_content(false)
                .unwrap()
                .into_iter()
                .map(|p| p.manifests)
                .collect()
        };
        assert_eq!(pinned(&store), vec![Vec::<Digest>::new()]);
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        lease.pin(&store, &writers, [a.clone()]).unwrap();
        lease.pin(&store, &writers, [a.clone(), b.clone()]).unwrap();
        assert_eq!(pinned(&store), vec![vec![a, b]]);
        // Image leases and content leases share the directory, not a list.
        assert!(store.leased_images(false).unwrap().is_empty());
        drop(lease);
        assert!(pinned(&store).is_empty());
        assert_eq!(fs::read_dir(store.leases_dir()).unwrap().count(), 0);
    }

    #[test]
    fn a_dead_holders_lease_pins_nothing_and_is_swept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let leases = store.leases_dir();
        fs::create_dir_all(&leases).unwrap();
        // What a killed holder leaves: a named lease nobody locks, and a
        // temp file it never got to name.
        let dead = LeasedImage {
            image: Digest::of(b"config").to_string(),
            manifest: Digest::of(b"manifest"),
            pid: 1,
        };
        fs::write(
            leases.join("lease-dead"),
            serde_json::to_vec(&dead).unwrap(),
        )
        .unwrap();
        fs::write(leases.join(".lease-unnamed"), b"{").unwrap();
        assert!(store.leased_images(false).unwrap().is_empty());
        assert_eq!(fs::read_dir(&leases).unwrap().count(), 2);
        assert!(store.leased_images(true).unwrap().is_empty());
        assert_eq!(fs::read_dir(&leases).unwrap().count(), 0);
    }
}
