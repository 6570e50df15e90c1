//! A container's reserve: space set aside in its directory when it is
//! created, given up only when its record cannot otherwise be written, so a
//! filesystem filled while the container runs still gets its exit code.

use crate::store::PRIVATE_FILE;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Ample for a record (a few KiB) and its temp file, in any block size.
const SIZE: u64 = 64 * 1024;
const NAME: &str = "reserve";

/// Sets the reserve aside in `dir` unless it is there already. A partial
/// reserve is removed, so the space it took is never lost.
pub(super) fn make(dir: &Path) -> io::Result<()> {
    let path = dir.join(NAME);
    let file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE)
        .open(&path)
    {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        other => other?,
    };
    let allocated = match rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, SIZE)
    {
        // A filesystem without fallocate gets real blocks of zeros.
        Err(rustix::io::Errno::OPNOTSUPP) => (&file).write_all(&[0; SIZE as usize]),
        other => other.map_err(io::Error::from),
    };
    if allocated.is_err() {
        let _ = fs::remove_file(&path);
    }
    allocated
}

/// Gives the reserve in `dir` up; whether there was one to give.
pub(super) fn release(dir: &Path) -> bool {
    fs::remove_file(dir.join(NAME)).is_ok()
}

/// Whether a write failed for want of space (or of quota). By kind: a
/// temp file's errors come wrapped with its path, without the OS code.
pub(super) fn is_full(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_reserve_holds_real_blocks_and_is_made_once() {
        let dir = tempfile::tempdir().unwrap();
        make(dir.path()).unwrap();
        let meta = fs::metadata(dir.path().join(NAME)).unwrap();
        assert!(meta.blocks() * 512 >= SIZE, "{} blocks", meta.blocks());
        assert_eq!(meta.mode() & 0o777, 0o600);
        make(dir.path()).unwrap();
        assert!(release(dir.path()));
        assert!(!release(dir.path()));
        assert!(is_full(&io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(!is_full(&io::Error::from_raw_os_error(libc::EIO)));
        let wrapped = io::Error::new(io::ErrorKind::StorageFull, "tmp/.tmpXYZ: full");
        assert!(is_full(&wrapped));
    }
}
