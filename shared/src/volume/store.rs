//! The store's volumes: `volumes/<name>/_data` and `volumes/<name>/volume.json`.
//! A volume exists once its record does (the record is renamed into place
//! last); a directory without one is a crash's leftover that img-fsck
//! reports. Every writer holds `volumes/.lock`.

use super::VolumeError;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Docker 23's label on a volume made for `-v /path` or an image's
/// `VOLUME`: what `vol-prune` (without `-a`) and `ctr-rm -v` remove.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The record file in a volume's directory.
const RECORD: &str = "volume.json";
/// The directory holding a volume's files, as Docker names it.
const DATA: &str = "_data";

/// One volume as `docker volume inspect` shows it (Docker's key order).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub created_at: String,
    pub driver: String,
    /// `null` for one a container made, as Docker's.
    pub labels: Option<BTreeMap<String, String>>,
    pub mountpoint: String,
    pub name: String,
    pub options: Option<BTreeMap<String, String>>,
    pub scope: String,
}

impl Volume {
    pub fn is_anonymous(&self) -> bool {
        self.labels
            .as_ref()
            .is_some_and(|l| l.contains_key(ANONYMOUS_LABEL))
    }
}

/// Docker's rule for a local volume's name: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn check_name(name: &str) -> Result<(), VolumeError> {
    let mut chars = name.chars();
    let first = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest =
        name.len() >= 2 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first && rest {
        Ok(())
    } else {
        Err(VolumeError::BadName(name.to_string()))
    }
}

/// The volumes of one store.
#[derive(Debug, Clone)]
pub struct Volumes {
    pub(super) store: Store,
    dir: PathBuf,
}

impl Volumes {
    pub fn of(store: &Store) -> Volumes {
        Volumes {
            store: store.clone(),
            dir: store.root().join("volumes"),
        }
    }

    /// `volumes/`, where every volume's directory is.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where volume `name`'s files are (what a container mounts).
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name).join(DATA)
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.dir.join(name).join(RECORD)
    }

    /// The writers' lock: held while volumes are made, removed or checked
    /// unused.
    pub fn lock(&self) -> Result<File, VolumeError> {
        fs::create_dir_all(&self.dir).map_err(VolumeError::io(&self.dir))?;
        let path = self.dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(VolumeError::io(&path))?;
        file.lock().map_err(VolumeError::io(&path))?;
        Ok(file)
    }

    /// Volume `name`, if the store has it.
    pub fn get(&self, name: &str) -> Result<Option<Volume>, VolumeError> {
        if check_name(name).is_err() {
            return Ok(None);
        }
        let path = self.record_path(name);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| VolumeError::Json { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(VolumeError::io(&path)(e)),
        }
    }

    /// Volume `name`, or Docker's "No such volume".
    pub fn find(&self, name: &str) -> Result<Volume, VolumeError> {
        self.get(name)?
            .ok_or_else(|| VolumeError::NotFound(name.to_string()))
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>, VolumeError> {
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Ok(out);
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(volume) = self.get(&name)? {
                out.push(volume);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The names under `volumes/` that are a directory without a record
    /// (fsck's finding), and records whose `_data` is gone.
    pub fn broken(&self) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return out;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.path().is_dir() {
                continue;
            }
            let record = self.record_path(&name).exists();
            let data = self.data_dir(&name).is_dir();
            match (record, data) {
                (false, _) => out.push((name, "a volume directory without a record")),
                (true, false) => out.push((name, "a volume record without its _data directory")),
                _ => {}
            }
        }
        out.sort();
        out
    }

    /// `vol-create`: volume `name` (a random 64-hex one if none), made
    /// unless it is there already (then it is returned as it is, as
    /// Docker's create is). Takes the writers' lock.
    pub fn create(
        &self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
    ) -> Result<Volume, VolumeError> {
        // A bad name is refused before anything is written.
        if let Some(name) = name {
            check_name(name)?;
        }
        let _lock = self.lock()?;
        self.make(name, Some(labels), Some(BTreeMap::new()))
    }

    /// Volume `name` for a container's `-v NAME:/path`, made if missing
    /// (with null labels and options, as Docker's); `None` makes an
    /// anonymous one. The caller holds [`Volumes::lock`].
    pub fn ensure(&self, name: Option<&str>) -> Result<Volume, VolumeError> {
        match name {
            Some(name) => self.make(Some(name), None, None),
            None => self.make(
                None,
                Some(BTreeMap::from([(
                    ANONYMOUS_LABEL.to_string(),
                    String::new(),
                )])),
                None,
            ),
        }
    }

    fn make(
        &self,
        name: Option<&str>,
        labels: Option<BTreeMap<String, String>>,
        options: Option<BTreeMap<String, String>>,
    ) -> Result<Volume, VolumeError> {
        let name = match name {
            Some(name) => name.to_string(),
            None => {
                crate::identity::new_id().map_err(VolumeError::io(Path::new("/dev/urandom")))?
            }
        };
        check_name(&name)?;
        if let Some(volume) = self.get(&name)? {
            return Ok(volume);
        }
        let dir = self.dir.join(&name);
        let data = self.data_dir(&name);
        // A directory left without a record by a crash is taken over.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&data)
            .map_err(VolumeError::io(&data))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o701))
            .map_err(VolumeError::io(&dir))?;
        let volume = Volume {
            created_at: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            driver: "local".to_string(),
            labels,
            mountpoint: data.display().to_string(),
            name: name.clone(),
            options,
            scope: "local".to_string(),
        };
        let bytes = serde_json::to_vec_pretty(&volume).expect("volumes serialise");
        let path = self.record_path(&name);
        write_atomically(&path, &bytes).map_err(VolumeError::io(&path))?;
        Ok(volume)
    }

    /// Removes volume `name`'s record, then its files. The caller holds
    /// the lock and has checked that nothing uses it.
    pub(super) fn delete(&self, name: &str) -> Result<u64, VolumeError> {
        let dir = self.dir.join(name);
        let size = disk_usage(&self.data_dir(name));
        let record = self.record_path(name);
        fs::remove_file(&record).map_err(VolumeError::io(&record))?;
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(VolumeError::io(&dir)(e)),
            _ => Ok(size),
        }
    }

    /// Fills volume `name` once: under its own lock, if `_data` is still
    /// empty, `fill` copies the image's files there (Docker copies into an
    /// empty volume only, so a second container finds the first's files).
    pub fn populate_once(
        &self,
        name: &str,
        fill: impl FnOnce(&Path) -> io::Result<()>,
    ) -> Result<(), VolumeError> {
        let path = self.dir.join(name).join(".populate.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(VolumeError::io(&path))?;
        lock.lock().map_err(VolumeError::io(&path))?;
        let data = self.data_dir(name);
        let empty = fs::read_dir(&data)
            .map_err(VolumeError::io(&data))?
            .next()
            .is_none();
        if empty {
            fill(&data).map_err(VolumeError::io(&data))?;
        }
        Ok(())
    }
}

/// The bytes the files below `dir` take (Docker's volume size): regular
/// files' lengths, each inode once.
pub(super) fn disk_usage(dir: &Path) -> u64 {
    fn walk(dir: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
        let Ok(entries) = fs::read_dir(dir) else {
            return 0;
        };
        let mut total = 0;
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                total += walk(&entry.path(), seen);
            } else if meta.is_file() && seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
        total
    }
    walk(dir, &mut Default::default())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        for good in ["ab", "data", "my-vol_1.x", "0a", &"f".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a", "../x", ".x", "-x", "a/b", "a b", "x:y", "_x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_volume_is_made_once_and_kept_as_docker_shows_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let volumes = Volumes::of(&store);
        let labels = BTreeMap::from([("a".to_string(), "1".to_string())]);
        let made = volumes.create(Some("data"), labels.clone()).unwrap();
        fs::write(volumes.data_dir("data").join("f"), "x").unwrap();
        let again = volumes.create(Some("data"), BTreeMap::new()).unwrap();
        assert_eq!(made, again);
        assert_eq!(again.labels, Some(labels));
        assert!(volumes.data_dir("data").join("f").exists());
        let json = serde_json::to_value(&made).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "CreatedAt",
                "Driver",
                "Labels",
                "Mountpoint",
                "Name",
                "Options",
                "Scope"
            ]
        );
        let anonymous = {
            let _lock = volumes.lock().unwrap();
            volumes.ensure(None).unwrap()
        };
        assert_eq!(anonymous.name.len(), 64);
        assert!(anonymous.is_anonymous() && !made.is_anonymous());
        let names: Vec<String> = volumes
            .list()
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names.len(), 2);
        assert!(volumes.broken().is_empty());
        fs::create_dir_all(volumes.dir().join("stray")).unwrap();
        fs::remove_dir_all(volumes.data_dir("data")).unwrap();
        assert_eq!(
            volumes.broken(),
            [
                (
                    "data".to_string(),
                    "a volume record without its _data directory"
                ),
                ("stray".to_string(), "a volume directory without a record")
            ]
        );
        assert!(matches!(
            volumes.create(Some("../x"), BTreeMap::new()),
            Err(VolumeError::BadName(_))
        ));
        assert!(!dir.path().join("x").exists());
    }
}
