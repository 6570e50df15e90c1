//! Attaching to a container: the monitor serves one client at a time on
//! `attach.sock`. For a `-t` container it owns the pty master and the client
//! is the user's terminal; for a `-i` one without a terminal it owns the
//! write end of the container's stdin and the client sends its input (the
//! output is followed in the log).
//!
//! Frames on the socket are `[kind u8][length u32 BE][payload]`, so output,
//! keys, window sizes and the final exit code never mix.

use super::tty::{self, DetachKeys, RawMode, ShortPath, Typed};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

const OUTPUT: u8 = 1;
const EXIT: u8 = 2;
const INPUT: u8 = 3;
const RESIZE: u8 = 4;
/// The client's input ended (its stdin reached EOF).
const INPUT_END: u8 = 5;

/// Output kept for a client that has not connected yet (a foreground
/// `ctr-run -t` connects just after start); past this it is only logged.
const BACKLOG_LIMIT: usize = 1 << 20;

fn write_frame(stream: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(kind);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    stream.write_all(&frame)
}

/// One frame, or `None` when the peer closed the connection.
fn read_frame(stream: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 5];
    match stream.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if length > 16 << 20 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("attach frame of {length} bytes"),
        ));
    }
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload)?;
    Ok(Some((header[0], payload)))
}

/// The monitor's side: the listening socket in the container's directory.
pub struct AttachServer {
    listener: UnixListener,
    _path: ShortPath,
}

impl AttachServer {
    pub fn bind(dir: &Path) -> io::Result<AttachServer> {
        let path = ShortPath::new(dir, "attach.sock")?;
        let _ = std::fs::remove_file(dir.join("attach.sock"));
        let listener = UnixListener::bind(&path.path)?;
        Ok(AttachServer {
            listener,
            _path: path,
        })
    }

    /// Copies the pty's output to `output` (the log) and to the attached
    /// client, and the client's keys and sizes to the pty, until every
    /// process in the container has closed the terminal. Returns the client
    /// still attached then, to be told the exit code.
    pub fn serve(
        &self,
        master: &OwnedFd,
        output: &mut dyn FnMut(&[u8]),
        keep_backlog: bool,
    ) -> Option<UnixStream> {
        use rustix::event::{PollFd, PollFlags, poll};
        let mut client: Option<UnixStream> = None;
        let mut backlog = keep_backlog.then(Vec::new);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let mut fds = vec![
                PollFd::new(master, PollFlags::IN),
                PollFd::new(&self.listener, PollFlags::IN),
            ];
            if let Some(c) = &client {
                fds.push(PollFd::new(c, PollFlags::IN));
            }
            if poll(&mut fds, None).is_err() {
                continue;
            }
            let ready: Vec<bool> = fds.iter().map(|p| !p.revents().is_empty()).collect();
            drop(fds);
            if ready[0] {
                // EIO once the last slave descriptor is closed.
                let n = match rustix::io::read(master, &mut buf) {
                    Ok(0) | Err(_) => {
                        return client.or_else(|| backlog.and_then(|b| self.first_client(&b)));
                    }
                    Ok(n) => n,
                };
                output(&buf[..n]);
                if let Some(c) = &mut client {
                    if write_frame(c, OUTPUT, &buf[..n]).is_err() {
                        client = None;
                    }
                } else if let Some(pending) = &mut backlog
                    && pending.len() + n <= BACKLOG_LIMIT
                {
                    pending.extend_from_slice(&buf[..n]);
                }
            }
            if ready[1]
                && let Ok((mut stream, _)) = self.listener.accept()
            {
                // One terminal drives the container at a time.
                if client.is_none() {
                    let pending = backlog.take().unwrap_or_default();
                    if pending.is_empty() || write_frame(&mut stream, OUTPUT, &pending).is_ok() {
                        client = Some(stream);
                    }
                }
            }
            if ready.get(2) == Some(&true) {
                let keep = match client.as_mut().map(read_frame) {
                    Some(Ok(Some((INPUT, keys)))) => rustix::io::write(master, &keys).is_ok(),
                    Some(Ok(Some((RESIZE, size)))) if size.len() == 4 => {
                        let rows = u16::from_be_bytes([size[0], size[1]]);
                        let cols = u16::from_be_bytes([size[2], size[3]]);
                        let _ = tty::set_window_size(master, rows, cols);
                        true
                    }
                    Some(Ok(Some(_))) => true,
                    // The client detached or went away: the container runs on.
                    _ => false,
                };
                if !keep {
                    client = None;
                }
            }
        }
    }

    /// For a foreground `ctr-run -t` whose container ended before its
    /// client connected (`sh -c 'echo a; exit 3'`): waits a while for that
    /// client and gives it the output it missed, so it still gets the
    /// output and the exit code instead of a reset connection.
    fn first_client(&self, backlog: &[u8]) -> Option<UnixStream> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        // The caller connects as soon as the monitor reports the start; a
        // caller that died never will.
        let patience = Timespec {
            tv_sec: 10,
            tv_nsec: 0,
        };
        let mut fds = [PollFd::new(&self.listener, PollFlags::IN)];
        if !matches!(poll(&mut fds, Some(&patience)), Ok(n) if n > 0) {
            return None;
        }
        let (mut stream, _) = self.listener.accept().ok()?;
        if !backlog.is_empty() {
            write_frame(&mut stream, OUTPUT, backlog).ok()?;
        }
        Some(stream)
    }

    /// Feeds each client's input to the container's `stdin`, one client
    /// after another, for a `-i` container without a terminal. When a
    /// client's input ends (or it goes away) the container's stdin is closed
    /// with `once` (Docker's StdinOnce), or kept open for the next client.
    /// Returns once the stdin is closed, by us or by the container.
    pub fn serve_stdin(self, stdin: OwnedFd, once: bool) {
        let mut stdin = std::fs::File::from(stdin);
        for client in self.listener.incoming() {
            let Ok(mut client) = client else { continue };
            loop {
                match read_frame(&mut client) {
                    Ok(Some((INPUT, bytes))) => {
                        // EPIPE: every process in the container closed it.
                        if stdin.write_all(&bytes).is_err() {
                            return;
                        }
                    }
                    Ok(Some((INPUT_END, _))) | Ok(None) | Err(_) => break,
                    Ok(Some(_)) => {}
                }
            }
            if once {
                return;
            }
        }
    }
}

/// The client's side for a `-i` container without a terminal: our stdin
/// goes to the container from a thread of its own, then an end-of-input
/// mark. False (and nothing sent) when the container takes no input: it was
/// made without `-i`, or its stdin has been closed for good.
pub fn send_stdin(dir: &Path) -> bool {
    let Ok(path) = ShortPath::new(dir, "attach.sock") else {
        return false;
    };
    let Ok(mut stream) = UnixStream::connect(&path.path) else {
        return false;
    };
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut input = io::stdin();
        loop {
            match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if write_frame(&mut stream, INPUT, &buf[..n]).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = write_frame(&mut stream, INPUT_END, &[]);
    });
    true
}

/// Tells the attached client how the container ended.
pub fn send_exit(client: &mut UnixStream, code: i32) {
    let _ = write_frame(client, EXIT, &code.to_be_bytes());
    // Closing a Unix socket with unread input (a resize the client sent
    // as we ended) resets the client's side: read until it hangs up.
    let _ = client.shutdown(std::net::Shutdown::Write);
    let _ = client.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    let _ = io::copy(client, &mut io::sink());
}

/// How an attached session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Attached {
    /// The container exited with this code.
    Exited(i32),
    /// The user typed the detach keys; the container runs on.
    Detached,
}

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("attaching to container {id}: {source}")]
    Connect {
        id: String,
        #[source]
        source: io::Error,
    },
    #[error("the input device is not a TTY")]
    NotATerminal,
    #[error("the monitor of container {0} went away before it exited")]
    MonitorGone(String),
    #[error("attached to container {id}: {source}")]
    Io {
        id: String,
        #[source]
        source: io::Error,
    },
}

impl Attached {
    /// The code an attached tool exits with; a detach says so on stderr,
    /// as Docker's client does, and is a success.
    pub fn exit_code(&self) -> i32 {
        match self {
            Attached::Exited(code) => *code,
            Attached::Detached => {
                crate::output::Progress::new(false).line(format_args!("read escape sequence"));
                0
            }
        }
    }
}

/// The client's side: our terminal becomes the container's. With `stdin`
/// the keys are sent (raw mode; `keys` detach); window changes follow the
/// terminal on stdout.
pub fn attach(
    dir: &Path,
    id: &str,
    stdin: bool,
    mut keys: DetachKeys,
) -> Result<Attached, AttachError> {
    use rustix::event::{PollFd, PollFlags, poll};
    check_terminal(stdin)?;
    let keyboard = rustix::stdio::stdin();
    let connect = || {
        let path = ShortPath::new(dir, "attach.sock")?;
        UnixStream::connect(&path.path)
    };
    let mut stream = connect().map_err(|source| AttachError::Connect {
        id: id.to_string(),
        source,
    })?;
    let failed = |source| AttachError::Io {
        id: id.to_string(),
        source,
    };
    let _raw = if stdin {
        Some(RawMode::enter(keyboard).map_err(failed)?)
    } else {
        None
    };
    tty::watch_window_changes();
    send_size(&mut stream).map_err(failed)?;
    let mut reading_keys = stdin;
    let mut buf = vec![0u8; 64 * 1024];
    let mut screen = io::stdout().lock();
    loop {
        if tty::window_changed_since() {
            send_size(&mut stream).map_err(failed)?;
        }
        let mut fds = vec![PollFd::new(&stream, PollFlags::IN)];
        if reading_keys {
            fds.push(PollFd::new(&keyboard, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(failed(e.into())),
        }
        let ready: Vec<bool> = fds.iter().map(|p| !p.revents().is_empty()).collect();
        drop(fds);
        if ready[0] {
            match read_frame(&mut stream).map_err(failed)? {
                Some((OUTPUT, bytes)) => {
                    screen.write_all(&bytes).map_err(failed)?;
                    screen.flush().map_err(failed)?;
                }
                Some((EXIT, code)) if code.len() == 4 => {
                    return Ok(Attached::Exited(i32::from_be_bytes([
                        code[0], code[1], code[2], code[3],
                    ])));
                }
                Some(_) => {}
                None => return Err(AttachError::MonitorGone(id.to_string())),
            }
        }
        if ready.get(1) == Some(&true) {
            let n = rustix::io::read(keyboard, &mut buf).map_err(|e| failed(e.into()))?;
            if n == 0 {
                reading_keys = false;
                continue;
            }
            match keys.feed(&buf[..n]) {
                Typed::Forward(bytes) => {
                    if !bytes.is_empty() {
                        write_frame(&mut stream, INPUT, &bytes).map_err(failed)?;
                    }
                }
                Typed::Detach(bytes) => {
                    if !bytes.is_empty() {
                        write_frame(&mut stream, INPUT, &bytes).map_err(failed)?;
                    }
                    return Ok(Attached::Detached);
                }
            }
        }
    }
}

fn send_size(stream: &mut UnixStream) -> io::Result<()> {
    if let Some((rows, cols)) = tty::our_window_size() {
        let mut payload = rows.to_be_bytes().to_vec();
        payload.extend_from_slice(&cols.to_be_bytes());
        write_frame(stream, RESIZE, &payload)?;
    }
    Ok(())
}

/// Checks the terminal before anything is created, as `docker run -it`
/// does, so that a misuse leaves no container behind.
pub fn check_terminal(stdin: bool) -> Result<(), AttachError> {
    if stdin && !tty::is_terminal(rustix::stdio::stdin()) {
        return Err(AttachError::NotATerminal);
    }
    Ok(())
}
