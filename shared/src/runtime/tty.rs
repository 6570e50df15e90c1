//! Pseudo-terminals for `-t`: the console socket libcontainer hands the pty
//! master through, raw mode for the user's terminal, and the detach keys.

use rustix::termios::{self, Termios, Winsize};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// A path to `name` inside `dir` that stays short whatever the store root:
/// `sun_path` holds only 108 bytes, so sockets are reached through an
/// `O_PATH` descriptor of their directory (`/proc/self/fd/N/name`).
pub struct ShortPath {
    _dir: OwnedFd,
    pub path: PathBuf,
}

impl ShortPath {
    pub fn new(dir: &Path, name: &str) -> io::Result<ShortPath> {
        let fd = rustix::fs::open(
            dir,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        let path = PathBuf::from(format!("/proc/self/fd/{}/{name}", fd.as_raw_fd()));
        Ok(ShortPath { _dir: fd, path })
    }
}

/// The listening end of libcontainer's console socket: the container's init
/// connects to it and sends the pty master as SCM_RIGHTS.
pub struct ConsoleSocket {
    listener: UnixListener,
    short: ShortPath,
}

impl ConsoleSocket {
    pub fn bind(dir: &Path) -> io::Result<ConsoleSocket> {
        let short = ShortPath::new(dir, "console.sock")?;
        let _ = std::fs::remove_file(dir.join("console.sock"));
        let listener = UnixListener::bind(&short.path)?;
        Ok(ConsoleSocket { listener, short })
    }

    /// The path to give libcontainer (valid while `self` lives).
    pub fn path(&self) -> &Path {
        &self.short.path
    }

    /// Accepts the init's connection and takes the pty master from it.
    pub fn receive_master(&self) -> io::Result<OwnedFd> {
        let (stream, _) = self.listener.accept()?;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
        let mut byte = [0u8; 4096];
        rustix::net::recvmsg(
            &stream,
            &mut [io::IoSliceMut::new(&mut byte)],
            &mut control,
            rustix::net::RecvFlags::CMSG_CLOEXEC,
        )?;
        for message in control.drain() {
            if let rustix::net::RecvAncillaryMessage::ScmRights(mut fds) = message
                && let Some(fd) = fds.next()
            {
                return Ok(fd);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the container's init sent no pty master",
        ))
    }
}

/// The user's terminal in raw mode until dropped, as `docker run -it` does
/// so that keys (Ctrl-C included) reach the container unchanged.
pub struct RawMode<'fd> {
    fd: BorrowedFd<'fd>,
    saved: Termios,
}

impl<'fd> RawMode<'fd> {
    pub fn enter(fd: BorrowedFd<'fd>) -> io::Result<RawMode<'fd>> {
        let saved = termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(fd, termios::OptionalActions::Now, &raw)?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd, termios::OptionalActions::Now, &self.saved);
    }
}

/// The size of the terminal on `fd`, when it is one.
pub fn window_size(fd: impl AsFd) -> Option<(u16, u16)> {
    termios::tcgetwinsize(fd).ok().map(|w| (w.ws_row, w.ws_col))
}

/// Resizes the pty behind `master`; the kernel sends SIGWINCH inside.
pub fn set_window_size(master: impl AsFd, rows: u16, cols: u16) -> io::Result<()> {
    termios::tcsetwinsize(
        master,
        Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )?;
    Ok(())
}

pub fn is_terminal(fd: impl AsFd) -> bool {
    termios::isatty(fd)
}

/// Docker's default detach keys, Ctrl-P then Ctrl-Q.
pub const DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// Watches typed bytes for the detach sequence. Bytes that start the
/// sequence are held back until the next key decides: if it completes the
/// sequence the user detaches, otherwise the held bytes go through.
#[derive(Debug, Default)]
pub struct DetachKeys {
    matched: usize,
}

/// What to do with a chunk of typed input.
#[derive(Debug, PartialEq, Eq)]
pub enum Typed {
    /// Send these bytes to the container.
    Forward(Vec<u8>),
    /// The sequence was typed: send these bytes first, then detach.
    Detach(Vec<u8>),
}

impl DetachKeys {
    pub fn feed(&mut self, input: &[u8]) -> Typed {
        let mut out = Vec::with_capacity(input.len());
        for &byte in input {
            if byte == DETACH_KEYS[self.matched] {
                self.matched += 1;
                if self.matched == DETACH_KEYS.len() {
                    self.matched = 0;
                    return Typed::Detach(out);
                }
                continue;
            }
            out.extend_from_slice(&DETACH_KEYS[..self.matched]);
            self.matched = 0;
            if byte == DETACH_KEYS[0] {
                self.matched = 1;
            } else {
                out.push(byte);
            }
        }
        Typed::Forward(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_p_ctrl_q_detaches_and_what_came_before_goes_through() {
        let mut keys = DetachKeys::default();
        assert_eq!(keys.feed(b"ls\x10\x11rest"), Typed::Detach(b"ls".to_vec()));
    }

    #[test]
    fn the_sequence_may_arrive_split_across_reads() {
        let mut keys = DetachKeys::default();
        assert_eq!(keys.feed(b"a\x10"), Typed::Forward(b"a".to_vec()));
        assert_eq!(keys.feed(b"\x11"), Typed::Detach(Vec::new()));
    }

    #[test]
    fn ctrl_p_followed_by_another_key_is_passed_on() {
        let mut keys = DetachKeys::default();
        assert_eq!(keys.feed(b"\x10"), Typed::Forward(Vec::new()));
        assert_eq!(keys.feed(b"x"), Typed::Forward(b"\x10x".to_vec()));
        assert_eq!(keys.feed(b"\x10\x10\x11"), Typed::Detach(b"\x10".to_vec()));
    }
}
