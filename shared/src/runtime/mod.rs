//! Running a container from a stored image, one job per file: `options`
//! (ctr-run's flags checked and typed), `create` (record, rootfs and spec
//! made ready), `process` (libcontainer's executor, start, wait, finish,
//! signals), `run` (the foreground, attached and detached ways to run),
//! `monitor` (the process that owns a detached container), `health` (its
//! prober, running the health check), `restart` (its restart policy
//! honoured) and `json_file` (its output logged), over the spec, seccomp,
//! user, rootfs, terminal, attach and `mounts` (`-v` and `--mount` read)
//! pieces, and `grace_period` (the kernel wait every start hits, begun
//! early). This file holds only the error types and the re-exports.

pub mod attach;
mod create;
pub mod exec;
mod grace_period;
mod health;
mod json_file;
mod monitor;
pub mod mounts;
pub mod options;
mod process;
pub mod relay;
mod restart;
mod rootfs;
mod run;
pub mod seccomp;
pub mod spec;
pub mod step;
pub mod tty;
pub mod user;

pub use create::{Prepared, prepare, reopen};
pub use grace_period::{Warm, keep_warm};
pub use monitor::spawn_monitor;
pub use mounts::{MountFlag, MountSource};
pub use options::{Cpus, HealthFlags, Memory, RunOptions, parse_bytes, parse_duration};
pub use process::{Stdio, catch_forwarded_signals, finish, pending_signal, start, wait};
pub use run::{create, run_attached, run_detached, run_foreground};
pub use spec::{Limits, Tmpfs, Volume};

use crate::container::ContainerError;
use crate::layer::LayerError;
use crate::network::NetworkError;
use crate::store::StoreError;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    BadFlag(#[from] FlagError),
    #[error("Unable to find image '{0}' locally")]
    NoImage(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Volume(#[from] crate::volume::VolumeError),
    #[error("{0}")]
    User(String),
    #[error("No command specified")]
    NoCommand,
    /// Flags that cannot go together, in Docker's client's words.
    #[error("{0}")]
    Conflicting(&'static str),
    #[error("image platform {image} does not match the requested platform {wanted}")]
    Platform { image: String, wanted: String },
    #[error("generating the runtime spec: {0}")]
    Spec(String),
    #[error("mounting the container's root filesystem at {path}: {source}")]
    Mount {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("starting the container: {0}")]
    Runtime(String),
    #[error("the container monitor failed: {0}")]
    Monitor(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("Container {0} is paused, unpause the container before exec")]
    Paused(String),
    /// `ctr-exec -w` names a directory the container does not have.
    #[error("chdir to cwd (\"{0}\") set in config.json failed: no such file or directory")]
    NoWorkdir(String),
    #[error(transparent)]
    Attach(#[from] attach::AttachError),
    /// A flag Docker will not take with `--network container:…`, in its
    /// words (`hostname and the network mode`).
    #[error("conflicting options: {0}")]
    Conflict(&'static str),
    #[error("cannot join network of a non running container: {0}")]
    JoinStopped(String),
}

impl RunError {
    /// The error for an I/O failure on `path`.
    pub(crate) fn io(path: &Path) -> impl FnOnce(io::Error) -> RunError + use<> {
        let path = path.to_path_buf();
        move |source| RunError::Io { path, source }
    }
}

/// A flag whose value cannot be used, said as Docker's client says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {flag} value {value:?}: {why}")]
pub struct FlagError {
    pub flag: &'static str,
    pub value: String,
    pub why: String,
}

impl FlagError {
    pub fn new(flag: &'static str, value: &str, why: impl Into<String>) -> FlagError {
        FlagError {
            flag,
            value: value.to_string(),
            why: why.into(),
        }
    }
}
