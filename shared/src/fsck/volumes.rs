//! The store's volumes: each directory under `volumes/` has its record and
//! its `_data`, and every volume a container's record mounts is there.
//! Judged under the volumes lock, so a volume being made is never one.
//! Nothing here is repaired: a volume holds a user's data.

use super::{FsckError, Kind, Problem};
use crate::store::Store;
use crate::volume::Volumes;

pub(super) fn check(store: &Store, problems: &mut Vec<Problem>) -> Result<(), FsckError> {
    let volumes = Volumes::of(store);
    let _lock = volumes.lock()?;
    for (name, why) in volumes.broken() {
        problems.push(Problem::new(Kind::Volume, format!("volumes/{name}"), why));
    }
    // A record that does not parse is its own finding (host.rs).
    let ids = std::fs::read_dir(store.containers_dir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned());
    for record in ids.filter_map(|id| store.load_container(&id).ok()) {
        for name in record.mounts.iter().filter_map(|m| m.name.as_deref()) {
            if volumes.get(name)?.is_none() {
                problems.push(Problem::new(
                    Kind::Volume,
                    format!("volumes/{name}"),
                    format!("container {} mounts it but it is not there", record.id),
                ));
            }
        }
    }
    Ok(())
}
