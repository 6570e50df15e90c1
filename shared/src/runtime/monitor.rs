//! `ctr-run -d` and `-t`: a double-forked monitor (conmon's job) owns the
//! container, writes its output as a Docker json-file log, serves the pty (or
//! with `-i` the stdin) to an attached client, records the exit, honours --rm.

use super::RunError;
use super::attach::{self, AttachServer};
use super::create::Prepared;
use super::health::Prober;
use super::json_file::{LogStream, copy_to_log};
use super::process::{Stdio, finish, finish_reporting, start, wait};
use super::restart::{NotRestarted, restart};
use super::tty::ConsoleSocket;
use crate::container::owner::{self, Owner};
use crate::container::restart::{Backoff, stopped_by_user};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

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
            owner::kill_cgroup(&id);
            if let Ok(owner) = Owner::take(&prepared.dir) {
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
pub(super) fn close_inherited(keep: &[Option<i32>]) {
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
    let policy = prepared
        .store
        .load_container(&prepared.id)
        .ok()
        .and_then(|r| r.host_config.restart_policy)
        .unwrap_or_default();
    let (mut prepared, mut container, mut pid) = (prepared, container, pid);
    let (mut out_r, mut err_r) = (out_r, err_r);
    let mut backoff = Backoff::default();
    let mut restarts = 0;
    loop {
        let started = Instant::now();
        let prober = spawn_prober(&prepared, started);
        lost = lost.or(copy_to_log(out_r, err_r, log.as_mut(), false, &|| {}));
        let code = wait(pid, &|| None);
        if let Some(prober) = prober {
            prober.stop();
        }
        let stopped = stopped_by_user(&prepared.dir);
        if !policy.restarts(code, stopped, restarts) {
            report_exit(finish_reporting(
                prepared,
                container,
                code,
                lost_output(lost),
            ))
        }
        restarts += 1;
        match restart(prepared, container, code, backoff.next(started.elapsed())) {
            Ok(next) => {
                (prepared, container, pid) = (next.prepared, next.container, next.pid);
                (out_r, err_r) = (next.out, next.err);
            }
            Err(NotRestarted::Stopped) => report_exit(Ok(())),
            Err(NotRestarted::Failed(e)) => report_exit(Err(e)),
        }
    }
}

/// Forks the prober of a container with a health check (see
/// `runtime::health`); it keeps none of our descriptors, the log's and
/// the owner lock's above all.
pub(super) fn spawn_prober(prepared: &Prepared, started: Instant) -> Option<Prober> {
    Prober::spawn(&prepared.store, &prepared.id, started, &|| {
        close_inherited(&[])
    })
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
    // A terminal's container is probed, but not restarted (see the README).
    let prober = spawn_prober(&prepared, Instant::now());
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
    if let Some(prober) = prober {
        prober.stop();
    }
    let lost = lost_output(open_failed.or(stream.lost.take()));
    let recorded = finish_reporting(prepared, container, code, lost);
    if let Some(mut client) = client {
        attach::send_exit(&mut client, code);
    }
    report_exit(recorded)
}
