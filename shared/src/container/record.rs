//! A container's record: `containers/<id>/container.json` with Docker's
//! field names and status words, unique names, IDs, and atomic locked
//! updates the lifecycle tools share.

use super::{ContainerError, reserve};
use crate::store::{PRIVATE_DIR, PRIVATE_FILE, Store};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Docker's `State.Status`, serialised in Docker's words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, never started (or its start failed).
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    /// Every status, in Docker's order.
    pub const ALL: [Status; 7] = [
        Status::Created,
        Status::Restarting,
        Status::Running,
        Status::Removing,
        Status::Paused,
        Status::Exited,
        Status::Dead,
    ];

    /// The word Docker writes (`docker inspect`, `ps --filter status=`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown container status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;
    fn from_str(text: &str) -> Result<Status, UnknownStatus> {
        Status::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| UnknownStatus(text.to_string()))
    }
}

/// Docker's `State`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    pub status: Status,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    /// Docker's `State.Health`: only for a container with a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::health::Health>,
}

impl State {
    /// A container just made: created, never started nor finished.
    pub fn created() -> State {
        State {
            status: Status::Created,
            started_at: ZERO_TIME.to_string(),
            finished_at: ZERO_TIME.to_string(),
            ..State::default()
        }
    }

    /// Its init runs from now, as host PID `pid`.
    pub fn start(&mut self, pid: i32) {
        self.status = Status::Running;
        self.running = true;
        self.paused = false;
        self.restarting = false;
        self.pid = pid;
        self.started_at = now();
    }

    /// Its init exited with `code` and its restart policy starts it again
    /// soon: as Docker's, still `Running` (so `ctr-ps` lists it) with the
    /// status `restarting`, no PID, the exit code and time kept.
    pub fn restarting(&mut self, code: i32) {
        self.status = Status::Restarting;
        self.running = true;
        self.restarting = true;
        self.paused = false;
        self.pid = 0;
        self.exit_code = code;
        self.finished_at = now();
    }

    /// Its init has exited now with Docker's `code` (255: an exit nobody saw).
    pub fn exit(&mut self, code: i32) {
        self.status = Status::Exited;
        self.running = false;
        self.paused = false;
        self.restarting = false;
        self.pid = 0;
        self.exit_code = code;
        self.finished_at = now();
    }

    /// Its processes are frozen (Docker's pause): still running, as Docker
    /// keeps `Running` true, with the status `paused`.
    pub fn pause(&mut self) {
        if self.running {
            self.status = Status::Paused;
            self.paused = true;
        }
    }

    /// Its processes are thawed: running again, unless it exited meanwhile.
    pub fn unpause(&mut self) {
        if self.paused {
            self.status = Status::Running;
            self.paused = false;
        }
    }
}

/// Docker's container `Config` (the parts berth uses).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub image: String,
    /// The image's VOLUMEs and `-v /path`; Docker's `null` when none.
    #[serde(
        default,
        serialize_with = "null_when_empty_map",
        deserialize_with = "empty_when_null"
    )]
    pub volumes: BTreeMap<String, serde_json::Value>,
    pub working_dir: String,
    pub entrypoint: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: String,
    /// Absent when empty: Docker shows `null` then (see `view::inspect`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    /// The image's HEALTHCHECK with `--health-*` over it; absent when
    /// neither has one (Docker's `null`, see `view::inspect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<super::health::HealthConfig>,
}

/// Docker's `HostConfig` (the parts berth honours).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    /// `-v` values but anonymous ones; Docker's `null` when there are none.
    #[serde(
        default,
        serialize_with = "null_when_empty",
        deserialize_with = "empty_when_null"
    )]
    pub binds: Vec<String>,
    pub network_mode: String,
    pub auto_remove: bool,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub memory: i64,
    pub nano_cpus: i64,
    pub pids_limit: i64,
    pub tmpfs: BTreeMap<String, String>,
    pub cgroup_parent: String,
    #[serde(default)]
    pub port_bindings: super::endpoint::PortMap,
    #[serde(default)]
    pub publish_all_ports: bool,
    #[serde(default)]
    pub extra_hosts: Vec<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    /// Absent in records made before policies were honoured: Docker's
    /// `no` then (see `view::inspect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<super::restart::RestartPolicy>,
    /// `--mount` values in Docker's shape (`Type`, `Source`, `Target`,
    /// `ReadOnly`); absent when there are none, as Docker's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<serde_json::Value>,
}

fn null_when_empty<S: serde::Serializer>(list: &[String], out: S) -> Result<S::Ok, S::Error> {
    if list.is_empty() {
        out.serialize_none()
    } else {
        out.collect_seq(list)
    }
}

fn null_when_empty_map<S: serde::Serializer>(
    map: &BTreeMap<String, serde_json::Value>,
    out: S,
) -> Result<S::Ok, S::Error> {
    if map.is_empty() {
        out.serialize_none()
    } else {
        out.collect_map(map)
    }
}

/// A list or map Docker writes as `null` when empty, read back empty.
fn empty_when_null<'de, D, T>(input: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(input)?.unwrap_or_default())
}

/// Docker's `Mounts` entry: a bind (`Type` "bind") or a volume (`Type`
/// "volume", with its `Name` and `Driver`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub source: String,
    pub destination: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}

/// One container's record, as `docker inspect` names its fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    pub id: String,
    /// With Docker's leading slash.
    pub name: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: State,
    /// The image ID (`sha256:…`).
    pub image: String,
    pub config: Config,
    pub host_config: HostConfig,
    pub mounts: Vec<MountPoint>,
    pub log_path: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub driver: String,
    pub platform: String,
    #[serde(default)]
    pub network_settings: super::endpoint::NetworkSettings,
    /// How often its monitor started it again (Docker's `RestartCount`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restart_count: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Marks a build step's container record, so what a killed builder left
/// can be told from a user's containers.
pub const STEP_LABEL: &str = "berth.build-step";

pub use crate::identity::{new_id, now};

/// Docker's "never happened" timestamp.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A Docker-style `adjective_noun` name.
pub fn random_name() -> String {
    names::Generator::default()
        .next()
        .unwrap_or_else(|| "berth_container".to_string())
        .replace('-', "_")
}

/// Writes a file only the owner may read, private from its creation (a
/// container's runtime spec holds its `-e` values).
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_FILE)
        .open(path)?
        .write_all(bytes)
}

/// Docker's rule for user-chosen names.
pub fn check_name(name: &str) -> Result<(), ContainerError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(ContainerError::BadName(name.to_string()))
    }
}

impl Store {
    pub fn containers_dir(&self) -> PathBuf {
        self.root().join("containers")
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    pub(super) fn record_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("container.json")
    }

    /// Every container record, in no particular order. Directories without
    /// a record (one being created or removed) are skipped.
    pub fn containers(&self) -> Result<Vec<Record>, ContainerError> {
        Ok(self.scan_containers()?.0)
    }

    pub fn load_container(&self, id: &str) -> Result<Record, ContainerError> {
        let bytes = self.record_bytes(id)?;
        parse_record(&self.record_path(id), &bytes)
    }

    /// A record's bytes as stored.
    fn record_bytes(&self, id: &str) -> Result<Vec<u8>, ContainerError> {
        let path = self.record_path(id);
        match fs::read(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContainerError::NoSuchContainer(id.to_string()))
            }
            other => other.map_err(ContainerError::io(&path)),
        }
    }

    /// Finds a container as Docker does: full ID, then name (with or without
    /// the leading `/`), then a unique ID prefix. The record as stored (see
    /// `owner::refresh` for its live state). Below the runtime, so that
    /// `--network container:NAME` and the lifecycle verbs share one rule.
    pub fn find_container(&self, target: &str) -> Result<Record, ContainerError> {
        let all = match self.containers() {
            Ok(all) => all,
            Err(ContainerError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let name = target.trim_start_matches('/');
        if let Some(found) = all
            .iter()
            .find(|r| r.id == target)
            .or_else(|| all.iter().find(|r| r.name.trim_start_matches('/') == name))
        {
            return Ok(found.clone());
        }
        let lowercase_hex = !target.is_empty()
            && target
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        let mut matches: Vec<Record> = if lowercase_hex {
            all.into_iter()
                .filter(|r| r.id.starts_with(target))
                .collect()
        } else {
            Vec::new()
        };
        match matches.len() {
            1 => Ok(matches.remove(0)),
            0 => Err(ContainerError::NoSuchContainer(target.to_string())),
            _ => Err(ContainerError::Ambiguous {
                prefix: target.to_string(),
                candidates: matches.iter().map(|r| r.id[..12].to_string()).collect(),
            }),
        }
    }

    /// Creates `containers/<id>/` and its first record, under the names
    /// lock so two runs can never both take one name.
    pub fn create_container(&self, record: &Record) -> Result<(), ContainerError> {
        let _names = self.lock_names()?;
        self.name_free(&record.name)?;
        let dir = self.make_container_dir(&record.id)?;
        // A `--rm` container's exit is never recorded: it needs no reserve
        // (whose blocks cost a discard when it goes, on a `discard` mount).
        if !record.host_config.auto_remove {
            reserve::make(&dir).map_err(ContainerError::io(&dir))?;
        }
        self.write_record(record)
    }

    /// Docker's rename: under the names lock `create_container` takes, so a
    /// name is never given twice; the record is replaced atomically. The
    /// name is checked by the caller ([`check_name`]).
    pub fn rename_container(&self, id: &str, name: &str) -> Result<Record, ContainerError> {
        let _names = self.lock_names()?;
        let wanted = self.name_free(name)?;
        self.update_container(id, |r| r.name = format!("/{wanted}"))
    }

    /// The names lock: whoever holds it may give a container a name.
    pub(super) fn lock_names(&self) -> Result<File, ContainerError> {
        lock(&self.root().join("locks").join("names.lock"))
    }

    /// A container's directory, private from its creation: it will hold
    /// the spec (with the `-e` values), the log and the upper dir. Made by
    /// the creator before it takes the owner lock, and found made when the
    /// record is then written (IDs are random: it is never another's).
    pub fn make_container_dir(&self, id: &str) -> Result<PathBuf, ContainerError> {
        let dir = self.container_dir(id);
        match fs::DirBuilder::new().mode(PRIVATE_DIR).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(dir),
            Err(e) => Err(ContainerError::io(&dir)(e)),
        }
    }

    /// Creates `containers/<id>/` and takes its owner lock with `claim`, under
    /// the names lock: a directory without a record is then either being
    /// claimed (locked) or left by a tool that died (see
    /// [`Store::leftover_container_dirs`]).
    pub fn claim_container_dir<T, E: From<ContainerError>>(
        &self,
        id: &str,
        claim: impl FnOnce(&Path) -> Result<T, E>,
    ) -> Result<T, E> {
        let _names = self.lock_names()?;
        let dir = self.make_container_dir(id)?;
        claim(&dir)
    }

    /// Read-modify-write of a record under its own lock.
    pub fn update_container(
        &self,
        id: &str,
        change: impl FnOnce(&mut Record),
    ) -> Result<Record, ContainerError> {
        let dir = self.container_dir(id);
        let _guard = lock(&dir.join("lock"))?;
        let before = self.record_bytes(id)?;
        let mut record = parse_record(&self.record_path(id), &before)?;
        change(&mut record);
        // A change that changes nothing (the network of a `--network none`
        // run, recorded as it was made) costs no write and no fsync.
        let bytes = serde_json::to_vec_pretty(&record).expect("records serialise");
        if bytes == before {
            return Ok(record);
        }
        self.write_record_bytes(id, &bytes)?;
        // A reserve spent on a full disk is made again once there is room.
        if !record.host_config.auto_remove {
            let _ = reserve::make(&dir);
        }
        Ok(record)
    }

    /// Opens a container's json-file log for appending, private to the
    /// owner from its creation (it holds everything the container printed).
    pub fn open_log(&self, id: &str) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(PRIVATE_FILE)
            .open(self.log_path(id))
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    /// Removes a container's directory. Its mounts must be gone already.
    pub fn remove_container(&self, id: &str) -> Result<(), ContainerError> {
        let dir = self.container_dir(id);
        // Drop the record first so a half-removed directory is never listed.
        match fs::remove_file(self.record_path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(ContainerError::io(&dir)(e));
            }
            _ => {}
        }
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(ContainerError::io(&dir)(e)),
            _ => Ok(()),
        }
    }

    /// Replaces the record atomically (temp file, fsync, rename; the temp
    /// file is 0600 from its creation). On a full filesystem the
    /// container's reserve is given up for it, so an exit is still recorded.
    fn write_record(&self, record: &Record) -> Result<(), ContainerError> {
        let bytes = serde_json::to_vec_pretty(record).expect("records serialise");
        self.write_record_bytes(&record.id, &bytes)
    }

    fn write_record_bytes(&self, id: &str, bytes: &[u8]) -> Result<(), ContainerError> {
        let dir = self.container_dir(id);
        match self.replace_record(id, bytes) {
            Err((_, e)) if reserve::is_full(&e) && reserve::release(&dir) => {
                self.replace_record(id, bytes)
            }
            other => other,
        }
        .map_err(|(path, source)| ContainerError::Io { path, source })
    }

    fn replace_record(&self, id: &str, bytes: &[u8]) -> Result<(), (PathBuf, io::Error)> {
        let dir = self.container_dir(id);
        let path = self.record_path(id);
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| (dir.clone(), e))?;
        tmp.write_all(bytes)
            .map_err(|e| (tmp.path().to_path_buf(), e))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| (tmp.path().to_path_buf(), e))?;
        tmp.persist(&path).map_err(|e| (path, e.error))?;
        Ok(())
    }
}

pub(super) fn parse_record(path: &Path, bytes: &[u8]) -> Result<Record, ContainerError> {
    serde_json::from_slice(bytes).map_err(|source| ContainerError::Json {
        path: path.to_path_buf(),
        source,
    })
}

fn lock(path: &Path) -> Result<File, ContainerError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(ContainerError::io(path))?;
    file.lock().map_err(ContainerError::io(path))?;
    Ok(file)
}

#[cfg(test)]
mod tests;
