//! `ctr-run -d` and `-t`: a double-forked monitor (conmon's job) owns the
//! container, writes its output as a Docker json-file log, serves the pty (or
//! with `-i` the stdin) to an attached client, records the exit, honours --rm.

use super::attach::{self, AttachServer, Attached};
use super::tty::ConsoleSocket;
use super::{
    Prepared, RunError, RunOptions, Stdio, finish, finish_reporting, prepare, start, wait,
};
use crate::store::Store;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};

/// `ctr-run -t` in the foreground: the monitor owns the container and its
/// pty, and this process attaches the user's terminal to it, so that
/// Ctrl-P Ctrl-Q can leave the container running.
pub fn run_attached(store: &Store, opts: &RunOptions) -> Result<Attached, RunError> {
    attach::check_terminal(opts.interactive)?;
    let id = run_detached(store, opts)?;
    let dir = store.container_dir(&id);
    Ok(attach::attach(
        &dir,
        &id,
        opts.interactive,
        opts.detach_keys.clone(),
    )?)
}

/// Prepares the container here (so bad input fails synchronously), then
/// hands it to a detached monitor and returns its ID once it is running.
pub fn run_detached(store: &Store, opts: &RunOptions) -> Result<String, RunError> {
    let prepared = prepare(store, opts)?;
    spawn_monitor(prepared, !opts.detach)
}

/// Hands a prepared container to a double-forked monitor and returns its
/// ID once it runs. With `attached`, output is kept for the first client.
pub fn spawn_monitor(mut prepared: Prepared, attached: bool) -> Result<String, RunError> {
    let id = prepared.id.clone();
    // Close-on-exec: the container's process must never hold our report.
    let (status_r, status_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| RunError::Monitor(e.to_string()))?;
    // SAFETY: ctr-run is single-threaded here, so the child may run
    // arbitrary code after fork.
    let first = unsafe { libc::fork() };
    if first < 0 {
        return Err(RunError::Monitor(io::Error::last_os_error().to_string()));
    }
    if first == 0 {
        drop(status_r);
        // SAFETY: as above; setsid detaches from the caller's terminal and
        // process group so the caller's Ctrl-C never reaches the monitor.
        unsafe {
            libc::setsid();
            if libc::fork() != 0 {
                libc::_exit(0);
            }
        }
        let owner = prepared.owner.as_ref().map(|o| o.as_raw_fd());
        close_inherited(&[Some(status_w.as_raw_fd()), owner]);
        // The tools die of SIGPIPE (for `| head`); the monitor must not when
        // the ctr-run it reports to was killed before reading the report.
        // SAFETY: setting a signal disposition to ignore is always sound.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        let mut status = File::from(status_w);
        let _ = writeln!(status, "{}", std::process::id());
        monitor(prepared, status, attached);
    }
    // The parent: the monitor owns the container and its cleanup now (the
    // owner lock stays held through the monitor's copy of the descriptor).
    drop(prepared.owner.take());
    prepared.armed = false;
    drop(status_w);
    let mut status = 0;
    // SAFETY: waitpid writes only the status integer.
    unsafe { libc::waitpid(first, &mut status, 0) };
    let report = read_report(status_r).map_err(|e| RunError::Monitor(e.to_string()))?;
    match report.strip_prefix("ok") {
        Some(_) => Ok(id),
        None if report.is_empty() => {
            // The monitor died (killed) before it could report, so nobody
            // cleans up after it: what it started goes, then the container.
            crate::container::owner::kill_cgroup(&id);
            if let Ok(owner) = crate::container::Owner::take(&prepared.dir) {
                prepared.owner = Some(owner);
                prepared.cleanup(prepared.new);
            }
            Err(RunError::Monitor(
                "it exited before starting the container".to_string(),
            ))
        }
        None => Err(RunError::Runtime(report.trim().to_string())),
    }
}

/// Reads the monitor's report: its PID on the first line, then "ok" or
/// why it failed. The report ends where the pipe does, or where the
/// monitor does: a monitor killed between libcontainer's create and start
/// leaves the pipe's write end in the created init (forked before the
/// report was due, waiting for a start that never comes), so the end of
/// the pipe would never come.
fn read_report(status: OwnedFd) -> io::Result<String> {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut status = File::from(status);
    let mut bytes = Vec::new();
    // The PID line comes first, before anything can fork.
    let mut byte = [0u8];
    while status.read(&mut byte)? == 1 && byte[0] != b'\n' {
        bytes.push(byte[0]);
    }
    let pidfd = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|pid| pid.parse().ok())
        .and_then(rustix::process::Pid::from_raw)
        .and_then(|pid| {
            rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
        });
    bytes.clear();
    let Some(pidfd) = pidfd else {
        // Dead before it said who it was (or already gone): no init can
        // hold the pipe then, so it ends.
        status.read_to_end(&mut bytes)?;
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    };
    loop {
        let mut fds = [
            PollFd::new(&status, PollFlags::IN),
            PollFd::new(&pidfd, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let readable = !fds[0].revents().is_empty();
        let monitor_gone = !fds[1].revents().is_empty();
        if readable {
            let mut chunk = [0u8; 4096];
            let n = status.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&chunk[..n]);
            if bytes.starts_with(b"ok") {
                break; // started: nothing else follows
            }
            continue;
        }
        if monitor_gone {
            break; // what it wrote was read above: the pipe was not readable
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Closes every descriptor above stderr but `keep`. The monitor outlives
/// its caller, so whatever the caller inherited (a make jobserver's pipe, a
/// CI runner's output pipe) would otherwise stay open, and whoever waits for
/// that pipe's end would wait for the container's.
fn close_inherited(keep: &[Option<i32>]) {
    let open: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => return,
    };
    for fd in open {
        if fd > 2 && !keep.contains(&Some(fd)) {
            // SAFETY: closing descriptors nothing in this process uses: the
            // monitor was just forked and holds only those in `keep` (the
            // read_dir's own is already closed, and EBADF is harmless).
            unsafe { libc::close(fd) };
        }
    }
}

/// With `attached`, output made before the client connects is kept for it.
fn monitor(prepared: Prepared, mut status: File, attached: bool) -> ! {
    let devnull = File::options().read(true).write(true).open("/dev/null");
    if let Ok(null) = &devnull {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors we own.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    if prepared.tty {
        monitor_terminal(prepared, status, attached);
    }
    let pipes = (rustix::pipe::pipe(), rustix::pipe::pipe());
    let ((out_r, out_w), (err_r, err_w)) = match pipes {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            let _ = status.write_all(b"creating the log pipes failed");
            drop(prepared);
            // SAFETY: leaving the forked monitor without unwinding.
            unsafe { libc::_exit(1) };
        }
    };
    // `-i`: the container's stdin is a pipe whose write end we keep, fed by
    // whichever client attaches; /dev/null (our stdin) otherwise.
    let (stdin, feeder) = if prepared.interactive {
        match stdin_pipe(&prepared) {
            Ok((read, write, server)) => (Some(read), Some((write, server))),
            Err(e) => {
                let _ = write!(status, "creating the stdin pipe: {e}");
                drop(prepared);
                // SAFETY: as above.
                unsafe { libc::_exit(1) };
            }
        }
    } else {
        (None, None)
    };
    let stdio = Stdio {
        stdin,
        stdout: Some(out_w),
        stderr: Some(err_w),
        console_socket: None,
    };
    let (container, pid) = match start(&prepared, stdio) {
        Ok(started) => started,
        Err(e) => {
            let _ = write!(status, "{e}");
            drop(prepared);
            // SAFETY: as above.
            unsafe { libc::_exit(1) };
        }
    };
    let _ = status.write_all(b"ok");
    drop(status);
    // A thread only now: the container's init is started, so no fork of
    // ours can inherit a lock this thread holds. Our _exit ends it.
    if let Some((write, server)) = feeder {
        let once = prepared.stdin_once;
        std::thread::spawn(move || server.serve_stdin(write, once));
    }
    let (mut log, mut lost) = match prepared.store.open_log(&prepared.id) {
        Ok(log) => (Some(log), None),
        Err(e) => (None, Some(e)),
    };
    lost = lost.or(copy_to_log(out_r, err_r, log.as_mut(), false, &|| {}));
    let code = wait(pid, &|| None);
    report_exit(finish_reporting(
        prepared,
        container,
        code,
        lost_output(lost),
    ))
}

/// What the record says when output could not be kept: on a full disk the
/// container runs on, and its exit is still recorded (the record has a
/// reserve), but `ctr-logs` lacks what it printed from then on.
fn lost_output(error: Option<io::Error>) -> Option<String> {
    error.map(|e| format!("writing the container's log failed, later output was lost: {e}"))
}

/// Ends the monitor. An exit it could not record is said where an
/// administrator looks (syslog: nobody reads the monitor's stderr) and in
/// its own exit status; the record then shows the exit as unseen (255).
fn report_exit(recorded: Result<(), RunError>) -> ! {
    let code = match recorded {
        Ok(()) => 0,
        Err(e) => {
            let line = std::ffi::CString::new(format!("berth monitor: recording the exit: {e}"))
                .unwrap_or_default();
            // SAFETY: a constant format and a valid C string.
            unsafe { libc::syslog(libc::LOG_ERR, c"%s".as_ptr(), line.as_ptr()) };
            1
        }
    };
    // SAFETY: leaving the forked monitor without unwinding.
    unsafe { libc::_exit(code) }
}

/// The container's stdin pipe (close-on-exec, so only the init's dup of
/// the read end reaches the container) and the socket its input comes on.
fn stdin_pipe(prepared: &Prepared) -> io::Result<(OwnedFd, OwnedFd, AttachServer)> {
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let server = AttachServer::bind(&prepared.dir)?;
    Ok((read, write, server))
}

/// The monitor of a `-t` container: the pty's output goes to the log (as
/// stdout, like Docker's) and to whichever client is attached.
fn monitor_terminal(prepared: Prepared, mut status: File, attached: bool) -> ! {
    let give_up = |mut status: File, prepared: Prepared, why: String| -> ! {
        let _ = status.write_all(why.as_bytes());
        drop(prepared);
        // SAFETY: leaving the forked monitor without unwinding.
        unsafe { libc::_exit(1) }
    };
    let sockets = ConsoleSocket::bind(&prepared.dir, "console.sock")
        .and_then(|console| Ok((console, AttachServer::bind(&prepared.dir)?)));
    let (console, server) = match sockets {
        Ok(sockets) => sockets,
        Err(e) => give_up(
            status,
            prepared,
            format!("creating the terminal sockets: {e}"),
        ),
    };
    let stdio = Stdio {
        console_socket: Some(console.path().to_path_buf()),
        ..Stdio::default()
    };
    let (container, pid) = match start(&prepared, stdio) {
        Ok(started) => started,
        Err(e) => give_up(status, prepared, e.to_string()),
    };
    let master = match console.receive_master() {
        Ok(master) => master,
        Err(e) => {
            // SAFETY: killing the init we just started; no memory effects.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let code = wait(pid, &|| None);
            let _ = finish(prepared, container, code);
            let _ = write!(status, "receiving the container's terminal: {e}");
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
    };
    drop(console);
    let _ = status.write_all(b"ok");
    drop(status);
    let (mut log, open_failed) = match prepared.store.open_log(&prepared.id) {
        Ok(log) => (Some(log), None),
        Err(e) => (None, Some(e)),
    };
    let mut stream = LogStream::new("stdout");
    let client = server.serve(
        &master,
        &mut |bytes| {
            if let Some(log) = &mut log {
                stream.push(log, bytes);
            }
        },
        attached,
    );
    if let Some(log) = &mut log {
        stream.flush(log);
    }
    drop(master);
    let code = wait(pid, &|| None);
    let lost = lost_output(open_failed.or(stream.lost.take()));
    let recorded = finish_reporting(prepared, container, code, lost);
    if let Some(mut client) = client {
        attach::send_exit(&mut client, code);
    }
    report_exit(recorded)
}

/// Copies both streams into Docker's json-file format, one JSON object per
/// line, until both are closed (the container and all its children exited).
/// With `tee` each also goes to our own stdout or stderr, as an attached
/// `docker run` shows it; when ours is closed (`ctr-run … | head -1`) the
/// container's end is closed too, so it gets EPIPE as it would writing to
/// ours directly. `interrupted` runs whenever a signal woke us. Returns
/// the first failure to write the log (the copy goes on regardless).
pub(super) fn copy_to_log(
    out: OwnedFd,
    err: OwnedFd,
    mut log: Option<&mut File>,
    tee: bool,
    interrupted: &dyn Fn(),
) -> Option<io::Error> {
    let mut streams = [
        (Some(out), LogStream::new("stdout"), 1),
        (Some(err), LogStream::new("stderr"), 2),
    ];
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut fds: Vec<rustix::event::PollFd> = Vec::new();
        let mut which = Vec::new();
        for (i, (fd, _, _)) in streams.iter().enumerate() {
            if let Some(fd) = fd {
                fds.push(rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN));
                which.push(i);
            }
        }
        if fds.is_empty() {
            let [(_, out, _), (_, err, _)] = &mut streams;
            return out.lost.take().or(err.lost.take());
        }
        if rustix::event::poll(&mut fds, None).is_err() {
            interrupted();
            continue;
        }
        let ready: Vec<usize> = fds
            .iter()
            .zip(&which)
            .filter(|(p, _)| !p.revents().is_empty())
            .map(|(_, i)| *i)
            .collect();
        drop(fds);
        for i in ready {
            let (fd, stream, ours) = &mut streams[i];
            match fd.as_ref().map(|f| rustix::io::read(f, &mut buf)) {
                Some(Ok(n)) if n > 0 => {
                    if let Some(log) = log.as_deref_mut() {
                        stream.push(log, &buf[..n]);
                    }
                    if tee
                        && super::relay::Sink::Ours(*ours)
                            .write_all(&buf[..n])
                            .is_err()
                    {
                        *fd = None;
                    }
                }
                Some(Err(rustix::io::Errno::INTR)) => interrupted(),
                _ => {
                    if let Some(log) = log.as_deref_mut() {
                        stream.flush(log);
                    }
                    *fd = None;
                }
            }
        }
    }
}

/// One stream's bytes on their way into json-file entries: whole lines,
/// and lines past 16 KiB split into partial entries as Docker does.
struct LogStream {
    name: &'static str,
    pending: Vec<u8>,
    /// The first failure to write an entry (a full disk): kept to report.
    lost: Option<io::Error>,
}

impl LogStream {
    fn new(name: &'static str) -> LogStream {
        LogStream {
            name,
            pending: Vec::new(),
            lost: None,
        }
    }

    fn push(&mut self, log: &mut File, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        while let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            self.write_entry(log, &line);
        }
        while self.pending.len() >= 16 * 1024 {
            let chunk: Vec<u8> = self.pending.drain(..16 * 1024).collect();
            self.write_entry(log, &chunk);
        }
    }

    fn flush(&mut self, log: &mut File) {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.write_entry(log, &pending);
        }
    }

    fn write_entry(&mut self, log: &mut File, bytes: &[u8]) {
        let entry = serde_json::json!({
            "log": String::from_utf8_lossy(bytes),
            "stream": self.name,
            "time": crate::container::now(),
        });
        // One write per entry, so a full disk cuts no entry in two.
        let line = format!("{entry}\n");
        if let Err(e) = log.write_all(line.as_bytes()) {
            self.lost.get_or_insert(e);
        }
    }
}
