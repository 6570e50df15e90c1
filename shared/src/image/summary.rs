//! What a listing needs of each image (ID, creation time, size, labels),
//! derived once from its immutable blobs and kept in
//! `cache/image-summaries.json`, keyed by manifest digest. A warm `img-ls`
//! then reads two files however many images the store holds.

use super::layer_size;
use crate::digest::Digest;
use crate::store::{ImageEntry, Store, StoreError, descriptor_digest};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::SystemTime;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub id: Digest,
    pub created: Option<String>,
    pub size: u64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Summary {
    pub fn created_time(&self) -> Option<SystemTime> {
        self.created
            .as_deref()
            .and_then(crate::format::human::parse_rfc3339)
    }
}

/// The summary cache. Entries never go stale (they are keyed by content
/// digest), so the only upkeep is dropping those of removed images.
pub struct Summaries {
    path: PathBuf,
    by_manifest: HashMap<String, Summary>,
    layer_sizes: HashMap<Digest, u64>,
    dirty: bool,
}

impl Summaries {
    /// Loads the cache; a missing or unreadable one starts empty.
    pub fn load(store: &Store) -> Summaries {
        let path = store.root().join("cache").join("image-summaries.json");
        let by_manifest = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Summaries {
            path,
            by_manifest,
            layer_sizes: HashMap::new(),
            dirty: false,
        }
    }

    /// The summary of `entry`'s image, computing it on a miss. `None` when
    /// the manifest blob is absent.
    pub fn get(
        &mut self,
        store: &Store,
        entry: &ImageEntry,
    ) -> Result<Option<Summary>, StoreError> {
        let key = entry.manifest_digest.hex().to_string();
        if let Some(summary) = self.by_manifest.get(&key) {
            return Ok(Some(summary.clone()));
        }
        let manifest = match store.read_manifest(&entry.manifest_digest) {
            Err(StoreError::MissingBlob(_)) => return Ok(None),
            other => other?,
        };
        let id = descriptor_digest(manifest.config());
        let config: serde_json::Value =
            serde_json::from_slice(&store.read_blob(&id)?).map_err(|source| StoreError::Json {
                path: store.blob_path(&id),
                source,
            })?;
        let mut size = 0;
        for layer in manifest.layers() {
            let digest = descriptor_digest(layer);
            size += match self.layer_sizes.get(&digest) {
                Some(&known) => known,
                None => {
                    let computed = layer_size(store, &digest)?;
                    self.layer_sizes.insert(digest, computed);
                    computed
                }
            };
        }
        let labels = config["config"]["Labels"]
            .as_object()
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let summary = Summary {
            id,
            created: config["created"].as_str().map(str::to_string),
            size,
            labels,
        };
        self.by_manifest.insert(key, summary.clone());
        self.dirty = true;
        Ok(Some(summary))
    }

    /// Writes the cache back (atomically) if it changed, keeping only the
    /// images in `entries`. The cache is derived data: a failed write only
    /// costs a recomputation next time.
    pub fn save(mut self, entries: &[ImageEntry]) {
        // Nothing computed and no more entries than images (every image's
        // was found in it): the cache is what it was, and the common warm
        // listing is spared hashing every digest again.
        if !self.dirty && self.by_manifest.len() <= entries.len() {
            return;
        }
        let live: HashSet<&str> = entries.iter().map(|e| e.manifest_digest.hex()).collect();
        let before = self.by_manifest.len();
        self.by_manifest.retain(|k, _| live.contains(k.as_str()));
        if !self.dirty && self.by_manifest.len() == before {
            return;
        }
        let Some(dir) = self.path.parent() else {
            return;
        };
        let _ = std::fs::create_dir_all(dir).and_then(|_| {
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            serde_json::to_writer(&mut tmp, &self.by_manifest)?;
            tmp.persist(&self.path).map(|_| ()).map_err(|e| e.error)
        });
    }
}
