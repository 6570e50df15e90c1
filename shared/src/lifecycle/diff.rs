//! Docker's diff: what a container changed in its root, read from its
//! upper dir against its image's layers, in Docker's order and words (a
//! walk of the upper dir in name order; `A` added, `C` changed, `D`
//! deleted; a directory is `C` once when something under it was added or
//! deleted, and not at all when only copied up unchanged). The runtime's
//! own mount points are left out, as Docker keeps them in its init layer.

use super::LifecycleError;
use super::commit::{image_and_layers, upper_dir};
use crate::builder::rootfs::runtime_stubs;
use crate::container::Record;
use crate::store::Store;
use std::collections::HashSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What happened to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Changed,
    Deleted,
}

impl ChangeKind {
    /// Docker's letter.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One line of `ctr-diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// Absolute, as the container sees it.
    pub path: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.letter(), self.path)
    }
}

/// The changes of a running or stopped container.
pub fn diff(store: &Store, record: &Record) -> Result<Vec<Change>, LifecycleError> {
    let upper = upper_dir(store, record)?;
    let (_image, _lease, layers) = image_and_layers(store, record)?;
    let skip = runtime_stubs(&upper, &layers);
    changes(&upper, &layers, &skip).map_err(|source| LifecycleError::Io {
        path: upper.clone(),
        source,
    })
}

/// The changes in `upper` over `layers` (bottom first), leaving out `skip`.
pub fn changes(upper: &Path, layers: &[PathBuf], skip: &[String]) -> std::io::Result<Vec<Change>> {
    let mut walk = Walk {
        layers,
        skip,
        out: Vec::new(),
        changed_dirs: HashSet::new(),
    };
    walk.dir(upper, "")?;
    Ok(walk.out)
}

struct Walk<'a> {
    layers: &'a [PathBuf],
    skip: &'a [String],
    out: Vec<Change>,
    changed_dirs: HashSet<String>,
}

impl Walk<'_> {
    fn dir(&mut self, dir: &Path, rel: &str) -> std::io::Result<()> {
        let mut names: Vec<_> = fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let child = if rel.is_empty() {
                name.to_string_lossy().into_owned()
            } else {
                format!("{rel}/{}", name.to_string_lossy())
            };
            if self.skip.contains(&child) {
                continue;
            }
            let path = dir.join(&name);
            let meta = fs::symlink_metadata(&path)?;
            self.entry(&path, &child, &meta)?;
            if meta.is_dir() {
                self.dir(&path, &child)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, rel: &str, meta: &fs::Metadata) -> std::io::Result<()> {
        let abs = format!("/{rel}");
        let kind = if deleted(path, meta) {
            ChangeKind::Deleted
        } else {
            match self.below(rel) {
                None => ChangeKind::Added,
                Some(lower) => {
                    // A directory copied up unchanged is no change.
                    if lower.is_dir()
                        && meta.is_dir()
                        && lower.len() == meta.len()
                        && lower.mode() == meta.mode()
                        && lower.mtime() == meta.mtime()
                        && lower.mtime_nsec() == meta.mtime_nsec()
                    {
                        return Ok(());
                    }
                    ChangeKind::Changed
                }
            }
        };
        if meta.is_dir() {
            self.changed_dirs.insert(abs.clone());
        }
        if kind != ChangeKind::Changed
            && let Some((parent, _)) = abs.rsplit_once('/')
            && !parent.is_empty()
            && self.changed_dirs.insert(parent.to_string())
        {
            self.out.push(Change {
                kind: ChangeKind::Changed,
                path: parent.to_string(),
            });
        }
        self.out.push(Change { kind, path: abs });
        Ok(())
    }

    /// The path in the topmost layer that has it.
    fn below(&self, rel: &str) -> Option<fs::Metadata> {
        self.layers
            .iter()
            .rev()
            .find_map(|layer| fs::symlink_metadata(layer.join(rel)).ok())
    }
}

/// An overlay whiteout (a 0/0 character device) or an opaque directory:
/// Docker reports both as the path deleted.
fn deleted(path: &Path, meta: &fs::Metadata) -> bool {
    if meta.file_type().is_char_device() && meta.rdev() == 0 {
        return true;
    }
    if meta.is_dir() {
        let mut value = [0u8; 2];
        return rustix::fs::lgetxattr(path, "trusted.overlay.opaque", &mut value)
            .is_ok_and(|n| &value[..n] == b"y");
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_changed_and_deleted_in_dockers_order() {
        let dir = tempfile::tempdir().unwrap();
        let lower = dir.path().join("lower");
        let upper = dir.path().join("upper");
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::write(lower.join("etc/motd"), "hi").unwrap();
        fs::write(lower.join("etc/gone"), "x").unwrap();
        fs::create_dir_all(lower.join("bin")).unwrap();
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/motd"), "changed").unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            upper.join("etc/gone"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap();
        fs::write(upper.join("new"), "n").unwrap();
        // Copied up unchanged: same mode and times as below.
        fs::create_dir(upper.join("bin")).unwrap();
        let m = fs::metadata(lower.join("bin")).unwrap();
        let t = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: m.atime(),
                tv_nsec: m.atime_nsec() as _,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: m.mtime(),
                tv_nsec: m.mtime_nsec() as _,
            },
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            upper.join("bin"),
            &t,
            rustix::fs::AtFlags::empty(),
        )
        .unwrap();
        let got: Vec<String> = changes(&upper, &[lower], &[])
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(got, ["C /etc", "D /etc/gone", "C /etc/motd", "A /new"]);
    }
}
