//! Volumes as the store keeps them, Docker's `local` driver: one directory
//! each under `volumes/<name>/`, its files in `_data` and its record
//! (`docker volume inspect`'s shape) in `volume.json`, written temp file
//! then rename. Writers (create, remove, prune) hold `volumes/.lock`, so
//! eight parallel `ctr-run -v data:/x` make `data` once; a volume is in
//! use while any container's record names it. Above `container` (it reads
//! the records), below the runtime that mounts volumes.

mod store;
mod usage;
pub mod view;

pub use store::{ANONYMOUS_LABEL, Volume, Volumes, check_name};
pub use usage::{Pruned, dangling, users};

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: malformed volume record: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "create {0}: \"{0}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )]
    BadName(String),
    #[error("No such volume: {0}")]
    NotFound(String),
    #[error("remove {name}: volume is in use - [{}]", users.join(" "))]
    InUse { name: String, users: Vec<String> },
    #[error(transparent)]
    Container(#[from] crate::container::ContainerError),
}

impl VolumeError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(io::Error) -> VolumeError + use<> {
        let path = path.to_path_buf();
        move |source| VolumeError::Io { path, source }
    }
}
