//! The monitor's restart of a container whose process exited and whose
//! restart policy starts it again: the exit recorded as Docker's
//! `restarting` state, the run's mounts, runtime state and network torn
//! down, the back-off waited (given up if the user stops or kills it
//! meanwhile), then the container made ready and started again, all
//! under the owner lock the monitor keeps throughout. berth has no
//! daemon: this lasts as long as the monitor does.

use super::RunError;
use super::create::{Prepared, reopen_owned};
use super::process::{Stdio, start};
use crate::container::Owner;
use crate::container::restart::stopped_by_user;
use crate::store::Store;
use libcontainer::container::Container;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

/// A run started again: the container, its init, and its output pipes.
pub(super) struct Restarted {
    pub prepared: Prepared,
    pub container: Container,
    pub pid: i32,
    pub out: OwnedFd,
    pub err: OwnedFd,
}

/// Why the container stays down after all: the user stopped it during the
/// back-off, or it could not be made ready or started again (said in the
/// record's `State.Error`, as Docker keeps a failed start there).
pub(super) enum NotRestarted {
    Stopped,
    Failed(RunError),
}

/// Records `code` as a restarting exit, tears the run down, waits `delay`
/// and starts the container again. On failure the container is left
/// exited with `code`, torn down, and its owner lock released.
pub(super) fn restart(
    mut prepared: Prepared,
    container: Container,
    code: i32,
    delay: Duration,
) -> Result<Restarted, NotRestarted> {
    let store = prepared.store.clone();
    let id = prepared.id.clone();
    drop(container);
    let _ = store.update_container(&id, |r| {
        r.state.restarting(code);
        r.restart_count += 1;
    });
    prepared.cleanup(false);
    let Some(owner) = prepared.owner.take() else {
        return Err(NotRestarted::Failed(RunError::Monitor(
            "no owner lock".into(),
        )));
    };
    drop(prepared);
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if stopped_by_user(&store.container_dir(&id)) {
            give_up(&store, &id, owner, code, None);
            return Err(NotRestarted::Stopped);
        }
        std::thread::sleep(Duration::from_millis(10).min(delay));
    }
    // The user's stop may come at any moment up to here; after it, ctr-stop
    // and ctr-kill find a running container and signal it.
    if stopped_by_user(&store.container_dir(&id)) {
        give_up(&store, &id, owner, code, None);
        return Err(NotRestarted::Stopped);
    }
    let owner_copy = match owner_duplicate(&owner) {
        Ok(copy) => copy,
        Err(e) => {
            give_up(&store, &id, owner, code, Some(&e));
            return Err(NotRestarted::Failed(e));
        }
    };
    let prepared = match reopen_owned(&store, &id, owner) {
        Ok(prepared) => prepared,
        Err(e) => {
            give_up(&store, &id, owner_copy, code, Some(&e));
            return Err(NotRestarted::Failed(e));
        }
    };
    drop(owner_copy);
    let pipes = (rustix::pipe::pipe(), rustix::pipe::pipe());
    let ((out, out_w), (err, err_w)) = match pipes {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            let e = RunError::Runtime(format!("creating the log pipes: {e}"));
            return Err(fail_started(prepared, code, e));
        }
    };
    let stdio = Stdio {
        stdin: None,
        stdout: Some(out_w),
        stderr: Some(err_w),
        console_socket: None,
    };
    match start(&prepared, stdio) {
        Ok((container, pid)) => {
            // A kill that came while it was being started found it
            // restarting and only left the mark: it ends now, and the
            // monitor sees the mark once it has exited.
            if stopped_by_user(&prepared.dir) {
                // SAFETY: our child, the init just started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            Ok(Restarted {
                prepared,
                container,
                pid,
                out,
                err,
            })
        }
        Err(e) => Err(fail_started(prepared, code, e)),
    }
}

/// A second descriptor of the owner lock's open file: it keeps the lock
/// held if `reopen_owned` fails and drops the one it was given.
fn owner_duplicate(owner: &Owner) -> Result<Owner, RunError> {
    Owner::duplicate(owner)
        .map_err(|e| RunError::Monitor(format!("duplicating the owner lock: {e}")))
}

/// A start that failed after the container was made ready: torn down (by
/// dropping it), recorded as exited.
fn fail_started(mut prepared: Prepared, code: i32, e: RunError) -> NotRestarted {
    let owner = prepared.owner.take();
    let store = prepared.store.clone();
    let id = prepared.id.clone();
    drop(prepared); // armed: the one teardown
    if let Some(owner) = owner {
        give_up(&store, &id, owner, code, Some(&e));
    }
    NotRestarted::Failed(e)
}

/// The container stays exited with `code` (and why, if it failed); the
/// owner lock goes with the exit code left for ctr-wait.
fn give_up(store: &Store, id: &str, owner: Owner, code: i32, why: Option<&RunError>) {
    let _ = store.update_container(id, |r| {
        r.state.exit(code);
        r.state.error = why.map(|e| e.to_string()).unwrap_or_default();
    });
    owner.leave_exit_code(code);
    drop(owner);
}
