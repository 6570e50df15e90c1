//! `images/index.json`: the layout's list of tagged manifests. Every change
//! is a read-modify-write under an exclusive lock, finished by an atomic
//! rename, so parallel tools (`make -j`) never lose each other's tags.

use super::{Store, StoreError, io_error, sync_dir};
use crate::reference::Reference;
use oci_spec::image::{Descriptor, ImageIndex};
use std::fs::{self, File, OpenOptions};
use std::io::Write;

/// The OCI annotation that names a tag in an image layout. berth writes the
/// fully qualified reference (`docker.io/library/busybox:latest`).
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// `index.json` held under the store's exclusive lock until dropped or saved.
pub struct IndexGuard {
    store: Store,
    _lock: File,
    pub index: ImageIndex,
}

impl Store {
    /// Reads `index.json` as it is now (no lock: renames make it atomic).
    pub fn read_index(&self) -> Result<ImageIndex, StoreError> {
        let path = self.index_path();
        let bytes = fs::read(&path).map_err(io_error(&path))?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json { path, source })
    }

    /// Takes the exclusive index lock (waiting for other writers) and reads
    /// the index under it.
    pub fn lock_index(&self) -> Result<IndexGuard, StoreError> {
        let path = self.locks_dir().join("index.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
        lock.lock().map_err(io_error(&path))?;
        let index = self.read_index()?;
        Ok(IndexGuard {
            store: self.clone(),
            _lock: lock,
            index,
        })
    }

    /// Points `reference` at `descriptor`, replacing any previous target.
    pub fn tag(&self, reference: &Reference, descriptor: Descriptor) -> Result<(), StoreError> {
        let mut guard = self.lock_index()?;
        guard.set_tag(reference, descriptor);
        guard.save()
    }

    /// The descriptor `reference` names in the index, if any.
    pub fn lookup_tag(&self, reference: &Reference) -> Result<Option<Descriptor>, StoreError> {
        Ok(find_tag(&self.read_index()?, reference).cloned())
    }
}

/// The reference a descriptor's ref-name annotation carries, normalised the
/// way Docker would read it. Other tools may write short names ("busybox").
pub fn tag_of(descriptor: &Descriptor) -> Option<Reference> {
    let name = descriptor
        .annotations()
        .as_ref()?
        .get(REF_NAME_ANNOTATION)?;
    Reference::parse(name).ok()
}

fn find_tag<'a>(index: &'a ImageIndex, reference: &Reference) -> Option<&'a Descriptor> {
    index
        .manifests()
        .iter()
        .find(|d| tag_of(d).as_ref() == Some(reference))
}

impl IndexGuard {
    /// Points `reference` at `descriptor` in the held index.
    pub fn set_tag(&mut self, reference: &Reference, mut descriptor: Descriptor) {
        self.remove_tag(reference);
        let mut annotations = descriptor.annotations().clone().unwrap_or_default();
        annotations.insert(REF_NAME_ANNOTATION.to_string(), reference.to_string());
        descriptor.set_annotations(Some(annotations));
        let mut manifests = self.index.manifests().clone();
        manifests.push(descriptor);
        self.index.set_manifests(manifests);
    }

    /// Removes `reference` from the held index, returning what it named.
    pub fn remove_tag(&mut self, reference: &Reference) -> Option<Descriptor> {
        let mut manifests = self.index.manifests().clone();
        let position = manifests
            .iter()
            .position(|d| tag_of(d).as_ref() == Some(reference))?;
        let removed = manifests.remove(position);
        self.index.set_manifests(manifests);
        Some(removed)
    }

    /// The descriptor `reference` names in the held index.
    pub fn lookup_tag(&self, reference: &Reference) -> Option<&Descriptor> {
        find_tag(&self.index, reference)
    }

    /// Writes the index atomically (temp file, fsync, rename) and releases
    /// the lock.
    pub fn save(self) -> Result<(), StoreError> {
        let tmp_dir = self.store.tmp_dir();
        let mut tmp = tempfile::Builder::new()
            .prefix(".index-")
            .tempfile_in(&tmp_dir)
            .map_err(io_error(&tmp_dir))?;
        let bytes = serde_json::to_vec(&self.index).expect("an ImageIndex always serialises");
        tmp.write_all(&bytes).map_err(io_error(tmp.path()))?;
        tmp.as_file().sync_all().map_err(io_error(tmp.path()))?;
        let target = self.store.index_path();
        tmp.persist(&target)
            .map_err(|e| io_error(&target)(e.error))?;
        sync_dir(&self.store.images_dir())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use oci_spec::image::MediaType;
    use std::str::FromStr;

    fn descriptor(bytes: &[u8]) -> Descriptor {
        let digest = oci_spec::image::Digest::from_str(&Digest::of(bytes).to_string()).unwrap();
        Descriptor::new(MediaType::ImageManifest, bytes.len() as u64, digest)
    }

    #[test]
    fn retagging_replaces_the_old_target() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let name = Reference::parse("app:1").unwrap();
        store.tag(&name, descriptor(b"one")).unwrap();
        store.tag(&name, descriptor(b"two")).unwrap();
        let index = store.read_index().unwrap();
        assert_eq!(index.manifests().len(), 1);
        assert_eq!(
            store
                .lookup_tag(&name)
                .unwrap()
                .unwrap()
                .digest()
                .to_string(),
            Digest::of(b"two").to_string()
        );
        let annotation = &index.manifests()[0].annotations().as_ref().unwrap()[REF_NAME_ANNOTATION];
        assert_eq!(annotation, "docker.io/library/app:1");
    }

    #[test]
    fn short_names_written_by_other_tools_are_normalised() {
        let mut d = descriptor(b"x");
        d.set_annotations(Some(
            [(REF_NAME_ANNOTATION.to_string(), "busybox".to_string())].into(),
        ));
        assert_eq!(
            tag_of(&d).unwrap().to_string(),
            "docker.io/library/busybox:latest"
        );
    }
}
