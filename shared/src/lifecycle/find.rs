//! Finding containers as Docker does (full ID, name, unique ID prefix),
//! each with its live state.

use super::LifecycleError;
use crate::container::owner::{self, refresh};
use crate::container::{ContainerError, Record};
use crate::store::Store;

/// Finds a container as Docker does (full ID, name, unique ID prefix:
/// `Store::find_container`), with its live state.
pub fn find(store: &Store, target: &str) -> Result<Record, LifecycleError> {
    match store.find_container(target) {
        Ok(found) => Ok(refresh(store, found)),
        Err(ContainerError::NoSuchContainer(target)) => {
            Err(LifecycleError::NoSuchContainer(target))
        }
        Err(ContainerError::Ambiguous { prefix, candidates }) => {
            Err(LifecycleError::Ambiguous { prefix, candidates })
        }
        Err(e) => Err(e.into()),
    }
}

/// Every container with its live state, newest first (as `docker ps`).
pub fn list(store: &Store) -> Result<Vec<Record>, LifecycleError> {
    let (records, bare) = match store.scan_containers() {
        Ok(scan) => scan,
        Err(ContainerError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Vec::new());
        }
        Err(e) => return Err(e.into()),
    };
    // A killed img-build's step is not the user's container: it goes.
    let mut all = owner::sweep_orphans_among(store, records, &bare);
    all.sort_by(|a, b| b.created.cmp(&a.created));
    Ok(all.into_iter().map(|r| refresh(store, r)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_found_by_id_name_or_unique_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for (id, name) in [("abc1", "/web"), ("abc2", "/db"), ("def3", "/abc1x")] {
            let mut record = Record {
                id: format!("{id}{}", "0".repeat(60)),
                name: name.to_string(),
                ..Record::default()
            };
            record.state.status = crate::container::Status::Exited;
            store.create_container(&record).unwrap();
        }
        assert!(find(&store, "web").unwrap().id.starts_with("abc1"));
        assert!(find(&store, "/db").unwrap().id.starts_with("abc2"));
        assert!(find(&store, "def").unwrap().id.starts_with("def3"));
        let err = find(&store, "abc").unwrap_err().to_string();
        assert!(
            err.contains("abc10000") && err.contains("abc20000"),
            "{err}"
        );
        assert!(matches!(
            find(&store, "nope"),
            Err(LifecycleError::NoSuchContainer(_))
        ));
    }
}
