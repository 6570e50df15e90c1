//! Writing one file or tree as a tar stream, as Docker's archive does for
//! `docker cp`: the top entry under a name we choose, everything below it
//! read through directory descriptors, never following a symlink (a child
//! is opened by name with `O_NOFOLLOW`, so a link planted or swapped in by
//! a running container is copied as a link, never read through).

use super::CopyError;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use std::collections::HashMap;
use std::ffi::{CStr, OsStr};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// A tar writer over `out`, remembering hard links by inode.
pub struct Packer<W: Write> {
    builder: tar::Builder<W>,
    links: HashMap<(u64, u64), String>,
    /// Bytes of file content written.
    pub bytes: u64,
}

fn failed(what: &str) -> impl FnOnce(Errno) -> CopyError + '_ {
    move |e| CopyError::Io {
        what: what.to_string(),
        source: e.into(),
    }
}

fn write_failed(e: std::io::Error) -> CopyError {
    CopyError::Io {
        what: "writing the archive".to_string(),
        source: e,
    }
}

/// Where an object is: a child `name` of directory `dir`, or (with an
/// empty name) the object `dir` is itself, held by an `O_PATH` descriptor.
#[derive(Clone, Copy)]
struct At<'a> {
    dir: BorrowedFd<'a>,
    name: &'a CStr,
}

impl At<'_> {
    fn open(&self, flags: OFlags) -> Result<OwnedFd, Errno> {
        let flags = flags | OFlags::CLOEXEC | OFlags::NONBLOCK;
        if self.name.is_empty() {
            // Reopened through its /proc link: the very inode we hold.
            let link = format!("/proc/self/fd/{}", self.dir.as_raw_fd());
            rustix::fs::open(link, flags, Mode::empty())
        } else {
            rustix::fs::openat(self.dir, self.name, flags | OFlags::NOFOLLOW, Mode::empty())
        }
    }
}

impl<W: Write> Packer<W> {
    pub fn new(out: W) -> Packer<W> {
        let mut builder = tar::Builder::new(out);
        builder.follow_symlinks(false);
        Packer {
            builder,
            links: HashMap::new(),
            bytes: 0,
        }
    }

    /// Writes the object `top` (an `O_PATH` descriptor) as `name`, or,
    /// with no name, a directory's children only (`SRC/.`).
    pub fn top(&mut self, top: &OwnedFd, name: Option<&str>) -> Result<(), CopyError> {
        let stat = rustix::fs::fstat(top).map_err(failed("stat"))?;
        let at = At {
            dir: top.as_fd(),
            name: c"",
        };
        match name {
            Some(name) => self.object(at, &stat, name),
            None => self.children(at, ""),
        }
    }

    /// Ends the archive and hands back the writer.
    pub fn finish(self) -> Result<W, CopyError> {
        self.builder.into_inner().map_err(write_failed)
    }

    fn object(&mut self, at: At<'_>, stat: &Stat, path: &str) -> Result<(), CopyError> {
        let kind = FileType::from_raw_mode(stat.st_mode);
        let mut header = tar::Header::new_gnu();
        header.set_mode(stat.st_mode & 0o7777);
        header.set_uid(stat.st_uid.into());
        header.set_gid(stat.st_gid.into());
        header.set_mtime(stat.st_mtime.max(0) as u64);
        header.set_size(0);
        match kind {
            FileType::Directory => {
                header.set_entry_type(tar::EntryType::Directory);
                let dir_name = if path.is_empty() || path.ends_with('/') {
                    path.to_string()
                } else {
                    format!("{path}/")
                };
                self.builder
                    .append_data(&mut header, &dir_name, std::io::empty())
                    .map_err(write_failed)?;
                self.children(at, path)
            }
            FileType::RegularFile => {
                let key = (stat.st_dev, stat.st_ino);
                if stat.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key) {
                        header.set_entry_type(tar::EntryType::Link);
                        let first = first.clone();
                        return self
                            .builder
                            .append_link(&mut header, path, first)
                            .map_err(write_failed);
                    }
                    self.links.insert(key, path.to_string());
                }
                let file = at.open(OFlags::RDONLY).map_err(failed(path))?;
                let now = rustix::fs::fstat(&file).map_err(failed(path))?;
                // Swapped for something else since we looked: not ours to read.
                if FileType::from_raw_mode(now.st_mode) != FileType::RegularFile {
                    return Err(CopyError::Changed(path.to_string()));
                }
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(now.st_size as u64);
                let file = std::fs::File::from(file);
                // Exactly the size announced, even if the file grows meanwhile.
                let reader = std::io::Read::take(file, now.st_size as u64);
                self.builder
                    .append_data(&mut header, path, reader)
                    .map_err(write_failed)?;
                self.bytes += now.st_size as u64;
                Ok(())
            }
            FileType::Symlink => {
                let target =
                    rustix::fs::readlinkat(at.dir, at.name, Vec::new()).map_err(failed(path))?;
                header.set_entry_type(tar::EntryType::Symlink);
                self.builder
                    .append_link(
                        &mut header,
                        path,
                        std::path::Path::new(OsStr::from_bytes(target.to_bytes())),
                    )
                    .map_err(write_failed)
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                header.set_entry_type(match kind {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                });
                header
                    .set_device_major(rustix::fs::major(stat.st_rdev))
                    .and_then(|()| header.set_device_minor(rustix::fs::minor(stat.st_rdev)))
                    .map_err(write_failed)?;
                self.builder
                    .append_data(&mut header, path, std::io::empty())
                    .map_err(write_failed)
            }
            // Sockets have no place in an archive (Docker skips them too).
            _ => Ok(()),
        }
    }

    /// The entries of directory `at`, sorted, each under `prefix/`.
    fn children(&mut self, at: At<'_>, prefix: &str) -> Result<(), CopyError> {
        let dir = at
            .open(OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(failed(if prefix.is_empty() { "." } else { prefix }))?;
        let mut names: Vec<std::ffi::CString> = Vec::new();
        for entry in rustix::fs::Dir::read_from(&dir).map_err(failed(prefix))? {
            let entry = entry.map_err(failed(prefix))?;
            let name = entry.file_name();
            if name != c"." && name != c".." {
                names.push(name.to_owned());
            }
        }
        names.sort();
        for name in names {
            let stat = match rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => stat,
                // Removed meanwhile (a running container): as if never there.
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(failed(prefix)(e)),
            };
            let text = name.to_string_lossy();
            let path = if prefix.is_empty() {
                text.into_owned()
            } else {
                format!("{}/{text}", prefix.trim_end_matches('/'))
            };
            let child = At {
                dir: dir.as_fd(),
                name: &name,
            };
            self.object(child, &stat, &path)?;
        }
        Ok(())
    }
}
