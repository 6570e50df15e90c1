//! Where libcontainer keeps the state of running containers.
//!
//! That state (`state.json`, a copy of the spec, the notify socket) lives
//! only as long as the container's processes, and libcontainer rewrites it
//! several times per start. On a disk, each rewrite that truncates frees a
//! block, which a filesystem mounted with `discard` trims before the
//! system call returns. Like runc (`/run/runc`) and crun (`/run/crun`),
//! berth therefore keeps it in memory: in `/run/berth/runtime` where `/run`
//! is a tmpfs, else in `/dev/shm/berth/runtime`, one directory per
//! container (IDs are 256 random bits, so stores can share it). Either is
//! used only if it and its parent are ours (not links, owned by us,
//! writable by nobody else): `/dev/shm` is writable by everyone, and a
//! directory someone else made there could feed a false init PID to
//! ctr-stop. Otherwise, or without a tmpfs, the state stays in the store's
//! `runtime/`. A reboot empties the tmpfs, as it stops every container.

use super::{PRIVATE_DIR, Store};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The tmpfs mounts berth's runtime state may live under, by preference.
const IN_MEMORY: [&str; 2] = ["/run", "/dev/shm"];

impl Store {
    /// The directory libcontainer keeps this store's running containers
    /// in: in memory, shared with other stores, when the machine allows
    /// (see the module), else `<root>/runtime`.
    pub fn runtime_dir(&self) -> PathBuf {
        in_memory_runtime_dir().unwrap_or_else(|| self.on_disk_runtime_dir())
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
        let _ = fs::remove_dir_all(self.on_disk_runtime_dir().join(id));
        if let Some(dir) = in_memory_runtime_dir() {
            let _ = fs::remove_dir_all(dir.join(id));
        }
    }

    fn on_disk_runtime_dir(&self) -> PathBuf {
        self.root().join("runtime")
    }
}

fn in_memory_runtime_dir() -> Option<PathBuf> {
    IN_MEMORY.iter().find_map(|mount| {
        let fs = rustix::fs::statfs(*mount).ok()?;
        if fs.f_type != libc::TMPFS_MAGIC {
            return None;
        }
        let berth = our_dir(&Path::new(mount).join("berth"))?;
        our_dir(&berth.join("runtime"))
    })
}

/// `dir`, made 0700 if it is missing, if it is ours: a directory (not a
/// link) that we own and nobody else may write to.
fn our_dir(dir: &Path) -> Option<PathBuf> {
    let _ = fs::DirBuilder::new().mode(PRIVATE_DIR).create(dir);
    let meta = fs::symlink_metadata(dir).ok()?;
    let ours = meta.is_dir()
        && meta.uid() == rustix::process::geteuid().as_raw()
        && meta.mode() & 0o022 == 0;
    ours.then(|| dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_directory_others_could_write_to_is_never_used() {
        let base = tempfile::tempdir().unwrap();
        // Made here, 0700: used.
        let made = base.path().join("made");
        assert_eq!(our_dir(&made), Some(made.clone()));
        assert_eq!(fs::metadata(&made).unwrap().mode() & 0o777, 0o700);
        // Readable by others (as /run/berth is made): used.
        let readable = base.path().join("readable");
        fs::create_dir(&readable).unwrap();
        fs::set_permissions(&readable, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(our_dir(&readable), Some(readable.clone()));
        // Writable by others: refused.
        for mode in [0o777, 0o775, 0o1777] {
            let open = base.path().join(format!("open-{mode:o}"));
            fs::create_dir(&open).unwrap();
            fs::set_permissions(&open, fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(our_dir(&open), None, "{mode:o}");
        }
        // A link to a directory of ours: refused.
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&made, &link).unwrap();
        assert_eq!(our_dir(&link), None);
    }

    #[test]
    fn the_state_of_a_store_is_in_memory_when_the_machine_has_a_tmpfs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let runtime = store.runtime_dir();
        let tmpfs = IN_MEMORY
            .iter()
            .any(|mount| rustix::fs::statfs(*mount).is_ok_and(|fs| fs.f_type == libc::TMPFS_MAGIC));
        if tmpfs {
            let fs = rustix::fs::statfs(&runtime).unwrap();
            assert_eq!(fs.f_type, libc::TMPFS_MAGIC, "{runtime:?}");
        } else {
            assert_eq!(runtime, store.root().join("runtime"));
        }
        // A container's state, wherever it is, is found and removed.
        fs::create_dir_all(store.root().join("runtime").join("old")).unwrap();
        assert_eq!(
            store.runtime_dir_holding("old"),
            store.root().join("runtime")
        );
        store.remove_runtime_state("old");
        assert!(!store.root().join("runtime").join("old").exists());
    }
}
