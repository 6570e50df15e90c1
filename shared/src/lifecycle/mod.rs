//! The container verbs over the records ctr-run writes, one file per verb:
//! finding a container by name or ID prefix (`find`), signals, kill and
//! stop (`kill`), rm (`remove`), start and following an attached one to its
//! end (`start`). Each file imports only [`LifecycleError`] from here.

mod find;
mod kill;
mod remove;
mod start;

pub use find::{find, list};
pub use kill::{kill, parse_signal, stop, wait_stopped};
pub use remove::remove;
pub use start::{attach_without_terminal, log_length, start};

use crate::container::ContainerError;
use crate::runtime::RunError;

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
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Run(#[from] RunError),
}
