//! `img-build`: a Dockerfile and its context turned into an image in the
//! store, one cached step at a time (config changes, COPY/ADD, RUN).

pub mod archive;
pub mod cache;
pub mod context;
pub mod copy;
pub mod fetch;
pub mod layer;
pub mod rootfs;
pub mod stdin;

use crate::digest::Digest;
use crate::dockerfile::{
    self, Command, CopyArgs, Healthcheck, Instruction, Node, ParseError, Vars, expand_word,
    expand_words,
};
use crate::layer::LayerError;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::{self, PullError, PullNeed, PullObserver, PullOptions, PullPolicy};
use crate::runtime::{self, NetworkMode, RunError, step};
use crate::store::{
    ContentLease, Image, Lease, SCRATCH_BUILD, Scratch, Store, StoreError, descriptor_digest,
};
use cache::CacheKey;
use context::{Context, ContextError, Source};
use copy::{Attributes, CopyError, Item};
use layer::{LayerCompression, LayerWriteError};
use rootfs::{ReadRoot, RootfsError, StepRoot};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";
/// Build args Docker predefines: usable without an ARG line, never recorded.
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Anything tied to a Dockerfile line: `file:line:col: message`.
    #[error(transparent)]
    At(#[from] ParseError),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    LayerWrite(#[from] LayerWriteError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Copy(#[from] CopyError),
    #[error(transparent)]
    Archive(#[from] archive::ArchiveError),
    #[error("failed to reach build target {0} in Dockerfile")]
    NoTarget(String),
    #[error("{0}")]
    Invalid(String),
}

/// Everything `img-build` was asked.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// How errors name the Dockerfile (`Dockerfile`, a path, or `-`).
    pub dockerfile_name: String,
    pub dockerfile: String,
    /// The context directory; `None` when the Dockerfile came from stdin
    /// with no context.
    pub context: Option<PathBuf>,
    pub tags: Vec<Reference>,
    /// `--build-arg K=V` (a bare `K` takes the caller's environment value,
    /// resolved by the tool; `None` leaves it unset).
    pub build_args: Vec<(String, Option<String>)>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// `--pull`: fetch every FROM image again.
    pub pull: bool,
    pub platform: Option<Platform>,
    pub labels: Vec<(String, String)>,
    pub network: Option<NetworkMode>,
    pub compression: LayerCompression,
    /// SOURCE_DATE_EPOCH: every timestamp the build writes.
    pub source_date_epoch: Option<u64>,
    /// `--secret id=…`: what `RUN --mount=type=secret` mounts, by id. Never
    /// in a layer, the history or a cache key.
    pub secrets: BTreeMap<String, Vec<u8>>,
}

/// The built image.
#[derive(Debug, Clone)]
pub struct Built {
    pub id: Digest,
    pub manifest_digest: Digest,
    pub tags: Vec<Reference>,
}

/// Hears about a build as it goes; the library itself never prints.
pub trait BuildObserver {
    /// `Step n/total : INSTRUCTION`.
    fn step(&mut self, _number: usize, _total: usize, _text: &str) {}
    /// The step's result came from the cache.
    fn cached(&mut self) {}
    /// The image the step produced.
    fn step_done(&mut self, _id: &Digest) {}
    /// ONBUILD triggers about to run.
    fn triggers(&mut self, _count: usize) {}
    fn warning(&mut self, _text: &str) {}
    /// Where a RUN's output goes; `None` discards it.
    fn run_output(&mut self) -> Option<OwnedFd> {
        None
    }
    /// Hears about pulls of FROM images.
    fn puller(&mut self) -> &mut dyn PullObserver;
}

/// An image being built: its config (as JSON, so fields from base images
/// survive untouched), its layers' descriptors, and its ID once stored.
#[derive(Debug, Clone)]
struct ImageState {
    config: Value,
    layers: Vec<Value>,
    id: Option<Digest>,
    manifest: Option<Digest>,
}

impl ImageState {
    fn scratch(platform: &Platform) -> ImageState {
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

    /// What cache keys call the parent.
    fn parent_key(&self) -> String {
        match &self.id {
            Some(id) => id.to_string(),
            None => format!(
                "scratch {} {}",
                self.config["os"].as_str().unwrap_or(""),
                self.config["architecture"].as_str().unwrap_or("")
            ),
        }
    }

    fn container_config(&mut self) -> &mut serde_json::Map<String, Value> {
        if !self.config["config"].is_object() {
            self.config["config"] = json!({});
        }
        self.config["config"].as_object_mut().expect("an object")
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.config["config"].get(key).filter(|v| !v.is_null())
    }

    /// Adds `keys` to a set-valued field (`ExposedPorts`, `Volumes`: an
    /// object whose values are `{}`), keeping what earlier steps put there.
    fn add_to_set(&mut self, field: &str, keys: Vec<String>) {
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

    fn env(&self) -> Vec<String> {
        self.get("Env")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn set_env(&mut self, key: &str, value: &str) {
        let mut env = self.env();
        let entry = format!("{key}={value}");
        match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
            Some(existing) => *existing = entry,
            None => env.push(entry),
        }
        self.container_config().insert("Env".into(), json!(env));
    }

    fn shell(&self) -> Vec<String> {
        self.get("Shell")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .filter(|s: &Vec<String>| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".to_string(), "-c".to_string()])
    }

    fn workdir(&self) -> String {
        self.get("WorkingDir")
            .and_then(Value::as_str)
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string()
    }

    fn user(&self) -> String {
        self.get("User")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .unwrap_or("0")
            .to_string()
    }

    fn diff_ids(&self) -> Vec<Digest> {
        self.config["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(|d| d.as_str()?.parse().ok()).collect())
            .unwrap_or_default()
    }

    fn push_history(&mut self, created: &str, created_by: &str, empty_layer: bool) {
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
struct StageRun {
    state: ImageState,
    /// ARGs declared in this stage, with their values (unset ones absent).
    args: Vec<(String, String)>,
    /// Whether this stage set CMD (so ENTRYPOINT keeps it).
    cmd_set: bool,
}

impl StageRun {
    /// What `$VAR` means here: ARG values, overridden by ENV.
    fn vars(&self) -> Vars {
        let mut vars: Vars = self.args.iter().cloned().collect();
        for entry in self.state.env() {
            if let Some((k, v)) = entry.split_once('=') {
                vars.insert(k.to_string(), v.to_string());
            }
        }
        vars
    }
}

struct Builder<'a> {
    store: &'a Store,
    options: &'a BuildOptions,
    observer: &'a mut dyn BuildObserver,
    dockerfile: dockerfile::Dockerfile,
    context: Context,
    platform: Platform,
    meta: Vars,
    build_args: HashMap<String, Option<String>>,
    used_args: BTreeSet<String>,
    stage_names: Vec<Option<String>>,
    built: Vec<ImageState>,
    step: usize,
    total: usize,
    /// The writers' lock, held except while a RUN step's process runs (so
    /// img-rm and img-prune wait for a step's bookkeeping, never for the
    /// whole build).
    writers: Option<Lease>,
    /// Every manifest this build has made or started from: what a
    /// collection must keep while the writers' lock is let go.
    pinned: RefCell<BTreeSet<Digest>>,
    pins: ContentLease,
}

/// Builds the image `options` describe, tags it, and returns it.
pub fn build(
    store: &Store,
    options: &BuildOptions,
    observer: &mut dyn BuildObserver,
) -> Result<Built, BuildError> {
    let parsed = dockerfile::parse(&options.dockerfile_name, &options.dockerfile)?;
    let (globals, stages) = dockerfile::stages(&parsed)?;
    if stages.is_empty() {
        return Err(parsed
            .error(1, 1, "no build stage in current context")
            .into());
    }
    let target = match &options.target {
        None => stages.len() - 1,
        Some(name) => stages
            .iter()
            .position(|s| s.name.as_deref() == Some(name.to_ascii_lowercase().as_str()))
            .ok_or_else(|| BuildError::NoTarget(name.clone()))?,
    };
    let context = match &options.context {
        Some(dir) => Context::open(dir)?,
        None => Context::none(),
    };
    // What a killed builder left: its steps' containers, then the overlays
    // and directories they ran on, and its half-written layer blobs (as a
    // pull removes a killed pull's). Best effort: leftovers never fail a build.
    crate::runtime::step::sweep_orphans(store);
    store.sweep_scratch("");
    let _ = store.sweep_temp_files();
    // A writer's lease: no collection sweeps the steps' blobs mid-build.
    let writers = store.lease()?;
    let pins = store.content_lease(&writers)?;
    let platform = options.platform.clone().unwrap_or_else(Platform::host);
    let mut builder = Builder {
        store,
        options,
        observer,
        context,
        meta: Vars::new(),
        build_args: options.build_args.iter().cloned().collect(),
        used_args: BTreeSet::new(),
        stage_names: stages.iter().map(|s| s.name.clone()).collect(),
        built: Vec::new(),
        step: 0,
        total: stages[..=target].iter().map(|s| 1 + s.steps.len()).sum(),
        platform,
        dockerfile: parsed,
        writers: Some(writers),
        pinned: RefCell::default(),
        pins,
    };
    builder.meta_args(&globals)?;
    builder.precheck(&stages[..=target])?;
    for stage in &stages[..=target] {
        let state = builder.stage(stage)?;
        builder.built.push(state);
    }
    let mut state = builder.built.pop().expect("at least one stage");
    if !options.labels.is_empty() {
        let mut labels = state
            .get("Labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, v) in &options.labels {
            labels.insert(k.clone(), json!(v));
        }
        state
            .container_config()
            .insert("Labels".into(), Value::Object(labels));
        builder.commit(&mut state)?;
    }
    let unused: Vec<&String> = builder
        .build_args
        .keys()
        .filter(|k| !builder.used_args.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
        .collect();
    if !unused.is_empty() {
        let mut names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        names.sort();
        builder.observer.warning(&format!(
            "[Warning] One or more build-args [{}] were not consumed",
            names.join(" ")
        ));
    }
    if state.manifest.is_none() {
        builder.commit(&mut state)?;
    }
    let id = state.id.clone().expect("committed");
    let manifest = state.manifest.clone().expect("committed");
    let size = store
        .blob_path(&manifest)
        .metadata()
        .map(|m| m.len())
        .unwrap_or(0);
    let descriptor = oci_spec::image::Descriptor::new(
        oci_spec::image::MediaType::ImageManifest,
        size,
        oci_spec::image::Digest::from_str(&manifest.to_string())
            .map_err(|e| BuildError::Invalid(e.to_string()))?,
    );
    let mut guard = store.lock_index()?;
    for tag in &options.tags {
        guard.set_tag(tag, descriptor.clone());
    }
    // Untagged, the image is kept as Docker keeps one: a `<none>` entry.
    if options.tags.is_empty() {
        guard.add_untagged(descriptor);
    }
    guard.save()?;
    Ok(Built {
        id,
        manifest_digest: manifest,
        tags: options.tags.clone(),
    })
}

impl Builder<'_> {
    fn at(&self, node: &Node, message: impl Into<String>) -> BuildError {
        BuildError::At(self.dockerfile.error(node.line, node.column, message))
    }

    fn expand(&self, node: &Node, word: &str, vars: &Vars) -> Result<String, BuildError> {
        expand_word(word, vars, self.dockerfile.escape).map_err(|e| self.at(node, e.to_string()))
    }

    fn now(&self) -> String {
        match self.options.source_date_epoch {
            Some(epoch) => crate::format::human::format_rfc3339(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch),
            )
            .replace(".000000000Z", "Z"),
            None => crate::format::human::format_rfc3339(std::time::SystemTime::now()),
        }
    }

    /// ARGs before the first FROM, with BuildKit's automatic platform args.
    fn meta_args(&mut self, globals: &[(Node, Instruction)]) -> Result<(), BuildError> {
        let target = &self.platform;
        let build = Platform::host();
        for (prefix, p) in [("TARGET", target.clone()), ("BUILD", build)] {
            self.meta.insert(format!("{prefix}PLATFORM"), p.to_string());
            self.meta.insert(format!("{prefix}OS"), p.os.clone());
            self.meta
                .insert(format!("{prefix}ARCH"), p.architecture.clone());
            self.meta.insert(
                format!("{prefix}VARIANT"),
                p.variant.clone().unwrap_or_default(),
            );
        }
        for (node, instruction) in globals {
            let Instruction::Arg(list) = instruction else {
                continue;
            };
            for (name, default) in list {
                let value = match self.build_args.get(name) {
                    Some(value) => {
                        self.used_args.insert(name.clone());
                        value.clone()
                    }
                    None => match default {
                        Some(d) => Some(self.expand(node, d, &self.meta.clone())?),
                        None => None,
                    },
                };
                match value {
                    Some(v) => {
                        self.meta.insert(name.clone(), v);
                    }
                    None => {
                        self.meta.remove(name);
                    }
                }
            }
        }
        Ok(())
    }

    /// Finds missing or escaping COPY sources before anything is built, so
    /// such a Dockerfile leaves the store exactly as it was.
    fn precheck(&self, stages: &[dockerfile::Stage]) -> Result<(), BuildError> {
        for stage in stages {
            for (node, instruction) in &stage.steps {
                let (Instruction::Copy(args) | Instruction::Add(args)) = instruction else {
                    continue;
                };
                if args.from.is_some() {
                    continue;
                }
                for source in &args.sources {
                    if source.contains('$') || source.starts_with("<<") || is_url(source) {
                        continue;
                    }
                    self.context
                        .resolve(source)
                        .map_err(|e| self.at(node, copy_failed(&node.keyword, &e)))?;
                }
            }
        }
        Ok(())
    }

    fn begin(&mut self, node: &Node) {
        self.step += 1;
        let text = format!("{} {}", node.keyword, node.original);
        self.observer.step(self.step, self.total, text.trim_end());
    }

    /// Builds one stage: its base, then each instruction.
    fn stage(&mut self, stage: &dockerfile::Stage) -> Result<ImageState, BuildError> {
        let Instruction::From {
            image, platform, ..
        } = &stage.from
        else {
            unreachable!("a stage starts with FROM");
        };
        let from_node = self
            .dockerfile
            .nodes
            .iter()
            .find(|n| n.line == stage.line && n.keyword == "FROM")
            .cloned()
            .expect("the stage's FROM node");
        self.begin(&from_node);
        let meta = self.meta.clone();
        let name = self.expand(&from_node, image, &meta)?;
        let platform = match platform {
            Some(p) => {
                let text = self.expand(&from_node, p, &meta)?;
                Some(
                    text.parse::<Platform>()
                        .map_err(|e| self.at(&from_node, e.to_string()))?,
                )
            }
            None => self.options.platform.clone(),
        };
        let mut state = self.base(&from_node, &name, platform.as_ref())?;
        if let Some(id) = &state.id {
            self.observer.step_done(id);
        }
        let mut run = StageRun {
            state: state.clone(),
            args: Vec::new(),
            cmd_set: false,
        };
        // ONBUILD triggers of the base run first, and are not inherited.
        let triggers: Vec<String> = state
            .get("OnBuild")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if !triggers.is_empty() {
            state
                .container_config()
                .insert("OnBuild".into(), Value::Null);
            run.state = state;
            self.observer.triggers(triggers.len());
            for text in triggers {
                let node =
                    dockerfile::instruction::trigger_node(&self.dockerfile, &from_node, &text)?;
                let instruction = dockerfile::parse_instruction(&self.dockerfile, &node)?;
                self.instruction(&mut run, &node, &instruction)?;
            }
        }
        for (node, instruction) in &stage.steps {
            self.begin(node);
            self.instruction(&mut run, node, instruction)?;
        }
        if run.state.manifest.is_none() {
            self.commit(&mut run.state)?;
        }
        Ok(run.state)
    }

    /// The state a FROM starts from: scratch, an earlier stage, or an image
    /// (pulled if the store lacks it, or always with --pull).
    fn base(
        &mut self,
        node: &Node,
        name: &str,
        platform: Option<&Platform>,
    ) -> Result<ImageState, BuildError> {
        if name.eq_ignore_ascii_case("scratch") {
            return Ok(ImageState::scratch(platform.unwrap_or(&self.platform)));
        }
        let lower = name.to_ascii_lowercase();
        if let Some(i) = self
            .stage_names
            .iter()
            .position(|n| n.as_deref() == Some(lower.as_str()))
            && let Some(state) = self.built.get(i)
        {
            return Ok(state.clone());
        }
        let image = self.image(node, name, platform)?;
        self.state_of(&image)
    }

    fn image(
        &mut self,
        node: &Node,
        name: &str,
        platform: Option<&Platform>,
    ) -> Result<Image, BuildError> {
        let policy = if self.options.pull {
            PullPolicy::Always
        } else {
            PullPolicy::Missing
        };
        let need = policy.need_on(self.store, name, platform)?;
        if let PullNeed::Missing(reference) | PullNeed::Refresh(reference) = need {
            let options = PullOptions {
                platform: platform.cloned(),
                ..PullOptions::default()
            };
            registry::pull(self.store, &reference, &options, self.observer.puller())
                .map_err(|e| self.at(node, e.to_string()))?;
        }
        self.store
            .resolve_image_for(name, platform)
            .map_err(|e| match e {
                StoreError::NoSuchImage(_) => self.at(
                    node,
                    match platform {
                        Some(platform) => {
                            format!("{name}: no {platform} image in the store and not pullable")
                        }
                        None => format!("{name}: not found in the store and not pullable"),
                    },
                ),
                other => BuildError::Store(other),
            })
    }

    fn state_of(&self, image: &Image) -> Result<ImageState, BuildError> {
        self.pinned
            .borrow_mut()
            .insert(image.manifest_digest.clone());
        let id = image.id();
        let config: Value =
            serde_json::from_slice(&self.store.read_blob(&id)?).map_err(|source| {
                StoreError::Json {
                    path: self.store.blob_path(&id),
                    source,
                }
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

    /// Stores the state's config and a manifest over it; sets its ID.
    fn commit(&self, state: &mut ImageState) -> Result<(), BuildError> {
        let config = serde_json::to_vec(&state.config).expect("JSON serialises");
        let config_digest = self.store.put_blob(&config)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest.to_string(),
                "size": config.len(),
            },
            "layers": state.layers,
        });
        let manifest = serde_json::to_vec(&manifest).expect("JSON serialises");
        let manifest = self.store.put_blob(&manifest)?;
        self.pinned.borrow_mut().insert(manifest.clone());
        state.manifest = Some(manifest);
        state.id = Some(config_digest);
        Ok(())
    }

    /// Runs `job` (a RUN step's process) without the writers' lock, the
    /// content this build needs pinned instead.
    fn unlocked<T>(&mut self, job: impl FnOnce(&mut Self) -> T) -> Result<T, BuildError> {
        let writers = self.writers.take().expect("held between steps");
        self.pins
            .pin(self.store, &writers, self.pinned.borrow().iter().cloned())?;
        drop(writers);
        let done = job(self);
        self.writers = Some(self.store.lease()?);
        Ok(done)
    }

    /// The state a cache entry names, if all its blobs are still here.
    fn cached_state(&self, manifest: &Digest) -> Option<ImageState> {
        let parsed = self.store.read_manifest(manifest).ok()?;
        if !parsed
            .layers()
            .iter()
            .all(|l| self.store.has_blob(&descriptor_digest(l)))
        {
            return None;
        }
        let image = Image {
            descriptor: oci_spec::image::Descriptor::new(
                oci_spec::image::MediaType::ImageManifest,
                0,
                oci_spec::image::Digest::from_str(&manifest.to_string()).ok()?,
            ),
            manifest_digest: manifest.clone(),
            manifest: parsed,
            tags: Vec::new(),
            repo_digests: Vec::new(),
            tagged_at: None,
        };
        self.state_of(&image).ok()
    }

    /// Runs a step through the cache: a hit replaces the state with the
    /// cached one; a miss runs `apply` and records the result.
    fn cached_step(
        &mut self,
        run: &mut StageRun,
        key_text: &str,
        content: Option<&Digest>,
        apply: impl FnOnce(&mut Self, &mut ImageState) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        let key = CacheKey::new(&run.state.parent_key(), key_text, content);
        if !self.options.no_cache
            && let Some(manifest) = cache::lookup(self.store, &key)
            && let Some(state) = self.cached_state(&manifest)
        {
            self.observer.cached();
            run.state = state;
        } else {
            let mut next = run.state.clone();
            apply(self, &mut next)?;
            self.commit(&mut next)?;
            cache::record(self.store, &key, next.manifest.as_ref().expect("committed"))?;
            run.state = next;
        }
        self.observer
            .step_done(run.state.id.as_ref().expect("committed"));
        Ok(())
    }

    /// A config-only step: `change` edits the config; history says
    /// `created_by` with `empty_layer`.
    fn config_step(
        &mut self,
        run: &mut StageRun,
        created_by: &str,
        change: impl FnOnce(&mut ImageState),
    ) -> Result<(), BuildError> {
        self.cached_step(run, created_by, None, |builder, state| {
            change(state);
            let now = builder.now();
            state.push_history(&now, created_by, true);
            Ok(())
        })
    }

    /// The unpacked layer directories of a state, bottom first.
    fn layer_dirs(&self, state: &ImageState) -> Result<Vec<PathBuf>, BuildError> {
        let diff_ids = state.diff_ids();
        let chains = crate::layer::chain_ids(&diff_ids);
        let dirs: Vec<PathBuf> = chains.iter().map(|c| self.store.layer_dir(c)).collect();
        if dirs.iter().all(|d| d.is_dir()) {
            return Ok(dirs);
        }
        let manifest = state.manifest.as_ref().ok_or_else(|| {
            BuildError::Invalid("a parent image with layers was never stored".into())
        })?;
        let image = self
            .cached_state(manifest)
            .map(|_| ())
            .and_then(|()| self.store.read_manifest(manifest).ok())
            .ok_or_else(|| StoreError::MissingBlob(manifest.clone()))?;
        let image = Image {
            descriptor: oci_spec::image::Descriptor::new(
                oci_spec::image::MediaType::ImageManifest,
                0,
                oci_spec::image::Digest::from_str(&manifest.to_string())
                    .map_err(|e| BuildError::Invalid(e.to_string()))?,
            ),
            manifest_digest: manifest.clone(),
            manifest: image,
            tags: Vec::new(),
            repo_digests: Vec::new(),
            tagged_at: None,
        };
        let config: oci_spec::image::ImageConfiguration =
            serde_json::from_value(state.config.clone())
                .map_err(|e| BuildError::Invalid(format!("the image config: {e}")))?;
        Ok(self.store.unpack_layers(&image, &config)?)
    }

    /// A filesystem step: mounts the state's root with a fresh upper dir,
    /// lets `change` work in it, and turns what changed into a layer.
    fn fs_step(
        &mut self,
        run: &mut StageRun,
        key_text: &str,
        created_by: &str,
        content: Option<&Digest>,
        change: impl FnOnce(&mut Self, &Path) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        self.cached_step(run, key_text, content, |builder, state| {
            let lowers = builder.layer_dirs(state)?;
            let mut root = StepRoot::mount(builder.store, &lowers)?;
            let merged = root.merged();
            change(builder, &merged)?;
            root.unmount();
            let upper = root.upper();
            let now = builder.now();
            if layer::is_empty(&upper) {
                state.push_history(&now, created_by, true);
                return Ok(());
            }
            let blob = layer::write_layer(
                builder.store,
                &upper,
                builder.options.compression,
                builder.options.source_date_epoch,
            )?;
            let mut diff_ids = state.diff_ids();
            diff_ids.push(blob.diff_id.clone());
            let chain = crate::layer::chain_ids(&diff_ids)
                .pop()
                .expect("one layer at least");
            // The upper dir is this layer unpacked: keep it for the next
            // step's overlay instead of unpacking the tar again.
            let dest = builder.store.layer_dir(&chain);
            if !dest.exists() && std::fs::rename(&upper, &dest).is_err() {
                // Another build won the race, or a different filesystem:
                // the layer is unpacked from its blob when needed.
            }
            state.layers.push(json!({
                "mediaType": blob.media_type,
                "digest": blob.digest.to_string(),
                "size": blob.size,
            }));
            state.config["rootfs"] = json!({
                "type": "layers",
                "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            });
            state.push_history(&now, created_by, false);
            Ok(())
        })
    }

    fn instruction(
        &mut self,
        run: &mut StageRun,
        node: &Node,
        instruction: &Instruction,
    ) -> Result<(), BuildError> {
        let escape = self.dockerfile.escape;
        let vars = run.vars();
        match instruction {
            Instruction::From { .. } => Err(self.at(node, "FROM is not allowed here")),
            Instruction::Arg(list) => {
                for (name, default) in list {
                    let value = match self.build_args.get(name) {
                        Some(v) => {
                            self.used_args.insert(name.clone());
                            v.clone()
                        }
                        None => match default {
                            Some(d) => Some(self.expand(node, d, &run.vars())?),
                            None => self.meta.get(name).cloned(),
                        },
                    };
                    run.args.retain(|(n, _)| n != name);
                    if let Some(v) = value {
                        run.args.push((name.clone(), v));
                    }
                }
                if let Some(id) = &run.state.id {
                    self.observer.step_done(id);
                }
                Ok(())
            }
            Instruction::Env(pairs) => {
                let mut expanded = Vec::new();
                for (k, v) in pairs {
                    expanded.push((self.expand(node, k, &vars)?, self.expand(node, v, &vars)?));
                }
                let text = format!(
                    "ENV {}",
                    expanded
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                self.config_step(run, &text, |state| {
                    for (k, v) in &expanded {
                        state.set_env(k, v);
                    }
                })
            }
            Instruction::Label(pairs) => {
                let mut expanded = Vec::new();
                for (k, v) in pairs {
                    expanded.push((self.expand(node, k, &vars)?, self.expand(node, v, &vars)?));
                }
                let text = format!(
                    "LABEL {}",
                    expanded
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                self.config_step(run, &text, |state| {
                    let mut labels = state
                        .get("Labels")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    for (k, v) in &expanded {
                        labels.insert(k.clone(), json!(v));
                    }
                    state
                        .container_config()
                        .insert("Labels".into(), Value::Object(labels));
                })
            }
            Instruction::Maintainer(name) => {
                let text = format!("MAINTAINER {name}");
                let name = name.clone();
                self.config_step(run, &text, |state| state.config["author"] = json!(name))
            }
            Instruction::User(user) => {
                let user = self.expand(node, user, &vars)?;
                let text = format!("USER {user}");
                self.config_step(run, &text, |state| {
                    state.container_config().insert("User".into(), json!(user));
                })
            }
            Instruction::StopSignal(signal) => {
                let signal = self.expand(node, signal, &vars)?;
                let text = format!("STOPSIGNAL {signal}");
                self.config_step(run, &text, |state| {
                    state
                        .container_config()
                        .insert("StopSignal".into(), json!(signal));
                })
            }
            Instruction::Expose(text) => {
                let words =
                    expand_words(text, &vars, escape).map_err(|e| self.at(node, e.to_string()))?;
                let mut ports = Vec::new();
                for word in &words {
                    ports.extend(expose_ports(word).map_err(|e| self.at(node, e))?);
                }
                let text = format!("EXPOSE {}", words.join(" "));
                self.config_step(run, &text, |state| state.add_to_set("ExposedPorts", ports))
            }
            Instruction::Volume(command) => {
                let paths = match command {
                    Command::Exec(list) => list
                        .iter()
                        .map(|p| self.expand(node, p, &vars))
                        .collect::<Result<Vec<_>, _>>()?,
                    Command::Shell(text) => expand_words(text, &vars, escape)
                        .map_err(|e| self.at(node, e.to_string()))?,
                };
                if paths.iter().any(|p| p.trim().is_empty()) {
                    return Err(self.at(node, "VOLUME specified can not be an empty string"));
                }
                let text = format!("VOLUME [{}]", paths.join(" "));
                self.config_step(run, &text, |state| state.add_to_set("Volumes", paths))
            }
            Instruction::Shell(shell) => {
                let text = format!("SHELL {}", json!(shell));
                let shell = shell.clone();
                self.config_step(run, &text, |state| {
                    state
                        .container_config()
                        .insert("Shell".into(), json!(shell));
                })
            }
            Instruction::Cmd(command) => {
                let argv = command.argv(&run.state.shell());
                let text = format!("CMD {}", json!(argv));
                run.cmd_set = true;
                self.config_step(run, &text, |state| {
                    state.container_config().insert("Cmd".into(), json!(argv));
                })
            }
            Instruction::Entrypoint(command) => {
                let argv = command.argv(&run.state.shell());
                let text = format!("ENTRYPOINT {}", json!(argv));
                let keep_cmd = run.cmd_set;
                self.config_step(run, &text, |state| {
                    state
                        .container_config()
                        .insert("Entrypoint".into(), json!(argv));
                    // Docker: a new ENTRYPOINT drops a CMD inherited from the base.
                    if !keep_cmd {
                        state.container_config().insert("Cmd".into(), Value::Null);
                    }
                })
            }
            Instruction::Healthcheck(check) => {
                let value = healthcheck_json(check);
                let text = format!("HEALTHCHECK {}", json!(check.test));
                self.config_step(run, &text, |state| {
                    state.container_config().insert("Healthcheck".into(), value);
                })
            }
            Instruction::Onbuild(trigger, _) => {
                let text = format!("ONBUILD {trigger}");
                let trigger = trigger.clone();
                self.config_step(run, &text, |state| {
                    let mut list = state
                        .get("OnBuild")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    list.push(json!(trigger));
                    state
                        .container_config()
                        .insert("OnBuild".into(), Value::Array(list));
                })
            }
            Instruction::Workdir(dir) => {
                let dir = self.expand(node, dir, &vars)?;
                let path = if dir.starts_with('/') {
                    context::clean(&dir)
                } else {
                    context::clean(&format!("{}/{dir}", run.state.workdir()))
                };
                let text = format!("WORKDIR {path}");
                // The config changes whatever the cache says; the directory
                // is made (a layer, if it was missing) by the step.
                run.state
                    .container_config()
                    .insert("WorkingDir".into(), json!(path));
                self.fs_step(run, &text, &text, None, |_, merged| {
                    Ok(copy::mkdir_in(merged, &path)?)
                })
            }
            Instruction::Run {
                command,
                heredocs,
                network,
                mounts,
            } => self.run_step(run, node, command, heredocs, mounts, network.as_deref()),
            Instruction::Copy(args) => self.copy_step(run, node, args, false),
            Instruction::Add(args) => self.copy_step(run, node, args, true),
        }
    }

    fn run_step(
        &mut self,
        run: &mut StageRun,
        node: &Node,
        command: &Command,
        heredocs: &[dockerfile::Heredoc],
        mounts: &[dockerfile::Mount],
        network: Option<&str>,
    ) -> Result<(), BuildError> {
        let shell = run.state.shell();
        let RunMounts {
            volumes,
            tmpfs,
            text: mount_flags,
            content,
            held: _held,
        } = self.run_mounts(node, mounts, &run.state.workdir())?;
        let argv = match (command, heredocs) {
            (Command::Shell(text), [doc]) if is_heredoc_marker(text.trim(), &doc.name) => {
                // `RUN <<EOF`: the heredoc is the script.
                let mut argv = shell.clone();
                argv.push(doc.content.clone());
                argv
            }
            (Command::Shell(text), docs) if !docs.is_empty() => {
                // `RUN cmd <<EOF`: the shell reads the heredocs itself.
                let mut script = text.clone();
                for doc in docs {
                    script.push('\n');
                    script.push_str(&doc.content);
                    script.push_str(&doc.name);
                }
                let mut argv = shell.clone();
                argv.push(script);
                argv
            }
            _ => command.argv(&shell),
        };
        // ARG values are in the command's environment (and its cache key),
        // never in the image's config.
        let env_names: Vec<String> = run
            .state
            .env()
            .iter()
            .filter_map(|e| e.split('=').next().map(str::to_string))
            .collect();
        let mut arg_env: Vec<String> = run
            .args
            .iter()
            .filter(|(k, _)| !env_names.contains(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut env = run.state.env();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH.to_string());
        }
        env.extend(arg_env.iter().cloned());
        for proxy in PROXY_ARGS {
            if let Some(Some(v)) = self.build_args.get(*proxy)
                && !env.iter().any(|e| e.starts_with(&format!("{proxy}=")))
            {
                env.push(format!("{proxy}={v}"));
            }
        }
        arg_env.sort();
        let prefix = if arg_env.is_empty() {
            String::new()
        } else {
            format!("|{} {} ", arg_env.len(), arg_env.join(" "))
        };
        let created_by = format!("RUN {mount_flags}{prefix}{} # buildkit", argv.join(" "));
        let network = match network.or(self.options.network.map(|n| match n {
            NetworkMode::Host => "host",
            NetworkMode::None => "none",
        })) {
            Some("none") => NetworkMode::None,
            _ => NetworkMode::Host,
        };
        let workdir = run.state.workdir();
        let user = run.state.user();
        let shown = argv.join(" ");
        let node = node.clone();
        self.fs_step(
            run,
            &created_by,
            &created_by,
            content.as_ref(),
            |builder, merged| {
                let targets: Vec<String> = volumes
                    .iter()
                    .map(|v| v.target.clone())
                    .chain(tmpfs.iter().map(|t| t.target.clone()))
                    .collect();
                let stubs = rootfs::missing_stubs(merged, &targets);
                let code = builder
                    .unlocked(|builder| {
                        step::run_step(
                            builder.store,
                            step::StepOptions {
                                rootfs: merged,
                                args: &argv,
                                env: &env,
                                workdir: &workdir,
                                user: &user,
                                network,
                                volumes: &volumes,
                                tmpfs: &tmpfs,
                                output: builder.observer.run_output(),
                            },
                        )
                    })?
                    .map_err(|e| builder.at(&node, e.to_string()))?;
                if code != 0 {
                    return Err(builder.at(
                        &node,
                        format!("The command '{shown}' returned a non-zero code: {code}"),
                    ));
                }
                // The container is gone and its root detached: tidy the upper dir.
                let upper = merged.parent().expect("merged has a parent").join("upper");
                rootfs::remove_stubs(&upper, &stubs);
                Ok(())
            },
        )
    }

    /// `RUN --mount`: cache mounts are directories under the store that
    /// outlive the step (and never reach its layer); tmpfs mounts are
    /// fresh each time; bind mounts are a private copy of their source (so
    /// `.dockerignore` holds and `rw` writes are thrown away), whose content
    /// joins the step's cache key; secrets are files only the step sees.
    fn run_mounts(
        &mut self,
        node: &Node,
        mounts: &[dockerfile::Mount],
        workdir: &str,
    ) -> Result<RunMounts, BuildError> {
        let mut out = RunMounts::default();
        let mut bind_hashes = Vec::new();
        for mount in mounts {
            let option = |names: &[&str]| {
                mount
                    .options
                    .iter()
                    .find(|(k, _)| names.contains(&k.as_str()))
                    .map(|(_, v)| v.clone())
            };
            let flag = |names: &[&str]| option(names).is_some_and(|v| v.is_empty() || v == "true");
            let target_word = match (mount.kind.as_str(), mount.target.is_empty()) {
                ("secret", true) => {
                    let id = mount.id.clone().unwrap_or_default();
                    format!("/run/secrets/{id}")
                }
                _ => mount.target.clone(),
            };
            let target = if target_word.starts_with('/') {
                context::clean(&target_word)
            } else {
                context::clean(&format!("{workdir}/{target_word}"))
            };
            match mount.kind.as_str() {
                "cache" => {
                    let id = mount.id.clone().unwrap_or_else(|| target.clone());
                    let dir = self
                        .store
                        .root()
                        .join("cache")
                        .join("mounts")
                        .join(Digest::of(id.as_bytes()).hex());
                    std::fs::create_dir_all(&dir).map_err(|e| {
                        self.at(node, format!("cache mount {}: {e}", dir.display()))
                    })?;
                    out.volumes.push(runtime::Volume {
                        source: dir,
                        target: target.clone(),
                        read_only: false,
                    });
                    out.text
                        .push_str(&format!("--mount=type=cache,target={target} "));
                }
                "tmpfs" => {
                    out.tmpfs.push(runtime::Tmpfs {
                        target: target.clone(),
                        options: Vec::new(),
                    });
                    out.text
                        .push_str(&format!("--mount=type=tmpfs,target={target} "));
                }
                "bind" => {
                    let source = option(&["source", "src"]).unwrap_or_default();
                    let from = option(&["from"]);
                    let writable = flag(&["rw", "readwrite"]);
                    let (held, path, hash) = self.bind_source(node, &source, from.as_deref())?;
                    out.volumes.push(runtime::Volume {
                        source: path,
                        target: target.clone(),
                        read_only: !writable,
                    });
                    out.held.push(held);
                    bind_hashes.push(hash.to_string());
                    let from_text = from.map(|f| format!(",from={f}")).unwrap_or_default();
                    let rw_text = if writable { ",rw" } else { "" };
                    out.text.push_str(&format!(
                        "--mount=type=bind,source={source},target={target}{from_text}{rw_text} "
                    ));
                }
                "secret" => {
                    let id = mount
                        .id
                        .clone()
                        .unwrap_or_else(|| target.rsplit('/').next().unwrap_or("").to_string());
                    let Some(bytes) = self.options.secrets.get(&id) else {
                        if flag(&["required"]) {
                            return Err(self.at(
                                node,
                                format!(
                                    "secret {id} not found: pass it with --secret id={id},src=FILE"
                                ),
                            ));
                        }
                        continue;
                    };
                    // A scratch directory: a killed build's secret is swept.
                    let dir = Scratch::new(self.store, SCRATCH_BUILD)
                        .map_err(|e| self.at(node, format!("secret {id}: {e}")))?;
                    let path = dir.path().join("secret");
                    write_secret(&path, bytes)
                        .map_err(|e| self.at(node, format!("secret {id}: {e}")))?;
                    out.volumes.push(runtime::Volume {
                        source: path,
                        target: target.clone(),
                        read_only: true,
                    });
                    out.held.push(dir);
                    out.text
                        .push_str(&format!("--mount=type=secret,id={id},target={target} "));
                }
                other => {
                    return Err(self.at(
                        node,
                        format!(
                            "RUN --mount=type={other} is not supported (bind, cache, tmpfs and secret are)"
                        ),
                    ));
                }
            }
        }
        if !bind_hashes.is_empty() {
            out.content = Some(Digest::of(bind_hashes.join("\n").as_bytes()));
        }
        Ok(out)
    }

    /// A bind mount's source, from the context or from a stage or image
    /// (`from`), copied into a directory of the store's: returns the
    /// directory (removed when dropped), the path to bind, and the hash of
    /// what it holds.
    fn bind_source(
        &mut self,
        node: &Node,
        source: &str,
        from: Option<&str>,
    ) -> Result<(Scratch, PathBuf, Digest), BuildError> {
        let mut _read_root = None;
        let source_ctx = match from {
            None => self.context.clone(),
            Some(from) => {
                let state = self.stage_or_image(node, from)?;
                let lowers = self.layer_dirs(&state)?;
                let root = ReadRoot::mount(self.store, &lowers)?;
                let ctx = Context::rootfs(root.path());
                _read_root = Some(root);
                ctx
            }
        };
        let failed = |e: &dyn std::fmt::Display| format!("bind mount source {source:?}: {e}");
        let resolved = source_ctx
            .resolve(source)
            .map_err(|e| self.at(node, failed(&e)))?;
        let [one] = resolved.as_slice() else {
            return Err(self.at(node, failed(&"matches more than one path")));
        };
        let items = copy::walk(one, &source_ctx, &context::Ignore::default())
            .map_err(|e| self.at(node, failed(&e)))?;
        let is_dir = items[0].meta.is_dir();
        let walked = [(one.clone(), items)];
        let hash = copy::hash_sources(walked.iter()).map_err(|e| self.at(node, failed(&e)))?;
        let dir = Scratch::new(self.store, SCRATCH_BUILD).map_err(|e| self.at(node, failed(&e)))?;
        copy::copy_into(dir.path(), &walked, "/", true, Attributes::default(), false)
            .map_err(|e| self.at(node, failed(&e)))?;
        let path = if is_dir {
            dir.path().to_path_buf()
        } else {
            let name = one.rel.rsplit('/').next().unwrap_or(&one.rel);
            dir.path().join(name)
        };
        Ok((dir, path, hash))
    }

    fn copy_step(
        &mut self,
        run: &mut StageRun,
        node: &Node,
        args: &CopyArgs,
        add: bool,
    ) -> Result<(), BuildError> {
        let vars = run.vars();
        let keyword = if add { "ADD" } else { "COPY" };
        let mut sources = Vec::new();
        for s in &args.sources {
            sources.push(if s.starts_with("<<") {
                s.clone()
            } else {
                self.expand(node, s, &vars)?
            });
        }
        let dest_word = self.expand(node, &args.dest, &vars)?;
        let chown = args
            .chown
            .as_ref()
            .map(|c| self.expand(node, c, &vars))
            .transpose()?;
        let chmod = match &args.chmod {
            Some(c) => {
                let text = self.expand(node, c, &vars)?;
                Some(
                    u32::from_str_radix(&text, 8)
                        .map_err(|_| self.at(node, format!("invalid chmod parameter: {text}")))?,
                )
            }
            None => None,
        };
        let from = args
            .from
            .as_ref()
            .map(|f| self.expand(node, f, &vars))
            .transpose()?;
        let mut exclude_words = Vec::new();
        for pattern in &args.excludes {
            exclude_words.push(self.expand(node, pattern, &vars)?);
        }
        let excludes = context::Ignore::parse(&exclude_words.join("\n")).map_err(|_| {
            self.at(
                node,
                format!("invalid --exclude pattern in {}", exclude_words.join(" ")),
            )
        })?;
        if !add && let Some(url) = sources.iter().find(|s| is_url(s)) {
            return Err(self.at(node, format!("source can't be a URL for COPY: {url}")));
        }
        // Where sources come from: the context, a stage, or an image.
        let mut _read_root = None;
        let mut from_id = String::new();
        let source_ctx = match &from {
            None => self.context.clone(),
            Some(from) => {
                let state = self.stage_or_image(node, from)?;
                from_id = state.parent_key();
                let lowers = self.layer_dirs(&state)?;
                let root = ReadRoot::mount(self.store, &lowers)?;
                let ctx = Context::rootfs(root.path());
                _read_root = Some(root);
                ctx
            }
        };
        // Heredocs become files named after their delimiter.
        let mut texts: Vec<(String, String)> = Vec::new();
        let mut walked: Vec<(Source, Vec<Item>)> = Vec::new();
        // With --parents: each walked source's directories to keep.
        let mut kept_dirs: Vec<Option<String>> = Vec::new();
        // ADD's URLs: fetched now, copied as they are (never unpacked).
        let mut downloads = Vec::new();
        let mut remote: Vec<(Source, Vec<Item>)> = Vec::new();
        for source in &sources {
            if source.starts_with("<<") {
                let doc = args
                    .heredocs
                    .iter()
                    .find(|d| source.contains(&d.name))
                    .ok_or_else(|| self.at(node, format!("no heredoc for {source}")))?;
                let content = if doc.expand {
                    expand_heredoc(&doc.content, &vars, self.dockerfile.escape)
                } else {
                    doc.content.clone()
                };
                texts.push((doc.name.clone(), content));
                continue;
            }
            if is_url(source) {
                let got = fetch::download(source, args.checksum.as_deref(), self.store)
                    .map_err(|e| self.at(node, format!("{keyword} failed: {e}")))?;
                let s = Source {
                    rel: got.name.clone(),
                    path: got.path.clone(),
                };
                let items = copy::walk(&s, &Context::none(), &excludes)
                    .map_err(|e| self.at(node, e.to_string()))?;
                remote.push((s, items));
                downloads.push(got);
                continue;
            }
            let resolved = source_ctx
                .resolve(source)
                .map_err(|e| self.at(node, copy_failed(keyword, &e)))?;
            let pivot = parents_pivot(source);
            for s in resolved {
                // A wildcard's matches are themselves subject to --exclude,
                // as paths below the wildcard's fixed directory.
                if !excludes.is_empty()
                    && context::has_wildcards(source)
                    && excludes.excludes(below_fixed_dir(source, &s.rel))
                {
                    continue;
                }
                let items = copy::walk(&s, &source_ctx, &excludes)
                    .map_err(|e| self.at(node, e.to_string()))?;
                let kept = if args.parents {
                    Some(kept_parents(&s.rel, &pivot, items[0].meta.is_dir()))
                } else {
                    None
                };
                walked.push((s, items));
                kept_dirs.push(kept);
            }
        }
        let count = walked.len() + remote.len() + texts.len();
        let dest_is_dir = args.parents
            || dest_word.ends_with('/')
            || dest_word == "."
            || dest_word.ends_with("/.");
        if count > 1 && !dest_is_dir {
            return Err(self.at(
                node,
                format!("When using {keyword} with more than one source file, the destination must be a directory and end with a /"),
            ));
        }
        let dest = if dest_word.starts_with('/') {
            dest_word.clone()
        } else {
            format!("{}/{dest_word}", run.state.workdir())
        };
        let mut dest_clean = context::clean(&dest);
        if dest_is_dir && !dest_clean.ends_with('/') {
            dest_clean.push('/');
        }
        let content = copy::hash_sources(walked.iter().chain(remote.iter()))
            .map_err(|e| self.at(node, e.to_string()))?;
        let mut flags = String::new();
        if let Some(f) = &from {
            flags.push_str(&format!("--from={f} "));
        }
        if let Some(c) = &chown {
            flags.push_str(&format!("--chown={c} "));
        }
        if let Some(m) = chmod {
            flags.push_str(&format!("--chmod={m:o} "));
        }
        if args.parents {
            flags.push_str("--parents ");
        }
        for pattern in &exclude_words {
            flags.push_str(&format!("--exclude={pattern} "));
        }
        let created_by = format!(
            "{keyword} {flags}{} {dest_word} # buildkit",
            sources.join(" ")
        );
        // The key also names the stage or image copied from, by ID.
        let mut key_text = created_by.clone();
        for (name, text) in &texts {
            key_text.push_str(&format!("\n<<{name}\n{text}"));
        }
        if from.is_some() {
            key_text.push_str(&format!("\nfrom {from_id}"));
        }
        let node = node.clone();
        let epoch = self.options.source_date_epoch;
        self.fs_step(
            run,
            &key_text,
            &created_by,
            Some(&content),
            |builder, merged| {
                let owner = match &chown {
                    Some(spec) => {
                        Some(resolve_chown(merged, spec).map_err(|e| builder.at(&node, e))?)
                    }
                    None => None,
                };
                let attrs = Attributes { owner, chmod };
                if args.parents {
                    for (source, kept) in walked.iter().zip(&kept_dirs) {
                        let dest = format!("{dest_clean}{}", kept.as_deref().unwrap_or(""));
                        copy::copy_into(
                            merged,
                            std::slice::from_ref(source),
                            &dest,
                            true,
                            attrs,
                            add,
                        )
                        .map_err(|e| builder.at(&node, format!("{keyword} failed: {e}")))?;
                    }
                } else {
                    copy::copy_into(merged, &walked, &dest_clean, dest_is_dir, attrs, add)
                        .map_err(|e| builder.at(&node, format!("{keyword} failed: {e}")))?;
                }
                copy::copy_into(merged, &remote, &dest_clean, dest_is_dir, attrs, false)
                    .map_err(|e| builder.at(&node, format!("{keyword} failed: {e}")))?;
                let mtime = rustix::fs::Timespec {
                    tv_sec: epoch.map(|e| e as i64).unwrap_or_else(|| {
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_secs() as i64)
                            .unwrap_or(0)
                    }),
                    tv_nsec: 0,
                };
                for (name, text) in &texts {
                    let target = if dest_is_dir {
                        format!("{dest_clean}{name}")
                    } else {
                        dest_clean.clone()
                    };
                    copy::write_text(merged, &target, text, attrs, mtime)
                        .map_err(|e| builder.at(&node, format!("{keyword} failed: {e}")))?;
                }
                Ok(())
            },
        )
    }

    /// The state COPY --from names: a stage (by name or index) built
    /// earlier, or an image.
    fn stage_or_image(&mut self, node: &Node, from: &str) -> Result<ImageState, BuildError> {
        let lower = from.to_ascii_lowercase();
        if let Some(i) = self
            .stage_names
            .iter()
            .position(|n| n.as_deref() == Some(lower.as_str()))
        {
            return self.built.get(i).cloned().ok_or_else(|| {
                self.at(node, format!("stage {from} is not built before this one"))
            });
        }
        if let Ok(i) = from.parse::<usize>() {
            return self.built.get(i).cloned().ok_or_else(|| {
                self.at(
                    node,
                    format!(
                        "invalid stage index {i}: only {} stages are built so far",
                        self.built.len()
                    ),
                )
            });
        }
        let platform = self.options.platform.clone();
        let image = self.image(node, from, platform.as_ref())?;
        self.state_of(&image)
    }
}

/// What a RUN step mounts, as `run_mounts` worked it out.
#[derive(Default)]
struct RunMounts {
    volumes: Vec<runtime::Volume>,
    tmpfs: Vec<runtime::Tmpfs>,
    /// The `--mount` flags as the history shows them.
    text: String,
    /// The bind mounts' content, for the cache key.
    content: Option<Digest>,
    /// Private copies and secret files, removed after the step.
    held: Vec<Scratch>,
}

/// A secret as a file only its owner (root) can read.
fn write_secret(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(path)?;
    file.write_all(bytes)
}

/// `COPY --parents`: the part of a source before a `/./` pivot, cleaned
/// (those directories are not kept); empty without a pivot.
fn parents_pivot(source: &str) -> String {
    let source = source.strip_prefix("./").unwrap_or(source);
    match source.find("/./") {
        Some(at) => context::clean(&source[..at])
            .trim_start_matches('/')
            .to_string(),
        None => String::new(),
    }
}

/// `COPY --parents`: where below the destination a source goes: its parent
/// directories below the pivot, and a directory's own name too (its
/// contents go inside it), each ending with `/`.
fn kept_parents(rel: &str, pivot: &str, is_dir: bool) -> String {
    let below = match rel.strip_prefix(pivot) {
        Some(rest) if !pivot.is_empty() => rest.trim_start_matches('/'),
        _ => rel,
    };
    let kept = if is_dir {
        below
    } else {
        below.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("")
    };
    if kept.is_empty() {
        String::new()
    } else {
        format!("{kept}/")
    }
}

/// A wildcard match's path below the source's fixed (wildcard-free)
/// leading directories: what `--exclude` patterns see for it.
fn below_fixed_dir<'a>(source: &str, rel: &'a str) -> &'a str {
    let cleaned = context::clean(source);
    let fixed: Vec<&str> = cleaned
        .trim_start_matches('/')
        .split('/')
        .take_while(|part| !context::has_wildcards(part))
        .collect();
    let mut rest = rel;
    for part in fixed {
        rest = rest
            .strip_prefix(part)
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or(rest);
    }
    rest
}

fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://") || source.starts_with("git@")
}

fn is_heredoc_marker(text: &str, name: &str) -> bool {
    let body = text.trim_start_matches("<<").trim_start_matches('-');
    body.trim_matches(|c| c == '"' || c == '\'') == name
}

/// Docker's wording for a COPY whose source is wrong.
fn copy_failed(keyword: &str, error: &ContextError) -> String {
    match error {
        ContextError::NoMatch(source) => {
            format!("{keyword} failed: no source files were specified (no match for {source:?})")
        }
        other => format!("{keyword} failed: {other}"),
    }
}

/// Expands variables in a heredoc body, line by line; a line that does not
/// lex (an odd quote in a script) stays as written.
fn expand_heredoc(content: &str, vars: &Vars, escape: char) -> String {
    let mut out = String::new();
    for line in content.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        // Quotes are content in a heredoc: protect them from the lexer.
        let protected = body.replace('\'', "\u{1}").replace('"', "\u{2}");
        match expand_word(&protected, vars, escape) {
            Ok(v) => out.push_str(&v.replace('\u{1}', "'").replace('\u{2}', "\"")),
            Err(_) => out.push_str(body),
        }
        out.push_str(newline);
    }
    out
}

/// EXPOSE's words as `port/proto` keys, ranges spelled out.
fn expose_ports(word: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = match word.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (word, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let parse = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("invalid containerPort: {p}"))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(ports)?, parse(ports)?),
    };
    if hi < lo {
        return Err(format!(
            "invalid range specified for containerPort: {ports}"
        ));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

fn healthcheck_json(check: &Healthcheck) -> Value {
    let mut value = json!({"Test": check.test});
    for (key, v) in [
        ("Interval", check.interval),
        ("Timeout", check.timeout),
        ("StartPeriod", check.start_period),
        ("StartInterval", check.start_interval),
        ("Retries", check.retries),
    ] {
        if let Some(v) = v {
            value[key] = json!(v);
        }
    }
    value
}

/// `--chown=user[:group]` through the step root's passwd and group files.
/// Docker: a user without a group uses the same number as the GID.
fn resolve_chown(rootfs: &Path, spec: &str) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = |file: &str, name: &str, what: &str| -> Result<u32, String> {
        if let Ok(n) = name.parse::<u32>() {
            return Ok(n);
        }
        let text = crate::runtime::user::read_in_root(rootfs, file).unwrap_or_default();
        text.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 3 && f[0] == name)
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| {
                format!("unable to convert uid/gid chown string to host mapping: can't find {what} for {what_name} {name}: no such {what_name}: {name}", what_name = if what == "uid" { "user" } else { "group" })
            })
    };
    let uid = lookup("/etc/passwd", user, "uid")?;
    let gid = match group {
        Some(g) => lookup("/etc/group", g, "gid")?,
        None => uid,
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expose_spells_out_ranges_and_protocols() {
        assert_eq!(expose_ports("80").unwrap(), ["80/tcp"]);
        assert_eq!(expose_ports("53/UDP").unwrap(), ["53/udp"]);
        assert_eq!(
            expose_ports("8000-8002").unwrap(),
            ["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert!(expose_ports("http").is_err());
        assert!(expose_ports("80/icmp").is_err());
    }

    #[test]
    fn heredoc_expansion_keeps_quotes() {
        let vars: Vars = [("A".to_string(), "x".to_string())].into_iter().collect();
        assert_eq!(
            expand_heredoc("say '$A' \"${A}\"\n", &vars, '\\'),
            "say 'x' \"x\"\n"
        );
    }

    #[test]
    fn chown_names_resolve_through_the_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "app:x:1000:1000::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(root.path().join("etc/group"), "staff:x:50:\n").unwrap();
        assert_eq!(resolve_chown(root.path(), "app").unwrap(), (1000, 1000));
        assert_eq!(resolve_chown(root.path(), "app:staff").unwrap(), (1000, 50));
        assert_eq!(resolve_chown(root.path(), "7:8").unwrap(), (7, 8));
        assert!(
            resolve_chown(root.path(), "nobody")
                .unwrap_err()
                .contains("can't find uid")
        );
    }
}
