//! Starting a stopped container again through a new monitor, and following
//! an attached one's output to its exit.

use super::LifecycleError;
use super::kill::{KILL_GRACE, kill, wait_stopped};
use crate::container::Record;
use crate::container::logs::{self, Entry, LogError};
use crate::container::owner::{self, refresh};
use crate::container::restart::clear_stopped_by_user;
use crate::runtime;
use crate::store::Store;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Starts a stopped container again through a new monitor: same spec,
/// same upper dir. A running one is left as it is.
pub fn start(store: &Store, record: &Record, attached: bool) -> Result<(), LifecycleError> {
    let record = refresh(store, record.clone());
    if record.state.paused {
        return Err(LifecycleError::StartPaused(record.id));
    }
    if record.state.running {
        return Ok(());
    }
    // A monitor may still be tearing down the last run: let it finish.
    if owner::is_owned(store, &record.id) && !wait_stopped(store, &record.id, KILL_GRACE) {
        return Err(LifecycleError::DidNotStop(record.id));
    }
    let prepared = runtime::reopen(store, &record.id)?;
    // A start by the user: the policy applies again, counted from zero.
    clear_stopped_by_user(&prepared.dir);
    store.update_container(&record.id, |r| r.restart_count = 0)?;
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
    let mut stopped = || owner::has_stopped(store, &record.id);
    follow_to_exit(store, &record.id, log, from, proxy_signals, &mut stopped)
}

/// A foreground `ctr-run` of a container with a restart policy, whose
/// monitor owns it (it outlives this run): our stdin to it if it takes
/// some, its output to ours until its first run ends, and that run's exit
/// code, as Docker's client returns at the first exit while the engine
/// goes on restarting the container.
pub fn follow_first_run(store: &Store, record: &Record, input: bool) -> Result<i32, LogError> {
    if input && record.config.open_stdin {
        runtime::attach::send_stdin(&store.container_dir(&record.id));
    }
    let first = record.state.started_at.clone();
    let mut stopped = || match store.load_container(&record.id) {
        Ok(now) => !now.state.running || now.state.restarting || now.state.started_at != first,
        Err(_) => true,
    };
    let log = Path::new(&record.log_path);
    follow_to_exit(store, &record.id, log, 0, true, &mut stopped)
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
    stopped: &mut dyn FnMut() -> bool,
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
    logs::follow(path, offset, stopped, &mut emit, &mut forward)?;
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
