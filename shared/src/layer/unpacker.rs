//! The walk that writes a layer's tar entries into a directory: every path
//! resolved under the layer root one component at a time without following
//! a symlink, whiteouts turned into overlay whiteouts, owners, modes,
//! xattrs and times kept, and directory times set last.

use super::LayerError;
use crate::digest::Digest;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::fs::{Gid, Uid};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

/// The tar's entries written under `dest`, directory times set last.
pub(super) fn walk(plain: impl Read, dest: &Path, layer: &Digest) -> Result<(), LayerError> {
    let archive_err = |source| LayerError::Archive {
        layer: layer.clone(),
        source,
    };
    let root = rustix::fs::open(
        dest,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| LayerError::Io {
        path: dest.to_path_buf(),
        source: e.into(),
    })?;
    let mut unpacker = Unpacker {
        root,
        layer: layer.clone(),
        parents: Vec::new(),
        deep: None,
        dir_times: Vec::new(),
        buffer: vec![0; WRITE_BUFFER],
    };
    let mut archive = tar::Archive::new(plain);
    for entry in archive.entries().map_err(archive_err)? {
        let mut entry = entry.map_err(|source| LayerError::NotTar {
            layer: layer.clone(),
            source,
        })?;
        unpacker.entry(&mut entry)?;
    }
    unpacker.finish_dir_times()
}

struct Unpacker {
    root: OwnedFd,
    layer: Digest,
    /// The directories from the layer root to the last entry's parent, each
    /// opened from the one before it. A tar lists a directory's entries
    /// together, so the next entry usually needs no `openat` at all (on a
    /// Debian rootfs, 48,000 fewer). Only the last entry can have changed
    /// anything since they were opened, and what it changed is a child of
    /// the last of them, never one of them.
    parents: Vec<(OsString, OwnedFd)>,
    /// The parent of an entry deeper than [`MAX_HELD_DIRS`], opened for
    /// that entry alone.
    deep: Option<OwnedFd>,
    /// Directory mtimes are set last: writing their children changes them.
    dir_times: Vec<(Vec<OsString>, u64)>,
    /// Where a file's bytes pass through on their way to it: one large
    /// buffer for every file, so a 4 MiB library is 16 writes rather than
    /// the 512 that `io::copy`'s 8 KiB stack buffer would make.
    buffer: Vec<u8>,
}

/// How many directories [`Unpacker::parents`] holds open at most.
const MAX_HELD_DIRS: usize = 64;

const DIR_FLAGS: OFlags = OFlags::DIRECTORY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::RDONLY)
    .union(OFlags::CLOEXEC);

/// Opens directory `name` in `dir` without following a symlink, first
/// creating it (as tar does) when it is missing and `create` is set.
fn open_child_dir(dir: &OwnedFd, name: &OsStr, create: bool) -> Result<OwnedFd, Errno> {
    match rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty()) {
        Err(Errno::NOENT) if create => {
            match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e),
            }
            rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty())
        }
        other => other,
    }
}

/// The size of [`Unpacker::buffer`].
const WRITE_BUFFER: usize = 256 * 1024;

/// Files at least this large are sent on their way to the disk as soon as
/// they are written, so the `syncfs` that makes a layer durable before it
/// is renamed into place finds most of its bytes already written rather
/// than writing all of them while the caller waits.
const EARLY_WRITEBACK: u64 = 256 * 1024;

/// Copies `from` into `to` through `buffer`; the bytes copied.
fn copy_through(
    from: &mut impl Read,
    to: &mut impl io::Write,
    buffer: &mut [u8],
) -> io::Result<u64> {
    let mut copied = 0;
    loop {
        let n = match from.read(buffer) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buffer[..n])?;
        copied += n as u64;
    }
}

/// Starts writing `file`'s dirty pages to the disk without waiting for
/// them (durability still comes from the `syncfs` at the end). A failure
/// only means the `syncfs` does this work itself.
fn start_writeback(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a descriptor we own; no memory is shared.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

impl Unpacker {
    fn refuse(&self, entry: &str, why: impl Into<String>) -> LayerError {
        LayerError::Refused {
            layer: self.layer.clone(),
            entry: entry.to_string(),
            why: why.into(),
        }
    }

    fn entry_err(&self, entry: &str) -> impl FnOnce(io::Error) -> LayerError + use<> {
        let layer = self.layer.clone();
        let entry = entry.to_string();
        move |source| LayerError::Entry {
            layer,
            entry,
            source,
        }
    }

    /// Splits an entry's path into plain components, refusing any that is
    /// absolute or climbs with `..`.
    fn components(&self, path: &Path, entry: &str) -> Result<Vec<OsString>, LayerError> {
        // umoci writes the layer root as "/": that is the root, not a way out.
        if path == Path::new("/") {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for component in path.components() {
            match component {
                Component::Normal(name) => out.push(name.to_os_string()),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(self.refuse(entry, "path climbs out with \"..\""));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(self.refuse(entry, "absolute path"));
                }
            }
        }
        Ok(out)
    }

    /// Opens the directory `parents` under the layer root, one component at
    /// a time and never through a symlink; missing ones are created (as tar
    /// does) when `create` is set.
    fn open_dir(
        &self,
        parents: &[OsString],
        entry: &str,
        create: bool,
    ) -> Result<OwnedFd, LayerError> {
        let mut dir = rustix::fs::openat(&self.root, ".", DIR_FLAGS, Mode::empty())
            .map_err(|e| self.entry_err(entry)(e.into()))?;
        for (i, name) in parents.iter().enumerate() {
            dir = open_child_dir(&dir, name, create)
                .map_err(|e| self.dir_error(&dir, parents, i, e, entry))?;
        }
        Ok(dir)
    }

    /// Makes [`Unpacker::parents`] end at `parents`, opening (and creating)
    /// only the components it does not already hold. Past
    /// [`MAX_HELD_DIRS`] components the rest is walked afresh each time,
    /// into [`Unpacker::deep`], so a hostile depth cannot use up the
    /// process's descriptors.
    fn descend(&mut self, parents: &[OsString], entry: &str) -> Result<(), LayerError> {
        self.deep = None;
        let kept = parents.len().min(MAX_HELD_DIRS);
        let held = self
            .parents
            .iter()
            .zip(&parents[..kept])
            .take_while(|((a, _), b)| a == *b)
            .count();
        self.parents.truncate(held);
        for (i, name) in parents.iter().enumerate().skip(held) {
            let dir = match &self.deep {
                Some(deep) => deep,
                None => self.parents.last().map_or(&self.root, |(_, fd)| fd),
            };
            let next = open_child_dir(dir, name, true)
                .map_err(|e| self.dir_error(dir, parents, i, e, entry))?;
            if i < kept {
                self.parents.push((name.clone(), next));
            } else {
                self.deep = Some(next);
            }
        }
        Ok(())
    }

    /// Why component `i` of `parents`, looked up in `dir`, could not be
    /// opened as a directory.
    fn dir_error(
        &self,
        dir: &OwnedFd,
        parents: &[OsString],
        i: usize,
        error: Errno,
        entry: &str,
    ) -> LayerError {
        if !matches!(error, Errno::LOOP | Errno::NOTDIR) {
            return self.entry_err(entry)(error.into());
        }
        let prefix = join(&parents[..=i]);
        let is_link = rustix::fs::statat(dir, parents[i].as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
        let why = if is_link {
            format!("its path goes through the symlink {prefix:?}")
        } else {
            format!("{prefix:?} is not a directory")
        };
        self.refuse(entry, why)
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), LayerError> {
        let path = entry.path().map_err(|source| LayerError::Archive {
            layer: self.layer.clone(),
            source,
        })?;
        let name = path.to_string_lossy().into_owned();
        let mut comps = self.components(&path, &name)?;
        let Some(last) = comps.pop() else {
            // The layer root itself ("./"): its metadata is the lower dirs' business.
            return Ok(());
        };
        let kind = entry.header().entry_type();
        self.descend(&comps, &name)?;
        let parent = match &self.deep {
            Some(deep) => deep,
            None => self.parents.last().map_or(&self.root, |(_, fd)| fd),
        };
        let last_str = last.to_string_lossy();

        if last_str == OPAQUE_WHITEOUT {
            return rustix::fs::fsetxattr(
                parent,
                "trusted.overlay.opaque",
                b"y",
                XattrFlags::empty(),
            )
            .map_err(|e| self.entry_err(&name)(e.into()));
        }
        if let Some(hidden) = last_str.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.starts_with(WHITEOUT_PREFIX) || hidden.is_empty() {
                // aufs bookkeeping (.wh..wh.plnk and friends): not content.
                return Ok(());
            }
            return self.replace(parent, OsStr::new(hidden), &name, || {
                rustix::fs::mknodat(
                    parent,
                    hidden,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rustix::fs::makedev(0, 0),
                )
            });
        }

        let header = entry.header();
        let mode = Mode::from_raw_mode(header.mode().map_err(self.entry_err(&name))? & 0o7777);
        let uid = Uid::from_raw(header.uid().unwrap_or(0) as u32);
        let gid = Gid::from_raw(header.gid().unwrap_or(0) as u32);
        let mtime = header.mtime().map_err(self.entry_err(&name))?;
        let major = header.device_major().ok().flatten().unwrap_or(0);
        let minor = header.device_minor().ok().flatten().unwrap_or(0);
        let xattrs = xattrs_of(entry);
        let err = self.entry_err(&name);
        let target = last.as_os_str();

        match kind {
            tar::EntryType::Directory => {
                // An existing directory stays (its entries merge); anything
                // else at the name gives way.
                let made = match rustix::fs::mkdirat(parent, target, mode) {
                    Err(Errno::EXIST) => {
                        self.clear(parent, target, true, &name)?;
                        rustix::fs::mkdirat(parent, target, mode)
                    }
                    other => other,
                };
                match made {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(err(e.into())),
                }
                let mut full = comps.clone();
                full.push(last.clone());
                let dir = open_child_dir(parent, &last, false)
                    .map_err(|e| self.dir_error(parent, &full, comps.len(), e, &name))?;
                self.metadata(&dir, uid, gid, mode, &xattrs, &name)?;
                self.dir_times.push((full, mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let fd = self.replace(parent, target, &name, || {
                    rustix::fs::openat(
                        parent,
                        target,
                        OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::WRONLY
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                })?;
                let mut file = std::fs::File::from(fd);
                let written = copy_through(entry, &mut file, &mut self.buffer)
                    .map_err(self.entry_err(&name))?;
                if written >= EARLY_WRITEBACK {
                    start_writeback(&file);
                }
                self.metadata(&file, uid, gid, mode, &xattrs, &name)?;
                rustix::fs::futimens(&file, &times(mtime))
                    .map_err(|e| self.entry_err(&name)(e.into()))?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(self.entry_err(&name))?
                    .ok_or_else(|| self.refuse(&name, "symlink without a target"))?;
                self.replace(parent, target, &name, || {
                    rustix::fs::symlinkat(link.as_os_str(), parent, target)
                })?;
                let nofollow = AtFlags::SYMLINK_NOFOLLOW;
                rustix::fs::chownat(parent, target, Some(uid), Some(gid), nofollow)
                    .and_then(|()| rustix::fs::utimensat(parent, target, &times(mtime), nofollow))
                    .map_err(|e| self.entry_err(&name)(e.into()))?;
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(self.entry_err(&name))?
                    .ok_or_else(|| self.refuse(&name, "hardlink without a target"))?
                    .into_owned();
                let mut to = self.components(&link, &name).map_err(|_| {
                    self.refuse(
                        &name,
                        format!("hardlink target {:?} is outside the layer", link),
                    )
                })?;
                let to_name = to
                    .pop()
                    .ok_or_else(|| self.refuse(&name, "hardlink to the layer root"))?;
                let to_dir = self.open_dir(&to, &name, false)?;
                self.replace(parent, target, &name, || {
                    rustix::fs::linkat(
                        &to_dir,
                        to_name.as_os_str(),
                        parent,
                        target,
                        AtFlags::empty(),
                    )
                })?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let file_type = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                self.replace(parent, target, &name, || {
                    rustix::fs::mknodat(
                        parent,
                        target,
                        file_type,
                        mode,
                        rustix::fs::makedev(major, minor),
                    )
                })?;
                let nofollow = AtFlags::SYMLINK_NOFOLLOW;
                rustix::fs::chownat(parent, target, Some(uid), Some(gid), nofollow)
                    .and_then(|()| rustix::fs::chmodat(parent, target, mode, AtFlags::empty()))
                    .and_then(|()| rustix::fs::utimensat(parent, target, &times(mtime), nofollow))
                    .map_err(|e| self.entry_err(&name)(e.into()))?;
            }
            // PAX and GNU long-name headers are folded into entries by the
            // tar crate; anything else carries no file.
            _ => {}
        }
        Ok(())
    }

    /// Creates `name` in `parent` with `make`; when something is already
    /// there (every unpack starts in an empty directory, so: a name the tar
    /// lists twice, or a directory an earlier entry's path implied), clears
    /// it and makes it again. Most names are new: trying first spares them
    /// the `stat` that looking first would cost.
    fn replace<T>(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        entry: &str,
        make: impl Fn() -> Result<T, Errno>,
    ) -> Result<T, LayerError> {
        let made = match make() {
            Err(Errno::EXIST) => {
                self.clear(parent, name, false, entry)?;
                make()
            }
            other => other,
        };
        made.map_err(|e| self.entry_err(entry)(e.into()))
    }

    /// Removes what is at `name` so a new entry can take its place; an
    /// existing directory stays when the new entry is a directory too.
    fn clear(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        keep_dir: bool,
        entry: &str,
    ) -> Result<(), LayerError> {
        match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(self.entry_err(entry)(e.into())),
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                if keep_dir {
                    return Ok(());
                }
                remove_tree(parent, name).map_err(|e| self.entry_err(entry)(e.into()))
            }
            Ok(_) => rustix::fs::unlinkat(parent, name, AtFlags::empty())
                .map_err(|e| self.entry_err(entry)(e.into())),
        }
    }

    fn metadata(
        &self,
        fd: impl std::os::fd::AsFd,
        uid: Uid,
        gid: Gid,
        mode: Mode,
        xattrs: &[(OsString, Vec<u8>)],
        entry: &str,
    ) -> Result<(), LayerError> {
        // chown before chmod: chown clears setuid/setgid bits.
        rustix::fs::fchown(&fd, Some(uid), Some(gid))
            .and_then(|()| rustix::fs::fchmod(&fd, mode))
            .map_err(|e| self.entry_err(entry)(e.into()))?;
        for (key, value) in xattrs {
            rustix::fs::fsetxattr(&fd, key.as_os_str(), value, XattrFlags::empty()).map_err(
                |e| self.entry_err(entry)(io::Error::other(format!("xattr {key:?}: {e}"))),
            )?;
        }
        Ok(())
    }

    fn finish_dir_times(&mut self) -> Result<(), LayerError> {
        let dirs = std::mem::take(&mut self.dir_times);
        for (mut comps, mtime) in dirs {
            let name = join(&comps);
            let last = comps.pop().expect("directories have a name");
            let parent = self.open_dir(&comps, &name, false)?;
            rustix::fs::utimensat(
                &parent,
                last.as_os_str(),
                &times(mtime),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.entry_err(&name)(e.into()))?;
        }
        Ok(())
    }
}

/// Removes a directory tree below an already-safe parent, fd-relative.
fn remove_tree(parent: &OwnedFd, name: &OsStr) -> rustix::io::Result<()> {
    let dir = rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty())?;
    let children: Vec<(OsString, bool)> = rustix::fs::Dir::read_from(&dir)?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_bytes() != b"." && e.file_name().to_bytes() != b"..")
        .map(|e| {
            (
                OsStr::from_bytes(e.file_name().to_bytes()).to_os_string(),
                e.file_type() == FileType::Directory,
            )
        })
        .collect();
    for (child, is_dir) in children {
        if is_dir {
            remove_tree(&dir, &child)?;
        } else {
            rustix::fs::unlinkat(&dir, child.as_os_str(), AtFlags::empty())?;
        }
    }
    rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)
}

fn xattrs_of<R: Read>(entry: &mut tar::Entry<R>) -> Vec<(OsString, Vec<u8>)> {
    let Ok(Some(extensions)) = entry.pax_extensions() else {
        return Vec::new();
    };
    extensions
        .filter_map(Result::ok)
        .filter_map(|ext| {
            let key = ext.key_bytes().strip_prefix(b"SCHILY.xattr.")?;
            Some((
                OsStr::from_bytes(key).to_os_string(),
                ext.value_bytes().to_vec(),
            ))
        })
        .collect()
}

/// Access and modification times both set to `mtime` (whole seconds, as
/// tar keeps them).
pub(crate) fn times(mtime: u64) -> Timestamps {
    let at = Timespec {
        tv_sec: mtime as i64,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: at,
        last_modification: at,
    }
}

fn join(comps: &[OsString]) -> String {
    comps
        .iter()
        .map(|c| c.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
