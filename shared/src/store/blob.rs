//! Content-addressed blobs: written to a temp file while being hashed, checked
//! against the expected digest, fsynced, and only then renamed into
//! `blobs/sha256/`. Readers never see a partial or unverified blob.

use super::{Store, StoreError, io_error, sync_dir};
use crate::digest::{Digest, HashingWriter};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};

/// An in-progress blob. Dropping it without [`BlobWriter::commit`] discards
/// the temp file; a process killed mid-write leaves only a file in `tmp/`.
pub struct BlobWriter {
    store: Store,
    file: HashingWriter<BufWriter<tempfile::NamedTempFile>>,
}

impl BlobWriter {
    /// Verifies what was written against `expected` (digest and, if given,
    /// size) and moves it into place. Returns the digest and size.
    pub fn commit(
        self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64), StoreError> {
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
        let tmp = buffered
            .into_inner()
            .map_err(|e| io_error(self.store.tmp_dir())(e.into_error()))?;
        let target = self.store.blob_path(&actual);
        if target.exists() {
            // Same digest, same bytes: the existing blob already serves.
            return Ok((actual, size));
        }
        tmp.as_file().sync_all().map_err(io_error(tmp.path()))?;
        tmp.persist(&target)
            .map_err(|e| io_error(&target)(e.error))?;
        sync_dir(&self.store.blobs_dir())?;
        Ok((actual, size))
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

impl Store {
    /// Starts writing a new blob.
    pub fn blob_writer(&self) -> Result<BlobWriter, StoreError> {
        let tmp = tempfile::Builder::new()
            .prefix(".blob-")
            .tempfile_in(self.tmp_dir())
            .map_err(io_error(self.tmp_dir()))?;
        Ok(BlobWriter {
            store: self.clone(),
            file: HashingWriter::new(BufWriter::with_capacity(256 * 1024, tmp)),
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
