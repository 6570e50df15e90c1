//! Where libcontainer keeps the state of a store's running containers.
//!
//! That state (`state.json`, a copy of the spec, the notify socket) lives
//! only as long as the container's processes, and libcontainer rewrites it
//! several times per start. On a disk, each rewrite that truncates frees a
//! block, which a filesystem mounted with `discard` trims before the
//! system call returns: about 1 ms of a `ctr-run --rm IMAGE true` on the
//! machines CI runs on. Like runc (`/run/runc`) and crun (`/run/crun`),
//! berth therefore keeps it in memory: under `/run/berth` where `/run` is a
//! tmpfs, else under `/dev/shm/berth`, one directory per store (named by
//! the store root's device and inode, which do not change with the path it
//! is reached by). Either is used only when it is a directory that is ours
//! alone (not a link, owned by us, mode 0700): `/dev/shm` is writable by
//! everyone, and a directory someone else made could feed a false init PID
//! to ctr-stop. Otherwise, or without a tmpfs, the state stays in the
//! store's `runtime/`, as before. A reboot empties the tmpfs, as it stops
//! every container.

use super::{PRIVATE_DIR, Store};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The tmpfs directories berth's runtime state may live in, by preference.
const IN_MEMORY: [(&str, &str); 2] = [("/run", "berth"), ("/dev/shm", "berth")];

impl Store {
    /// The directory libcontainer keeps this store's running containers
    /// in: in memory when the machine allows (see the module), else
    /// `<root>/runtime`.
    pub fn runtime_dir(&self) -> PathBuf {
        self.in_memory_runtime_dir()
            .unwrap_or_else(|| self.on_disk_runtime_dir())
    }

    /// The runtime directory that holds container `id`'s state: the one
    /// [`runtime_dir`](Self::runtime_dir) names, unless only the store's
    /// own has it (a container started while no tmpfs could be used).
    pub fn runtime_dir_holding(&self, id: &str) -> PathBuf {
        let preferred = self.runtime_dir();
        let on_disk = self.on_disk_runtime_dir();
        if preferred != on_disk && !preferred.join(id).exists() && on_disk.join(id).exists() {
            return on_disk;
        }
        preferred
    }

    /// Removes whatever runtime state container `id` has, wherever it is.
    pub fn remove_runtime_state(&self, id: &str) {
        let on_disk = self.on_disk_runtime_dir();
        let _ = fs::remove_dir_all(on_disk.join(id));
        if let Some(dir) = self.in_memory_runtime_dir() {
            let _ = fs::remove_dir_all(dir.join(id));
        }
    }

    fn on_disk_runtime_dir(&self) -> PathBuf {
        self.root().join("runtime")
    }

    fn in_memory_runtime_dir(&self) -> Option<PathBuf> {
        let root = fs::metadata(self.root()).ok()?;
        let name = format!("{:x}-{:x}", root.dev(), root.ino());
        IN_MEMORY
            .iter()
            .find_map(|(mount, dir)| private_tmpfs_dir(Path::new(mount), dir))
            .map(|base| base.join(name))
    }
}

/// `<mount>/<name>` when `mount` is a tmpfs and that directory is ours
/// alone, made so if it is missing; `None` otherwise.
fn private_tmpfs_dir(mount: &Path, name: &str) -> Option<PathBuf> {
    let fs = rustix::fs::statfs(mount).ok()?;
    if fs.f_type != libc::TMPFS_MAGIC {
        return None;
    }
    let dir = mount.join(name);
    let _ = fs::DirBuilder::new().mode(PRIVATE_DIR).create(&dir);
    let meta = fs::symlink_metadata(&dir).ok()?;
    let ours = meta.is_dir()
        && meta.uid() == rustix::process::geteuid().as_raw()
        && meta.mode() & 0o077 == 0;
    ours.then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_directory_that_is_not_ours_alone_is_never_used() {
        let Ok(fs) = rustix::fs::statfs("/dev/shm") else {
            return;
        };
        if fs.f_type != libc::TMPFS_MAGIC {
            return;
        }
        let base = tempfile::tempdir_in("/dev/shm").unwrap();
        // Made here, 0700: used.
        let made = private_tmpfs_dir(base.path(), "berth").unwrap();
        assert_eq!(made, base.path().join("berth"));
        assert_eq!(fs::metadata(&made).unwrap().mode() & 0o777, 0o700);
        // Readable by others: refused.
        let open = base.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(private_tmpfs_dir(base.path(), "open"), None);
        // A link to a private directory: refused.
        std::os::unix::fs::symlink(&made, base.path().join("link")).unwrap();
        assert_eq!(private_tmpfs_dir(base.path(), "link"), None);
        // Not a tmpfs: refused (the store's own runtime/ is used instead).
        let disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        if rustix::fs::statfs(disk.path()).unwrap().f_type != libc::TMPFS_MAGIC {
            assert_eq!(private_tmpfs_dir(disk.path(), "berth"), None);
        }
    }

    #[test]
    fn one_store_reached_by_two_paths_has_one_runtime_dir() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("store"), dir.path().join("alias")).unwrap();
        let alias = Store::open(dir.path().join("alias")).unwrap();
        if store.runtime_dir().starts_with(store.root()) {
            return; // no tmpfs here: each path has the store's own runtime/
        }
        assert_eq!(store.runtime_dir(), alias.runtime_dir());
        let other = Store::open(dir.path().join("other")).unwrap();
        assert_ne!(store.runtime_dir(), other.runtime_dir());
    }
}
