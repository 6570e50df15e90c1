//! What `img-build` asks of a build (`BuildOptions`), what it gets back
//! (`Built`), and how it hears the build go (`BuildObserver`).

use super::layer::LayerCompression;
use crate::digest::Digest;
use crate::network::NetworkMode;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::PullObserver;
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// Build args Docker predefines: usable without an ARG line, never recorded.
pub(super) const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Everything `img-build` was asked.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// How errors name the Dockerfile (`Dockerfile`, a path, or `-`).
    pub dockerfile_name: String,
    pub dockerfile: String,
    /// The context directory; `None` when the Dockerfile came from stdin
    /// with no context.
    pub context: Option<PathBuf>,
    pub tags: Vec<Reference>,
    /// `--build-arg K=V` (a bare `K` takes the caller's environment value,
    /// resolved by the tool; `None` leaves it unset).
    pub build_args: Vec<(String, Option<String>)>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// `--pull`: fetch every FROM image again.
    pub pull: bool,
    pub platform: Option<Platform>,
    pub labels: Vec<(String, String)>,
    /// `--network`: RUN steps' network; `None` is the builder's default
    /// (the host's).
    pub network: Option<NetworkMode>,
    pub compression: LayerCompression,
    /// SOURCE_DATE_EPOCH: every timestamp the build writes.
    pub source_date_epoch: Option<u64>,
    /// `--secret id=…`: what `RUN --mount=type=secret` mounts, by id. Never
    /// in a layer, the history or a cache key.
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// `--cache-from REF`: shared caches imported before the build.
    pub cache_from: Vec<Reference>,
    /// `--cache-to REF`: where the build's cache is pushed after it.
    pub cache_to: Option<Reference>,
}

/// The built image.
#[derive(Debug, Clone)]
pub struct Built {
    pub id: Digest,
    pub manifest_digest: Digest,
    pub tags: Vec<Reference>,
}

/// Hears about a build as it goes; the library itself never prints.
pub trait BuildObserver {
    /// `Step n/total : INSTRUCTION`.
    fn step(&mut self, _number: usize, _total: usize, _text: &str) {}
    /// The step's result came from the cache.
    fn cached(&mut self) {}
    /// The image the step produced.
    fn step_done(&mut self, _id: &Digest) {}
    /// ONBUILD triggers about to run.
    fn triggers(&mut self, _count: usize) {}
    fn warning(&mut self, _text: &str) {}
    /// Where a RUN's output goes; `None` discards it.
    fn run_output(&mut self) -> Option<OwnedFd> {
        None
    }
    /// A shared cache was imported: `steps` entries from `from`.
    fn cache_imported(&mut self, _from: &Reference, _steps: usize) {}
    /// The build's cache was pushed to `to` (its tag pinned by digest).
    fn cache_exported(&mut self, _to: &Reference) {}
    /// Hears about pulls of FROM images.
    fn puller(&mut self) -> &mut dyn PullObserver;
}
