//! Containers as the store keeps them, below the runtime that runs them:
//! their records (`record`, read in bulk by `scan`), who owns one and the one teardown of what it
//! holds (`owner`), reading their logs (`logs`) and showing them as
//! `ctr-ps` and `ctr-inspect` do (`view`), the cgroups a running one has
//! (`cgroup`: its processes, its freezer), copying files in and out of its
//! root filesystem (`copy`), its network in Docker's shape (`endpoint`),
//! networks as net-ls and net-inspect show them (`network_view`), what
//! ctr-stats reads of a running one (`stats`), and the health checks
//! (`health`) and restart policies (`restart`) records keep.
//! Nothing here starts a process.

pub mod cgroup;
pub mod copy;
pub mod endpoint;
pub mod health;
pub mod logs;
pub mod network_view;
pub mod owner;
mod record;
mod reserve;
pub mod restart;
mod scan;
pub mod stats;
pub mod view;

pub use owner::Owner;
pub use record::{
    Config, HostConfig, MountPoint, Record, STEP_LABEL, State, Status, UnknownStatus, ZERO_TIME,
    check_name, new_id, now, random_name, write_private,
};

use std::io;
use std::path::{Path, PathBuf};

/// Written beside a container's `rootfs/` once it is a complete private
/// copy of its layers (where overlayfs is missing): no mount to make.
pub const ROOTFS_COPIED: &str = "rootfs.copied";

/// The owner lock's file in a container's directory (see [`Owner`]).
const OWNER_LOCK: &str = "monitor.lock";

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: malformed container record: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse { name: String, id: String },
    #[error("invalid container name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName(String),
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("container ID prefix {prefix:?} is ambiguous: {}", .candidates.join(", "))]
    Ambiguous {
        prefix: String,
        candidates: Vec<String>,
    },
    #[error("container {0} is already running")]
    AlreadyRunning(String),
}

impl ContainerError {
    /// The error for an I/O failure on `path`.
    pub(crate) fn io(path: &Path) -> impl FnOnce(io::Error) -> ContainerError + use<> {
        let path = path.to_path_buf();
        move |source| ContainerError::Io { path, source }
    }
}
