//! Content-addressed blobs: written to a temp file while being hashed, checked
//! against the expected digest, fsynced, and only then renamed into
//! `blobs/sha256/`. Readers never see a partial or unverified blob. Each
//! temp file is flocked by its writer for its whole life, so the temp files
//! of killed writers (unlocked) can be told from live ones and swept.

use super::blob_file::BlobFile;
use super::{Store, StoreError, io_error, sync_dir};
use crate::digest::{Digest, HashingWriter};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

/// An in-progress blob. Dropping it without [`BlobWriter::commit`] discards
/// the temp file; a process killed mid-write leaves only a file in `tmp/`.
pub struct BlobWriter {
    store: Store,
    /// Keeps the collector away until this blob is committed or dropped.
    _lease: super::Lease,
    file: HashingWriter<BlobFile>,
}

impl BlobWriter {
    /// Verifies what was written against `expected` (digest and, if given,
    /// size) and moves it into place. Returns the digest and size.
    pub fn commit(
        self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64), StoreError> {
        self.verify(expected, expected_size)?.persist()
    }

    /// Verifies what was written without making it visible yet, so a caller
    /// fetching several blobs can keep all of them out of the store until
    /// every one has checked out (an image is stored whole or not at all).
    pub fn verify(
        self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<VerifiedBlob, StoreError> {
        let (actual, size, buffered) = self.file.finish();
        if let Some(expected) = expected
            && *expected != actual
        {
            return Err(StoreError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        if let Some(expected_size) = expected_size
            && expected_size != size
        {
            return Err(StoreError::SizeMismatch {
                digest: actual,
                expected: expected_size,
                actual: size,
            });
        }
        let tmp = buffered.finish().map_err(io_error(self.store.tmp_dir()))?;
        Ok(VerifiedBlob {
            store: self.store,
            _lease: self._lease,
            tmp,
            digest: actual,
            size,
            synced: false,
        })
    }
}

/// A blob whose content matched its digest, still in `tmp/`. Dropping it
/// discards it.
pub struct VerifiedBlob {
    store: Store,
    /// Held until persisted: the collector leaves tmp/ alone meanwhile.
    _lease: super::Lease,
    tmp: tempfile::NamedTempFile,
    digest: Digest,
    size: u64,
    /// Its bytes are on disk already ([`VerifiedBlob::sync`]).
    synced: bool,
}

impl VerifiedBlob {
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The verified bytes, for a small blob (a config) that must be read
    /// before it may be stored.
    pub fn read(&self) -> Result<Vec<u8>, StoreError> {
        std::fs::read(self.tmp.path()).map_err(io_error(self.tmp.path()))
    }

    /// fsyncs the blob now, so that persisting it later does not: a pull
    /// does this on each blob's own task, overlapping the other downloads.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        if !self.synced {
            self.tmp
                .as_file()
                .sync_all()
                .map_err(io_error(self.tmp.path()))?;
            self.synced = true;
        }
        Ok(())
    }

    /// fsyncs the blob and renames it into `blobs/sha256/`.
    pub fn persist(self) -> Result<(Digest, u64), StoreError> {
        let store = self.store.clone();
        let persisted = self.rename()?;
        if persisted.1 {
            sync_dir(&store.blobs_dir())?;
        }
        Ok(persisted.0)
    }

    /// Persists every blob, with one fsync of `blobs/sha256/` for all
    /// their names rather than one per blob.
    pub fn persist_all(blobs: Vec<VerifiedBlob>) -> Result<Vec<(Digest, u64)>, StoreError> {
        let Some(store) = blobs.first().map(|b| b.store.clone()) else {
            return Ok(Vec::new());
        };
        let mut persisted = Vec::with_capacity(blobs.len());
        let mut renamed = false;
        for blob in blobs {
            let (done, moved) = blob.rename()?;
            renamed |= moved;
            persisted.push(done);
        }
        if renamed {
            sync_dir(&store.blobs_dir())?;
        }
        Ok(persisted)
    }

    /// Syncs the file (unless done) and renames it to its digest's path;
    /// says whether it was renamed (a blob already there serves as it is).
    fn rename(mut self) -> Result<((Digest, u64), bool), StoreError> {
        let target = self.store.blob_path(&self.digest);
        if target.exists() {
            // Same digest, same bytes: the existing blob already serves.
            return Ok(((self.digest, self.size), false));
        }
        self.sync()?;
        let VerifiedBlob {
            tmp, digest, size, ..
        } = self;
        tmp.persist(&target)
            .map_err(|e| io_error(&target)(e.error))?;
        Ok(((digest, size), true))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// What every blob temp file in `tmp/` is named after.
const TEMP_PREFIX: &str = ".blob-";

/// What a sweep of `tmp/` removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweptTemp {
    pub files: usize,
    pub bytes: u64,
}

impl Store {
    pub(super) fn temp_lock(&self, exclusive: bool) -> Result<File, StoreError> {
        let path = self.locks_dir().join("tmp.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
        if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        }
        .map_err(io_error(&path))?;
        Ok(file)
    }

    /// Removes the temp files no live writer owns: those of killed or
    /// crashed pulls, builds and index updates. A writer holds an flock on
    /// its temp file until it is renamed or dropped, so a file we can lock
    /// has no owner.
    pub fn sweep_temp_files(&self) -> Result<SweptTemp, StoreError> {
        let mut swept = SweptTemp::default();
        for (path, size, _lock) in self.dead_temp_files()? {
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    swept.files += 1;
                    swept.bytes += size;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path)(e)),
            }
        }
        Ok(swept)
    }

    /// The temp files in `tmp/` whose writer died, with their sizes and the
    /// locks we now hold on them (so no one can take them until dropped).
    pub fn dead_temp_files(&self) -> Result<Vec<(PathBuf, u64, File)>, StoreError> {
        let _no_new_files = self.temp_lock(true)?;
        let dir = self.tmp_dir();
        let mut dead = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_error(&dir))?.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue; // scratch directories have their own sweep
            }
            let path = entry.path();
            // Gone already (its writer finished), or not ours to open.
            let Ok(file) = File::open(&path) else {
                continue;
            };
            if file.try_lock().is_err() {
                continue; // a live writer's
            }
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            dead.push((path, size, file));
        }
        Ok(dead)
    }

    /// A new temp file `tmp/<prefix>XXXXXX`, flocked by us until it is
    /// persisted or dropped, so a sweep never takes it for a dead one.
    pub fn temp_file(&self, prefix: &str) -> Result<tempfile::NamedTempFile, StoreError> {
        // Shared with other writers, exclusive for a sweep: no sweep sees
        // this file between its creation and its lock.
        let _creating = self.temp_lock(false)?;
        let tmp = tempfile::Builder::new()
            .prefix(prefix)
            .tempfile_in(self.tmp_dir())
            .map_err(io_error(self.tmp_dir()))?;
        tmp.as_file().lock().map_err(io_error(tmp.path()))?;
        Ok(tmp)
    }

    /// Starts writing a new blob.
    pub fn blob_writer(&self) -> Result<BlobWriter, StoreError> {
        self.new_blob_writer(false)
    }

    /// Starts writing a blob that arrives from elsewhere and is not read
    /// back at once (a pull's): its bytes go to the disk around the page
    /// cache where the filesystem allows (see `blob_file`).
    pub fn incoming_blob_writer(&self) -> Result<BlobWriter, StoreError> {
        self.new_blob_writer(true)
    }

    fn new_blob_writer(&self, direct: bool) -> Result<BlobWriter, StoreError> {
        // Lease first: the collector clears tmp/ when no lease is held.
        let lease = self.lease()?;
        let tmp = self.temp_file(TEMP_PREFIX)?;
        Ok(BlobWriter {
            _lease: lease,
            store: self.clone(),
            file: HashingWriter::new(BlobFile::new(tmp, direct)),
        })
    }

    /// Streams `reader` into the store as one blob, verified against
    /// `expected` when given.
    pub fn put_blob_from(
        &self,
        reader: &mut impl Read,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64), StoreError> {
        let mut writer = self.blob_writer()?;
        io::copy(reader, &mut writer).map_err(io_error(self.tmp_dir()))?;
        writer.commit(expected, expected_size)
    }

    /// Stores `bytes` as a blob exactly as given and returns its digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        if self.has_blob(&digest) {
            return Ok(digest);
        }
        let mut writer = self.blob_writer()?;
        writer.write_all(bytes).map_err(io_error(self.tmp_dir()))?;
        Ok(writer.commit(Some(&digest), None)?.0)
    }

    /// Opens a blob for streaming reads.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::MissingBlob(digest.clone()),
            _ => io_error(&path)(e),
        })
    }

    /// Reads a small blob (manifest, config, index) whole and checks it
    /// still hashes to its name, so a tampered store is caught on read.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let mut bytes = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut bytes)
            .map_err(io_error(self.blob_path(digest)))?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_blob_lands_under_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = store.put_blob(b"layer bytes").unwrap();
        assert_eq!(store.read_blob(&digest).unwrap(), b"layer bytes");
        assert!(store.blob_path(&digest).ends_with(digest.hex()));
    }

    #[test]
    fn mismatched_blob_is_refused_and_nothing_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let claimed = Digest::of(b"what the registry promised");
        let err = store
            .put_blob_from(&mut &b"what it sent"[..], Some(&claimed), None)
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&claimed.to_string()), "{message}");
        assert!(
            message.contains(&Digest::of(b"what it sent").to_string()),
            "{message}"
        );
        assert_eq!(std::fs::read_dir(store.blobs_dir()).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn tampered_blob_is_caught_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = store.put_blob(b"{}").unwrap();
        std::fs::write(store.blob_path(&digest), b"{\"x\":1}").unwrap();
        assert!(matches!(
            store.read_blob(&digest),
            Err(StoreError::DigestMismatch { .. })
        ));
    }

    #[test]
    fn a_sweep_removes_dead_temp_files_and_spares_live_writers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut live = store.blob_writer().unwrap();
        live.write_all(b"in progress").unwrap();
        std::fs::write(store.tmp_dir().join(".blob-dead"), b"killed").unwrap();
        let swept = store.sweep_temp_files().unwrap();
        assert_eq!(swept, SweptTemp { files: 1, bytes: 6 });
        let (digest, _) = live.commit(None, None).unwrap();
        assert_eq!(store.read_blob(&digest).unwrap(), b"in progress");
    }

    #[test]
    fn size_mismatch_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let err = store
            .put_blob_from(&mut &b"abc"[..], None, Some(4))
            .unwrap_err();
        assert!(matches!(
            err,
            StoreError::SizeMismatch {
                expected: 4,
                actual: 3,
                ..
            }
        ));
    }
}
