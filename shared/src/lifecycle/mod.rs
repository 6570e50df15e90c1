//! The container verbs over the records ctr-run writes, one file per verb:
//! finding a container by name or ID prefix (`find`), signals, kill and
//! stop (`kill`), rm (`remove`), start and following an attached one to its
//! end (`start`), `wait`, `rename`, pause and unpause (`pause`), `top`,
//! `prune`, its limits changed (`update`), and what becomes of a
//! container's files: `commit` (a new image), `diff` (what changed),
//! `export` (its root as a tar); and the networks a container is on
//! (`connect`: net-connect, net-disconnect). Each file imports only
//! [`LifecycleError`] from here.

mod commit;
mod connect;
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
mod update;
mod wait;

pub use commit::{CommitOptions, commit};
pub use connect::{ConnectOptions, connect, disconnect};
pub use diff::{Change, ChangeKind, changes, diff};
pub use export::{export, export_to_file};
pub use find::{find, list};
pub use kill::{kill, parse_signal, stop, wait_stopped};
pub use pause::{pause, unpause};
pub use prune::{Pruned, prune};
pub use remove::remove;
pub use rename::rename;
pub use start::{attach_without_terminal, follow_first_run, log_length, start};
pub use top::{Top, top};
pub use update::update;
pub use wait::wait;

use crate::builder::BuildError;
use crate::builder::layer::LayerWriteError;
use crate::builder::rootfs::RootfsError;
use crate::container::ContainerError;
use crate::layer::LayerError;
use crate::network::NetworkError;
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
    /// Docker's words for a limit the kernel refused.
    #[error("Cannot update container {id}: {source}")]
    CannotUpdate {
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
    Network(#[from] NetworkError),
    /// net-connect and net-disconnect, in Docker's words.
    #[error("container {id} is not connected to {the}network {network}")]
    NotConnected {
        id: String,
        network: String,
        /// Docker says "the network" of a stopped container's.
        the: &'static str,
    },
    #[error("endpoint {0} not found")]
    NoEndpoint(String),
    #[error(
        "container sharing network namespace with another container or host cannot be connected to any other network"
    )]
    SharedNetwork,
    #[error("container cannot be disconnected from host network or connected to host network")]
    HostNetwork,
    #[error(
        "container cannot be connected to multiple networks with one of the networks in private (none) mode"
    )]
    NoNetwork,
    #[error("user specified IP address is supported on user defined networks only")]
    UnsupportedIp,
    #[error("network-scoped alias is supported only for containers in user defined networks")]
    UnsupportedAlias,
    #[error(transparent)]
    Volume(#[from] crate::volume::VolumeError),
}
