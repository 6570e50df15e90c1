//! Extracting a tar stream under a directory of a root (a container's, or
//! the host directory a copy lands in), treating every entry as hostile:
//! names with `..` are refused, absolute ones are taken as relative, each
//! entry's parent is resolved in the root as if chrooted (so a symlink an
//! earlier entry or the container planted never leads out), and the entry
//! itself is made by name in that parent without following anything
//! (`O_EXCL|O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, metadata through the new
//! file's own descriptor).

use super::CopyError;
use super::root::Root;
use crate::layer::times;
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Uid};
use rustix::io::Errno;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// How entries are owned once extracted.
#[derive(Debug, Clone, Copy)]
pub enum Ownership {
    /// As the archive says (`-a`, and a tar read from stdin with `-a`).
    Keep,
    /// Everything owned by this user and group.
    As(u32, u32),
}

/// Bytes of file content written.
pub struct Unpacked {
    pub bytes: u64,
}

fn refused(entry: &str, why: &str) -> CopyError {
    CopyError::Refused {
        entry: entry.to_string(),
        why: why.to_string(),
    }
}

fn at(entry: &str) -> impl FnOnce(Errno) -> CopyError + '_ {
    move |e| CopyError::Io {
        what: entry.to_string(),
        source: e.into(),
    }
}

/// The components of an entry name: `.` and empty ones dropped (so `/x`
/// is `x`); `None` if a `..` would climb.
fn components(name: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            other => out.push(other),
        }
    }
    Some(out)
}

fn join(base: &str, parts: &[&str]) -> String {
    let mut path = base.trim_end_matches('/').to_string();
    for part in parts {
        path.push('/');
        path.push_str(part);
    }
    if path.is_empty() {
        "/".to_string()
    } else {
        path
    }
}

/// The directory `base/parts` in `root`, made (0755) where missing, one
/// component at a time, each resolved in the root afresh.
fn directory(root: &Root, base: &str, parts: &[&str], entry: &str) -> Result<OwnedFd, CopyError> {
    let flags = OFlags::PATH | OFlags::DIRECTORY;
    let mut dir = root.open(base, flags, true).map_err(at(entry))?;
    for (i, part) in parts.iter().enumerate() {
        let path = join(base, &parts[..=i]);
        dir = match root.open(&path, flags, true) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                match rustix::fs::mkdirat(&dir, *part, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(at(entry)(e)),
                }
                root.open(&path, flags, true).map_err(at(entry))?
            }
            Err(e) => return Err(at(entry)(e)),
        };
    }
    Ok(dir)
}

/// Extracts `input` under `base` (a directory path in `root`, followed as
/// the container would). Directories' times are set last, as their
/// contents change them.
pub fn unpack(
    input: impl Read,
    root: &Root,
    base: &str,
    ownership: Ownership,
) -> Result<Unpacked, CopyError> {
    let mut archive = tar::Archive::new(input);
    let mut bytes = 0;
    let mut dir_times: Vec<(String, u64)> = Vec::new();
    let entries = archive.entries().map_err(CopyError::Archive)?;
    for entry in entries {
        let mut entry = entry.map_err(CopyError::Archive)?;
        let raw = entry.path_bytes();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let parts = components(&name).ok_or_else(|| refused(&name, "it leaves the destination"))?;
        let Some((leaf, parents)) = parts.split_last() else {
            continue; // `./`: the destination itself, kept as it is
        };
        let header = entry.header().clone();
        let kind = header.entry_type();
        let mode = header.mode().map_err(CopyError::Archive)? & 0o7777;
        let mtime = header.mtime().unwrap_or(0);
        let (uid, gid) = match ownership {
            Ownership::Keep => (
                header.uid().unwrap_or(0) as u32,
                header.gid().unwrap_or(0) as u32,
            ),
            Ownership::As(uid, gid) => (uid, gid),
        };
        let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
        let parent = directory(root, base, parents, &name)?;
        let nofollow = AtFlags::SYMLINK_NOFOLLOW;
        let existing = match rustix::fs::statat(&parent, *leaf, nofollow) {
            Ok(stat) => Some(FileType::from_raw_mode(stat.st_mode)),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(at(&name)(e)),
        };
        let is_dir = kind == tar::EntryType::Directory;
        match existing {
            Some(FileType::Directory) if !is_dir => {
                return Err(refused(
                    &name,
                    "cannot overwrite a directory with a non-directory",
                ));
            }
            Some(FileType::Directory) => {}
            Some(_) if is_dir => {
                return Err(refused(
                    &name,
                    "cannot overwrite a non-directory with a directory",
                ));
            }
            Some(_) => rustix::fs::unlinkat(&parent, *leaf, AtFlags::empty()).map_err(at(&name))?,
            None => {}
        }
        match kind {
            tar::EntryType::Directory => {
                if existing.is_none() {
                    rustix::fs::mkdirat(&parent, *leaf, Mode::from_raw_mode(0o700))
                        .map_err(at(&name))?;
                }
                let dir = rustix::fs::openat(
                    &parent,
                    *leaf,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(at(&name))?;
                rustix::fs::fchown(&dir, Some(uid), Some(gid))
                    .and_then(|()| rustix::fs::fchmod(&dir, Mode::from_raw_mode(mode)))
                    .map_err(at(&name))?;
                dir_times.push((join(base, &parts), mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let file = rustix::fs::openat(
                    &parent,
                    *leaf,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(at(&name))?;
                let mut file = std::fs::File::from(file);
                bytes += std::io::copy(&mut entry, &mut file).map_err(|source| CopyError::Io {
                    what: name.clone(),
                    source,
                })?;
                rustix::fs::fchown(&file, Some(uid), Some(gid))
                    .and_then(|()| rustix::fs::fchmod(&file, Mode::from_raw_mode(mode)))
                    .and_then(|()| rustix::fs::futimens(&file, &times(mtime)))
                    .map_err(at(&name))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refused(&name, "a symlink without a target"))?;
                let target = std::ffi::OsStr::from_bytes(&target);
                rustix::fs::symlinkat(target, &parent, *leaf).map_err(at(&name))?;
                rustix::fs::chownat(&parent, *leaf, Some(uid), Some(gid), nofollow)
                    .and_then(|()| rustix::fs::utimensat(&parent, *leaf, &times(mtime), nofollow))
                    .map_err(at(&name))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refused(&name, "a hard link without a target"))?;
                let target = String::from_utf8_lossy(&target).into_owned();
                let target_parts = components(&target)
                    .ok_or_else(|| refused(&name, "its link target leaves the destination"))?;
                // The link's target, found in the root as everything else.
                let source = root
                    .open(&join(base, &target_parts), OFlags::PATH, false)
                    .map_err(at(&name))?;
                rustix::fs::linkat(&source, "", &parent, *leaf, AtFlags::EMPTY_PATH)
                    .map_err(at(&name))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let file_type = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let dev = rustix::fs::makedev(
                    header.device_major().ok().flatten().unwrap_or(0),
                    header.device_minor().ok().flatten().unwrap_or(0),
                );
                rustix::fs::mknodat(&parent, *leaf, file_type, Mode::from_raw_mode(0o600), dev)
                    .map_err(at(&name))?;
                let node = rustix::fs::openat(
                    &parent,
                    *leaf,
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(at(&name))?;
                // chmod through the descriptor's /proc link: this very node.
                let link = format!("/proc/self/fd/{}", node.as_fd().as_raw_fd());
                rustix::fs::chownat(&parent, *leaf, Some(uid), Some(gid), nofollow)
                    .and_then(|()| rustix::fs::chmod(link.as_str(), Mode::from_raw_mode(mode)))
                    .and_then(|()| rustix::fs::utimensat(&parent, *leaf, &times(mtime), nofollow))
                    .map_err(at(&name))?;
            }
            // pax and GNU extension headers are read by the tar crate itself.
            _ => {}
        }
    }
    for (path, mtime) in dir_times.iter().rev() {
        if let Ok(dir) = root.open(path, OFlags::RDONLY | OFlags::DIRECTORY, false) {
            let _ = rustix::fs::futimens(&dir, &times(*mtime));
        }
    }
    Ok(Unpacked { bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_climb_are_refused_and_absolute_ones_are_relative() {
        assert_eq!(components("/etc/passwd"), Some(vec!["etc", "passwd"]));
        assert_eq!(components("./a//b/."), Some(vec!["a", "b"]));
        assert_eq!(components("a/../../b"), None);
        assert_eq!(components("./"), Some(vec![]));
    }
}
