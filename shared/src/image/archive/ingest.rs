//! Taking a save tar in, entry by entry, as it streams: gzip or zstd
//! undone by magic bytes, each path checked to stay inside the archive,
//! each file hashed while it is written to a store temp file (small ones
//! kept in memory), a `blobs/sha256/<hex>` file verified against its name
//! there and then, and a compressed file's uncompressed digest (a layer's
//! diff ID) computed on a second thread as it passes. Nothing becomes a
//! blob of the store here: `load` persists what its images need, once
//! every one of them checked out.

use super::BLOBS_DIR;
use super::load::LoadError;
use crate::compression::{Compression, decompressed};
use crate::diff_id::{DiffIdError, DiffIdWriter};
use crate::digest::Digest;
use crate::store::{Store, StoreError, VerifiedBlob};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::mpsc;

/// Files up to this size stay in memory (configs, `json`, `VERSION`).
const SMALL: u64 = 256 * 1024;
/// At most this much is held in memory in all.
const SMALL_TOTAL: u64 = 64 * 1024 * 1024;
/// The largest JSON document (manifest, config, index) read.
pub(super) const JSON_MAX: u64 = 16 * 1024 * 1024;
/// Links followed in a row before giving up (a loop).
const LINK_HOPS: usize = 16;
const CHUNK: usize = 1 << 20;

/// One regular file of the archive, verified as far as its name allows.
pub(super) struct Content {
    pub digest: Digest,
    pub size: u64,
    pub compression: Compression,
    data: Data,
    /// The uncompressed digest, for a compressed file computed as it came.
    diff_id: Option<Result<Digest, DiffIdError>>,
}

enum Data {
    Small(Vec<u8>),
    Temp(VerifiedBlob),
}

impl Content {
    /// The bytes of a small document, refused past `JSON_MAX`.
    pub fn bytes(&self, path: &str) -> Result<Cow<'_, [u8]>, LoadError> {
        if self.size > JSON_MAX {
            return Err(LoadError::Invalid {
                what: path.to_string(),
                why: format!("{} bytes is too large for a JSON document", self.size),
            });
        }
        match &self.data {
            Data::Small(bytes) => Ok(Cow::Borrowed(bytes)),
            Data::Temp(blob) => Ok(Cow::Owned(blob.read()?)),
        }
    }

    /// The digest of the file once decompressed: a layer's diff ID.
    pub fn diff_id(&self) -> Result<Digest, DiffIdError> {
        if let Some(computed) = &self.diff_id {
            return computed.clone();
        }
        match (&self.data, self.compression) {
            (_, Compression::None) => Ok(self.digest.clone()),
            (Data::Small(bytes), _) => {
                let mut writer = DiffIdWriter::new();
                writer.push(bytes);
                writer.finish()
            }
            (Data::Temp(_), _) => unreachable!("computed while ingesting"),
        }
    }

    /// Makes this file a blob of the store, through the store's writer
    /// (verified once more against its digest and size), or by renaming
    /// its verified temp file.
    pub fn persist(self, store: &Store) -> Result<(), StoreError> {
        match self.data {
            Data::Temp(blob) => blob.persist().map(drop),
            Data::Small(bytes) => {
                if store.has_blob(&self.digest) {
                    return Ok(());
                }
                let mut writer = store.blob_writer()?;
                writer
                    .write_all(&bytes)
                    .map_err(crate::store::io_error(store.tmp_dir()))?;
                writer.commit(Some(&self.digest), Some(self.size)).map(drop)
            }
        }
    }
}

/// The archive's files by normalised path, and its links.
#[derive(Default)]
pub(super) struct Archive {
    files: HashMap<String, Content>,
    links: HashMap<String, String>,
}

impl Archive {
    pub fn has(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    /// The real path `path` leads to through the archive's links, and the
    /// file there; `by` names who asked, for the error.
    pub fn get(&self, path: &str, by: &str) -> Result<(String, &Content), LoadError> {
        let missing = || LoadError::Missing {
            path: path.to_string(),
            by: by.to_string(),
        };
        let mut at = normalise(path).map_err(|why| LoadError::Entry {
            path: path.to_string(),
            why: format!("{by} names {why}"),
        })?;
        for _ in 0..LINK_HOPS {
            if let Some(content) = self.files.get(&at) {
                return Ok((at, content));
            }
            at = self.links.get(&at).ok_or_else(missing)?.clone();
        }
        Err(missing())
    }

    /// Takes the file at the real `path` out, if still here.
    pub fn take(&mut self, path: &str) -> Option<Content> {
        self.files.remove(path)
    }
}

/// Reads the whole archive from `input` into `store`'s temp files.
pub(super) fn ingest(store: &Store, input: impl Read) -> Result<Archive, LoadError> {
    let mut buffered = BufReader::with_capacity(CHUNK, input);
    if buffered.fill_buf().map_err(LoadError::Read)?.is_empty() {
        return Err(LoadError::Empty);
    }
    let reader = decompressed(buffered).map_err(LoadError::Read)?;
    let mut tar = tar::Archive::new(reader);
    let mut archive = Archive::default();
    let mut small_total = 0u64;
    let mut entries = 0usize;
    for entry in tar.entries().map_err(LoadError::NotTar)? {
        let mut entry = entry.map_err(LoadError::NotTar)?;
        entries += 1;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let refuse = |why: &str| LoadError::Entry {
            path: raw.clone(),
            why: why.to_string(),
        };
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            continue;
        }
        let path = normalise(&raw).map_err(|why| refuse(&why))?;
        if archive.files.contains_key(&path) || archive.links.contains_key(&path) {
            return Err(refuse("it appears twice in the archive"));
        }
        match kind {
            tar::EntryType::Directory => {}
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.header().size().map_err(LoadError::NotTar)?;
                let content = if size <= SMALL {
                    small_total += size;
                    if small_total > SMALL_TOTAL {
                        return Err(refuse("too many small files: not an image archive"));
                    }
                    read_small(&mut entry, &path, size)?
                } else {
                    read_large(store, &mut entry, &path, size)?
                };
                archive.files.insert(path, content);
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                if path.starts_with(BLOBS_DIR) {
                    return Err(refuse("a blob must be a file, not a link"));
                }
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .ok_or_else(|| refuse("a link without a target"))?;
                let target = match kind {
                    // A hard link names a path of the archive.
                    tar::EntryType::Link => normalise(&target),
                    _ => resolve_symlink(&path, &target),
                }
                .map_err(|why| refuse(&format!("a link to {why}")))?;
                archive.links.insert(path, target);
            }
            other => return Err(refuse(&format!("a {other:?} entry, not a file"))),
        }
    }
    if entries == 0 {
        return Err(LoadError::Empty);
    }
    Ok(archive)
}

/// A path inside the archive without `.`, empty parts or a leading `./`;
/// absolute paths and any `..` are refused.
pub(super) fn normalise(raw: &str) -> Result<String, String> {
    if raw.starts_with('/') {
        return Err("an absolute path".to_string());
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("a path that leaves the archive".to_string()),
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err("an empty path".to_string());
    }
    Ok(parts.join("/"))
}

/// Where a symlink at `path` pointing to `target` leads, inside the
/// archive (Docker's 1.x format and skopeo link `<id>/layer.tar` to the
/// layer's one copy); a target outside it is refused.
fn resolve_symlink(path: &str, target: &str) -> Result<String, String> {
    if target.starts_with('/') {
        return Err("an absolute path".to_string());
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts
                    .pop()
                    .ok_or_else(|| "a path that leaves the archive".to_string())?;
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err("an empty path".to_string());
    }
    Ok(parts.join("/"))
}

/// The digest a `blobs/sha256/<hex>` path promises.
fn named_digest(path: &str) -> Result<Option<Digest>, LoadError> {
    let Some(hex) = path.strip_prefix(BLOBS_DIR) else {
        return Ok(None);
    };
    if !Digest::is_hex64(hex) {
        return Err(LoadError::Entry {
            path: path.to_string(),
            why: "a blob whose name is not a sha256 digest".to_string(),
        });
    }
    Ok(Some(
        format!("sha256:{hex}").parse().expect("64 hex digits"),
    ))
}

fn truncated(path: &str, size: u64, got: u64) -> LoadError {
    LoadError::Truncated {
        path: path.to_string(),
        size,
        got,
    }
}

fn read_small(entry: &mut impl Read, path: &str, size: u64) -> Result<Content, LoadError> {
    let mut bytes = Vec::with_capacity(size as usize);
    entry
        .take(size)
        .read_to_end(&mut bytes)
        .map_err(LoadError::Read)?;
    if bytes.len() as u64 != size {
        return Err(truncated(path, size, bytes.len() as u64));
    }
    let digest = Digest::of(&bytes);
    if let Some(named) = named_digest(path)?
        && named != digest
    {
        return Err(LoadError::Blob {
            path: path.to_string(),
            source: StoreError::DigestMismatch {
                expected: named,
                actual: digest,
            },
        });
    }
    Ok(Content {
        digest,
        size,
        compression: Compression::detect(&bytes),
        data: Data::Small(bytes),
        diff_id: None,
    })
}

/// Streams a large file into a store temp file, hashing it, and a
/// compressed one through a diff ID thread beside.
fn read_large(
    store: &Store,
    entry: &mut impl Read,
    path: &str,
    size: u64,
) -> Result<Content, LoadError> {
    let expected = named_digest(path)?;
    let blob_error = |source| LoadError::Blob {
        path: path.to_string(),
        source,
    };
    let mut writer = store.blob_writer()?;
    let mut buf = vec![0u8; CHUNK];
    let mut compression = None;
    let mut diff: Option<DiffThread> = None;
    let mut got = 0u64;
    loop {
        let n = crate::compression::read_full(entry, &mut buf).map_err(LoadError::Read)?;
        if n == 0 {
            break;
        }
        got += n as u64;
        let chunk = &buf[..n];
        if compression.is_none() {
            let kind = Compression::detect(chunk);
            compression = Some(kind);
            if kind != Compression::None {
                diff = Some(DiffThread::spawn());
            }
        }
        if let Some(diff) = &diff {
            diff.send(chunk);
        }
        writer
            .write_all(chunk)
            .map_err(|e| blob_error(crate::store::io_error(store.tmp_dir())(e)))?;
    }
    if got != size {
        return Err(truncated(path, size, got));
    }
    let blob = writer
        .verify(expected.as_ref(), Some(size))
        .map_err(blob_error)?;
    Ok(Content {
        digest: blob.digest().clone(),
        size,
        compression: compression.unwrap_or(Compression::None),
        data: Data::Temp(blob),
        diff_id: diff.map(DiffThread::finish),
    })
}

/// Decompresses, walks and hashes a layer on its own thread while the
/// main one writes it to the store: the two cores share the work.
struct DiffThread {
    chunks: mpsc::SyncSender<Vec<u8>>,
    thread: std::thread::JoinHandle<Result<Digest, DiffIdError>>,
}

impl DiffThread {
    fn spawn() -> DiffThread {
        let (chunks, receive) = mpsc::sync_channel::<Vec<u8>>(4);
        let thread = std::thread::spawn(move || {
            let mut writer = DiffIdWriter::new();
            for chunk in receive {
                writer.push(&chunk);
            }
            writer.finish()
        });
        DiffThread { chunks, thread }
    }

    fn send(&self, chunk: &[u8]) {
        // The thread only ends once we hang up; a send cannot fail before.
        let _ = self.chunks.send(chunk.to_vec());
    }

    fn finish(self) -> Result<Digest, DiffIdError> {
        drop(self.chunks);
        self.thread
            .join()
            .expect("the diff ID thread does not panic")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_archive() {
        assert_eq!(normalise("./blobs//sha256/x").unwrap(), "blobs/sha256/x");
        assert!(normalise("../etc/passwd").is_err());
        assert!(normalise("blobs/../../x").is_err());
        assert!(normalise("/etc/passwd").is_err());
        assert!(normalise("./").is_err());
        assert_eq!(resolve_symlink("a/layer.tar", "../b.tar").unwrap(), "b.tar");
        assert!(resolve_symlink("a/layer.tar", "../../etc/shadow").is_err());
        assert!(resolve_symlink("layer.tar", "/etc/shadow").is_err());
    }
}
