//! Overlay mounts of unpacked layers: the one mounter containers and build
//! steps share.
//!
//! Each layer is named to the kernel as `/proc/self/fd/N` of a directory we
//! hold open, not by its path: mount(2) takes one page of options, which the
//! store's long layer paths filled at about 40 layers. At about 18 bytes a
//! layer, an image can have well over Docker's limit of 128.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Where an overlay's writes go: its upper dir and the work dir overlay
/// needs beside it (on the same filesystem).
pub struct Upper<'a> {
    pub upper: &'a Path,
    pub work: &'a Path,
    /// Writes that need not outlive the mount (a `--rm` container's):
    /// overlay's `volatile` drops its syncs, above all the sync of the whole
    /// upper filesystem at unmount, which on a busy host costs more than the
    /// container's whole run.
    pub volatile: bool,
}

/// Mounts `layers` (bottom first) at `target`: writable into `upper`, or
/// read-only without one.
///
/// redirect_dir and metacopy are asked off where the kernel knows them:
/// on, renames and metadata-only changes would stay as xattrs a tar cannot
/// carry, and the upper dir would no longer be the diff a build step or a
/// commit writes as a layer. Kernels without them get the plain options.
pub fn mount(layers: &[PathBuf], upper: Option<Upper<'_>>, target: &Path) -> io::Result<()> {
    let lower = LowerDirs::open(layers)?;
    let (writes, flags) = match &upper {
        Some(upper) => (
            format!(
                ",upperdir={},workdir={}",
                upper.upper.display(),
                upper.work.display()
            ),
            rustix::mount::MountFlags::empty(),
        ),
        None => (String::new(), rustix::mount::MountFlags::RDONLY),
    };
    let mut attempts = vec![
        format!("{}{writes},redirect_dir=off,metacopy=off", lower.option),
        format!("{}{writes}", lower.option),
    ];
    // Kernels before 5.10 refuse `volatile`: they get the attempts above.
    if upper.as_ref().is_some_and(|u| u.volatile) {
        attempts.insert(0, format!("{},volatile", attempts[0]));
    }
    let mut last = None;
    for options in attempts {
        let data = CString::new(options).map_err(io::Error::other)?;
        match rustix::mount::mount("overlay", target, "overlay", flags, Some(data.as_c_str())) {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one attempt").into())
}

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
