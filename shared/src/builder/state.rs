//! The image a stage is building (`ImageState`): its config as JSON, so
//! fields a base image set survive untouched, its layers' descriptors, and
//! its IDs once stored; and `StageRun`, a stage's state with its ARGs.

use super::layer::LayerBlob;
use crate::digest::Digest;
use crate::dockerfile::Vars;
use crate::platform::Platform;
use crate::store::{Image, Store, StoreError};
use serde_json::{Value, json};

pub(super) const DEFAULT_PATH: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// An image being built: its config (as JSON, so fields from base images
/// survive untouched), its layers' descriptors, and its ID once stored.
#[derive(Debug, Clone)]
pub(super) struct ImageState {
    pub(super) config: Value,
    pub(super) layers: Vec<Value>,
    pub(super) id: Option<Digest>,
    pub(super) manifest: Option<Digest>,
}

impl ImageState {
    pub(super) fn scratch(platform: &Platform) -> ImageState {
        let mut config = json!({
            "architecture": platform.architecture,
            "os": platform.os,
        });
        if let Some(variant) = &platform.variant {
            config["variant"] = json!(variant);
        }
        config["config"] = json!({"Env": [DEFAULT_PATH]});
        config["rootfs"] = json!({"type": "layers", "diff_ids": []});
        config["history"] = json!([]);
        ImageState {
            config,
            layers: Vec::new(),
            id: None,
            manifest: None,
        }
    }

    /// The state of an image in the store: its config as stored, its
    /// layers in OCI's media types.
    pub(super) fn load(store: &Store, image: &Image) -> Result<ImageState, StoreError> {
        let id = image.id();
        let config: Value =
            serde_json::from_slice(&store.read_blob(&id)?).map_err(|source| StoreError::Json {
                path: store.blob_path(&id),
                source,
            })?;
        let layers = image
            .manifest
            .layers()
            .iter()
            .map(|l| {
                json!({
                    "mediaType": oci_layer_type(l.media_type().as_ref()),
                    "digest": l.digest().to_string(),
                    "size": l.size(),
                })
            })
            .collect();
        Ok(ImageState {
            config,
            layers,
            id: Some(id),
            manifest: Some(image.manifest_digest.clone()),
        })
    }

    /// Stores the config and a manifest over it; sets the ID and the
    /// manifest's digest, and returns the latter.
    pub(super) fn write(&mut self, store: &Store) -> Result<Digest, StoreError> {
        let config = serde_json::to_vec(&self.config).expect("JSON serialises");
        let config_digest = store.put_blob(&config)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest.to_string(),
                "size": config.len(),
            },
            "layers": self.layers,
        });
        let manifest = serde_json::to_vec(&manifest).expect("JSON serialises");
        let manifest = store.put_blob(&manifest)?;
        self.manifest = Some(manifest.clone());
        self.id = Some(config_digest);
        Ok(manifest)
    }

    /// A layer on top: its descriptor, and the root's diff IDs (`diff_ids`,
    /// this layer's last).
    pub(super) fn push_layer(&mut self, blob: &LayerBlob, diff_ids: &[Digest]) {
        self.layers.push(json!({
            "mediaType": blob.media_type,
            "digest": blob.digest.to_string(),
            "size": blob.size,
        }));
        self.config["rootfs"] = json!({
            "type": "layers",
            "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        });
    }

    /// What cache keys call the parent.
    pub(super) fn parent_key(&self) -> String {
        match &self.id {
            Some(id) => id.to_string(),
            None => format!(
                "scratch {} {}",
                self.config["os"].as_str().unwrap_or(""),
                self.config["architecture"].as_str().unwrap_or("")
            ),
        }
    }

    pub(super) fn container_config(&mut self) -> &mut serde_json::Map<String, Value> {
        if !self.config["config"].is_object() {
            self.config["config"] = json!({});
        }
        self.config["config"].as_object_mut().expect("an object")
    }

    pub(super) fn get(&self, key: &str) -> Option<&Value> {
        self.config["config"].get(key).filter(|v| !v.is_null())
    }

    /// Adds `keys` to a set-valued field (`ExposedPorts`, `Volumes`: an
    /// object whose values are `{}`), keeping what earlier steps put there.
    pub(super) fn add_to_set(&mut self, field: &str, keys: Vec<String>) {
        let mut set = self
            .get(field)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for key in keys {
            set.insert(key, json!({}));
        }
        self.container_config()
            .insert(field.into(), Value::Object(set));
    }

    /// Sets labels, keeping those earlier steps or the base set.
    pub(super) fn add_labels(&mut self, pairs: &[(String, String)]) {
        let mut labels = self
            .get("Labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, v) in pairs {
            labels.insert(k.clone(), json!(v));
        }
        self.container_config()
            .insert("Labels".into(), Value::Object(labels));
    }

    /// The base's ONBUILD triggers, as written.
    pub(super) fn triggers(&self) -> Vec<String> {
        self.strings("OnBuild").unwrap_or_default()
    }

    /// A config field that is a list of strings (non-strings skipped).
    fn strings(&self, key: &str) -> Option<Vec<String>> {
        self.get(key).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
    }

    pub(super) fn env(&self) -> Vec<String> {
        self.strings("Env").unwrap_or_default()
    }

    pub(super) fn set_env(&mut self, key: &str, value: &str) {
        let mut env = self.env();
        let entry = format!("{key}={value}");
        match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
            Some(existing) => *existing = entry,
            None => env.push(entry),
        }
        self.container_config().insert("Env".into(), json!(env));
    }

    pub(super) fn shell(&self) -> Vec<String> {
        self.strings("Shell")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".to_string(), "-c".to_string()])
    }

    pub(super) fn workdir(&self) -> String {
        self.get("WorkingDir")
            .and_then(Value::as_str)
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string()
    }

    pub(super) fn user(&self) -> String {
        self.get("User")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .unwrap_or("0")
            .to_string()
    }

    pub(super) fn diff_ids(&self) -> Vec<Digest> {
        self.config["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(|d| d.as_str()?.parse().ok()).collect())
            .unwrap_or_default()
    }

    pub(super) fn push_history(&mut self, created: &str, created_by: &str, empty_layer: bool) {
        let mut entry = json!({
            "created": created,
            "created_by": created_by,
            "comment": HISTORY_COMMENT,
        });
        if empty_layer {
            entry["empty_layer"] = json!(true);
        }
        if !self.config["history"].is_array() {
            self.config["history"] = json!([]);
        }
        self.config["history"]
            .as_array_mut()
            .expect("an array")
            .push(entry);
        self.config["created"] = json!(created);
    }
}

/// The Docker media type of a layer, in OCI's words (the same bytes).
fn oci_layer_type(media_type: &str) -> &str {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        }
        "application/vnd.docker.image.rootfs.diff.tar" => "application/vnd.oci.image.layer.v1.tar",
        other => other,
    }
}

/// One stage while it is being built.
pub(super) struct StageRun {
    pub(super) state: ImageState,
    /// ARGs declared in this stage, with their values (unset ones absent).
    pub(super) args: Vec<(String, String)>,
    /// Whether this stage set CMD (so ENTRYPOINT keeps it).
    pub(super) cmd_set: bool,
}

impl StageRun {
    /// What `$VAR` means here: ARG values, overridden by ENV.
    pub(super) fn vars(&self) -> Vars {
        let mut vars: Vars = self.args.iter().cloned().collect();
        for entry in self.state.env() {
            if let Some((k, v)) = entry.split_once('=') {
                vars.insert(k.to_string(), v.to_string());
            }
        }
        vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> ImageState {
        ImageState::scratch(&"linux/amd64".parse().unwrap())
    }

    fn text(state: &ImageState) -> String {
        serde_json::to_string(&state.config).unwrap()
    }

    #[test]
    fn scratch_and_its_history_serialise_in_a_fixed_order() {
        // Image IDs are digests of these bytes: key order is part of them.
        let mut state = scratch();
        assert_eq!(
            text(&state),
            format!(
                r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["{DEFAULT_PATH}"]}},"rootfs":{{"type":"layers","diff_ids":[]}},"history":[]}}"#
            )
        );
        state.set_env("A", "1");
        state.push_history("2024-01-01T00:00:00Z", "ENV A=1", true);
        assert_eq!(
            text(&state),
            format!(
                r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["{DEFAULT_PATH}","A=1"]}},"rootfs":{{"type":"layers","diff_ids":[]}},"history":[{{"created":"2024-01-01T00:00:00Z","created_by":"ENV A=1","comment":"buildkit.dockerfile.v0","empty_layer":true}}],"created":"2024-01-01T00:00:00Z"}}"#
            )
        );
        let arm = ImageState::scratch(&"linux/arm/v7".parse().unwrap());
        assert!(text(&arm).starts_with(r#"{"architecture":"arm","os":"linux","variant":"v7","#));
        assert_eq!(scratch().parent_key(), "scratch linux amd64");
    }

    #[test]
    fn config_reads_fall_back_to_dockers_defaults() {
        let mut state = scratch();
        assert_eq!(state.shell(), ["/bin/sh", "-c"]);
        assert_eq!(state.workdir(), "/");
        assert_eq!(state.user(), "0");
        assert!(state.triggers().is_empty());
        let config = state.container_config();
        config.insert("Shell".into(), json!(["/bin/bash", "-c"]));
        config.insert("WorkingDir".into(), json!("/app"));
        config.insert("User".into(), json!("app"));
        config.insert("OnBuild".into(), json!(["RUN true"]));
        assert_eq!(state.shell(), ["/bin/bash", "-c"]);
        assert_eq!(state.workdir(), "/app");
        assert_eq!(state.user(), "app");
        assert_eq!(state.triggers(), ["RUN true"]);
        // Empty values (and `null`) are as good as unset.
        let config = state.container_config();
        config.insert("Shell".into(), json!([]));
        config.insert("WorkingDir".into(), json!(""));
        config.insert("User".into(), Value::Null);
        assert_eq!(state.shell(), ["/bin/sh", "-c"]);
        assert_eq!(state.workdir(), "/");
        assert_eq!(state.user(), "0");
    }

    #[test]
    fn env_labels_and_sets_keep_what_came_before() {
        let mut state = scratch();
        state.set_env("A", "1");
        state.set_env("B", "x=y");
        state.set_env("A", "2");
        assert_eq!(state.env(), [DEFAULT_PATH, "A=2", "B=x=y"]);
        state.add_labels(&[("one".into(), "1".into()), ("two".into(), "2".into())]);
        state.add_labels(&[("one".into(), "uno".into())]);
        assert_eq!(
            state.get("Labels"),
            Some(&json!({"one": "uno", "two": "2"}))
        );
        state.add_to_set("ExposedPorts", vec!["80/tcp".into()]);
        state.add_to_set("ExposedPorts", vec!["53/udp".into(), "80/tcp".into()]);
        assert_eq!(
            state.get("ExposedPorts"),
            Some(&json!({"80/tcp": {}, "53/udp": {}}))
        );
    }

    #[test]
    fn a_pushed_layer_joins_the_descriptors_and_the_diff_ids() {
        let mut state = scratch();
        let blob = LayerBlob {
            digest: Digest::of(b"compressed"),
            size: 10,
            diff_id: Digest::of(b"plain"),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        };
        state.push_layer(&blob, std::slice::from_ref(&blob.diff_id));
        assert_eq!(state.diff_ids(), std::slice::from_ref(&blob.diff_id));
        assert_eq!(
            serde_json::to_string(&state.layers).unwrap(),
            format!(
                r#"[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":10}}]"#,
                blob.digest
            )
        );
        assert_eq!(
            oci_layer_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }
}
