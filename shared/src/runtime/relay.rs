//! Relaying a contained process's stdio through pipes that berth owns, so
//! the process never holds a descriptor of the caller's: a descriptor
//! handed in is reachable by everything in the container through
//! `/proc/<pid>/fd/N` (it could truncate the file our stdout was redirected
//! to, or keep reading the user's terminal after the process ended). Used by
//! `ctr-exec` and img-build's RUN steps; `ctr-run` has the monitor's copy.

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
use rustix::io::Errno;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Where one of the process's output streams goes.
pub enum Sink {
    /// Our own stdout (1) or stderr (2), written as they are.
    Ours(i32),
    /// A descriptor the caller passed (img-build's RUN output).
    Fd(OwnedFd),
    /// Read and dropped (`img-build -q`): the process can still write.
    Discard,
}

impl Sink {
    /// Writes all of `bytes`, through EINTR.
    pub fn write_all(&self, mut bytes: &[u8]) -> rustix::io::Result<()> {
        let target: BorrowedFd = match self {
            // SAFETY: 1 and 2 stay open for the whole process.
            Sink::Ours(fd) => unsafe { BorrowedFd::borrow_raw(*fd) },
            Sink::Fd(fd) => fd.as_fd(),
            Sink::Discard => return Ok(()),
        };
        while !bytes.is_empty() {
            match rustix::io::write(target, bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(Errno::INTR) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The container's ends of the pipes, for libcontainer's builder, and ours.
pub struct Pipes {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    ours: Relay,
}

/// Our ends: what `relay` reads from and writes to.
struct Relay {
    /// The write end of the process's stdin, when it gets our input.
    input: Option<OwnedFd>,
    out: OwnedFd,
    err: OwnedFd,
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    // Close-on-exec on both: the write end reaches the process as its fd
    // 1 or 2 through dup2, which clears the flag on the copy.
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

impl Pipes {
    /// New pipes for stdout and stderr; stdin is a pipe fed from ours when
    /// `input` (`-i`), else /dev/null.
    pub fn new(input: bool) -> std::io::Result<Pipes> {
        let (stdin, input) = if input {
            let (read, write) = pipe()?;
            // Ours never blocks: a process that stops reading its input
            // must not stop us from draining its output.
            set_nonblocking(&write)?;
            (read, Some(write))
        } else {
            (std::fs::File::open("/dev/null")?.into(), None)
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        Ok(Pipes {
            stdin,
            stdout: out_w,
            stderr: err_w,
            ours: Relay {
                input,
                out: out_r,
                err: err_r,
            },
        })
    }

    /// Splits into the container's three ends and the relay's.
    pub fn split(self) -> ((OwnedFd, OwnedFd, OwnedFd), Relaying) {
        (
            (self.stdin, self.stdout, self.stderr),
            Relaying { relay: self.ours },
        )
    }
}

/// Our ends, once the container has its own: `run` copies until the
/// process exits.
pub struct Relaying {
    relay: Relay,
}

impl Relaying {
    /// Copies our stdin into the process and its output into `out` and
    /// `err` until the process `pid` (our child) exits, then takes what is
    /// left in the pipes without waiting for writers that outlived it (a
    /// background child of an exec'd shell keeps its copy of the pipe).
    /// Each poll wake-up asks `forward` for a signal to pass on. Returns
    /// Docker's exit code (128+N for signal N).
    pub fn run(self, pid: i32, out: Sink, err: Sink, forward: &dyn Fn() -> Option<i32>) -> i32 {
        let Relay {
            mut input,
            out: out_r,
            err: err_r,
        } = self.relay;
        let pidfd = rustix::process::Pid::from_raw(pid).and_then(|p| {
            rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
        });
        let mut streams = [(Some(out_r), out), (Some(err_r), err)];
        let mut pending: Vec<u8> = Vec::new();
        let mut stdin_open = input.is_some();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Some(code) = super::process::try_reap(pid) {
                for (fd, sink) in &mut streams {
                    if let Some(fd) = fd.take() {
                        drain(&fd, sink, &mut buf);
                    }
                }
                return code;
            }
            if let Some(sig) = forward() {
                // SAFETY: sending a signal to a PID has no memory effects.
                unsafe { libc::kill(pid, sig) };
            }
            // SAFETY: 0 stays open for the whole process.
            let our_stdin = unsafe { BorrowedFd::borrow_raw(0) };
            let mut fds: Vec<PollFd> = Vec::with_capacity(5);
            let mut roles: Vec<Role> = Vec::with_capacity(5);
            if let Some(fd) = &pidfd {
                fds.push(PollFd::new(fd, PollFlags::IN));
                roles.push(Role::Exit);
            }
            for (i, (fd, _)) in streams.iter().enumerate() {
                if let Some(fd) = fd {
                    fds.push(PollFd::new(fd, PollFlags::IN));
                    roles.push(Role::Output(i));
                }
            }
            match &input {
                Some(write) if !pending.is_empty() => {
                    fds.push(PollFd::new(write, PollFlags::OUT));
                    roles.push(Role::InputRoom);
                }
                Some(_) if stdin_open => {
                    fds.push(PollFd::new(&our_stdin, PollFlags::IN));
                    roles.push(Role::OurStdin);
                }
                _ => {}
            }
            // Without a pidfd (old kernels) the exit is looked for each 50 ms.
            let timeout = Timespec {
                tv_sec: 0,
                tv_nsec: 50_000_000,
            };
            if poll(&mut fds, Some(&timeout)).is_err() {
                continue; // EINTR: a signal to forward, looked at above.
            }
            let ready: Vec<Role> = fds
                .iter()
                .zip(&roles)
                .filter(|(p, _)| !p.revents().is_empty())
                .map(|(_, r)| *r)
                .collect();
            drop(fds);
            for role in ready {
                match role {
                    Role::Exit => {} // reaped at the top of the loop
                    Role::Output(i) => {
                        let (fd, sink) = &mut streams[i];
                        let Some(read_end) = fd.as_ref() else {
                            continue;
                        };
                        match rustix::io::read(read_end, &mut buf) {
                            Ok(n) if n > 0 => {
                                // A closed reader of ours (`| head -1`) is
                                // passed on: the process gets EPIPE too.
                                if sink.write_all(&buf[..n]).is_err() {
                                    *fd = None;
                                }
                            }
                            Err(Errno::INTR | Errno::AGAIN) => {}
                            _ => *fd = None,
                        }
                    }
                    Role::OurStdin => match rustix::io::read(our_stdin, &mut buf) {
                        Ok(n) if n > 0 => pending.extend_from_slice(&buf[..n]),
                        Err(Errno::INTR | Errno::AGAIN) => {}
                        // Our input ended: so does the process's.
                        _ => {
                            stdin_open = false;
                            input = None;
                        }
                    },
                    Role::InputRoom => {
                        let Some(write) = &input else { continue };
                        match rustix::io::write(write, &pending) {
                            Ok(n) => {
                                pending.drain(..n);
                            }
                            Err(Errno::INTR | Errno::AGAIN) => {}
                            // The process closed its stdin: drop the rest.
                            Err(_) => {
                                pending.clear();
                                stdin_open = false;
                                input = None;
                            }
                        }
                    }
                }
            }
            if !stdin_open && pending.is_empty() {
                input = None;
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Role {
    Exit,
    Output(usize),
    OurStdin,
    InputRoom,
}

/// Copies what is in the pipe now, without waiting for more, and at most
/// 64 MiB: a writer that outlived the process must not keep us here.
fn drain(fd: &OwnedFd, sink: &Sink, buf: &mut [u8]) {
    if set_nonblocking(fd).is_err() {
        return;
    }
    for _ in 0..1024 {
        match rustix::io::read(fd, &mut *buf) {
            Ok(n) if n > 0 => {
                if sink.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(Errno::INTR) => {}
            _ => return,
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
    let flags = fcntl_getfl(fd)?;
    fcntl_setfl(fd, flags | OFlags::NONBLOCK)?;
    Ok(())
}
