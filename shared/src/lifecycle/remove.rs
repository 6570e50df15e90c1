//! Docker's rm: a stopped container's mounts, runtime state, cgroups and
//! directory removed; `-f` kills a running one first.

use super::LifecycleError;
use super::kill::{KILL_GRACE, kill, wait_stopped};
use crate::container::Record;
use crate::container::owner::{self, refresh};
use crate::store::Store;
use crate::volume::Volumes;

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
    if volumes {
        Volumes::of(store).remove_anonymous_of(&record)?;
    }
    Ok(())
}
