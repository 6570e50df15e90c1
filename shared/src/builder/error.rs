//! `BuildError`: every way a build fails. Each cause keeps its own module's
//! words; a Dockerfile line's error reads `file:line:col: message`.

use super::archive::ArchiveError;
use super::context::ContextError;
use super::copy::CopyError;
use super::layer::LayerWriteError;
use super::rootfs::RootfsError;
use crate::dockerfile::ParseError;
use crate::layer::LayerError;
use crate::registry::PullError;
use crate::runtime::RunError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Anything tied to a Dockerfile line: `file:line:col: message`.
    #[error(transparent)]
    At(#[from] ParseError),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    LayerWrite(#[from] LayerWriteError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Copy(#[from] CopyError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("failed to reach build target {0} in Dockerfile")]
    NoTarget(String),
    #[error("{0}")]
    Invalid(String),
}
