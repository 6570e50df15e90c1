//! A copy of the bench store on a tmpfs of its own, for the row that
//! separates what a start costs berth from what it costs the disk under it:
//! crun keeps its state on /run, a tmpfs, while berth's container
//! directories and overlay upper dirs live in the store (libcontainer's
//! state is on a tmpfs already where the machine has one).

use std::path::Path;
use std::process::Command;

/// A tmpfs mounted on a temporary directory, holding a copy of a store;
/// unmounted when dropped.
pub(super) struct TmpfsStore {
    mount: tempfile::TempDir,
}

impl TmpfsStore {
    /// Mounts the tmpfs and copies the store at `root` into it.
    pub(super) fn copy_of(root: &Path) -> Result<TmpfsStore, String> {
        let mount = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "mode=0700", "berth-bench"])
            .arg(mount.path())
            .status()
            .map_err(|e| format!("mount: {e}"))?;
        if !mounted.success() {
            return Err("mounting a tmpfs for the bench store failed".into());
        }
        // From here on the guard unmounts, whatever fails next.
        let store = TmpfsStore { mount };
        let copied = Command::new("cp")
            .arg("-a")
            .arg(root.join("."))
            .arg(store.root())
            .status()
            .map_err(|e| format!("cp: {e}"))?;
        if !copied.success() {
            return Err("copying the bench store onto a tmpfs failed".into());
        }
        Ok(store)
    }

    pub(super) fn root(&self) -> &Path {
        self.mount.path()
    }
}

impl Drop for TmpfsStore {
    fn drop(&mut self) {
        // Lazily: a container the bench left behind must not keep the
        // mount, and with it the memory, alive.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.mount.path())
            .status();
    }
}
