//! The container lifecycle over the records ctr-run writes: finding a
//! container by name or ID prefix, its live state, stop, kill, start, rm,
//! and following an attached one to its end.

use crate::container::logs::{self, Entry, LogError};
use crate::container::owner::{self, refresh};
use crate::container::{ContainerError, Record};
use crate::runtime::{self, RunError};
use crate::store::Store;
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("container ID prefix {prefix:?} is ambiguous: {}", .candidates.join(", "))]
    Ambiguous {
        prefix: String,
        candidates: Vec<String>,
    },
    #[error("cannot kill container: {0}: container is not running")]
    NotRunning(String),
    #[error(
        "cannot remove container \"{0}\": container is running: stop the container before removing or force remove"
    )]
    Running(String),
    #[error("invalid signal: {0}")]
    BadSignal(String),
    #[error("container {0} did not stop")]
    DidNotStop(String),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Run(#[from] RunError),
}

/// Every record as stored; a store no container ever ran in has none.
fn records(store: &Store) -> Result<Vec<Record>, LifecycleError> {
    match store.containers() {
        Ok(all) => Ok(all),
        Err(ContainerError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(Vec::new())
        }
        Err(e) => Err(e.into()),
    }
}

/// Finds a container as Docker does: full ID, then name (with or without
/// the leading `/`), then a unique ID prefix.
pub fn find(store: &Store, target: &str) -> Result<Record, LifecycleError> {
    let all = records(store)?;
    let name = target.trim_start_matches('/');
    if let Some(found) = all
        .iter()
        .find(|r| r.id == target)
        .or_else(|| all.iter().find(|r| r.name.trim_start_matches('/') == name))
    {
        return Ok(refresh(store, found.clone()));
    }
    let lowercase_hex = !target.is_empty()
        && target
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    let matches: Vec<&Record> = if lowercase_hex {
        all.iter().filter(|r| r.id.starts_with(target)).collect()
    } else {
        Vec::new()
    };
    match matches.as_slice() {
        [one] => Ok(refresh(store, (*one).clone())),
        [] => Err(LifecycleError::NoSuchContainer(target.to_string())),
        many => Err(LifecycleError::Ambiguous {
            prefix: target.to_string(),
            candidates: many.iter().map(|r| r.id[..12].to_string()).collect(),
        }),
    }
}

/// Every container with its live state, newest first (as `docker ps`).
pub fn list(store: &Store) -> Result<Vec<Record>, LifecycleError> {
    // A killed img-build's step is not the user's container: it goes.
    owner::sweep_orphans(store);
    let mut all = records(store)?;
    all.sort_by(|a, b| b.created.cmp(&a.created));
    Ok(all.into_iter().map(|r| refresh(store, r)).collect())
}

/// Docker's signal names: `SIGTERM`, `TERM`, `term` or a number.
pub fn parse_signal(text: &str) -> Result<i32, LifecycleError> {
    let bad = || LifecycleError::BadSignal(text.to_string());
    if let Ok(n) = text.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let number = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => return Err(bad()),
    };
    Ok(number)
}

/// Sends `signal` to the container's init.
pub fn kill(store: &Store, record: &Record, signal: i32) -> Result<(), LifecycleError> {
    let record = refresh(store, record.clone());
    if !record.state.running || !owner::init_alive(&record.id, record.state.pid) {
        return Err(LifecycleError::NotRunning(record.id));
    }
    // SAFETY: kill(2) has no memory effects; the PID was just checked to be
    // this container's init.
    unsafe { libc::kill(record.state.pid, signal) };
    Ok(())
}

/// Waits until nobody owns the container any more and its record says it
/// stopped (or it was removed, with --rm); false after `timeout`.
pub fn wait_stopped(store: &Store, id: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if owner::has_stopped(store, id) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How long a container may take to die after SIGKILL before we give up.
const KILL_GRACE: Duration = Duration::from_secs(30);

/// Docker's stop: the image's stop signal (or `signal`), then SIGKILL once
/// `timeout` has passed. A stopped container is left as it is.
pub fn stop(
    store: &Store,
    record: &Record,
    timeout: Duration,
    signal: Option<i32>,
) -> Result<(), LifecycleError> {
    let record = refresh(store, record.clone());
    if !record.state.running {
        return Ok(());
    }
    let signal = match signal {
        Some(signal) => signal,
        None if record.config.stop_signal.is_empty() => libc::SIGTERM,
        None => parse_signal(&record.config.stop_signal)?,
    };
    match kill(store, &record, signal) {
        Ok(()) | Err(LifecycleError::NotRunning(_)) => {}
        Err(e) => return Err(e),
    }
    if wait_stopped(store, &record.id, timeout) {
        return Ok(());
    }
    match kill(store, &record, libc::SIGKILL) {
        Ok(()) | Err(LifecycleError::NotRunning(_)) => {}
        Err(e) => return Err(e),
    }
    if wait_stopped(store, &record.id, KILL_GRACE) {
        Ok(())
    } else {
        Err(LifecycleError::DidNotStop(record.id))
    }
}

/// Docker's rm: refuses a running container unless `force`, which kills it
/// first; then removes its mounts, runtime state, cgroups and directory
/// (its anonymous volumes live there and go with it).
pub fn remove(store: &Store, record: &Record, force: bool) -> Result<(), LifecycleError> {
    let record = refresh(store, record.clone());
    if record.state.running {
        if !force {
            return Err(LifecycleError::Running(record.id));
        }
        match kill(store, &record, libc::SIGKILL) {
            Ok(()) | Err(LifecycleError::NotRunning(_)) => {}
            Err(e) => return Err(e),
        }
        if !wait_stopped(store, &record.id, KILL_GRACE) {
            return Err(LifecycleError::DidNotStop(record.id));
        }
    }
    let dir = store.container_dir(&record.id);
    if !dir.exists() {
        return Ok(()); // --rm took it already
    }
    owner::teardown(store, &record.id, &dir.join("rootfs"));
    store.remove_container(&record.id)?;
    Ok(())
}

/// Starts a stopped container again through a new monitor: same spec,
/// same upper dir. A running one is left as it is.
pub fn start(store: &Store, record: &Record, attached: bool) -> Result<(), LifecycleError> {
    let record = refresh(store, record.clone());
    if record.state.running {
        return Ok(());
    }
    // A monitor may still be tearing down the last run: let it finish.
    if owner::is_owned(store, &record.id) && !wait_stopped(store, &record.id, KILL_GRACE) {
        return Err(LifecycleError::DidNotStop(record.id));
    }
    let prepared = runtime::reopen(store, &record.id)?;
    runtime::spawn_monitor(prepared, attached)?;
    Ok(())
}

/// An attached client without a terminal (`ctr-attach`, `ctr-start -a`):
/// with `input`, our stdin goes to the container if it takes some (made
/// with `-i`); its output from log offset `from` on goes to ours until it
/// stops. Returns its exit code.
pub fn attach_without_terminal(
    store: &Store,
    record: &Record,
    from: u64,
    input: bool,
    proxy_signals: bool,
) -> Result<i32, LogError> {
    if input && record.config.open_stdin {
        runtime::attach::send_stdin(&store.container_dir(&record.id));
    }
    let log = Path::new(&record.log_path);
    follow_to_exit(store, &record.id, log, from, proxy_signals)
}

/// The container's output from `offset` on, to our stdout and stderr, until
/// it stops; returns its exit code. With `proxy_signals` (Docker's
/// sig-proxy), the signals we get (Ctrl-C's SIGINT, …) go to the container.
fn follow_to_exit(
    store: &Store,
    id: &str,
    path: &Path,
    offset: u64,
    proxy_signals: bool,
) -> Result<i32, LogError> {
    if proxy_signals {
        runtime::catch_forwarded_signals();
    }
    let mut emit = |entry: &Entry| {
        let _ = if entry.stream == "stderr" {
            io::stderr().write_all(entry.log.as_bytes())
        } else {
            io::stdout().write_all(entry.log.as_bytes())
        };
    };
    let mut forward = || {
        if let Some(signal) = runtime::pending_signal()
            && let Ok(record) = store.load_container(id)
        {
            let _ = kill(store, &record, signal);
        }
    };
    let mut stopped = || owner::has_stopped(store, id);
    logs::follow(path, offset, &mut stopped, &mut emit, &mut forward)?;
    Ok(store
        .load_container(id)
        .map(|done| done.state.exit_code)
        .unwrap_or(0))
}

/// The length of a container's log now: where an attached start begins.
pub fn log_length(record: &Record) -> u64 {
    fs::metadata(Path::new(&record.log_path))
        .map(|m| m.len())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_as_docker_spells_them() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("kill").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn containers_are_found_by_id_name_or_unique_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for (id, name) in [("abc1", "/web"), ("abc2", "/db"), ("def3", "/abc1x")] {
            let mut record = Record {
                id: format!("{id}{}", "0".repeat(60)),
                name: name.to_string(),
                ..Record::default()
            };
            record.state.status = crate::container::Status::Exited;
            store.create_container(&record).unwrap();
        }
        assert!(find(&store, "web").unwrap().id.starts_with("abc1"));
        assert!(find(&store, "/db").unwrap().id.starts_with("abc2"));
        assert!(find(&store, "def").unwrap().id.starts_with("def3"));
        let err = find(&store, "abc").unwrap_err().to_string();
        assert!(
            err.contains("abc10000") && err.contains("abc20000"),
            "{err}"
        );
        assert!(matches!(
            find(&store, "nope"),
            Err(LifecycleError::NoSuchContainer(_))
        ));
    }
}
