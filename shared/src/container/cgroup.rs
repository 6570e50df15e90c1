//! A running container's cgroups as berth names them (`berth/<id>` under
//! each cgroup v1 controller, the spec's `cgroupsPath`): the processes in
//! them, and the freezer that pauses them. Every change is waited for until
//! the kernel reports it done.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ROOT: &str = "/sys/fs/cgroup";
const FREEZER_STATE: &str = "freezer.state";

/// Container `id`'s cgroup under `controller`.
pub fn path(controller: &str, id: &str) -> PathBuf {
    Path::new(ROOT).join(controller).join("berth").join(id)
}

/// The host PIDs of every process in container `id`, in its cgroup and any
/// cgroup below it, ascending; empty when it has no cgroup (it stopped).
pub fn procs(id: &str) -> Vec<i32> {
    fn walk(dir: &Path, out: &mut Vec<i32>) {
        if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&entry.path(), out);
            }
        }
    }
    let Some(dir) = ["pids", "freezer", "memory", "cpu"]
        .iter()
        .map(|controller| path(controller, id))
        .find(|dir| dir.join("cgroup.procs").exists())
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk(&dir, &mut out);
    out.sort_unstable();
    out.dedup();
    out
}

/// Writes `value` to container `id`'s cgroup file `file` under
/// `controller`: a limit changed while it runs (ctr-update). The kernel
/// refuses what it cannot do now (a memory limit below what is in use and
/// cannot be reclaimed: EBUSY).
pub fn write_limit(id: &str, controller: &str, file: &str, value: &str) -> io::Result<()> {
    let path = path(controller, id).join(file);
    fs::write(&path, value).map_err(|e| with_path(&path, e))
}

/// What the freezer says of a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freezer {
    Thawed,
    Freezing,
    Frozen,
}

impl Freezer {
    fn word(self) -> &'static str {
        match self {
            Freezer::Thawed => "THAWED",
            Freezer::Freezing => "FREEZING",
            Freezer::Frozen => "FROZEN",
        }
    }
}

/// Container `id`'s freezer state; an error when it has no freezer cgroup.
pub fn freezer_state(id: &str) -> io::Result<Freezer> {
    let file = path("freezer", id).join(FREEZER_STATE);
    let text = fs::read_to_string(&file).map_err(|e| with_path(&file, e))?;
    match text.trim() {
        "THAWED" => Ok(Freezer::Thawed),
        "FREEZING" => Ok(Freezer::Freezing),
        "FROZEN" => Ok(Freezer::Frozen),
        other => Err(io::Error::other(format!(
            "{}: unknown freezer state {other:?}",
            file.display()
        ))),
    }
}

/// How often, and how long, a freezer change is asked for and looked at
/// before it is given up: the v1 freezer has no event to wait on, so its
/// state file is the condition, read until it says the change is done.
const TRIES: u32 = 2000;
const BETWEEN_TRIES: Duration = Duration::from_millis(5);

/// Freezes every process of container `id` (Docker's pause) and returns
/// once the kernel reports them all frozen. A task caught in a system call
/// can hold FREEZING for a moment: FROZEN is asked for again until it
/// holds. Given up (and thawed back, never left half frozen) after ~10 s.
pub fn freeze(id: &str) -> io::Result<()> {
    let result = change(id, Freezer::Frozen);
    if result.is_err() {
        let _ = write_state(id, Freezer::Thawed);
    }
    result
}

/// Thaws every process of container `id` (Docker's unpause) and returns
/// once the kernel reports the cgroup thawed.
pub fn thaw(id: &str) -> io::Result<()> {
    change(id, Freezer::Thawed)
}

/// Thaws container `id` if it has a frozen freezer cgroup: before its
/// processes are killed, since a frozen task does not die until thawed.
pub fn thaw_if_frozen(id: &str) {
    if freezer_state(id).is_ok_and(|state| state != Freezer::Thawed) {
        let _ = thaw(id);
    }
}

fn change(id: &str, wanted: Freezer) -> io::Result<()> {
    for _ in 0..TRIES {
        write_state(id, wanted)?;
        if freezer_state(id)? == wanted {
            return Ok(());
        }
        std::thread::sleep(BETWEEN_TRIES);
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "{}: still not {} after {:?}",
            path("freezer", id).join(FREEZER_STATE).display(),
            wanted.word(),
            BETWEEN_TRIES * TRIES
        ),
    ))
}

fn write_state(id: &str, state: Freezer) -> io::Result<()> {
    let file = path("freezer", id).join(FREEZER_STATE);
    fs::write(&file, state.word()).map_err(|e| with_path(&file, e))
}

fn with_path(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_without_cgroups_has_no_processes_and_no_freezer() {
        let id = "f".repeat(64);
        assert!(procs(&id).is_empty());
        assert!(freezer_state(&id).is_err());
        let err = freeze(&id).unwrap_err().to_string();
        assert!(
            err.contains(&format!("freezer/berth/{id}/freezer.state")),
            "{err}"
        );
        thaw_if_frozen(&id); // nothing to thaw: no error, no effect
        assert_eq!(
            path("freezer", "x"),
            Path::new("/sys/fs/cgroup/freezer/berth/x")
        );
    }
}
