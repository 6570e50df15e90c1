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
/// When berth last pointed a tag at this entry (Docker's `LastTagTime`).
pub const TAGGED_AT_ANNOTATION: &str = "io.berth.tagged-at";

/// `index.json` held under the store's exclusive lock until dropped or saved.
pub struct IndexGuard {
    store: Store,
    _lock: File,
    /// The index as read, its `manifests` moved into `manifests` for editing.
    index: ImageIndex,
    manifests: Vec<Descriptor>,
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
        let mut index = self.read_index()?;
        let manifests = index.manifests().clone();
        index.set_manifests(Vec::new());
        Ok(IndexGuard {
            store: self.clone(),
            _lock: lock,
            index,
            manifests,
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
    /// Points `reference` at `descriptor` in the held index. An image the
    /// tag used to name stays in the store, untagged (Docker's dangling
    /// `<none>` image), until it is pruned.
    pub fn set_tag(&mut self, reference: &Reference, mut descriptor: Descriptor) {
        let previous = self.remove_tag(reference);
        let digest = descriptor.digest().clone();
        let mut annotations = descriptor.annotations().clone().unwrap_or_default();
        annotations.insert(REF_NAME_ANNOTATION.to_string(), reference.to_string());
        annotations.insert(
            TAGGED_AT_ANNOTATION.to_string(),
            crate::format::human::format_rfc3339(std::time::SystemTime::now()),
        );
        descriptor.set_annotations(Some(annotations));
        // A tagged entry supersedes any untagged one for the same content.
        self.manifests
            .retain(|d| d.digest() != &digest || tag_of(d).is_some());
        self.manifests.push(descriptor);
        if let Some(previous) = previous
            && previous.digest() != &digest
        {
            self.add_untagged(previous);
        }
    }

    /// Removes `reference` from the held index, returning what it named.
    pub fn remove_tag(&mut self, reference: &Reference) -> Option<Descriptor> {
        let position = self
            .manifests
            .iter()
            .position(|d| tag_of(d).as_ref() == Some(reference))?;
        Some(self.manifests.remove(position))
    }

    /// Keeps `descriptor`'s content in the store without a name, unless
    /// some entry already keeps it.
    pub fn add_untagged(&mut self, mut descriptor: Descriptor) {
        if self
            .manifests
            .iter()
            .any(|d| d.digest() == descriptor.digest())
        {
            return;
        }
        descriptor.set_annotations(None);
        self.manifests.push(descriptor);
    }

    /// Removes every entry, tagged or not, for the manifest or index with
    /// `digest`; returns the tags that named it.
    pub fn remove_digest(&mut self, digest: &crate::Digest) -> Vec<Reference> {
        let mut removed_tags = Vec::new();
        self.manifests.retain(|d| {
            let matches = d.digest().to_string() == digest.to_string();
            if matches {
                removed_tags.extend(tag_of(d));
            }
            !matches
        });
        removed_tags
    }

    /// The descriptor `reference` names in the held index.
    pub fn lookup_tag(&self, reference: &Reference) -> Option<&Descriptor> {
        self.manifests
            .iter()
            .find(|d| tag_of(d).as_ref() == Some(reference))
    }

    /// The entries of the held index.
    pub fn manifests(&self) -> &[Descriptor] {
        &self.manifests
    }

    /// Writes the index atomically (temp file, fsync, rename) and releases
    /// the lock.
    pub fn save(mut self) -> Result<(), StoreError> {
        self.index
            .set_manifests(std::mem::take(&mut self.manifests));
        let mut tmp = self.store.temp_file(".index-")?;
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
        // The old target stays, untagged, as Docker leaves a dangling image.
        assert_eq!(index.manifests().len(), 2);
        let untagged: Vec<_> = index
            .manifests()
            .iter()
            .filter(|d| tag_of(d).is_none())
            .collect();
        assert_eq!(
            untagged[0].digest().to_string(),
            Digest::of(b"one").to_string()
        );
        assert_eq!(
            store
                .lookup_tag(&name)
                .unwrap()
                .unwrap()
                .digest()
                .to_string(),
            Digest::of(b"two").to_string()
        );
        let tagged = index
            .manifests()
            .iter()
            .find(|d| tag_of(d).is_some())
            .unwrap();
        let annotation = &tagged.annotations().as_ref().unwrap()[REF_NAME_ANNOTATION];
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
