//! A container's root filesystem as `ctr-cp` sees it: a directory we hold
//! open, and paths resolved in it as if chrooted (`openat2` with
//! `RESOLVE_IN_ROOT`), so no symlink or `..` inside reaches the host.
//!
//! A running container's root is its overlay, mounted at
//! `containers/<id>/rootfs` by its owner. A stopped one's is mounted for
//! us alone: in a private mount namespace of our own (so it is never seen
//! by anyone else and dies with us, even if we are killed), and detached as
//! soon as its root is open, while we hold the owner lock so it cannot be
//! started (and mount the same upper dir) meanwhile. Its mount point is its
//! own `rootfs/`, which nobody else uses while we hold that lock.

use super::CopyError;
use crate::container::{Owner, ROOTFS_COPIED, Record, owner};
use crate::store::Store;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// An open root directory and what keeps it valid.
pub struct Root {
    fd: OwnedFd,
    /// A stopped container's: nobody starts it while we copy.
    _owner: Option<Owner>,
}

impl AsFd for Root {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(Errno) -> CopyError {
    let what = what.into();
    move |e| CopyError::Io {
        what,
        source: e.into(),
    }
}

impl Root {
    /// Any local directory as a root (the host side of a copy).
    pub fn host(dir: &Path) -> Result<Root, CopyError> {
        let fd = rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io(dir.display().to_string()))?;
        Ok(Root { fd, _owner: None })
    }

    /// The root filesystem of `record`'s container, running or stopped.
    pub fn container(store: &Store, record: &Record) -> Result<Root, CopyError> {
        let dir = store.container_dir(&record.id);
        let rootfs = dir.join("rootfs");
        let open_rootfs = |owner| {
            let fd = rustix::fs::open(
                &rootfs,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io(rootfs.display().to_string()))?;
            Ok(Root { fd, _owner: owner })
        };
        let owner = match Owner::take(&dir) {
            // Someone runs it: its overlay is mounted (or it is a copy).
            // Not yet (being started), or someone else copies while it is
            // stopped: the bare mount point is no root to read or write.
            Err(crate::container::ContainerError::AlreadyRunning(_)) => {
                if dir.join(ROOTFS_COPIED).exists() || is_mount_point(&dir, &rootfs) {
                    return open_rootfs(None);
                }
                return Err(CopyError::Busy(record.id.clone()));
            }
            Err(e) => return Err(e.into()),
            Ok(owner) => owner,
        };
        // Where overlayfs was missing, the root is a plain copy.
        if dir.join(ROOTFS_COPIED).exists() {
            return open_rootfs(Some(owner));
        }
        // A crash may have left the old overlay mounted: the one teardown.
        owner::teardown(store, &record.id, &rootfs);
        let image = store.resolve_image(&record.image)?;
        let config = store.read_image_config(&image)?;
        let layers = store.unpack_layers(&image, &config)?;
        private_mount_namespace()?;
        // Over its own mount point: in our namespace alone, nobody else
        // sees it, and it goes with us however we end.
        std::fs::create_dir_all(&rootfs).map_err(|source| CopyError::Io {
            what: rootfs.display().to_string(),
            source,
        })?;
        let (upper, work) = (dir.join("upper"), dir.join("work"));
        let writes = crate::overlay::Upper {
            upper: &upper,
            work: &work,
            volatile: false,
        };
        crate::overlay::mount(&layers, Some(writes), &rootfs).map_err(|source| CopyError::Io {
            what: format!("mounting the root filesystem of {}", record.id),
            source,
        })?;
        let opened = rustix::fs::open(
            &rootfs,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        );
        // Detached at once: it lives only as long as our descriptor.
        let _ = rustix::mount::unmount(&rootfs, rustix::mount::UnmountFlags::DETACH);
        let fd = opened.map_err(io(rootfs.display().to_string()))?;
        Ok(Root {
            fd,
            _owner: Some(owner),
        })
    }

    /// Opens `path` (relative to the root, or absolute in it) as if the
    /// root were `/`; the last component is followed only if `follow`.
    pub fn open(&self, path: &str, flags: OFlags, follow: bool) -> Result<OwnedFd, Errno> {
        let mut flags = flags | OFlags::CLOEXEC;
        if !follow {
            flags |= OFlags::NOFOLLOW;
        }
        let path = if path.is_empty() { "." } else { path };
        loop {
            match rustix::fs::openat2(
                &self.fd,
                path,
                flags,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            ) {
                // A rename elsewhere raced the lookup: the kernel asks again.
                Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
                other => return other,
            }
        }
    }
}

/// Whether `rootfs` is mounted over (its device differs from its
/// parent's, as an overlay's always does).
fn is_mount_point(dir: &Path, rootfs: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(dir), std::fs::metadata(rootfs)) {
        (Ok(parent), Ok(root)) => parent.dev() != root.dev(),
        _ => false,
    }
}

/// Puts this process in a mount namespace of its own whose mounts do not
/// propagate back: what it mounts is seen by nobody else and goes when it
/// exits. The process must still be single-threaded.
fn private_mount_namespace() -> Result<(), CopyError> {
    // SAFETY: unshare takes flags only; it affects this process alone.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(CopyError::Io {
            what: "creating a private mount namespace".to_string(),
            source: std::io::Error::last_os_error(),
        });
    }
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    )
    .map_err(io("making the mount namespace private"))
}
