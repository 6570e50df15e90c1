//! Root filesystems for build steps: a writable overlay of the parent's
//! unpacked layers over a fresh upper dir (whose contents become the step's
//! layer), and read-only views of a stage or image for `--from` (COPY's,
//! and RUN's bind mounts').

use crate::store::{SCRATCH_BUILD, Scratch, Store};
use rustix::mount::UnmountFlags;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("mounting the step's root filesystem at {path}: {source}")]
    Mount {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RootfsError + use<> {
    let path = path.to_path_buf();
    move |source| RootfsError::Io { path, source }
}

/// A scratch directory under the store's `tmp/`, on the same filesystem
/// as `layers/` so a finished upper dir can be renamed into place; locked
/// while we live, so what a killed builder leaves there is swept.
fn scratch(store: &Store) -> Result<Scratch, RootfsError> {
    Scratch::new(store, SCRATCH_BUILD).map_err(|e| RootfsError::Io {
        path: store.tmp_dir(),
        source: io::Error::other(e),
    })
}

fn mount_overlay(
    lowers: &[PathBuf],
    upper: Option<crate::overlay::Upper<'_>>,
    target: &Path,
) -> Result<(), RootfsError> {
    crate::overlay::mount(lowers, upper, target).map_err(|source| RootfsError::Mount {
        path: target.to_path_buf(),
        source,
    })
}

/// A writable root for one step: `merged` is what the step sees, `upper`
/// what it changed.
pub struct StepRoot {
    dir: Scratch,
    mounted: bool,
}

impl StepRoot {
    /// Mounts `lowers` (bottom first) under a fresh upper dir.
    pub fn mount(store: &Store, lowers: &[PathBuf]) -> Result<StepRoot, RootfsError> {
        let dir = scratch(store)?;
        for sub in ["upper", "work", "merged", "empty"] {
            let path = dir.path().join(sub);
            fs::create_dir(&path).map_err(io_err(&path))?;
        }
        let upper = dir.path().join("upper");
        fs::set_permissions(&upper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(io_err(&upper))?;
        let mut lowers = lowers.to_vec();
        if lowers.is_empty() {
            // FROM scratch: overlay still wants a lower dir.
            lowers.push(dir.path().join("empty"));
        }
        let work = dir.path().join("work");
        let writes = crate::overlay::Upper {
            upper: &upper,
            work: &work,
            // The step's writes are kept as a layer blob (fsynced by the
            // store), never as this scratch upper dir.
            volatile: true,
        };
        let merged = dir.path().join("merged");
        mount_overlay(&lowers, Some(writes), &merged)?;
        Ok(StepRoot { dir, mounted: true })
    }

    pub fn merged(&self) -> PathBuf {
        self.dir.path().join("merged")
    }

    pub fn upper(&self) -> PathBuf {
        self.dir.path().join("upper")
    }

    /// Detaches the overlay (a RUN's container cleanup may have done so
    /// already; that is fine).
    pub fn unmount(&mut self) {
        if self.mounted {
            let _ = rustix::mount::unmount(self.merged(), UnmountFlags::DETACH);
            self.mounted = false;
        }
    }
}

impl Drop for StepRoot {
    fn drop(&mut self) {
        self.unmount();
    }
}

/// A read-only view of a finished stage or an image (COPY --from).
pub struct ReadRoot {
    path: PathBuf,
    dir: Option<Scratch>,
    mounted: bool,
}

impl ReadRoot {
    pub fn mount(store: &Store, lowers: &[PathBuf]) -> Result<ReadRoot, RootfsError> {
        match lowers {
            // One layer is its own root; overlay wants two lowers to
            // mount without an upper anyway.
            [only] => Ok(ReadRoot {
                path: only.clone(),
                dir: None,
                mounted: false,
            }),
            [] => {
                let dir = scratch(store)?;
                Ok(ReadRoot {
                    path: dir.path().to_path_buf(),
                    dir: Some(dir),
                    mounted: false,
                })
            }
            _ => {
                let dir = scratch(store)?;
                mount_overlay(lowers, None, dir.path())?;
                Ok(ReadRoot {
                    path: dir.path().to_path_buf(),
                    dir: Some(dir),
                    mounted: true,
                })
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ReadRoot {
    fn drop(&mut self) {
        if self.mounted {
            let _ = rustix::mount::unmount(&self.path, UnmountFlags::DETACH);
        }
        // The TempDir removes the (now empty) mount point.
        let _ = self.dir.take();
    }
}

/// The mount points a container's runtime creates in its root when they
/// are missing; Docker keeps them out of the step's layer.
const MOUNT_STUBS: &[&str] = &[
    "dev",
    "dev/pts",
    "dev/shm",
    "dev/mqueue",
    "proc",
    "sys",
    "sys/fs",
    "sys/fs/cgroup",
    "etc",
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
];

/// The runtime's mount points in a container's upper dir that its image
/// (`lowers`) lacks, holding nothing else, and the directories copied up
/// only to hold them: Docker keeps these in a container's init layer, so
/// neither a commit nor a diff shows them.
pub fn runtime_stubs(upper: &Path, lowers: &[PathBuf]) -> Vec<String> {
    let mut stubs: Vec<String> = Vec::new();
    let holds_only_stubs = |path: &Path, rel: &str, stubs: &[String]| {
        fs::read_dir(path).is_ok_and(|d| {
            d.filter_map(Result::ok).all(|e| {
                let child = format!("{rel}/{}", e.file_name().to_string_lossy());
                stubs.contains(&child)
            })
        })
    };
    let opaque = |path: &Path| {
        let mut value = [0u8; 2];
        rustix::fs::lgetxattr(path, "trusted.overlay.opaque", &mut value).is_ok()
    };
    // Deepest first, so a directory is judged after its children.
    let mut wanted: Vec<&str> = MOUNT_STUBS.to_vec();
    wanted.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    for stub in wanted {
        let path = upper.join(stub);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let below = lowers
            .iter()
            .any(|l| fs::symlink_metadata(l.join(stub)).is_ok());
        let stub_only = if meta.is_dir() {
            !opaque(&path) && holds_only_stubs(&path, stub, &stubs)
        } else {
            meta.is_file() && meta.len() == 0
        };
        // A directory the image has, copied up only for stubs, goes too;
        // a file the image has is the image's own.
        if stub_only && (!below || (meta.is_dir() && !stubs.is_empty())) {
            let dragged = below && !stubs.iter().any(|s| s.starts_with(&format!("{stub}/")));
            if !dragged {
                stubs.push(stub.to_string());
            }
        }
    }
    stubs
}

/// Which mount points are absent from `merged` before a RUN: the
/// runtime's own, and `targets` (the step's --mount targets, absolute),
/// with their missing parents, deepest last.
pub fn missing_stubs(merged: &Path, targets: &[String]) -> Vec<String> {
    let mut wanted: Vec<String> = MOUNT_STUBS.iter().map(|s| s.to_string()).collect();
    for target in targets {
        let mut prefix = String::new();
        for part in target.split('/').filter(|p| !p.is_empty()) {
            prefix = if prefix.is_empty() {
                part.to_string()
            } else {
                format!("{prefix}/{part}")
            };
            if !wanted.contains(&prefix) {
                wanted.push(prefix.clone());
            }
        }
    }
    wanted
        .into_iter()
        .filter(|p| fs::symlink_metadata(merged.join(p)).is_err())
        .collect()
}

/// After a RUN: removes from `upper` the stubs the runtime created (still
/// empty), and the copied-up parents they alone dragged in.
pub fn remove_stubs(upper: &Path, created: &[String]) {
    for stub in created.iter().rev() {
        let path = upper.join(stub);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() && m.len() == 0 => {
                let _ = fs::remove_file(&path);
            }
            Ok(m) if m.is_dir() => {
                let _ = fs::remove_dir(&path);
            }
            _ => {}
        }
    }
    // A parent that existed below and now holds nothing in the upper dir
    // was only copied up for a stub: deepest first.
    let mut parents: Vec<String> = Vec::new();
    for stub in created {
        let mut path = stub.as_str();
        while let Some((parent, _)) = path.rsplit_once('/') {
            if !created.iter().any(|c| c == parent) && !parents.iter().any(|p| p == parent) {
                parents.push(parent.to_string());
            }
            path = parent;
        }
        if !created.iter().any(|c| c == path) && !parents.iter().any(|p| p == path) {
            parents.push(path.to_string());
        }
    }
    parents.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    for parent in parents {
        let path = upper.join(&parent);
        let mut value = [0u8; 2];
        let opaque = rustix::fs::lgetxattr(&path, "trusted.overlay.opaque", &mut value).is_ok();
        if !opaque && fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none()) {
            let _ = fs::remove_dir(&path);
        }
    }
}
