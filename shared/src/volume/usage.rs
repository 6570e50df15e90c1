//! Which containers use a volume (any container, running or not, whose
//! record mounts it), and the writers that must know: `vol-rm`,
//! `vol-prune`, and the removal of a container's anonymous volumes.

use super::VolumeError;
use super::store::{Volume, Volumes, disk_usage};
use crate::container::Record;

/// The IDs of the containers in `records` that mount volume `name`.
pub fn users(records: &[Record], name: &str) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.mounts.iter().any(|m| m.name.as_deref() == Some(name)))
        .map(|r| r.id.clone())
        .collect()
}

/// Whether no container in `records` uses `volume` (`dangling=true`).
pub fn dangling(records: &[Record], volume: &Volume) -> bool {
    users(records, &volume.name).is_empty()
}

/// What `vol-prune` removed.
#[derive(Debug, Default)]
pub struct Pruned {
    pub names: Vec<String>,
    pub bytes: u64,
}

impl Volumes {
    /// `vol-rm`: removes volume `name` unless a container uses it
    /// (Docker's "volume is in use"); under the writers' lock, so no
    /// container is made with it meanwhile.
    pub fn remove(&self, name: &str) -> Result<Volume, VolumeError> {
        let _lock = self.lock()?;
        let volume = self.find(name)?;
        let records = self.store.containers()?;
        let users = users(&records, name);
        if !users.is_empty() {
            return Err(VolumeError::InUse {
                name: name.to_string(),
                users,
            });
        }
        self.delete(name)?;
        Ok(volume)
    }

    /// `vol-prune`: removes the unused anonymous volumes (`all`: every
    /// unused one) that `keep` does not hold back (the filters).
    pub fn prune(&self, all: bool, keep: impl Fn(&Volume) -> bool) -> Result<Pruned, VolumeError> {
        let _lock = self.lock()?;
        let records = self.store.containers()?;
        let mut pruned = Pruned::default();
        for volume in self.list()? {
            if (!all && !volume.is_anonymous()) || !dangling(&records, &volume) || keep(&volume) {
                continue;
            }
            pruned.bytes += self.delete(&volume.name)?;
            pruned.names.push(volume.name);
        }
        Ok(pruned)
    }

    /// After container `record` is removed (`ctr-rm -v`, `--rm`): its
    /// anonymous volumes that no other container uses go too. Named ones
    /// stay, as Docker's.
    pub fn remove_anonymous_of(&self, record: &Record) -> Result<(), VolumeError> {
        // Most containers have no volume: no lock, and no read of every
        // record, on their way out.
        if record.mounts.iter().all(|m| m.name.is_none()) {
            return Ok(());
        }
        let _lock = self.lock()?;
        let records: Vec<Record> = self
            .store
            .containers()?
            .into_iter()
            .filter(|r| r.id != record.id)
            .collect();
        for name in record.mounts.iter().filter_map(|m| m.name.as_deref()) {
            let Some(volume) = self.get(name)? else {
                continue;
            };
            if volume.is_anonymous() && users(&records, name).is_empty() {
                self.delete(name)?;
            }
        }
        Ok(())
    }

    /// The bytes volume `name`'s files take.
    pub fn size(&self, name: &str) -> u64 {
        disk_usage(&self.data_dir(name))
    }
}
