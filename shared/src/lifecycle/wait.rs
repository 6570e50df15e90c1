//! Docker's wait: blocks until a container stops, then gives its exit code.
//! It waits on conditions, never on a clock: the owner lock (held by
//! whoever will record the exit, released once it is recorded) and, for an
//! init whose owner died, the init's pidfd.

use super::LifecycleError;
use crate::container::owner::{self, refresh};
use crate::container::{ContainerError, Record};
use crate::store::Store;

/// Waits for container `record` to stop and returns its exit code; one that
/// is not running (created or exited) answers at once, as Docker's does.
/// One removed on its exit (`--rm`) gives the code its owner left; one
/// removed otherwise (`ctr-rm`) is no such container.
pub fn wait(store: &Store, record: &Record) -> Result<i32, LifecycleError> {
    let id = &record.id;
    // The code its last owner left with the lock: the only trace of the
    // exit of a container removed on exit (--rm), as Docker's wait has it.
    let mut left = None;
    loop {
        let record = match store.load_container(id) {
            Ok(record) => refresh(store, record),
            Err(ContainerError::NoSuchContainer(_)) => {
                return left.ok_or_else(|| LifecycleError::NoSuchContainer(id.clone()));
            }
            Err(e) => return Err(e.into()),
        };
        if owner::is_owned(store, id) {
            left = owner::wait_unowned(store, id);
        } else if record.state.running {
            // Nobody owns it, yet its init lives (refresh would have
            // recorded its death otherwise): its end is the init's.
            init_exited(record.state.pid);
        } else {
            return Ok(record.state.exit_code);
        }
    }
}

/// Blocks until process `pid` has exited, through its pidfd.
fn init_exited(pid: i32) {
    use rustix::event::{PollFd, PollFlags, poll};
    let Some(pidfd) = rustix::process::Pid::from_raw(pid)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok())
    else {
        return; // gone already
    };
    loop {
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        match poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => continue,
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::Owner;
    use std::time::Duration;

    fn stored(store: &Store, id: &str) -> Record {
        let record = Record {
            id: id.to_string(),
            name: format!("/c{id}"),
            ..Record::default()
        };
        store.create_container(&record).unwrap();
        record
    }

    #[test]
    fn a_stopped_container_answers_at_once_with_its_code() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let record = stored(&store, "1");
        store.update_container("1", |r| r.state.exit(3)).unwrap();
        assert_eq!(wait(&store, &record).unwrap(), 3);
        store.remove_container("1").unwrap();
        assert!(matches!(
            wait(&store, &record),
            Err(LifecycleError::NoSuchContainer(_))
        ));
    }

    #[test]
    fn an_owned_container_is_waited_for_until_its_owner_records_the_exit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let record = stored(&store, "2");
        let owner = Owner::take(&store.container_dir("2")).unwrap();
        let (sender, answer) = std::sync::mpsc::channel();
        let waiter = {
            let store = Store::open(dir.path()).unwrap();
            let record = record.clone();
            std::thread::spawn(move || sender.send(wait(&store, &record).unwrap()))
        };
        // Owned: no answer yet, however long we look.
        assert!(answer.recv_timeout(Duration::from_millis(200)).is_err());
        store.update_container("2", |r| r.state.exit(7)).unwrap();
        drop(owner);
        assert_eq!(answer.recv_timeout(Duration::from_secs(10)).unwrap(), 7);
        waiter.join().unwrap().unwrap();
    }
}
