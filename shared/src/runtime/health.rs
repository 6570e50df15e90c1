//! The prober: a process the monitor forks for each run of a container
//! with a health check, which runs the check's command in the container
//! (an exec, as `ctr-exec`'s) every interval, kills a probe at its
//! timeout, and writes each result into the record's `State.Health`
//! under the record's lock. It is a process of its own, single-threaded,
//! because libcontainer forks without exec; it dies with the monitor
//! (parent-death signal), and the monitor ends it before it records the
//! container's exit, so it never writes after that.

use super::exec::{ExecOptions, process_for};
use super::process::{Exec, try_reap};
use crate::container::health::{self, HealthConfig, HealthResult};
use crate::container::{ContainerError, now};
use crate::store::Store;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// A running prober, ended with [`Prober::stop`].
pub(super) struct Prober {
    pid: libc::pid_t,
}

impl Prober {
    /// Forks a prober for container `id` if its record has a check with a
    /// command, to run while its init (started at `started`) lives.
    /// `close` runs in the prober first: the descriptors it must not keep
    /// (above all the owner lock's, which would outlive a killed monitor).
    pub(super) fn spawn(
        store: &Store,
        id: &str,
        started: Instant,
        close: &dyn Fn(),
    ) -> Option<Prober> {
        let record = store.load_container(id).ok()?;
        let check = record.config.healthcheck?;
        let command = check.probe_command()?;
        let monitor = std::process::id() as libc::pid_t;
        // SAFETY: the child only runs our code below and leaves by _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return None;
        }
        if pid > 0 {
            return Some(Prober { pid });
        }
        // SAFETY: prctl and getppid with integer arguments; the check
        // closes the race with a monitor that died before the prctl.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() != monitor {
                libc::_exit(0);
            }
        }
        close();
        // Nothing it says goes anywhere: a foreground ctr-run's pipes stay
        // the container's alone.
        if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
            use std::os::fd::AsRawFd;
            for fd in 0..3 {
                // SAFETY: dup2 onto the standard descriptors we own.
                unsafe { libc::dup2(null.as_raw_fd(), fd) };
            }
        }
        probe_forever(store, id, &check, &command, started);
        // SAFETY: leaving the forked prober without unwinding.
        unsafe { libc::_exit(0) }
    }

    /// Kills the prober and reaps it: after this, nothing it started
    /// writes the record.
    pub(super) fn stop(self) {
        // SAFETY: our own child; kill and waitpid have no memory effects.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            let mut status = 0;
            libc::waitpid(self.pid, &mut status, 0);
        }
    }
}

/// Probes every interval (the start interval while starting, if set)
/// until the record is gone or says the container stopped.
fn probe_forever(
    store: &Store,
    id: &str,
    check: &HealthConfig,
    command: &[String],
    started: Instant,
) {
    let dir = store.container_dir(id);
    let mut status = health::HealthStatus::Starting;
    loop {
        std::thread::sleep(check.next_wait(status, started.elapsed()));
        let record = match store.load_container(id) {
            Ok(record) if record.state.running && !record.state.restarting => record,
            _ => return,
        };
        if record.state.paused {
            continue; // its probe would join the frozen cgroup and hang
        }
        let begun = started.elapsed();
        let result = probe(store, &dir, id, command, check.timeout());
        let within_start_period = begun < check.start_period();
        let updated = store.update_container(id, |r| {
            if let Some(health) = r.state.health.as_mut() {
                health.record(result, check.retries(), within_start_period);
            }
        });
        match updated {
            Ok(record) => {
                status = record.state.health.map(|h| h.status).unwrap_or_default();
            }
            Err(ContainerError::NoSuchContainer(_)) => return,
            Err(_) => {}
        }
    }
}

/// Runs `command` once in the container, its stdout and stderr into one
/// pipe; kills it at `timeout`.
fn probe(
    store: &Store,
    dir: &Path,
    id: &str,
    command: &[String],
    timeout: Duration,
) -> HealthResult {
    let start = now();
    let failed = |why: String| HealthResult {
        start: start.clone(),
        end: now(),
        exit_code: -1,
        output: why,
    };
    let opts = ExecOptions {
        command: command.to_vec(),
        ..ExecOptions::default()
    };
    let (process, late_seccomp) = match process_for(dir, &opts) {
        Ok(found) => found,
        Err(e) => return failed(e.to_string()),
    };
    let process_path = dir.join(format!("exec-{}.json", std::process::id()));
    let written = File::create(&process_path)
        .map_err(|e| e.to_string())
        .and_then(|file| serde_json::to_writer(file, &process).map_err(|e| e.to_string()));
    if let Err(e) = written {
        return failed(e);
    }
    let started = start_probe(store, id, &process_path, late_seccomp);
    let _ = std::fs::remove_file(&process_path);
    let (pid, output) = match started {
        Ok(started) => started,
        Err(e) => return failed(e),
    };
    let deadline = Instant::now() + timeout;
    let (bytes, truncated) = read_until(&output, deadline);
    loop {
        if let Some(code) = try_reap(pid) {
            return HealthResult {
                start,
                end: now(),
                exit_code: code,
                output: health::kept_output(&bytes, truncated),
            };
        }
        if Instant::now() >= deadline {
            kill_tree(pid);
            // SAFETY: our child, the probe; waitpid writes only the status.
            unsafe {
                let mut status = 0;
                libc::waitpid(pid, &mut status, libc::__WALL);
            }
            return HealthResult {
                start,
                end: now(),
                exit_code: -1,
                output: format!("Health check exceeded timeout ({})", go_duration(timeout)),
            };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// SIGKILLs process `root` and everything it started: a shell's probe
/// (`sleep 100; true`) forks, and its children would otherwise be left to
/// the container's init, one more with every probe. Each is stopped
/// before its children are looked for, so none can fork past us.
fn kill_tree(root: i32) {
    let mut found = vec![root];
    let mut next = 0;
    while next < found.len() {
        let pid = found[next];
        next += 1;
        // SAFETY: signals have no memory effects.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        found.extend(children(pid));
    }
    for pid in found {
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// The processes whose parent is `pid`, from /proc.
fn children(pid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// Starts the probe's process in the container: its PID (our child) and
/// the read end of the pipe it writes to.
fn start_probe(
    store: &Store,
    id: &str,
    process_path: &Path,
    late_seccomp: Option<super::process::LateSeccomp>,
) -> Result<(i32, OwnedFd), String> {
    let (read, write) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| e.to_string())?;
    let write_err = rustix::io::dup(&write).map_err(|e| e.to_string())?;
    let null: OwnedFd = File::open("/dev/null").map_err(|e| e.to_string())?.into();
    let executor = Exec {
        late_seccomp,
        die_with_parent: false,
    };
    let pid = ContainerBuilder::new(id.to_string(), SyscallType::Linux)
        .with_executor(executor)
        .with_root_path(store.runtime_dir_holding(id))
        .map_err(|e| e.to_string())?
        .with_stdin(null)
        .with_stdout(write)
        .with_stderr(write_err)
        .as_tenant()
        .with_process(Some(process_path))
        .with_detach(false)
        .build()
        .map_err(|e| e.to_string())?
        .as_raw();
    Ok((pid, read))
}

/// What the probe writes until its end or `deadline`: the first bytes
/// Docker keeps, and whether there was more.
fn read_until(pipe: &OwnedFd, deadline: Instant) -> (Vec<u8>, bool) {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut bytes = Vec::new();
    let mut truncated = false;
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (bytes, truncated);
        }
        let timeout = Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        let mut fds = [PollFd::new(pipe, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => return (bytes, truncated),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return (bytes, truncated),
        }
        match rustix::io::read(pipe.as_fd(), &mut chunk) {
            Ok(0) | Err(_) => return (bytes, truncated),
            Ok(n) => {
                let room = (health::MOST_OUTPUT + 4).saturating_sub(bytes.len());
                truncated |= n > room;
                bytes.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}

/// A duration as Go prints it (`30s`, `1m30s`, `500ms`, `1h0m0s`), for
/// Docker's timeout message.
fn go_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let total = d.as_secs();
    let (h, m) = (total / 3600, total / 60 % 60);
    let s = (total % 60) as f64 + f64::from(d.subsec_nanos()) / 1e9;
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_as_go_prints_them() {
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }
}
