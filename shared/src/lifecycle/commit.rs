//! Docker's commit: a container's upper dir becomes one new layer over its
//! image (`ctr-commit`). A running container is frozen through the pause
//! verb while the layer is written (unless `--pause=false` or it is paused
//! already) and thawed after, whatever happened; the new image is written
//! and named under the writers' lock, so no collection can sweep it first.

use super::LifecycleError;
use super::pause::{pause, unpause};
use crate::builder::commit::{Snapshot, commit_upper, record_image};
use crate::builder::rootfs::runtime_stubs;
use crate::container::Record;
use crate::container::owner::refresh;
use crate::digest::Digest;
use crate::reference::Reference;
use crate::store::{Image, ImageLease, Store, StoreError};
use serde_json::{Map, Value, json};
use std::path::PathBuf;

/// What `ctr-commit` asks for, typed at the edge.
#[derive(Debug, Default, Clone)]
pub struct CommitOptions {
    pub tag: Option<Reference>,
    pub author: String,
    pub message: String,
    pub changes: Vec<String>,
    pub pause: bool,
}

/// The image a container was created from, leased so it stays while we
/// read it, and its unpacked layers (bottom first).
pub(super) fn image_and_layers(
    store: &Store,
    record: &Record,
) -> Result<(Image, ImageLease, Vec<PathBuf>), LifecycleError> {
    let (image, lease) = store.lease_image(|s| s.resolve_image(&record.image))?;
    let config = store.read_image_config(&image)?;
    let layers = store.unpack_layers(&image, &config)?;
    Ok((image, lease, layers))
}

/// The container's upper dir; a container whose root is a copy (no
/// overlay) has none.
pub(super) fn upper_dir(store: &Store, record: &Record) -> Result<PathBuf, LifecycleError> {
    let upper = store.container_dir(&record.id).join("upper");
    if upper.is_dir() {
        Ok(upper)
    } else {
        Err(LifecycleError::NoUpper(record.id.clone()))
    }
}

/// Thaws a container this commit froze, on every way out.
struct Frozen<'a> {
    store: &'a Store,
    record: Option<Record>,
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            let _ = unpause(self.store, &record);
        }
    }
}

/// Commits `record`'s changes as a new image; returns its ID.
pub fn commit(
    store: &Store,
    record: &Record,
    options: &CommitOptions,
) -> Result<Digest, LifecycleError> {
    if let Some(tag) = &options.tag
        && tag.digest().is_some()
    {
        return Err(StoreError::TagWithDigest(tag.to_string()).into());
    }
    let record = refresh(store, record.clone());
    let upper = upper_dir(store, &record)?;
    let (image, _lease, layers) = image_and_layers(store, &record)?;
    let mut frozen = Frozen {
        store,
        record: None,
    };
    if options.pause && record.state.running && !record.state.paused {
        match pause(store, &record) {
            Ok(()) => frozen.record = Some(record.clone()),
            // It stopped meanwhile: nothing left to freeze.
            Err(LifecycleError::Stopped(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let image_env = store
        .read_image_config(&image)?
        .config()
        .as_ref()
        .and_then(|c| c.env().clone())
        .unwrap_or_default();
    let skip = runtime_stubs(&upper, &layers);
    let snapshot = Snapshot {
        parent: &image,
        upper: &upper,
        skip: &skip,
        settings: settings(&record, &image_env),
        changes: &options.changes,
        author: &options.author,
        comment: &options.message,
        created_by: &record.config.cmd.join(" "),
    };
    let _writers = store.lease()?;
    let made = commit_upper(store, &snapshot)?;
    crate::testhook::pause(crate::testhook::COMMIT_WRITTEN);
    drop(frozen);
    record_image(store, &made, options.tag.as_ref())?;
    Ok(made.id)
}

/// The `config` fields a container set, as Docker's commit keeps them:
/// its user, environment, command, entrypoint and working directory. The
/// variables the runtime adds to every process (`HOSTNAME`, and `HOME`
/// where the image set none) are not the container's settings.
fn settings(record: &Record, image_env: &[String]) -> Map<String, Value> {
    let c = &record.config;
    let image_sets = |key: &str| image_env.iter().any(|e| e.starts_with(key));
    let hostname = format!("HOSTNAME={}", c.hostname);
    let runtime_added = |e: &str| {
        let hostname_added = e == hostname && !image_sets("HOSTNAME=");
        let home_added = e.starts_with("HOME=") && !image_sets("HOME=");
        hostname_added || home_added
    };
    let env: Vec<String> = c
        .env
        .iter()
        .filter(|e| !runtime_added(e))
        .cloned()
        .collect();
    let list = |v: &[String]| {
        if v.is_empty() { Value::Null } else { json!(v) }
    };
    let mut map = Map::new();
    map.insert("User".into(), json!(c.user));
    map.insert("Env".into(), list(&env));
    map.insert("Cmd".into(), list(&c.cmd));
    map.insert(
        "Entrypoint".into(),
        c.entrypoint.as_deref().map_or(Value::Null, list),
    );
    map.insert("WorkingDir".into(), json!(c.working_dir));
    map
}
