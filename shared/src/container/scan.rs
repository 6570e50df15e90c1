//! Reading many records at once, as listings and every create do: one walk
//! of `containers/` reading each record once into one buffer, the
//! directories without a record a tool left, and the name check a create
//! makes against every record without parsing each.

use super::record::parse_record;
use super::{ContainerError, OWNER_LOCK, Record};
use crate::store::Store;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

impl Store {
    /// Every container record, and the names of the entries of
    /// `containers/` that have none (a container being created or removed,
    /// or left by a tool that died): one walk of the directory, one read
    /// of each record.
    pub fn scan_containers(&self) -> Result<(Vec<Record>, Vec<String>), ContainerError> {
        let dir = self.containers_dir();
        let mut records = Vec::new();
        let mut bare = Vec::new();
        // One buffer for all, read without the size query `fs::read` makes
        // of every file: a listing of thousands is syscall-bound.
        let mut buf = Vec::with_capacity(16 * 1024);
        for entry in fs::read_dir(&dir).map_err(ContainerError::io(&dir))? {
            let entry = entry.map_err(ContainerError::io(&dir))?;
            let id = entry.file_name().to_string_lossy().into_owned();
            let path = self.record_path(&id);
            match read_into(&path, &mut buf) {
                Ok(()) => records.push(parse_record(&path, &buf)?),
                Err(e) if e.kind() == io::ErrorKind::NotFound => bare.push(id),
                Err(e) => return Err(ContainerError::io(&path)(e)),
            }
        }
        Ok((records, bare))
    }

    /// `name` without its `/`, if no container has it (the caller holds
    /// the names lock); Docker's conflict otherwise.
    pub(super) fn name_free<'n>(&self, name: &'n str) -> Result<&'n str, ContainerError> {
        let wanted = name.trim_start_matches('/');
        // Every ctr-run asks this, so it must stay cheap in a store of
        // thousands: a record can only hold the name if its bytes contain
        // it as a JSON string (names need no escapes), and only those few
        // are parsed.
        let quoted = format!("\"/{wanted}\"");
        let dir = self.containers_dir();
        let entries = match fs::read_dir(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(wanted),
            other => other.map_err(ContainerError::io(&dir))?,
        };
        let finder = memchr::memmem::Finder::new(quoted.as_bytes());
        let mut bytes = Vec::with_capacity(16 * 1024);
        for entry in entries {
            let entry = entry.map_err(ContainerError::io(&dir))?;
            let id = entry.file_name().to_string_lossy().into_owned();
            let path = self.record_path(&id);
            match read_into(&path, &mut bytes) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(ContainerError::io(&path)(e)),
            }
            if finder.find(&bytes).is_none() {
                continue;
            }
            let other = parse_record(&path, &bytes)?;
            if other.name.trim_start_matches('/') == wanted {
                return Err(ContainerError::NameInUse {
                    name: wanted.to_string(),
                    id: other.id,
                });
            }
        }
        Ok(wanted)
    }

    /// The container directories without a record whose owner died (killed
    /// between claiming the directory and writing the record, or while
    /// removing it).
    pub fn leftover_container_dirs(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(self.containers_dir()) else {
            return Vec::new();
        };
        let names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        self.leftover_among(&names)
    }

    /// Those of the entries `names` of `containers/` that are directories
    /// without a record whose owner died; checked under the names lock, so
    /// one being claimed right now (locked) is never among them.
    pub fn leftover_among(&self, names: &[String]) -> Vec<PathBuf> {
        if names.is_empty() {
            return Vec::new();
        }
        let Ok(_names) = self.lock_names() else {
            return Vec::new();
        };
        names
            .iter()
            .map(|name| self.container_dir(name))
            .filter(|dir| dir.is_dir() && !dir.join("container.json").exists())
            .filter(|dir| File::open(dir.join(OWNER_LOCK)).map_or(true, |f| f.try_lock().is_ok()))
            .collect()
    }
}

/// Reads the file at `path` into `buf` (cleared first), without the size
/// query `fs::read` makes: listings read thousands of small records.
fn read_into(path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    let file = File::open(path)?;
    io::Read::read_to_end(&mut io::Read::take(file, u64::MAX), buf).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_found_taken_among_records_that_merely_mention_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // The name appears in another record's command: that is no owner.
        let mut mention = Record {
            id: "f".repeat(64),
            name: "/other".to_string(),
            ..Record::default()
        };
        mention.args = vec!["/web".into()];
        store.create_container(&mention).unwrap();
        let web = Record {
            id: "a".repeat(64),
            name: "/web".to_string(),
            ..Record::default()
        };
        store.create_container(&web).unwrap();
        let again = Record {
            id: "b".repeat(64),
            ..web.clone()
        };
        match store.create_container(&again) {
            Err(ContainerError::NameInUse { name, id }) => {
                assert_eq!((name.as_str(), id.as_str()), ("web", web.id.as_str()));
            }
            other => panic!("{other:?}"),
        }
    }
}
