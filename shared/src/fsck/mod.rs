//! img-fsck: checks a store against its own rules (every blob hashes to its
//! name, every image is whole, every layer, record, mount, cgroup and temp
//! file has a live owner or a referrer) and repairs what is garbage through
//! the sweeps and the collector the tools already run.

mod content;
mod host;
mod volumes;

use crate::container::ContainerError;
use crate::store::{Store, StoreError};
use std::fmt;
use std::path::PathBuf;

/// What kind of thing a problem is about: the first word of its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A blob under `images/blobs/sha256/`.
    Blob,
    /// An `index.json` entry whose manifest, config or layers are missing.
    Image,
    /// An unpacked layer under `layers/`.
    Layer,
    /// A container record under `containers/`.
    Container,
    /// A mount under the store root.
    Mount,
    /// A cgroup under `/sys/fs/cgroup/*/berth/`.
    Cgroup,
    /// A temp file or scratch directory under `tmp/`.
    Temp,
    /// A volume under `volumes/`.
    Volume,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Blob => "blob",
            Kind::Image => "image",
            Kind::Layer => "layer",
            Kind::Container => "container",
            Kind::Mount => "mount",
            Kind::Cgroup => "cgroup",
            Kind::Temp => "temp",
            Kind::Volume => "volume",
        }
    }
}

/// One thing wrong with the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: Kind,
    /// A path (relative to the store root when under it) or an ID.
    pub subject: String,
    pub detail: String,
    /// Whether `--repair` removes it (it is garbage: unreferenced, or left
    /// by a process that died).
    pub repairable: bool,
    /// What the repair acts on, when it is not found again by a sweep.
    target: Target,
}

/// What a repair of one problem acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// Removed by a sweep or the collector, found again there.
    Swept,
    /// A mount point to detach.
    Mount(PathBuf),
    /// A cgroup of a container of this store that no longer runs.
    OurCgroup(String),
    /// An empty cgroup no container of this store owns.
    ForeignCgroup(PathBuf),
    /// A record whose state a lifecycle read brings up to date.
    Stale(String),
    /// Nothing: only a person can decide.
    None,
}

impl Problem {
    fn new(kind: Kind, subject: impl Into<String>, detail: impl Into<String>) -> Problem {
        Problem {
            kind,
            subject: subject.into(),
            detail: detail.into(),
            repairable: false,
            target: Target::None,
        }
    }

    fn repaired_by(mut self, target: Target) -> Problem {
        self.repairable = true;
        self.target = target;
        self
    }

    /// The `--json` form: one object per problem.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": self.kind.name(),
            "subject": self.subject,
            "problem": self.detail,
            "repairable": self.repairable,
        })
    }
}

/// `<kind> <path or id>: <what is wrong>`.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.kind.name(), self.subject, self.detail)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FsckError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Volume(#[from] crate::volume::VolumeError),
}

/// Every problem in the store, in a stable order (content, then what runs).
pub fn check(store: &Store) -> Result<Vec<Problem>, FsckError> {
    let mut problems = Vec::new();
    // Unreferenced content is judged only while no writer holds a lease: a
    // pull or build in progress has blobs and layers not yet tagged.
    let quiet = store.try_exclusive_lease()?;
    content::check(store, quiet.is_some(), &mut problems)?;
    drop(quiet);
    host::check(store, &mut problems)?;
    volumes::check(store, &mut problems)?;
    Ok(problems)
}

/// What `--repair` did: the problems it found, and those left after it
/// checked again.
pub struct Repaired {
    pub found: Vec<Problem>,
    pub left: Vec<Problem>,
}

/// Removes what is garbage (see [`Problem::repairable`]), then checks again.
/// A tagged image's blobs are never removed, even corrupted ones.
pub fn repair(store: &Store) -> Result<Repaired, FsckError> {
    let found = check(store)?;
    if found.iter().any(|p| p.repairable) {
        // Dead builders' steps first: one created but never started holds
        // copies of its builder's locks (scratch directories, the lease),
        // which make what the builder left look alive until it is gone.
        crate::container::owner::sweep_orphans(store);
        let now = check(store)?;
        // Mounts first: nothing is deleted through a mount.
        host::repair(store, &now);
        store.sweep_temp_files()?;
        store.sweep_scratch("");
        if found
            .iter()
            .chain(&now)
            .any(|p| p.repairable && matches!(p.kind, Kind::Blob | Kind::Layer))
        {
            // Never waits: with a writer's lease held, what it may be about
            // to reference stays, and is reported again below.
            if let Some(lease) = store.try_exclusive_lease()? {
                store.collect_garbage(&lease)?;
            }
        }
    }
    let left = check(store)?;
    Ok(Repaired { found, left })
}

/// `path` relative to the store root, for a problem's line.
fn relative(store: &Store, path: &std::path::Path) -> String {
    path.strip_prefix(store.root())
        .unwrap_or(path)
        .display()
        .to_string()
}
