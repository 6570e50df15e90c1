//! Docker's container prune: every stopped container (exited or never
//! started) removed, as ctr-rm would, with the space its writes took.

use super::LifecycleError;
use super::find::list;
use super::remove::remove;
use crate::container::view::size_rw;
use crate::container::{STEP_LABEL, owner};
use crate::format::human::parse_rfc3339;
use crate::image::PruneFilter;
use crate::store::Store;

/// What a prune removed: the full IDs, and the bytes their upper dirs held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub ids: Vec<String>,
    pub reclaimed: u64,
}

/// Removes every container that is not running (nor being started) and
/// passes all `filters`. A build step's container is its builder's.
pub fn prune(store: &Store, filters: &[PruneFilter]) -> Result<Pruned, LifecycleError> {
    let mut pruned = Pruned::default();
    for record in list(store)? {
        let stopped = !record.state.running && !owner::is_owned(store, &record.id);
        let passes = filters
            .iter()
            .all(|f| f.passes(parse_rfc3339(&record.created), &record.config.labels));
        if !stopped || !passes || record.config.labels.contains_key(STEP_LABEL) {
            continue;
        }
        let size = size_rw(store, &record);
        match remove(store, &record, false, false) {
            Ok(()) => {
                pruned.ids.push(record.id);
                pruned.reclaimed += size;
            }
            // Started since it was listed: it is no longer prunable.
            Err(LifecycleError::Running(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{Owner, Record};
    use std::time::SystemTime;

    #[test]
    fn stopped_containers_go_and_filters_narrow_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let make = |id: &str, created: &str, label: Option<&str>| {
            let mut record = Record {
                id: id.repeat(64),
                name: format!("/{id}"),
                created: created.to_string(),
                ..Record::default()
            };
            if let Some(label) = label {
                record.config.labels.insert(label.to_string(), "1".into());
            }
            record.state.exit(0);
            store.create_container(&record).unwrap();
        };
        make("a", "2020-01-01T00:00:00Z", Some("keep"));
        make("b", "2020-01-01T00:00:00Z", None);
        make("c", &crate::container::now(), None);
        make("d", "2020-01-01T00:00:00Z", None);
        // Being started (owned): not prunable.
        let _owner = Owner::take(&store.container_dir(&"d".repeat(64))).unwrap();
        std::fs::write(store.container_dir(&"b".repeat(64)).join("upper"), b"12345").unwrap();
        let now = SystemTime::now();
        let filters = [
            PruneFilter::parse("until=24h", now).unwrap(),
            PruneFilter::parse("label!=keep", now).unwrap(),
        ];
        let pruned = prune(&store, &filters).unwrap();
        assert_eq!(pruned.ids, ["b".repeat(64)]);
        assert_eq!(pruned.reclaimed, 5);
        assert!(!store.container_dir(&"b".repeat(64)).exists());
        let pruned = prune(&store, &[]).unwrap();
        let mut ids = pruned.ids;
        ids.sort();
        assert_eq!(ids, ["a".repeat(64), "c".repeat(64)]);
        assert!(store.load_container(&"d".repeat(64)).is_ok());
    }
}
