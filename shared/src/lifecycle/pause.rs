//! Docker's pause and unpause: the container's cgroup frozen or thawed
//! through the freezer, and its record saying so (`State.Paused`, status
//! `paused`). The freezer is changed under the record's lock, so the
//! record never says otherwise for long, and an exit recorded meanwhile
//! (which ends a pause) is never overwritten.

use super::LifecycleError;
use crate::container::owner::{self, refresh};
use crate::container::{Record, cgroup};
use crate::store::Store;

/// Freezes every process of a running container; a paused or stopped one
/// is refused in Docker's words.
pub fn pause(store: &Store, record: &Record) -> Result<(), LifecycleError> {
    let record = refresh(store, record.clone());
    let mut outcome = Ok(());
    store.update_container(&record.id, |r| {
        outcome = if !r.state.running || !owner::init_alive(&r.id, r.state.pid) {
            Err(LifecycleError::Stopped(r.id.clone()))
        } else if r.state.paused {
            Err(LifecycleError::AlreadyPaused(r.id.clone()))
        } else {
            cgroup::freeze(&r.id).map_err(|source| LifecycleError::CannotPause {
                id: r.id.clone(),
                source,
            })
        };
        if outcome.is_ok() {
            r.state.pause();
        }
    })?;
    outcome
}

/// Thaws a paused container; one that is not paused is refused.
pub fn unpause(store: &Store, record: &Record) -> Result<(), LifecycleError> {
    let record = refresh(store, record.clone());
    let mut outcome = Ok(());
    store.update_container(&record.id, |r| {
        outcome = if !r.state.paused {
            Err(LifecycleError::NotPaused(r.id.clone()))
        } else {
            thaw(r)
        };
    })?;
    outcome
}

/// Thaws a paused container after a signal Docker lets through a pause
/// (see [`super::kill::kill`]); an exit recorded meanwhile stays.
pub(super) fn thaw_after_signal(store: &Store, id: &str) {
    let _ = store.update_container(id, |r| {
        if r.state.paused {
            let _ = thaw(r);
        }
    });
}

/// Thaws `r`'s cgroup and records it running again.
fn thaw(r: &mut Record) -> Result<(), LifecycleError> {
    cgroup::thaw(&r.id).map_err(|source| LifecycleError::CannotUnpause {
        id: r.id.clone(),
        source,
    })?;
    r.state.unpause();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopped_and_unpaused_containers_are_refused_in_dockers_words() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut record = Record {
            id: "e".repeat(64),
            name: "/web".to_string(),
            ..Record::default()
        };
        record.state.exit(0);
        store.create_container(&record).unwrap();
        let id = &record.id;
        assert_eq!(
            pause(&store, &record).unwrap_err().to_string(),
            format!("Container {id} is not running")
        );
        assert_eq!(
            unpause(&store, &record).unwrap_err().to_string(),
            format!("Container {id} is not paused")
        );
        assert!(!store.load_container(id).unwrap().state.paused);
    }
}
