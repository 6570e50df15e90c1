//! The container's process through libcontainer: the executor that runs
//! the payload (Docker's 126/127 when it cannot), start, wait, finish (the
//! exit recorded, then the one teardown), and the signals passed on to it.

use super::RunError;
use super::create::Prepared;
use crate::container::health::Health;
use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::Spec;
use std::fs::{self, File};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Runs the payload: execvp, and on failure Docker's 127 (not found) or
/// 126 (cannot invoke) as the container's own exit code.
#[derive(Clone, Default)]
pub(super) struct Exec {
    /// For `ctr-exec`: the filter libcontainer's tenant path leaves out.
    pub(super) late_seccomp: Option<LateSeccomp>,
    /// For build steps: the init is killed when the thread that started it
    /// dies (the builder's main thread), so a SIGKILLed img-build takes its
    /// RUN with it instead of leaving it to PID 1. Whatever escapes that
    /// (the builder dying before the init gets this far) is swept later
    /// through the step's cgroup.
    pub(super) die_with_parent: bool,
}

/// A seccomp filter to load just before the exec, and the capabilities to
/// drop to after it. The tenant holds CAP_SYS_ADMIN until then, so the
/// filter loads without no-new-privileges, as runc does for `runc exec`.
#[derive(Clone)]
pub(super) struct LateSeccomp {
    // Loaded only when berth is built with libcontainer's libseccomp.
    #[cfg_attr(not(feature = "seccomp"), allow(dead_code))]
    pub(super) filter: oci_spec::runtime::LinuxSeccomp,
    pub(super) capabilities: oci_spec::runtime::LinuxCapabilities,
}

impl LateSeccomp {
    fn apply(&self) -> Result<(), String> {
        #[cfg(feature = "seccomp")]
        libcontainer::seccomp::initialize_seccomp(&self.filter)
            .map_err(|e| format!("loading the seccomp filter: {e}"))?;
        let syscall = libcontainer::syscall::syscall::create_syscall();
        libcontainer::capabilities::drop_privileges(&self.capabilities, &*syscall)
            .map_err(|e| format!("dropping capabilities: {e}"))
    }
}

/// Gives the payload the signal state a fresh process has. Ignored
/// dispositions and the blocked mask survive exec, so without this a
/// container would inherit whatever its starter had: SIGHUP from `nohup`,
/// SIGINT and SIGQUIT from a shell's background job, SIGPIPE from the
/// monitor. A trap on SIGINT would then never fire, and a STOPSIGNAL of
/// SIGQUIT would be lost. Docker's containers start from its daemon's clean
/// state; ours start from the caller's, so they are reset here.
fn reset_signals() {
    // The raw call, because glibc's sigaction refuses its own two real-time
    // signals (32 and 33), which can arrive ignored too. An all-zero kernel
    // sigaction is SIG_DFL with no flags and an empty mask; four words cover
    // its layout on every architecture.
    let default_action = [0u64; 4];
    // SAFETY: rt_sigaction reads the zeroed buffer and writes nothing (no
    // old action asked for); signals that cannot be reset (KILL, STOP) fail
    // with EINVAL and stay as they are. sigprocmask reads only the empty set.
    unsafe {
        for sig in 1..=64 {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                default_action.as_ptr(),
                std::ptr::null_mut::<libc::c_void>(),
                8,
            );
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

impl Executor for Exec {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        reset_signals();
        if self.die_with_parent {
            // SAFETY: prctl with integer arguments has no memory effects.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
        }
        if let Some(late) = &self.late_seccomp
            && let Err(why) = late.apply()
        {
            let line = format!("exec: {why}\n");
            // SAFETY: as below, in the forked process before exec.
            unsafe {
                libc::write(2, line.as_ptr().cast(), line.len());
                libc::_exit(126);
            }
        }
        let args = spec
            .process()
            .as_ref()
            .and_then(|p| p.args().clone())
            .ok_or(ExecutorError::InvalidArg)?;
        let c_args: Vec<std::ffi::CString> = args
            .iter()
            .map(|a| std::ffi::CString::new(a.as_bytes()).map_err(|_| ExecutorError::InvalidArg))
            .collect::<Result<_, _>>()?;
        let mut argv: Vec<*const libc::c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        // SAFETY: argv is a null-terminated array of valid C strings that
        // outlive the call; execvp only returns on failure.
        unsafe { libc::execvp(argv[0], argv.as_ptr()) };
        let err = io::Error::last_os_error();
        let (code, why) = match err.raw_os_error() {
            Some(libc::ENOENT) if !args[0].contains('/') => {
                (127, "executable file not found in $PATH".to_string())
            }
            Some(libc::ENOENT) => (127, "no such file or directory".to_string()),
            _ => (126, err.to_string()),
        };
        let line = format!("exec: \"{}\": {why}\n", args[0]);
        // SAFETY: writing a buffer to fd 2 and exiting without unwinding
        // are sound in the forked init process.
        unsafe {
            libc::write(2, line.as_ptr().cast(), line.len());
            libc::_exit(code);
        }
    }

    fn validate(&self, _spec: &Spec) -> Result<(), ExecutorValidationError> {
        // The exec itself reports a missing command, with Docker's codes.
        Ok(())
    }
}

/// The container's stdio; `None` inherits ours. With a console socket the
/// init makes a pty instead and sends its master there (`-t`).
#[derive(Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub console_socket: Option<PathBuf>,
}

/// Creates and starts the container through libcontainer; returns it and
/// its init's host PID. The init is our child (waitpid it with __WALL).
pub fn start(prepared: &Prepared, stdio: Stdio) -> Result<(Container, i32), RunError> {
    start_with(prepared, stdio, Exec::default())
}

pub(super) fn start_with(
    prepared: &Prepared,
    stdio: Stdio,
    executor: Exec,
) -> Result<(Container, i32), RunError> {
    let runtime_root = prepared.runtime_root();
    fs::create_dir_all(&runtime_root).map_err(RunError::io(&runtime_root))?;
    let runtime = |e: libcontainer::error::LibcontainerError| RunError::Runtime(e.to_string());
    let mut builder = ContainerBuilder::new(prepared.id.clone(), SyscallType::Linux)
        .with_executor(executor)
        .with_root_path(&runtime_root)
        .map_err(runtime)?;
    let stdin = match stdio.stdin {
        Some(fd) => fd,
        None if prepared.interactive => {
            rustix::io::dup(rustix::stdio::stdin()).map_err(|e| RunError::Runtime(e.to_string()))?
        }
        None => File::open("/dev/null")
            .map_err(RunError::io(Path::new("/dev/null")))?
            .into(),
    };
    builder = builder.with_stdin(stdin);
    if let Some(fd) = stdio.stdout {
        builder = builder.with_stdout(fd);
    }
    if let Some(fd) = stdio.stderr {
        builder = builder.with_stderr(fd);
    }
    // libcontainer takes a console socket only for a "detached" init; the
    // flag changes nothing else, the init stays our child either way.
    let console = stdio.console_socket.is_some();
    let mut container = builder
        .with_console_socket(stdio.console_socket)
        .as_init(&prepared.dir)
        .with_systemd(false)
        .with_detach(console)
        .build()
        .map_err(runtime)?;
    crate::testhook::pause(crate::testhook::BEFORE_START);
    container.start().map_err(runtime)?;
    let pid = container
        .pid()
        .map(|p| p.as_raw())
        .ok_or_else(|| RunError::Runtime("libcontainer reported no init PID".to_string()))?;
    prepared.store.update_container(&prepared.id, |r| {
        r.state.start(pid);
        // Each run starts its health over, as Docker's engine does.
        if r.config
            .healthcheck
            .as_ref()
            .and_then(|h| h.probe_command())
            .is_some()
        {
            r.state.health = Some(Health::restarted(r.state.health.take()));
        }
    })?;
    Ok((container, pid))
}

/// Waits for the init (not our normal child: it has no exit signal, hence
/// __WALL), forwarding each signal `forward` yields. Returns Docker's code.
///
/// The exit is seen through a pidfd, and caught signals are looked for at
/// least every 50 ms: in a process with other threads (img-build's) a
/// signal may interrupt one of those instead of this wait.
pub fn wait(pid: i32, forward: &dyn Fn() -> Option<i32>) -> i32 {
    let pidfd = rustix::process::Pid::from_raw(pid)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    loop {
        if let Some(code) = try_reap(pid) {
            return code;
        }
        if let Some(sig) = forward() {
            // SAFETY: sending a signal to a PID has no memory effects.
            unsafe { libc::kill(pid, sig) };
        }
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        };
        match &pidfd {
            Some(fd) => {
                let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
                let _ = rustix::event::poll(&mut fds, Some(&timeout));
            }
            None => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
}

/// Docker's exit code of `pid` if it has exited (128+N for signal N), or
/// 125 if it cannot be waited for; `None` while it runs. It is not our
/// ordinary child (no exit signal), hence __WALL.
pub(super) fn try_reap(pid: i32) -> Option<i32> {
    let mut status = 0;
    // SAFETY: waitpid only writes the status integer we own.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL | libc::WNOHANG) };
    if r == pid {
        if libc::WIFEXITED(status) {
            return Some(libc::WEXITSTATUS(status));
        }
        if libc::WIFSIGNALED(status) {
            return Some(128 + libc::WTERMSIG(status));
        }
        return None; // stopped or continued: still there
    }
    if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
        return Some(125);
    }
    None
}

/// Records the exit of a container whose init has been waited for, removes
/// the runtime's state and the cgroups, unmounts, and honours `--rm`.
pub fn finish(prepared: Prepared, container: Container, code: i32) -> Result<(), RunError> {
    finish_reporting(prepared, container, code, None)
}

/// [`finish`], keeping in the record's `State.Error` (as Docker keeps a
/// failure there) what went wrong while the container ran, e.g. that its
/// log could not be written.
pub(super) fn finish_reporting(
    mut prepared: Prepared,
    container: Container,
    code: i32,
    problem: Option<String>,
) -> Result<(), RunError> {
    let oom = oom_killed(&prepared.id);
    // The init has exited, and with it its PID namespace and every process
    // in it, so the cgroups are empty: `cleanup` removes them and the
    // runtime's state directly. libcontainer's `delete` would do the same,
    // but its cgroup manager re-reads /proc/self/mountinfo once per
    // controller: about 4 ms of a 25 ms `ctr-run --rm IMAGE true`.
    drop(container);
    let remove = prepared.remove;
    let result = if remove {
        Ok(())
    } else {
        prepared
            .store
            .update_container(&prepared.id, |r| {
                r.state.exit(code);
                r.state.oom_killed = oom;
                r.state.error = problem.unwrap_or_default();
            })
            .map(|_| ())
            .map_err(RunError::from)
    };
    // For ctr-wait: with --rm the record goes now, the code stays here
    // until the lock is released.
    if let Some(owner) = &prepared.owner {
        owner.leave_exit_code(code);
    }
    prepared.cleanup(remove);
    result
}

/// cgroup v1 counts OOM kills in memory.oom_control; v2 in memory.events.
fn oom_killed(id: &str) -> bool {
    let v1 = Path::new("/sys/fs/cgroup/memory/berth")
        .join(id)
        .join("memory.oom_control");
    fs::read_to_string(v1)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
            })
        })
        .is_some_and(|n| n > 0)
}

static PENDING_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn remember_signal(sig: libc::c_int) {
    PENDING_SIGNAL.store(sig, std::sync::atomic::Ordering::SeqCst);
}

/// The signal caught since the last call, if any, to pass on.
pub fn pending_signal() -> Option<i32> {
    match PENDING_SIGNAL.swap(0, std::sync::atomic::Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// Catches the signals an attached client passes on to the container
/// (Docker's sig-proxy): interrupt, terminate, hang-up, quit, USR1, USR2.
/// No SA_RESTART, so a blocking wait returns EINTR and forwards at once.
pub fn catch_forwarded_signals() {
    for sig in [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ] {
        // SAFETY: the handler only stores into an atomic (async-signal-safe).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = remember_signal as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}
