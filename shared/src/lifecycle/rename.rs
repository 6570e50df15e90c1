//! Docker's rename: a new name for a container, running or not, never one
//! another container has (checked and taken under the store's names lock).

use super::LifecycleError;
use crate::container::{Record, check_name};
use crate::store::Store;

/// Gives `record` the name `new` (with or without Docker's leading `/`).
pub fn rename(store: &Store, record: &Record, new: &str) -> Result<(), LifecycleError> {
    let new = new.strip_prefix('/').unwrap_or(new);
    if new.is_empty() {
        return Err(LifecycleError::EmptyName);
    }
    check_name(new)?;
    if record.name.trim_start_matches('/') == new {
        return Err(LifecycleError::SameName);
    }
    store.rename_container(&record.id, new)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_never_taken_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for (id, name) in [("1", "/web"), ("2", "/db")] {
            let record = Record {
                id: id.to_string(),
                name: name.to_string(),
                ..Record::default()
            };
            store.create_container(&record).unwrap();
        }
        let web = store.load_container("1").unwrap();
        let same = rename(&store, &web, "web").unwrap_err().to_string();
        assert_eq!(
            same,
            "Renaming a container with the same name as its current name"
        );
        let taken = rename(&store, &web, "/db").unwrap_err().to_string();
        assert!(
            taken.starts_with(
                "Conflict. The container name \"/db\" is already in use by container \"2\""
            ),
            "{taken}"
        );
        assert!(rename(&store, &web, "no/slash").is_err());
        assert!(matches!(
            rename(&store, &web, ""),
            Err(LifecycleError::EmptyName)
        ));
        rename(&store, &web, "/front").unwrap();
        assert_eq!(store.load_container("1").unwrap().name, "/front");
    }
}
