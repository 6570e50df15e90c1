//! The `lowerdir=` option of an overlay mount of unpacked layers.
//!
//! Each layer is named to the kernel as `/proc/self/fd/N` of a directory we
//! hold open, not by its path: mount(2) takes one page of options, which the
//! store's long layer paths filled at about 40 layers. At about 18 bytes a
//! layer, an image can have well over Docker's limit of 128.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

/// The option text, and the directories it names, which must stay open
/// until the mount is made.
pub struct LowerDirs {
    pub option: String,
    _held: Vec<OwnedFd>,
}

impl LowerDirs {
    /// `lowerdir=…` for `layers`, given bottom first (overlay lists the
    /// top layer first).
    pub fn open(layers: &[PathBuf]) -> io::Result<LowerDirs> {
        use rustix::fs::{Mode, OFlags, open};
        let mut held = Vec::with_capacity(layers.len());
        let mut names = Vec::with_capacity(layers.len());
        for layer in layers.iter().rev() {
            let fd = open(
                layer,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", layer.display())))?;
            names.push(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            held.push(fd);
        }
        Ok(LowerDirs {
            option: format!("lowerdir={}", names.join(":")),
            _held: held,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_named_by_short_fd_paths_top_first() {
        let dir = tempfile::tempdir().unwrap();
        let layers: Vec<PathBuf> = (0..200)
            .map(|n| {
                let path = dir.path().join(format!("{n:0>64}"));
                std::fs::create_dir(&path).unwrap();
                path
            })
            .collect();
        let lower = LowerDirs::open(&layers).unwrap();
        // 200 layers of 64-character names still fit in one page.
        assert!(lower.option.len() < 4096, "{}", lower.option.len());
        let first = lower
            .option
            .trim_start_matches("lowerdir=")
            .split(':')
            .next()
            .unwrap();
        let top = std::fs::read_link(first).unwrap();
        assert_eq!(top, layers[199]);
        assert!(LowerDirs::open(&[dir.path().join("missing")]).is_err());
    }
}
