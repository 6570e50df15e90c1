//! The container verbs over the records ctr-run writes, one file per verb:
//! finding a container by name or ID prefix (`find`), signals, kill and
//! stop (`kill`), rm (`remove`), start and following an attached one to its
//! end (`start`), `wait`, `rename`, pause and unpause (`pause`), `top`,
//! `prune`, and what becomes of a container's files: `commit` (a new image),
//! `diff` (what changed), `export` (its root as a tar). Each file imports only [`LifecycleError`] from here.

mod commit;
mod diff;
mod export;
mod find;
mod kill;
mod pause;
mod prune;
mod remove;
mod rename;
mod start;
mod top;
mod wait;

pub use commit::{CommitOptions, commit};
pub use diff::{Change, ChangeKind, changes, diff};
pub use export::{export, export_to_file};
pub use find::{find, list};
pub use kill::{kill, parse_signal, stop, wait_stopped};
pub use pause::{pause, unpause};
pub use prune::{Pruned, prune};
pub use remove::remove;
pub use rename::rename;
pub use start::{attach_without_terminal, log_length, start};
pub use top::{Top, top};
pub use wait::wait;

use crate::builder::BuildError;
use crate::builder::layer::LayerWriteError;
use crate::builder::rootfs::RootfsError;
use crate::container::ContainerError;
use crate::layer::LayerError;
use crate::runtime::RunError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("container ID prefix {prefix:?} is ambiguous: {}", .candidates.join(", "))]
    Ambiguous {
        prefix: String,
        candidates: Vec<String>,
    },
    #[error("cannot kill container: {0}: container is not running")]
    NotRunning(String),
    #[error(
        "cannot remove container \"{0}\": container is running: stop the container before removing or force remove"
    )]
    Running(String),
    /// Docker's words for pause, unpause and top of a stopped container.
    #[error("Container {0} is not running")]
    Stopped(String),
    #[error("Container {0} is already paused")]
    AlreadyPaused(String),
    #[error("Container {0} is not paused")]
    NotPaused(String),
    #[error("cannot start a paused container, try unpause instead")]
    StartPaused(String),
    #[error("Cannot pause container {id}: {source}")]
    CannotPause {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Cannot unpause container {id}: {source}")]
    CannotUnpause {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Renaming a container with the same name as its current name")]
    SameName,
    #[error("Neither old nor new names may be empty")]
    EmptyName,
    /// `ps` refused its arguments (its first line of stderr), or its
    /// output had no PID column.
    #[error("{0}")]
    Ps(String),
    #[error("invalid signal: {0}")]
    BadSignal(String),
    #[error("container {0} did not stop")]
    DidNotStop(String),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "container {0} has no overlay upper dir (its root is a private copy): commit and diff need one"
    )]
    NoUpper(String),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    LayerWrite(#[from] LayerWriteError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Volume(#[from] crate::volume::VolumeError),
}
