//! Images as Docker presents them: config, creation time, unpacked size,
//! and which containers use them. Listing, inspecting, history, removing,
//! saving and loading build on this; the store only knows manifests and tags.

mod archive;
mod history;
mod inspect;
mod list;
mod remove;
mod summary;

pub use archive::{LoadError, Loaded, SaveError, load, save, save_to_file};
pub use history::{HistoryRow, HistoryStyle, history};
pub use inspect::inspect;
pub use list::{ListOptions, Row, list};
pub use remove::{PruneFilter, PruneOptions, Removal, RemoveError, prune, remove};
pub use summary::{Summaries, Summary};

use crate::compression::decompressed;
use crate::digest::Digest;
use crate::store::{Image, Store, StoreError, descriptor_digest};
use std::fs;
use std::io::{BufReader, Read};
use std::path::PathBuf;

/// An image with its config read and its size known.
#[derive(Debug, Clone)]
pub struct ImageView {
    pub image: Image,
    /// The config blob as stored: absent fields stay absent.
    pub config: serde_json::Value,
    /// Bytes of file content once unpacked (Docker's `Size`).
    pub size: u64,
}

impl ImageView {
    pub fn load(store: &Store, image: Image) -> Result<ImageView, StoreError> {
        let config_digest = image.id();
        let bytes = store.read_blob(&config_digest)?;
        let config: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
                path: store.blob_path(&config_digest),
                source,
            })?;
        let mut size = 0;
        for layer in image.manifest.layers() {
            size += layer_size(store, &descriptor_digest(layer))?;
        }
        Ok(ImageView {
            image,
            config,
            size,
        })
    }
}

/// The unpacked size of one layer: the sum of its regular files, computed
/// once by streaming the blob, then kept in `cache/layer-sizes/`.
pub fn layer_size(store: &Store, digest: &Digest) -> Result<u64, StoreError> {
    let cache_dir = store.root().join("cache").join("layer-sizes");
    let cached = cache_dir.join(digest.hex());
    if let Some(size) = fs::read_to_string(&cached)
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        return Ok(size);
    }
    let io = |path: PathBuf| move |source| StoreError::Io { path, source };
    let blob = BufReader::new(store.open_blob(digest)?);
    let path = store.blob_path(digest);
    let mut archive = tar::Archive::new(decompressed(blob).map_err(io(path.clone()))?);
    let mut size = 0u64;
    for entry in archive.entries().map_err(io(path.clone()))? {
        let entry = entry.map_err(io(path.clone()))?;
        if entry.header().entry_type().is_file() {
            size += entry.size();
        }
    }
    // The cache is derived data: if writing it fails, we recompute next time.
    let _ = fs::create_dir_all(&cache_dir).and_then(|_| {
        let mut tmp = tempfile::NamedTempFile::new_in(&cache_dir)?;
        std::io::Write::write_all(&mut tmp, size.to_string().as_bytes())?;
        tmp.persist(&cached).map(|_| ()).map_err(|e| e.error)
    });
    Ok(size)
}

/// A container that uses an image, as its record says, or one being
/// created from it under a lease.
#[derive(Debug, Clone)]
pub struct ImageUser {
    /// Empty while the container is being created.
    pub container_id: String,
    pub image_id: String,
    pub running: bool,
    /// The PID of the process creating a container from the image, which
    /// holds a lease on it until the container's record exists.
    pub creator: Option<u32>,
}

impl std::fmt::Display for ImageUser {
    /// The user as a conflict message names it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.creator {
            Some(pid) => write!(f, "a container being created (by process {pid})"),
            None => {
                let state = if self.running { "running" } else { "stopped" };
                let id = &self.container_id;
                write!(f, "{state} container {}", &id[..id.len().min(12)])
            }
        }
    }
}

/// Every container record's image, read from `containers/*/container.json`,
/// and every image leased for a container being created.
pub fn image_users(store: &Store) -> Result<Vec<ImageUser>, StoreError> {
    let dir = store.root().join("containers");
    let mut users: Vec<ImageUser> = store
        .leased_images(false)?
        .into_iter()
        .map(|leased| ImageUser {
            container_id: String::new(),
            image_id: leased.image,
            running: false,
            creator: Some(leased.pid),
        })
        .collect();
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(users),
        Err(source) => return Err(StoreError::Io { path: dir, source }),
    };
    for entry in entries.flatten() {
        let path = entry.path().join("container.json");
        let mut text = String::new();
        if fs::File::open(&path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .is_err()
        {
            continue; // a container being created or removed right now
        }
        let Ok(record) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        users.push(ImageUser {
            container_id: record["Id"].as_str().unwrap_or_default().to_string(),
            image_id: record["Image"].as_str().unwrap_or_default().to_string(),
            running: record["State"]["Running"].as_bool().unwrap_or(false),
            creator: None,
        });
    }
    Ok(users)
}
