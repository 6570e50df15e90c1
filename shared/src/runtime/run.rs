//! `ctr-run`'s ways to run a container, side by side: in the foreground
//! (this process owns it and passes its output on), attached to a terminal
//! (`-t`: the monitor owns it, this process attaches), and detached (`-d`);
//! and `ctr-create`'s, which makes it and leaves it for `ctr-start`.

use super::RunError;
use super::attach::{self, Attached};
use super::create::prepare;
use super::json_file::copy_to_log;
use super::monitor::{spawn_monitor, spawn_prober};
use super::options::RunOptions;
use super::process::{Stdio, catch_forwarded_signals, finish, pending_signal, start, wait};
use crate::store::Store;

/// Docker's create: the container made (its record, root and spec) and
/// left `created`, holding nothing (no mount, no network) until ctr-start
/// starts it as it starts a stopped one. Returns its ID.
pub fn create(store: &Store, opts: &RunOptions) -> Result<String, RunError> {
    // No grace period begun: nothing starts, and a process cannot exit
    // while a thread of its waits one out (5-25 ms).
    let mut prepared = prepare(store, opts)?;
    prepared.cleanup(false);
    Ok(prepared.id.clone())
}

/// `ctr-run` in the foreground: the container's stdio are ours, and its
/// exit code (128+N for signal N) is returned.
pub fn run_foreground(store: &Store, opts: &RunOptions) -> Result<i32, RunError> {
    // The start's grace period, begun to run while the container is made.
    super::grace_period::begin();
    let prepared = prepare(store, opts)?;
    // Like an attached `docker run`: the container writes to pipes, and we
    // pass its output on and keep it in its json-file log for ctr-logs.
    let pipe = || rustix::pipe::pipe().map_err(|e| RunError::Runtime(e.to_string()));
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let stdio = Stdio {
        stdout: Some(out_w),
        stderr: Some(err_w),
        ..Stdio::default()
    };
    // Caught from before the start: an interrupt that comes while the
    // container starts is passed on once it runs, never lost.
    catch_forwarded_signals();
    let (container, pid) = start(&prepared, stdio)?;
    // Probed as a detached one is, by a prober of ours.
    let prober = spawn_prober(&prepared, std::time::Instant::now());
    // A closed stdout of ours must be an EPIPE we handle, not our death
    // (which would orphan the container).
    // SAFETY: changing a signal disposition has no memory effects.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let pending = pending_signal;
    let mut log = prepared.store.open_log(&prepared.id).ok();
    copy_to_log(out_r, err_r, log.as_mut(), true, &|| {
        if let Some(sig) = pending() {
            // SAFETY: sending a signal has no memory effects.
            unsafe { libc::kill(pid, sig) };
        }
    });
    let code = wait(pid, &pending);
    if let Some(prober) = prober {
        prober.stop();
    }
    finish(prepared, container, code)?;
    Ok(code)
}

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
    // Begun here, it is passed for the monitor's start too: the kernel's
    // state is the machine's, not this process's.
    super::grace_period::begin();
    let prepared = prepare(store, opts)?;
    spawn_monitor(prepared, !opts.detach)
}
