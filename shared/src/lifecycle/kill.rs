//! Signals in Docker's spelling, kill, and Docker's stop (the stop signal,
//! then SIGKILL after the timeout).

use super::LifecycleError;
use super::pause::thaw_after_signal;
use crate::container::Record;
use crate::container::owner::{self, refresh};
use crate::container::restart::mark_stopped_by_user;
use crate::store::Store;
use std::time::{Duration, Instant};

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

/// Sends `signal` to the container's init. As Docker's kill, it marks the
/// container stopped by its user, so its restart policy does not start it
/// again; one waiting to restart only gets the mark (its monitor then
/// leaves it exited).
pub fn kill(store: &Store, record: &Record, signal: i32) -> Result<(), LifecycleError> {
    let record = refresh(store, record.clone());
    let dir = store.container_dir(&record.id);
    if record.state.restarting && owner::is_owned(store, &record.id) {
        mark_stopped_by_user(&dir);
        return Ok(());
    }
    if !record.state.running || !owner::init_alive(&record.id, record.state.pid) {
        return Err(LifecycleError::NotRunning(record.id));
    }
    mark_stopped_by_user(&dir);
    // SAFETY: kill(2) has no memory effects; the PID was just checked to be
    // this container's init.
    unsafe { libc::kill(record.state.pid, signal) };
    if record.state.paused && ends_a_pause(&record, signal) {
        // A frozen init gets the signal once thawed, as Docker's does.
        thaw_after_signal(store, &record.id);
    }
    Ok(())
}

/// Docker's rule: SIGKILL and the container's stop signal (any signal, if
/// it has none of its own) thaw a paused container; any other waits,
/// pending, for its unpause.
fn ends_a_pause(record: &Record, signal: i32) -> bool {
    signal == libc::SIGKILL
        || record.config.stop_signal.is_empty()
        || parse_signal(&record.config.stop_signal).is_ok_and(|stop| stop == signal)
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
pub(super) const KILL_GRACE: Duration = Duration::from_secs(30);

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
    fn the_stop_signal_and_sigkill_end_a_pause_as_docker_s_do() {
        let mut record = Record::default();
        assert!(ends_a_pause(&record, libc::SIGUSR1), "no stop signal: any");
        record.config.stop_signal = "SIGQUIT".to_string();
        assert!(ends_a_pause(&record, libc::SIGQUIT));
        assert!(ends_a_pause(&record, libc::SIGKILL));
        assert!(!ends_a_pause(&record, libc::SIGTERM));
    }
}
