//! A container's root filesystem: an overlay of its image's unpacked layers
//! under its own upper dir, or, where overlayfs is missing or refused, a
//! private copy of the layers (Docker's `vfs` driver does the same); and
//! directories made in it as the container will resolve their paths.

use super::RunError;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

// Written beside `rootfs/` once a copy is complete: a restart reuses it.
use crate::container::ROOTFS_COPIED as COPIED;

/// `BERTH_ROOTFS=copy` forces the copy (to check it, or where an overlay
/// would mount but misbehave).
fn copy_forced() -> bool {
    std::env::var_os("BERTH_ROOTFS").is_some_and(|v| v == "copy")
}

/// Makes `dir/rootfs` the container's root: the overlay, else the copy.
/// With `volatile` (a `--rm` container, whose upper dir goes with it) the
/// overlay never syncs.
pub fn prepare(layers: &[PathBuf], dir: &Path, volatile: bool) -> Result<(), RunError> {
    let rootfs = dir.join("rootfs");
    if dir.join(COPIED).exists() {
        return Ok(());
    }
    if !copy_forced() {
        match mount_overlay(layers, dir, volatile) {
            Ok(()) => return Ok(()),
            // No overlayfs, or not on this filesystem or in this namespace.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENODEV | libc::EINVAL | libc::EPERM)
                ) => {}
            Err(source) => {
                return Err(RunError::Mount {
                    path: rootfs,
                    source,
                });
            }
        }
    }
    for layer in layers {
        copy_layer(layer, &rootfs).map_err(|source| RunError::Mount {
            path: rootfs.clone(),
            source,
        })?;
    }
    let marker = dir.join(COPIED);
    fs::write(&marker, b"").map_err(|source| RunError::Io {
        path: marker,
        source,
    })
}

/// Mounts the layers under the container's own upper and work dirs.
fn mount_overlay(layers: &[PathBuf], dir: &Path, volatile: bool) -> io::Result<()> {
    let (upper, work) = (dir.join("upper"), dir.join("work"));
    // A volatile mount leaves this behind, and overlay refuses the work dir
    // until it is gone (its upper dir may have lost writes in a crash; it
    // is a `--rm` container's, started again only by hand).
    let incompat = work.join("work").join("incompat");
    if incompat.exists() {
        let _ = fs::remove_dir_all(&incompat);
    }
    let writes = crate::overlay::Upper {
        upper: &upper,
        work: &work,
        volatile,
    };
    crate::overlay::mount(layers, Some(writes), &dir.join("rootfs"))
}

/// Copies one unpacked layer onto `dst`, applying its overlay-style
/// whiteouts (a 0/0 character device deletes, an opaque directory hides
/// what lay below). Parents are handled before children and every one is
/// made a real directory first, so nothing is ever written through a
/// symlink an earlier layer left.
fn copy_layer(src: &Path, dst: &Path) -> io::Result<()> {
    if is_opaque(src) {
        for entry in fs::read_dir(dst)? {
            remove_any(&entry?.path())?;
        }
    }
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from)?;
        let kind = meta.file_type();
        if kind.is_char_device() && meta.rdev() == 0 {
            remove_any(&to)?;
            continue;
        }
        if kind.is_dir() {
            match fs::symlink_metadata(&to) {
                Ok(existing) if existing.is_dir() => {}
                Ok(_) => {
                    remove_any(&to)?;
                    fs::create_dir(&to)?;
                }
                Err(_) => fs::create_dir(&to)?,
            }
            copy_layer(&from, &to)?;
        } else {
            remove_any(&to)?;
            if kind.is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
            } else if kind.is_file() {
                fs::copy(&from, &to)?;
            } else {
                // Devices, FIFOs and sockets: made anew with the same numbers.
                let path = CString::new(to.as_os_str().as_encoded_bytes())?;
                // SAFETY: mknod reads a valid C string and plain integers.
                if unsafe { libc::mknod(path.as_ptr(), meta.mode(), meta.rdev()) } != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()))?;
        if !kind.is_symlink() {
            fs::set_permissions(&to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
        let times = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: meta.atime(),
                tv_nsec: meta.atime_nsec() as _,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: meta.mtime(),
                tv_nsec: meta.mtime_nsec() as _,
            },
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            &to,
            &times,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    Ok(())
}

/// Copies the image's directory `path` (resolved inside `rootfs`, so an
/// image's symlink cannot point it at the host) into `dst`, keeping owners,
/// modes and times, and gives `dst` the directory's own owner and mode (as
/// Docker does for a new volume, so a non-root USER can write the volume
/// its image made for it). Nothing there, or not a directory: nothing to
/// copy.
pub fn copy_image_dir(rootfs: &Path, path: &str, dst: &Path) -> io::Result<()> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let root = rustix::fs::open(
        rootfs,
        OFlags::DIRECTORY | OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let relative = path.trim_start_matches('/');
    let found = rustix::fs::openat2(
        &root,
        if relative.is_empty() { "." } else { relative },
        OFlags::DIRECTORY | OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT,
    );
    let dir = match found {
        Ok(dir) => dir,
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let src = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&dir)
    ));
    copy_layer(&src, dst)?;
    let meta = rustix::fs::fstat(&dir)?;
    std::os::unix::fs::lchown(dst, Some(meta.st_uid), Some(meta.st_gid))?;
    fs::set_permissions(dst, fs::Permissions::from_mode(meta.st_mode & 0o7777))
}

fn is_opaque(dir: &Path) -> bool {
    let mut value = [0u8; 4];
    matches!(
        rustix::fs::lgetxattr(dir, "trusted.overlay.opaque", &mut value),
        Ok(1) if value[0] == b'y'
    )
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// `mkdir -p` inside the container's root, with every lookup resolved as
/// if the rootfs were `/` so an image symlink cannot point us outside.
pub(super) fn mkdir_in_root(rootfs: &Path, path: &str) -> io::Result<()> {
    use rustix::fs::{Mode, OFlags};
    let root = rustix::fs::open(
        rootfs,
        OFlags::DIRECTORY | OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    mkdir_following(&root, path, 0)
}

/// `mkdir -p` of `path` below `root`, resolving as the container will: a
/// component that is a symlink leading nowhere yet (`/data -> /srv/data`)
/// has its target made, inside the root, as Docker makes a volume's.
fn mkdir_following(root: &std::os::fd::OwnedFd, path: &str, depth: u32) -> io::Result<()> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    // The kernel's own limit on links followed in one lookup.
    if depth > 40 {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    let open_in_root = |path: &str| {
        rustix::fs::openat2(
            root,
            if path.is_empty() { "." } else { path },
            OFlags::DIRECTORY | OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT,
        )
    };
    let mut prefix = String::new();
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        let parent = open_in_root(&prefix)?;
        match rustix::fs::mkdirat(&parent, part, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let here = format!("{prefix}/{part}");
        if let Err(rustix::io::Errno::NOENT) = open_in_root(&here)
            && let Ok(target) = rustix::fs::readlinkat(&parent, part, Vec::new())
        {
            let target = target.to_string_lossy().into_owned();
            // Relative to the link's directory; IN_ROOT keeps `..` inside.
            let target = if target.starts_with('/') {
                target
            } else {
                format!("{prefix}/{target}")
            };
            mkdir_following(root, &target, depth + 1)?;
        }
        prefix = here;
    }
    Ok(())
}
