//! The on-disk store: `images/` is a plain OCI image layout that skopeo,
//! umoci and podman read; `layers/`, `containers/` and `tmp/` sit beside it.
//! Every write that matters goes temp file → verify → fsync → rename.

mod blob;
mod blob_file;
mod gc;
mod image;
mod index;
mod lease;
mod runtime_dir;
mod scratch;

pub use blob::{BlobWriter, SweptTemp, VerifiedBlob};
pub use gc::{Lease, Reclaimed, chain_ids};
pub use image::{Image, ImageEntry, MediaKind, descriptor_digest};
pub use index::{IndexGuard, REF_NAME_ANNOTATION, TAGGED_AT_ANNOTATION, tag_of};
pub use lease::{ContentLease, ImageLease, LeasedImage, PinnedContent};
pub use scratch::{Scratch, mount_points};

use crate::digest::{Digest, DigestError};
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;
const EMPTY_INDEX: &str = r#"{"schemaVersion":2,"manifests":[]}"#;

/// The mode of the store root and of every directory holding a
/// container's secrets: the owner's alone.
pub const PRIVATE_DIR: u32 = 0o700;
/// The mode of a container's record, spec and log.
pub const PRIVATE_FILE: u32 = 0o600;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("content verification failed: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("content verification failed for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {0} is not in the store")]
    MissingBlob(Digest),
    #[error("{path}: malformed JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {source}")]
    BadDigest {
        path: PathBuf,
        #[source]
        source: DigestError,
    },
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("ambiguous image ID prefix {prefix:?}: matches {}", candidates.join(", "))]
    Ambiguous {
        prefix: String,
        candidates: Vec<String>,
    },
    #[error("refusing to create a tag with a digest reference: {0}")]
    TagWithDigest(String),
    #[error("{path} is not an OCI image layout: {why}")]
    NotALayout { path: PathBuf, why: String },
}

pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { path, source }
}

/// The prefix of img-build's scratch directories under `tmp/`.
pub const SCRATCH_BUILD: &str = "build-";
/// The prefix of the directories a layer is unpacked in before its rename.
pub const SCRATCH_LAYER: &str = "layer-";

/// A handle on one store root. Cheap to create; all state is on disk.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `root`, creating an empty one if nothing is there.
    /// An existing `images/` layout (ours or another tool's) is used as is.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let root = root.into();
        // Absolute from here on: a container's spec, record and mounts name
        // paths in the store, and they must mean the same from the runtime's
        // cwd, a later tool's cwd, and inside the monitor (`--root store`
        // used to give libcontainer a relative rootfs: "oci spec error").
        let root = std::path::absolute(&root).map_err(io_error(&root))?;
        let store = Store { root };
        // Containers' records, specs and logs hold their `-e` values and
        // output: the root is the owner's alone from the moment it exists
        // (Docker's root is 0710 for the same reason).
        fs::DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR)
            .create(&store.root)
            .map_err(io_error(&store.root))?;
        store.private_containers_dir()?;
        for dir in [
            store.blobs_dir(),
            store.root.join("layers"),
            store.tmp_dir(),
            store.locks_dir(),
        ] {
            fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        }
        store.ensure_file(&store.images_dir().join("oci-layout"), OCI_LAYOUT)?;
        store.ensure_file(&store.index_path(), EMPTY_INDEX)?;
        store.check_layout()?;
        Ok(store)
    }

    /// `containers/`, created 0700; one an older berth made world-readable
    /// is closed before any container is created in it by us.
    fn private_containers_dir(&self) -> Result<(), StoreError> {
        let dir = self.root.join("containers");
        match fs::DirBuilder::new().mode(PRIVATE_DIR).create(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let mode = fs::metadata(&dir).map_err(io_error(&dir))?.mode();
                if mode & 0o077 != 0 {
                    fs::set_permissions(&dir, fs::Permissions::from_mode(PRIVATE_DIR))
                        .map_err(io_error(&dir))?;
                }
                Ok(())
            }
            Err(e) => Err(io_error(&dir)(e)),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The OCI image layout directory (`<root>/images`).
    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.images_dir().join("blobs").join("sha256")
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    pub(crate) fn index_path(&self) -> PathBuf {
        self.images_dir().join("index.json")
    }

    /// Scratch space on the store's filesystem, so a finished temp file can
    /// be renamed into place atomically.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }

    /// Creates `path` with `contents` unless it exists, atomically, so two
    /// tools opening a new store at once never see a half-written file.
    fn ensure_file(&self, path: &Path, contents: &str) -> Result<(), StoreError> {
        if path.exists() {
            return Ok(());
        }
        let dir = path.parent().expect("store files live in a directory");
        let mut tmp = self.temp_file(".layout-")?;
        io::Write::write_all(&mut tmp, contents.as_bytes()).map_err(io_error(tmp.path()))?;
        tmp.as_file().sync_all().map_err(io_error(tmp.path()))?;
        // persist_noclobber: if another process won the race, theirs stands.
        match tmp.persist_noclobber(path) {
            Ok(_) => sync_dir(dir),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(io_error(path)(e.error)),
        }
    }

    fn check_layout(&self) -> Result<(), StoreError> {
        let path = self.images_dir().join("oci-layout");
        let text = fs::read_to_string(&path).map_err(io_error(&path))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| StoreError::Json {
                path: path.clone(),
                source,
            })?;
        match value.get("imageLayoutVersion").and_then(|v| v.as_str()) {
            Some(v) if v.starts_with("1.") => Ok(()),
            other => Err(StoreError::NotALayout {
                path: self.images_dir(),
                why: format!("unsupported imageLayoutVersion {other:?}"),
            }),
        }
    }
}

/// fsyncs a directory so a rename inside it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}
