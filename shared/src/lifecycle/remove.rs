//! Docker's rm: a stopped container's mounts, runtime state, cgroups and
//! directory removed; `-f` kills a running one first.

use super::LifecycleError;
use super::kill::{KILL_GRACE, kill, wait_stopped};
use crate::container::Record;
use crate::container::owner::{self, is_owned, refresh};
use crate::store::Store;
use crate::volume::Volumes;
use std::time::{Duration, Instant};

/// Docker's rm: refuses a running container unless `force`, which kills it
/// first; then removes its mounts, runtime state, cgroups and directory;
/// with `volumes` (`-v`) also its anonymous volumes no other container
/// uses (named ones stay, as Docker's).
pub fn remove(
    store: &Store,
    record: &Record,
    force: bool,
    volumes: bool,
) -> Result<(), LifecycleError> {
    let Some(record) = settled(store, record)? else {
        return Ok(()); // --rm took it while we waited
    };
    // One waiting to restart counts as running (Docker's too); killing it
    // tells its monitor to leave it exited.
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
    if volumes {
        Volumes::of(store).remove_anonymous_of(&record)?;
    }
    Ok(())
}

/// The record once its owner has settled it. A container someone owns
/// whose record does not say running is being started (a monitor that
/// outlived a killed ctr-run, a ctr-start) or is having its exit
/// recorded: tearing it down under its owner would leave that owner
/// starting a process into a removed directory, with a cgroup nobody
/// removes. So wait, as Docker's rm waits for the container's lock, until
/// it runs or nobody owns it; None if it went meanwhile (`--rm`).
fn settled(store: &Store, record: &Record) -> Result<Option<Record>, LifecycleError> {
    let deadline = Instant::now() + KILL_GRACE;
    let mut record = refresh(store, record.clone());
    while !record.state.running && is_owned(store, &record.id) {
        if Instant::now() >= deadline {
            return Err(LifecycleError::DidNotStop(record.id));
        }
        std::thread::sleep(Duration::from_millis(5));
        match store.load_container(&record.id) {
            Ok(now) => record = refresh(store, now),
            Err(_) => return Ok(None),
        }
    }
    Ok(Some(record))
}
