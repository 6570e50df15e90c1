//! The running side of a check: container records parse and name an image
//! the store has, and every mount under the root, berth cgroup, temp file
//! and scratch directory has a live owner.

use super::{Kind, Problem, Target, relative};
use crate::container::owner;
use crate::container::{ContainerError, Record};
use crate::digest::Digest;
use crate::store::{Store, StoreError, mount_points};
use std::collections::HashSet;
use std::fs::{self, File};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

/// An empty cgroup no container of this store owns may be another store's,
/// being made or removed right now: only one this old is judged left over.
const FOREIGN_CGROUP_AGE: Duration = Duration::from_secs(10);

pub(super) fn check(store: &Store, problems: &mut Vec<Problem>) -> Result<(), StoreError> {
    check_containers(store, problems)?;
    check_mounts(store, problems);
    check_cgroups(store, problems);
    check_temp(store, problems)?;
    Ok(())
}

/// Whether container `id` of this store runs with an owner, or at all.
fn live(store: &Store, id: &str) -> bool {
    owner::is_owned(store, id)
        || store
            .load_container(id)
            .is_ok_and(|r| r.state.running && owner::init_alive(id, r.state.pid))
}

fn check_containers(store: &Store, problems: &mut Vec<Problem>) -> Result<(), StoreError> {
    let dir = store.containers_dir();
    let mut ids: Vec<String> = fs::read_dir(&dir)
        .map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    let images: HashSet<String> = store
        .images()
        .map(|images| images.iter().map(|i| i.id().to_string()).collect())
        .unwrap_or_default();
    let leftovers = store.leftover_container_dirs();
    for id in ids {
        let subject = format!("containers/{id}");
        let record = match store.load_container(&id) {
            Ok(record) => record,
            Err(ContainerError::NoSuchContainer(_)) => {
                if leftovers.contains(&store.container_dir(&id)) {
                    problems.push(
                        Problem::new(
                            Kind::Container,
                            subject,
                            "a directory without a record, left by a tool that died",
                        )
                        .repaired_by(Target::Swept),
                    );
                }
                continue;
            }
            Err(e) => {
                problems.push(Problem::new(
                    Kind::Container,
                    subject,
                    format!(
                        "the record does not parse ({}); no tool can act on it: remove the directory",
                        e.to_string().replace('\n', " ")
                    ),
                ));
                continue;
            }
        };
        check_record(store, &record, &images, subject, problems);
    }
    Ok(())
}

fn check_record(
    store: &Store,
    record: &Record,
    images: &HashSet<String>,
    subject: String,
    problems: &mut Vec<Problem>,
) {
    if owner::is_orphan(store, record) {
        problems.push(
            Problem::new(
                Kind::Container,
                subject,
                "a build step's container whose img-build died",
            )
            .repaired_by(Target::Swept),
        );
        return;
    }
    // A build step's record names no image: it runs on the builder's rootfs.
    if !record.image.is_empty()
        && !images.contains(&record.image)
        && store.resolve_image(&record.image).is_err()
    {
        problems.push(Problem::new(
            Kind::Container,
            subject.clone(),
            format!(
                "its image {} is not in the store; it cannot start again: ctr-rm it",
                record.image
            ),
        ));
    }
    if record.state.running && !owner::is_owned(store, &record.id) {
        if owner::init_alive(&record.id, record.state.pid) {
            problems.push(Problem::new(
                Kind::Container,
                subject,
                "running, but its monitor is gone: its output is not logged and its exit \
                 will not be recorded; ctr-rm -f it",
            ));
        } else {
            problems.push(
                Problem::new(
                    Kind::Container,
                    subject,
                    "recorded as running, but its process is gone and nobody recorded the exit",
                )
                .repaired_by(Target::Stale(record.id.clone())),
            );
        }
    }
}

/// Mounts below the store root: each belongs to a scratch directory in
/// `tmp/` or to a container, and that owner must be alive.
fn check_mounts(store: &Store, problems: &mut Vec<Problem>) {
    let root = store.root();
    let mut seen = HashSet::new();
    for point in mount_points() {
        let Ok(below) = point.strip_prefix(root) else {
            continue;
        };
        if below.as_os_str().is_empty() || !seen.insert(point.clone()) {
            continue;
        }
        let parts: Vec<&str> = below
            .components()
            .filter_map(|c| match c {
                Component::Normal(part) => part.to_str(),
                _ => None,
            })
            .collect();
        let dead = match parts.as_slice() {
            ["tmp", name, ..] => lock_is_free(&store.tmp_dir().join(name))
                .then_some("its scratch directory's owner died"),
            ["containers", id, ..] => {
                (!live(store, id)).then_some("its container is not running and nobody owns it")
            }
            _ => Some("nothing in berth mounts there"),
        };
        if let Some(why) = dead {
            let target = if parts.first() == Some(&"tmp") {
                Target::Swept
            } else {
                Target::Mount(point.clone())
            };
            problems
                .push(Problem::new(Kind::Mount, relative(store, &point), why).repaired_by(target));
        }
    }
}

/// Whether nobody holds the flock on `path` (a file or directory that
/// exists).
fn lock_is_free(path: &Path) -> bool {
    File::open(path).is_ok_and(|file| file.try_lock().is_ok())
}

/// The `berth` parents of container cgroups, one per mounted controller.
fn cgroup_parents() -> Vec<PathBuf> {
    let mut parents: Vec<PathBuf> = fs::read_dir("/sys/fs/cgroup")
        .map(|dir| {
            dir.flatten()
                .map(|e| e.path().join("berth"))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    parents.sort();
    parents
}

fn check_cgroups(store: &Store, problems: &mut Vec<Problem>) {
    for parent in cgroup_parents() {
        let Ok(entries) = fs::read_dir(&parent) else {
            continue;
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| Digest::is_hex64(name))
            .collect();
        ids.sort();
        for id in ids {
            let path = parent.join(&id);
            let subject = path.display().to_string();
            if store.container_dir(&id).is_dir() {
                if !live(store, &id) {
                    problems.push(
                        Problem::new(
                            Kind::Cgroup,
                            subject,
                            format!("container {} is not running", &id[..12]),
                        )
                        .repaired_by(Target::OurCgroup(id)),
                    );
                }
            } else if empty_and_old(&path) {
                problems.push(
                    Problem::new(Kind::Cgroup, subject, "no container has it and it is empty")
                        .repaired_by(Target::ForeignCgroup(path)),
                );
            }
        }
    }
}

fn empty_and_old(cgroup: &Path) -> bool {
    empty(cgroup) && old(cgroup)
}

/// No process in the cgroup or any cgroup below it.
fn empty(cgroup: &Path) -> bool {
    fs::read_to_string(cgroup.join("cgroup.procs")).is_ok_and(|t| t.trim().is_empty())
        && fs::read_dir(cgroup).is_ok_and(|dir| {
            dir.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .all(|e| empty(&e.path()))
        })
}

fn old(cgroup: &Path) -> bool {
    fs::metadata(cgroup)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age >= FOREIGN_CGROUP_AGE)
}

fn check_temp(store: &Store, problems: &mut Vec<Problem>) -> Result<(), StoreError> {
    let mut found: Vec<(String, String)> = store
        .dead_temp_files()?
        .into_iter()
        .map(|(path, size, _lock)| {
            (
                relative(store, &path),
                format!("a temp file ({size} bytes) whose writer died"),
            )
        })
        .collect();
    found.extend(store.dead_scratch("").into_iter().map(|(path, _lock)| {
        (
            relative(store, &path),
            "a scratch directory whose owner died".to_string(),
        )
    }));
    found.sort();
    for (subject, detail) in found {
        problems.push(Problem::new(Kind::Temp, subject, detail).repaired_by(Target::Swept));
    }
    Ok(())
}

/// Repairs what no sweep finds: stray mounts (deepest first), cgroups,
/// container directories without records, stale running states.
pub(super) fn repair(store: &Store, problems: &[Problem]) {
    let mut mounts: Vec<&PathBuf> = problems
        .iter()
        .filter_map(|p| match &p.target {
            Target::Mount(point) => Some(point),
            _ => None,
        })
        .collect();
    mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for point in mounts {
        let _ = rustix::mount::unmount(point, rustix::mount::UnmountFlags::DETACH);
    }
    for problem in problems {
        match &problem.target {
            Target::OurCgroup(id) => {
                owner::kill_cgroup(id);
                owner::release_runtime(store, id);
            }
            Target::ForeignCgroup(path) => owner::remove_cgroup(path),
            Target::Stale(id) => {
                if let Ok(record) = store.load_container(id) {
                    owner::refresh(store, record);
                }
            }
            Target::Swept | Target::Mount(_) | Target::None => {}
        }
    }
}
