//! A network namespace that outlives its processes: a new one bind-mounted
//! onto a file, as `ip netns add` makes them, so a container's network is
//! set up before it starts (libcontainer joins the namespace by path) and
//! torn down after it exits.

use std::fs::File;
use std::io;
use std::path::Path;

/// Makes a new network namespace and pins it at `path`.
pub fn create(path: &Path) -> io::Result<()> {
    File::create(path)?;
    let target = path.to_path_buf();
    // unshare(CLONE_NEWNET) moves only the calling thread: a thread of its
    // own does it, pins its namespace, and ends; ours is untouched.
    let pinned = std::thread::spawn(move || -> io::Result<()> {
        // SAFETY: unshare takes flags only; it affects this thread alone.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        rustix::mount::mount_bind("/proc/thread-self/ns/net", &target)?;
        Ok(())
    })
    .join()
    .map_err(|_| io::Error::other("the namespace thread panicked"))?;
    if pinned.is_err() {
        let _ = std::fs::remove_file(path);
    }
    pinned
}

/// Pins the existing namespace `source` (such as `/proc/<pid>/ns/net`) at
/// `path` too: it lives while either pin or a process holds it.
pub fn pin(source: &Path, path: &Path) -> io::Result<()> {
    File::create(path)?;
    let pinned = rustix::mount::mount_bind(source, path).map_err(io::Error::from);
    if pinned.is_err() {
        let _ = std::fs::remove_file(path);
    }
    pinned
}

/// Unpins the namespace (it goes when nothing else uses it) and removes
/// the file. Missing is fine: removal is idempotent.
pub fn remove(path: &Path) {
    let _ = rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH);
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_namespace_is_new_and_goes_when_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netns");
        create(&path).unwrap();
        let ours = std::fs::metadata("/proc/self/ns/net").unwrap();
        let pinned = std::fs::metadata(&path).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_ne!(ours.ino(), pinned.ino(), "not a new namespace");
        // Our own thread stayed where it was.
        assert_eq!(
            std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino(),
            ours.ino()
        );
        remove(&path);
        assert!(!path.exists());
        remove(&path);
    }
}
