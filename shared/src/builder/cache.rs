//! The build cache: `cache/build/<key>` files under the store root, each
//! naming the manifest a step produced. The key is the parent image ID, the
//! expanded instruction and the hash of what it copies, so any Dockerfile in
//! any context that reaches the same step shares it.

use crate::digest::{Digest, HashingWriter};
use crate::store::{Store, StoreError, io_error};
use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

/// One step's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey(Digest);

impl CacheKey {
    /// Hashes the parts that make a step what it is. Parts are separated
    /// by a byte no instruction contains, so they cannot run together.
    pub fn new(parent: &str, instruction: &str, content: Option<&Digest>) -> CacheKey {
        let mut hasher = HashingWriter::new(io::sink());
        let content = content.map(|d| d.to_string()).unwrap_or_default();
        for part in ["berth-build-cache-v1", parent, instruction, &content] {
            let _ = hasher.write_all(part.as_bytes());
            let _ = hasher.write_all(&[0]);
        }
        CacheKey(hasher.finish().0)
    }

    /// The key in hex, as its file is named (and a shared cache names it).
    pub fn hex(&self) -> &str {
        self.0.hex()
    }

    /// A key as [`CacheKey::hex`] wrote it.
    pub fn from_hex(hex: &str) -> Option<CacheKey> {
        format!("sha256:{hex}").parse().ok().map(CacheKey)
    }
}

fn cache_dir(store: &Store) -> PathBuf {
    store.root().join("cache").join("build")
}

/// The manifest cached under `key`, if any. A missing or unreadable entry
/// is a miss, never an error: the cache only ever saves work.
pub fn lookup(store: &Store, key: &CacheKey) -> Option<Digest> {
    let text = fs::read_to_string(cache_dir(store).join(key.0.hex())).ok()?;
    text.trim().parse().ok()
}

/// Records that `key` produced `manifest`: written to a temp file and
/// renamed, so a reader sees the old entry or the new one, never half.
pub fn record(store: &Store, key: &CacheKey, manifest: &Digest) -> Result<(), StoreError> {
    let dir = cache_dir(store);
    fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    let mut tmp = store.temp_file(".cache-")?;
    writeln!(tmp, "{manifest}").map_err(io_error(tmp.path()))?;
    let target = dir.join(key.0.hex());
    tmp.persist(&target)
        .map_err(|e| io_error(&target)(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_every_part_and_entries_round_trip() {
        let a = CacheKey::new("p", "RUN x", None);
        assert_eq!(a, CacheKey::new("p", "RUN x", None));
        assert_ne!(a, CacheKey::new("q", "RUN x", None));
        assert_ne!(a, CacheKey::new("p", "RUN y", None));
        assert_ne!(a, CacheKey::new("p", "RUN x", Some(&Digest::of(b"c"))));
        assert_ne!(
            CacheKey::new("p", "ab", None),
            CacheKey::new("pa", "b", None)
        );
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(lookup(&store, &a), None);
        let manifest = Digest::of(b"manifest");
        record(&store, &a, &manifest).unwrap();
        assert_eq!(lookup(&store, &a), Some(manifest));
    }
}
