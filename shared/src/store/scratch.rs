//! Scratch directories under `tmp/` that a live process owns: each is
//! flock'd by its owner for as long as it exists (made and locked under the
//! shared `tmp.lock`, judged under the exclusive one), so one whose lock is
//! free belongs to a process that died (SIGKILL, a crash) and may be swept,
//! with whatever it left mounted below it (a build step's overlay).

use super::gc::disk_usage;
use super::{Store, StoreError, io_error};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// A scratch directory: removed (after its owner has unmounted what it
/// mounted there) when dropped, and locked until then.
pub struct Scratch {
    dir: Option<tempfile::TempDir>,
    // Dropped after `dir`: the lock outlives the directory, so a sweeper
    // never sees this directory unlocked while it still exists.
    _lock: File,
}

impl Scratch {
    /// A new directory `tmp/<prefix>XXXXXX`, locked by us.
    pub fn new(store: &Store, prefix: &str) -> Result<Scratch, StoreError> {
        let tmp = store.tmp_dir();
        // Shared with other creators, exclusive for a sweep: no sweep sees
        // this directory between its creation and its lock.
        let _creating = store.temp_lock(false)?;
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&tmp)
            .map_err(io_error(&tmp))?;
        let lock = File::open(dir.path()).map_err(io_error(dir.path()))?;
        lock.lock().map_err(io_error(dir.path()))?;
        Ok(Scratch {
            dir: Some(dir),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("present until dropped").path()
    }

    /// Renames the finished directory to `dest` (on the same filesystem),
    /// keeping it there; our lock goes with the directory until we drop.
    pub fn rename_to(mut self, dest: &Path) -> std::io::Result<()> {
        let dir = self.dir.take().expect("present until dropped");
        match fs::rename(dir.path(), dest) {
            Ok(()) => {
                // The directory lives at `dest` now: nothing left to delete.
                let _ = dir.keep();
                Ok(())
            }
            Err(e) => {
                self.dir = Some(dir);
                Err(e)
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.dir.take();
    }
}

impl Store {
    /// Removes the scratch directories named `<prefix>…` whose owner died,
    /// detaching every mount left below them first. Returns the bytes freed.
    /// An empty `prefix` sweeps every dead scratch directory.
    pub fn sweep_scratch(&self, prefix: &str) -> u64 {
        let mut freed = 0;
        for (path, lock) in self.dead_scratch(prefix) {
            let mounts = mounts_below(&path);
            // Deepest first; lazily, as a dead builder's step may still be
            // on its way out.
            for mount in mounts.iter().rev() {
                let _ = rustix::mount::unmount(mount, rustix::mount::UnmountFlags::DETACH);
            }
            if !mounts_below(&path).is_empty() {
                continue; // never delete through a mount
            }
            freed += disk_usage(&path);
            let _ = fs::remove_dir_all(&path);
            drop(lock);
        }
        freed
    }

    /// The scratch directories named `<prefix>…` whose owner died, each
    /// with its lock, which we hold until it is dropped.
    pub fn dead_scratch(&self, prefix: &str) -> Vec<(PathBuf, File)> {
        let Ok(_no_new_dirs) = self.temp_lock(true) else {
            return Vec::new();
        };
        let Ok(entries) = fs::read_dir(self.tmp_dir()) else {
            return Vec::new();
        };
        let mut dead = Vec::new();
        for entry in entries.flatten() {
            if !entry.file_name().to_string_lossy().starts_with(prefix)
                || !entry.file_type().is_ok_and(|t| t.is_dir())
            {
                continue;
            }
            let path = entry.path();
            // Held until the directory is gone, so no new owner races us.
            let Ok(lock) = File::open(&path) else {
                continue;
            };
            if lock.try_lock().is_ok() {
                dead.push((path, lock));
            }
        }
        dead
    }
}

/// The mount points at or below `dir`, shallowest first, from our mount
/// table (the one the builders mounted in: the host's).
fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mount_points()
        .into_iter()
        .filter(|point| point.starts_with(dir))
        .collect();
    found.sort_by_key(|p| p.components().count());
    found.dedup();
    found
}

/// Every mount point in our mount table, in its order.
pub fn mount_points() -> Vec<PathBuf> {
    let Ok(table) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(octal) = field.get(i + 1..i + 4)
            && let Ok(value) = u8::from_str_radix(octal, 8)
        {
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_read_back() {
        assert_eq!(unescape(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape(r"/x\134y"), r"/x\y");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn a_live_owner_keeps_its_directory_and_a_dead_one_loses_it() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let live = Scratch::new(&store, "build-").unwrap();
        std::fs::write(live.path().join("f"), b"data").unwrap();
        // A dead owner's directory: nobody holds its lock.
        let dead = store.tmp_dir().join("build-dead");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("f"), b"12345").unwrap();
        // Another prefix is left to its own sweep.
        let other = store.tmp_dir().join("layer-dead");
        std::fs::create_dir(&other).unwrap();
        assert_eq!(store.sweep_scratch("build-"), 5);
        assert!(live.path().join("f").exists());
        assert!(!dead.exists());
        assert!(other.exists());
        assert_eq!(store.sweep_scratch(""), 0);
        assert!(!other.exists());
        let path = live.path().to_path_buf();
        drop(live);
        assert!(!path.exists());
    }
}
