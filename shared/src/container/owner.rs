//! Who owns a container, and what it holds while it runs: the owner lock,
//! whether its init still lives, its record made true once its owner died,
//! and the one teardown every path calls (the root filesystem unmounted,
//! libcontainer's state and the cgroups released).

use super::{ContainerError, OWNER_LOCK, Record, STEP_LABEL, Status};
use crate::store::Store;
use std::fs::{self, File};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};

/// The owner lock (a flock) of a container's directory, held for as long
/// as someone will record the container's exit: the foreground ctr-run,
/// the monitor, or the builder running a step. Free means nobody will.
#[derive(Debug)]
pub struct Owner(File);

impl Owner {
    /// Takes the owner lock of the container directory `dir` without
    /// waiting: a second owner is a bug or a race we refuse.
    pub fn take(dir: &Path) -> Result<Owner, ContainerError> {
        let path = dir.join(OWNER_LOCK);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(ContainerError::io(&path))?;
        match file.try_lock() {
            // What a previous owner left there (see `leave_exit_code`) is
            // not this run's.
            Ok(()) => match file.set_len(0) {
                Ok(()) => Ok(Owner(file)),
                Err(e) => Err(ContainerError::io(&path)(e)),
            },
            Err(fs::TryLockError::WouldBlock) => Err(ContainerError::AlreadyRunning(
                dir.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )),
            Err(fs::TryLockError::Error(e)) => Err(ContainerError::io(&path)(e)),
        }
    }
}

impl Owner {
    /// A second descriptor of the same lock: the lock stays held until
    /// both are dropped.
    pub fn duplicate(&self) -> std::io::Result<Owner> {
        Ok(Owner(self.0.try_clone()?))
    }

    /// Leaves the container's exit code in the lock file for those blocked
    /// on the lock (ctr-wait): with `--rm` the record goes before the lock
    /// is released, and this is where they still find the code.
    pub fn leave_exit_code(&self, code: i32) {
        use std::os::unix::fs::FileExt;
        let _ = self.0.write_all_at(format!("exit {code}\n").as_bytes(), 0);
    }
}

impl AsFd for Owner {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for Owner {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Whether a process owns the container (it runs, or is being started).
pub fn is_owned(store: &Store, id: &str) -> bool {
    let path = store.container_dir(id).join(OWNER_LOCK);
    match File::open(&path) {
        Ok(file) => matches!(file.try_lock(), Err(fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// Blocks until nobody owns container `id`: its owner has recorded the
/// exit (or died). The shared lock this takes is dropped at once, so an
/// owner about to start the container again is hardly delayed. Returns the
/// exit code the owner left in the lock file, if it left one (see
/// [`Owner::leave_exit_code`]): the only trace of a `--rm` container's exit.
pub fn wait_unowned(store: &Store, id: &str) -> Option<i32> {
    use std::io::Read;
    let mut file = File::open(store.container_dir(id).join(OWNER_LOCK)).ok()?;
    file.lock_shared().ok()?;
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().strip_prefix("exit ")?.parse().ok()
}

/// Whether `pid` is still the init of container `id`: a PID is recycled,
/// a cgroup path with the container's ID is not.
pub fn init_alive(id: &str, pid: i32) -> bool {
    pid > 0
        && fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .is_ok_and(|text| text.contains(&format!("/berth/{id}")))
}

/// Whether nobody owns the container any more and its record says it
/// stopped (or it was removed, with --rm).
pub fn has_stopped(store: &Store, id: &str) -> bool {
    match store.load_container(id) {
        Err(_) => true,
        Ok(record) => !is_owned(store, id) && !refresh(store, record).state.running,
    }
}

/// The record made true: a container whose init died while nobody owned it
/// (its monitor was killed too, or the machine restarted) is saved as
/// exited, with 255 as Docker shows for an exit nobody saw; one a killed
/// ctr-run left created loses its mount and cgroups.
pub fn refresh(store: &Store, record: Record) -> Record {
    let rootfs = store.container_dir(&record.id).join("rootfs");
    if !record.state.running {
        if record.state.status == Status::Created && !is_owned(store, &record.id) {
            // A ctr-run killed before its container started: what it
            // started and mounted for it goes; the record stays, as Docker
            // keeps a created container.
            kill_cgroup(&record.id);
            teardown(store, &record.id, &rootfs);
        }
        return record;
    }
    if is_owned(store, &record.id)
        || (!record.state.restarting && init_alive(&record.id, record.state.pid))
    {
        return record;
    }
    let id = record.id.clone();
    teardown(store, &id, &rootfs);
    store
        .update_container(&id, |r| {
            if r.state.running {
                r.state.exit(255);
            }
        })
        .unwrap_or(record)
}

/// The one teardown of what container `id` holds while it runs, beyond its
/// directory: the mount of its root filesystem at `rootfs` (detached),
/// libcontainer's state, its cgroups, and its network (veth, firewall
/// rules, address lease, host ports, namespace). Its processes must be
/// gone: its init exited (and with it its PID namespace), or see
/// [`kill_cgroup`].
pub fn teardown(store: &Store, id: &str, rootfs: &Path) {
    let _ = rustix::mount::unmount(rootfs, rustix::mount::UnmountFlags::DETACH);
    release_runtime(store, id);
    crate::network::attach::detach(store, id);
}

/// Removes libcontainer's state of container `id` and its cgroups.
pub fn release_runtime(store: &Store, id: &str) {
    store.remove_runtime_state(id);
    for controller in [
        "cpu",
        "cpuacct",
        "cpuset",
        "memory",
        "devices",
        "freezer",
        "blkio",
        "pids",
        "systemd",
        "net_cls",
        "perf_event",
        "hugetlb",
        "unified",
    ] {
        // The shared `berth` parent stays, as Docker's `docker` does:
        // removing it when it looked empty raced another container's
        // start, whose runtime had just made it and was making its own
        // cgroup below ("failed to create dir …: No such file").
        let base = Path::new("/sys/fs/cgroup").join(controller).join("berth");
        remove_cgroup(&base.join(id));
    }
}

/// SIGKILLs every process in container `id`'s cgroup and waits (briefly)
/// for the cgroup to empty: for a container whose owner died, so nobody
/// can signal its init by a PID it remembers.
pub fn kill_cgroup(id: &str) {
    // A frozen (paused) task does not die until it is thawed.
    super::cgroup::thaw_if_frozen(id);
    let Some(procs) = ["pids", "freezer", "memory", "cpu"]
        .iter()
        .map(|c| {
            Path::new("/sys/fs/cgroup")
                .join(c)
                .join("berth")
                .join(id)
                .join("cgroup.procs")
        })
        .find(|p| p.exists())
    else {
        return;
    };
    for _ in 0..500 {
        let Ok(text) = fs::read_to_string(&procs) else {
            return;
        };
        let pids: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            // SAFETY: sending a signal has no memory effects.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Removes a container's cgroup directory, with any cgroups made below it
/// (a privileged container may make its own). The kernel may still be
/// detaching the last exited task for a moment (EBUSY): retried briefly.
pub fn remove_cgroup(path: &Path) {
    for _ in 0..50 {
        match fs::remove_dir(path) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                let children: Vec<PathBuf> = fs::read_dir(path)
                    .map(|dir| {
                        dir.flatten()
                            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                            .map(|e| e.path())
                            .collect()
                    })
                    .unwrap_or_default();
                if children.is_empty() {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                for child in children {
                    remove_cgroup(&child);
                }
            }
            _ => return,
        }
    }
}

/// Whether the record is a build step's whose builder died: a live builder
/// holds its step's owner lock from before the record exists.
pub fn is_orphan(store: &Store, record: &Record) -> bool {
    record.config.labels.contains_key(STEP_LABEL)
        && (!is_owned(store, &record.id)
            || !lock_taker_alive(&store.container_dir(&record.id).join(OWNER_LOCK)))
}

/// Whether the process that took the flock on `path` still lives. A lock
/// outlives its taker while a process forked from it holds a copy of the
/// descriptor: a step's init that libcontainer created but whose builder
/// was killed before starting it waits for its start signal forever,
/// holding the builder's locks. The kernel's lock table names the taker.
fn lock_taker_alive(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = fs::metadata(path) else {
        return false;
    };
    let Ok(table) = fs::read_to_string("/proc/locks") else {
        return true; // cannot tell: the lock stands
    };
    let file = format!(
        "{:02x}:{:02x}:{}",
        libc::major(meta.dev()),
        libc::minor(meta.dev()),
        meta.ino()
    );
    let takers: Vec<&str> = table
        .lines()
        .filter(|line| !line.contains("->")) // waiters, not holders
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&file.as_str()))
                .then(|| fields[4])
        })
        .collect();
    // No entry: the lock was just released or taken; it stands.
    takers.is_empty()
        || takers.iter().any(|pid| {
            fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(") ")
                    .is_some_and(|(_, rest)| !rest.starts_with('Z'))
            })
        })
}

/// Removes the containers of build steps whose builder died: their
/// processes (anything the parent-death signal missed), cgroups, runtime
/// state and records; and any container directory a killed tool left
/// without a record.
pub fn sweep_orphans(store: &Store) {
    // A record that cannot be read is skipped, not a reason to sweep nothing.
    let Ok(entries) = fs::read_dir(store.containers_dir()) else {
        return;
    };
    let mut records = Vec::new();
    let mut bare = Vec::new();
    for entry in entries.flatten() {
        let id = entry.file_name().to_string_lossy().into_owned();
        match store.load_container(&id) {
            Ok(record) => records.push(record),
            Err(ContainerError::NoSuchContainer(_)) => bare.push(id),
            Err(_) => {}
        }
    }
    sweep_orphans_among(store, records, &bare);
}

/// [`sweep_orphans`] over a scan already made ([`Store::scan_containers`]):
/// returns the records that remain, so a listing reads each record once.
pub fn sweep_orphans_among(store: &Store, records: Vec<Record>, bare: &[String]) -> Vec<Record> {
    // Directories of containers whose tool died before the record was
    // written (or while removing it): nothing was mounted or started yet.
    for dir in store.leftover_among(bare) {
        let _ = fs::remove_dir_all(dir);
    }
    let (orphans, kept): (Vec<Record>, Vec<Record>) =
        records.into_iter().partition(|r| is_orphan(store, r));
    for record in orphans {
        let id = &record.id;
        // Its root filesystem is the builder's, which unmounts it.
        kill_cgroup(id);
        release_runtime(store, id);
        crate::network::attach::detach(store, id);
        let _ = store.remove_container(id);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_owner_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = "a".repeat(64);
        let container = store.make_container_dir(&id).unwrap();
        assert!(!is_owned(&store, &id));
        let owner = Owner::take(&container).unwrap();
        assert!(is_owned(&store, &id));
        let second = Owner::take(&container).unwrap_err();
        assert_eq!(
            second.to_string(),
            format!("container {id} is already running")
        );
        owner.leave_exit_code(3);
        drop(owner);
        assert!(!is_owned(&store, &id));
        assert_eq!(wait_unowned(&store, &id), Some(3));
        let _next = Owner::take(&container).unwrap();
        assert_eq!(wait_unowned_now(&store, &id), None, "a new owner's run");
    }

    /// `wait_unowned` without the wait, for a lock held by this process.
    fn wait_unowned_now(store: &Store, id: &str) -> Option<i32> {
        let text = fs::read_to_string(store.container_dir(id).join(OWNER_LOCK)).ok()?;
        text.trim().strip_prefix("exit ")?.parse().ok()
    }

    #[test]
    fn a_container_without_a_record_or_owner_has_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(has_stopped(&store, "gone"));
        let mut record = Record {
            id: "b".repeat(64),
            name: "/web".to_string(),
            ..Record::default()
        };
        record.state.exit(0);
        store.create_container(&record).unwrap();
        assert!(has_stopped(&store, &record.id));
        let owner = Owner::take(&store.container_dir(&record.id)).unwrap();
        assert!(!has_stopped(&store, &record.id));
        drop(owner);
        // Recorded as running with no owner and no such init: saved as an
        // exit nobody saw.
        store
            .update_container(&record.id, |r| r.state.start(i32::MAX))
            .unwrap();
        let refreshed = refresh(&store, store.load_container(&record.id).unwrap());
        assert_eq!(refreshed.state.status, Status::Exited);
        assert_eq!(refreshed.state.exit_code, 255);
        assert!(!init_alive(&record.id, std::process::id() as i32));
    }
}
