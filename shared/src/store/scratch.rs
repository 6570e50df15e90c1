//! Scratch directories under `tmp/` that a live process owns: each is
//! flock'd by its owner for as long as it exists, so one whose lock is free
//! belongs to a process that died (SIGKILL, a crash) and may be swept, with
//! whatever it left mounted below it (a build step's overlay).

use super::gc::disk_usage;
use super::{Store, StoreError, io_error};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A scratch directory: removed (after its owner has unmounted what it
/// mounted there) when dropped, and locked until then.
pub struct Scratch {
    dir: Option<tempfile::TempDir>,
    // Dropped after `dir`: the lock outlives the directory, so a sweeper
    // never sees this directory unlocked while it still exists.
    _lock: File,
}

/// How long an unlocked directory with nothing mounted is left alone: its
/// owner may be between creating it and locking it.
const GRACE: Duration = Duration::from_secs(60);

impl Scratch {
    /// A new directory `tmp/<prefix>XXXXXX`, locked by us.
    pub fn new(store: &Store, prefix: &str) -> Result<Scratch, StoreError> {
        let tmp = store.tmp_dir();
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
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.dir.take();
    }
}

impl Store {
    /// Removes the scratch directories named `<prefix>…` whose owner died,
    /// detaching every mount left below them first. Returns the bytes freed.
    pub fn sweep_scratch(&self, prefix: &str) -> u64 {
        let Ok(entries) = fs::read_dir(self.tmp_dir()) else {
            return 0;
        };
        let mut freed = 0;
        for entry in entries.flatten() {
            if !entry.file_name().to_string_lossy().starts_with(prefix) {
                continue;
            }
            let path = entry.path();
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            // Held until the directory is gone, so no new owner races us.
            let Ok(lock) = File::open(&path) else {
                continue;
            };
            if lock.try_lock().is_err() {
                continue; // alive
            }
            let mounts = mounts_below(&path);
            let young = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_none_or(|age| age < GRACE);
            if mounts.is_empty() && young {
                continue;
            }
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
        }
        freed
    }
}

/// The mount points at or below `dir`, shallowest first, from our mount
/// table (the one the builders mounted in: the host's).
fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let Ok(table) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .filter(|point| point.starts_with(dir))
        .collect();
    found.sort_by_key(|p| p.components().count());
    found.dedup();
    found
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
        // A dead owner's directory: old enough, nobody holds its lock.
        let dead = store.tmp_dir().join("build-dead");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("f"), b"12345").unwrap();
        let old = SystemTime::now() - 2 * GRACE;
        File::open(&dead).unwrap().set_modified(old).unwrap();
        // A fresh unlocked one may be an owner about to lock it.
        let fresh = store.tmp_dir().join("build-fresh");
        std::fs::create_dir(&fresh).unwrap();
        assert_eq!(store.sweep_scratch("build-"), 5);
        assert!(live.path().join("f").exists());
        assert!(!dead.exists());
        assert!(fresh.exists());
        let path = live.path().to_path_buf();
        drop(live);
        assert!(!path.exists());
    }
}
