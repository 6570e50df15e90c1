//! An image made from an overlay upper dir on top of a stored image
//! (`ctr-commit`), and the one way a made image enters `index.json`
//! (`ctr-commit`, `img-import`). The config is settled (the container's
//! settings, then the `--change`s) before anything is written, so a bad
//! change leaves the store as it was; the layer comes from the writer
//! img-build uses; an upper dir that holds no change gives no layer and an
//! `empty_layer` history entry, as Docker's commit does.

use super::changes;
use super::error::BuildError;
use super::layer::{self, LayerCompression};
use super::state::ImageState;
use crate::digest::Digest;
use crate::reference::Reference;
use crate::store::{Image, Store};
use serde_json::{Map, Value, json};
use std::path::Path;
use std::str::FromStr;

/// What ctr-commit asks for.
pub struct Snapshot<'a> {
    /// The image the container was created from.
    pub parent: &'a Image,
    /// The container's upper dir, and the paths in it to leave out (the
    /// runtime's own mount points).
    pub upper: &'a Path,
    pub skip: &'a [String],
    /// `config` fields the container set (`Cmd`, `Env`, …), over the
    /// parent's.
    pub settings: Map<String, Value>,
    pub changes: &'a [String],
    pub author: &'a str,
    pub comment: &'a str,
    /// The history's `created_by`: the container's command, as Docker's.
    pub created_by: &'a str,
}

/// An image stored (not yet named).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    pub id: Digest,
    pub manifest: Digest,
    pub manifest_size: u64,
}

/// The digest of an empty tar (two zero blocks): Docker's empty layer.
fn empty_tar() -> Digest {
    Digest::of(&[0u8; 1024])
}

/// Writes the snapshot's layer, config and manifest. The caller holds the
/// writers' lock (so no collection sweeps them before they are named).
pub fn commit_upper(store: &Store, snapshot: &Snapshot<'_>) -> Result<Made, BuildError> {
    let mut state = ImageState::load(store, snapshot.parent)?;
    for (key, value) in &snapshot.settings {
        state.container_config().insert(key.clone(), value.clone());
    }
    changes::apply_changes(&mut state.config, snapshot.changes)
        .map_err(|e| BuildError::Invalid(e.to_string()))?;
    let blob = layer::write_layer_without(
        store,
        snapshot.upper,
        LayerCompression::Gzip,
        None,
        snapshot.skip,
    )?;
    let empty = blob.diff_id == empty_tar();
    if !empty {
        let mut diff_ids = state.diff_ids();
        diff_ids.push(blob.diff_id.clone());
        state.push_layer(&blob, &diff_ids);
    }
    let now = crate::format::human::format_rfc3339(std::time::SystemTime::now());
    let mut entry = json!({"created": now});
    for (key, value) in [
        ("author", snapshot.author),
        ("created_by", snapshot.created_by),
        ("comment", snapshot.comment),
    ] {
        if !value.is_empty() {
            entry[key] = json!(value);
        }
    }
    if empty {
        entry["empty_layer"] = json!(true);
    }
    push_history(&mut state.config, entry);
    state.config["created"] = json!(now);
    for (key, value) in [("author", snapshot.author), ("comment", snapshot.comment)] {
        if value.is_empty() {
            state.config.as_object_mut().map(|c| c.remove(key));
        } else {
            state.config[key] = json!(value);
        }
    }
    write(store, &mut state)
}

/// A fresh config's history and creation time (img-import).
pub(super) fn push_history(config: &mut Value, entry: Value) {
    if !config["history"].is_array() {
        config["history"] = json!([]);
    }
    config["history"]
        .as_array_mut()
        .expect("an array")
        .push(entry);
}

/// Stores the state's config and manifest.
pub(super) fn write(store: &Store, state: &mut ImageState) -> Result<Made, BuildError> {
    let manifest = state.write(store)?;
    let manifest_size = store
        .blob_path(&manifest)
        .metadata()
        .map(|m| m.len())
        .unwrap_or(0);
    Ok(Made {
        id: state.id.clone().expect("written"),
        manifest,
        manifest_size,
    })
}

/// Names a made image: `tag`, or, with none, a `<none>` entry as Docker
/// keeps an untagged image. One locked read-modify-write of `index.json`.
pub fn record_image(store: &Store, made: &Made, tag: Option<&Reference>) -> Result<(), BuildError> {
    let descriptor = oci_spec::image::Descriptor::new(
        oci_spec::image::MediaType::ImageManifest,
        made.manifest_size,
        oci_spec::image::Digest::from_str(&made.manifest.to_string())
            .map_err(|e| BuildError::Invalid(e.to_string()))?,
    );
    let mut guard = store.lock_index()?;
    match tag {
        Some(tag) => guard.set_tag(tag, descriptor),
        None => guard.add_untagged(descriptor),
    }
    guard.save()?;
    Ok(())
}
