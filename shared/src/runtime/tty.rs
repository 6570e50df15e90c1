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
    file: PathBuf,
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

impl ConsoleSocket {
    /// Listens on `dir/name`; the file goes when the socket is dropped.
    pub fn bind(dir: &Path, name: &str) -> io::Result<ConsoleSocket> {
        let short = ShortPath::new(dir, name)?;
        let _ = std::fs::remove_file(dir.join(name));
        let listener = UnixListener::bind(&short.path)?;
        Ok(ConsoleSocket {
            listener,
            short,
            file: dir.join(name),
        })
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

static WINDOW_CHANGED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn window_changed(_: libc::c_int) {
    WINDOW_CHANGED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Notes SIGWINCH from now on; no SA_RESTART, so a waiting poll returns
/// EINTR and the new size can be passed on at once.
pub fn watch_window_changes() {
    // SAFETY: the handler only stores into an atomic.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = window_changed as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGWINCH, &action, std::ptr::null_mut());
    }
}

/// Whether the terminal's size changed since the last call.
pub fn window_changed_since() -> bool {
    WINDOW_CHANGED.swap(false, std::sync::atomic::Ordering::SeqCst)
}

/// Our terminal's size: stdout's, else stdin's.
pub fn our_window_size() -> Option<(u16, u16)> {
    window_size(rustix::stdio::stdout()).or_else(|| window_size(rustix::stdio::stdin()))
}

/// Relays between our terminal and a pty `master` until every process on
/// the pty has closed it: output to stdout, and with `keys` our stdin
/// (raw) to the pty; window changes follow.
pub fn relay(master: &OwnedFd, keys: bool) -> io::Result<()> {
    use rustix::event::{PollFd, PollFlags, poll};
    use std::io::Write;
    let keyboard = rustix::stdio::stdin();
    let _raw = if keys {
        Some(RawMode::enter(keyboard)?)
    } else {
        None
    };
    watch_window_changes();
    if let Some((rows, cols)) = our_window_size() {
        set_window_size(master, rows, cols)?;
    }
    let mut reading_keys = keys;
    let mut buf = vec![0u8; 64 * 1024];
    let mut screen = io::stdout().lock();
    loop {
        if window_changed_since()
            && let Some((rows, cols)) = our_window_size()
        {
            set_window_size(master, rows, cols)?;
        }
        let mut fds = vec![PollFd::new(master, PollFlags::IN)];
        if reading_keys {
            fds.push(PollFd::new(&keyboard, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<bool> = fds.iter().map(|p| !p.revents().is_empty()).collect();
        drop(fds);
        if ready[0] {
            match rustix::io::read(master, &mut buf) {
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => {
                    screen.write_all(&buf[..n])?;
                    screen.flush()?;
                }
            }
        }
        if ready.get(1) == Some(&true) {
            match rustix::io::read(keyboard, &mut buf)? {
                0 => reading_keys = false,
                n => {
                    rustix::io::write(master, &buf[..n])?;
                }
            }
        }
    }
}

/// Docker's default detach keys, Ctrl-P then Ctrl-Q.
pub const DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// Watches typed bytes for the detach sequence. Bytes that start the
/// sequence are held back until the next key decides: if it completes the
/// sequence the user detaches, otherwise the held bytes go through.
#[derive(Debug, Clone)]
pub struct DetachKeys {
    sequence: Vec<u8>,
    matched: usize,
}

impl Default for DetachKeys {
    fn default() -> DetachKeys {
        DetachKeys::parse(DETACH_KEYS).expect("the default detach keys parse")
    }
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
    /// Parses Docker's `--detach-keys`: comma-separated keys, each a single
    /// character or `ctrl-<value>` with value one of `a-z @ [ \ ] ^ _`.
    /// An empty value means the default.
    pub fn parse(spec: &str) -> Result<DetachKeys, String> {
        if spec.is_empty() {
            return Ok(DetachKeys::default());
        }
        let key = |part: &str| -> Result<u8, String> {
            let bytes = part.as_bytes();
            if bytes.len() == 1 {
                return Ok(bytes[0]);
            }
            let control = part
                .strip_prefix("ctrl-")
                .filter(|v| v.len() == 1)
                .map(|v| v.as_bytes()[0].to_ascii_lowercase())
                .and_then(|v| match v {
                    b'a'..=b'z' => Some(v - b'a' + 1),
                    b'@' => Some(0),
                    b'[' => Some(27),
                    b'\\' => Some(28),
                    b']' => Some(29),
                    b'^' => Some(30),
                    b'_' => Some(31),
                    _ => None,
                });
            control.ok_or_else(|| {
                format!("invalid detach key {part:?}: use a character or ctrl-<a-z @ [ \\ ] ^ _>")
            })
        };
        let sequence = spec.split(',').map(key).collect::<Result<Vec<u8>, _>>()?;
        Ok(DetachKeys {
            sequence,
            matched: 0,
        })
    }

    pub fn feed(&mut self, input: &[u8]) -> Typed {
        let sequence = &self.sequence;
        let mut out = Vec::with_capacity(input.len());
        for &byte in input {
            if byte == sequence[self.matched] {
                self.matched += 1;
                if self.matched == sequence.len() {
                    self.matched = 0;
                    return Typed::Detach(out);
                }
                continue;
            }
            // The held bytes were not the sequence after all; the byte
            // that broke it may start it again.
            let held = std::mem::take(&mut self.matched);
            out.extend_from_slice(&sequence[..held]);
            if byte == sequence[0] {
                self.matched = 1;
                if sequence.len() == 1 {
                    self.matched = 0;
                    return Typed::Detach(out);
                }
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
    fn detach_keys_parse_as_docker_spells_them() {
        let mut keys = DetachKeys::parse("ctrl-a,x").unwrap();
        assert_eq!(keys.feed(b"ab\x01x"), Typed::Detach(b"ab".to_vec()));
        let mut keys = DetachKeys::parse("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_").unwrap();
        assert_eq!(
            keys.feed(&[0, 27, 28, 29, 30, 31]),
            Typed::Detach(Vec::new())
        );
        let mut keys = DetachKeys::parse("q").unwrap();
        assert_eq!(keys.feed(b"pq"), Typed::Detach(b"p".to_vec()));
        assert_eq!(DetachKeys::parse("").unwrap().sequence, [0x10, 0x11]);
        for bad in ["ctrl-", "ctrl-1", "ab", "ctrl-p,", "alt-x"] {
            let err = DetachKeys::parse(bad).unwrap_err();
            assert!(err.contains("invalid detach key"), "{bad}: {err}");
        }
    }

    #[test]
    fn ctrl_p_followed_by_another_key_is_passed_on() {
        let mut keys = DetachKeys::default();
        assert_eq!(keys.feed(b"\x10"), Typed::Forward(Vec::new()));
        assert_eq!(keys.feed(b"x"), Typed::Forward(b"\x10x".to_vec()));
        assert_eq!(keys.feed(b"\x10\x10\x11"), Typed::Detach(b"\x10".to_vec()));
    }
}
