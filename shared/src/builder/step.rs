//! `Builder`, one build's working state, and what every step goes through:
//! the cache lookup, the commit of the step's image, the writers' lock let
//! go while a RUN's process runs, and a root mounted over the parent's
//! layers whose changes become the step's layer. The steps themselves are
//! `impl Builder` blocks in `step_*.rs`.

use super::cache::{self, CacheKey};
use super::context::Context;
use super::error::BuildError;
use super::file_digests::{self, FileDigests};
use super::layer;
use super::options::{BuildObserver, BuildOptions};
use super::rootfs::StepRoot;
use super::state::{ImageState, StageRun};
use crate::digest::Digest;
use crate::dockerfile::{self, Node, Vars, expand_word};
use crate::platform::Platform;
use crate::store::{ContentLease, Image, Lease, Store, StoreError, descriptor_digest};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A build under way: what was asked, the stages built so far, the step
/// count, and the locks and pins that keep its content alive.
pub(super) struct Builder<'a> {
    pub(super) store: &'a Store,
    pub(super) options: &'a BuildOptions,
    pub(super) observer: &'a mut dyn BuildObserver,
    pub(super) dockerfile: dockerfile::Dockerfile,
    pub(super) context: Context,
    pub(super) platform: Platform,
    pub(super) meta: Vars,
    pub(super) build_args: HashMap<String, Option<String>>,
    pub(super) used_args: BTreeSet<String>,
    pub(super) stage_names: Vec<Option<String>>,
    pub(super) built: Vec<ImageState>,
    pub(super) step: usize,
    pub(super) total: usize,
    /// The writers' lock, held except while a RUN step's process runs (so
    /// img-rm and img-prune wait for a step's bookkeeping, never for the
    /// whole build).
    pub(super) writers: Option<Lease>,
    /// Every manifest this build has made or started from: what a
    /// collection must keep while the writers' lock is let go.
    pub(super) pinned: RefCell<BTreeSet<Digest>>,
    /// Taken at the first RUN step: a build the cache answers runs none.
    pub(super) pins: Option<ContentLease>,
    /// Each step's cache key and the image it came to, hit or not: what
    /// `--cache-to` shares.
    pub(super) cache_entries: BTreeMap<String, Digest>,
    /// What the context's files hashed to last time, and this time.
    pub(super) file_digests: FileDigests,
    /// The line of the instruction being built.
    pub(super) line: usize,
    /// Held from a cache miss with a RUN step below it until that step
    /// runs: its container's start then waits out no grace period (see
    /// `runtime::keep_warm`).
    pub(super) warm: Option<crate::runtime::Warm>,
}

impl Builder<'_> {
    /// What sources hash through: the context's remembered digests, or none
    /// for a stage's or an image's root (`from`), whose inodes are new.
    pub(super) fn file_digests_for(&self, from: Option<&str>) -> &FileDigests {
        match from {
            None => &self.file_digests,
            Some(_) => &file_digests::NONE,
        }
    }

    /// An error at a Dockerfile line: `file:line:col: message`.
    pub(super) fn at(&self, node: &Node, message: impl Into<String>) -> BuildError {
        BuildError::At(self.dockerfile.error(node.line, node.column, message))
    }

    /// A word with `$VAR`s expanded; a bad one is an error at the line.
    pub(super) fn expand(
        &self,
        node: &Node,
        word: &str,
        vars: &Vars,
    ) -> Result<String, BuildError> {
        expand_word(word, vars, self.dockerfile.escape).map_err(|e| self.at(node, e.to_string()))
    }

    /// The time the history records: SOURCE_DATE_EPOCH, or now.
    pub(super) fn now(&self) -> String {
        match self.options.source_date_epoch {
            Some(epoch) => crate::format::human::format_rfc3339(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch),
            )
            .replace(".000000000Z", "Z"),
            None => crate::format::human::format_rfc3339(std::time::SystemTime::now()),
        }
    }

    /// The state of an image in the store, pinned for the rest of the build.
    pub(super) fn state_of(&self, image: &Image) -> Result<ImageState, BuildError> {
        self.pinned
            .borrow_mut()
            .insert(image.manifest_digest.clone());
        Ok(ImageState::load(self.store, image)?)
    }

    /// Stores the state's config and a manifest over it; sets its ID and
    /// pins the manifest.
    pub(super) fn commit(&self, state: &mut ImageState) -> Result<(), BuildError> {
        let manifest = state.write(self.store)?;
        self.pinned.borrow_mut().insert(manifest);
        Ok(())
    }

    /// Runs `job` (a RUN step's process) without the writers' lock, the
    /// content this build needs pinned instead.
    pub(super) fn unlocked<T>(
        &mut self,
        job: impl FnOnce(&mut Self) -> T,
    ) -> Result<T, BuildError> {
        let writers = self.writers.take().expect("held between steps");
        let manifests: Vec<Digest> = self.pinned.borrow().iter().cloned().collect();
        match &mut self.pins {
            Some(pins) => pins.pin(self.store, &writers, manifests)?,
            None => self.pins = Some(self.store.content_lease(&writers, manifests)?),
        }
        drop(writers);
        let done = job(self);
        self.writers = Some(self.store.lease()?);
        Ok(done)
    }

    /// The state a cache entry names, if all its blobs are still here.
    pub(super) fn cached_state(&self, manifest: &Digest) -> Option<ImageState> {
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
    pub(super) fn cached_step(
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
            self.cache_entries.insert(key.hex().to_string(), manifest);
            run.state = state;
        } else {
            // Every step from here on runs: a RUN among them is sure to start
            // a container, whose wait is best begun now.
            if self.warm.is_none() && self.runs_from(self.line) {
                self.warm = Some(crate::runtime::keep_warm());
            }
            let mut next = run.state.clone();
            apply(self, &mut next)?;
            self.commit(&mut next)?;
            let manifest = next.manifest.clone().expect("committed");
            cache::record(self.store, &key, &manifest)?;
            self.cache_entries.insert(key.hex().to_string(), manifest);
            run.state = next;
        }
        self.observer
            .step_done(run.state.id.as_ref().expect("committed"));
        Ok(())
    }

    /// Whether the Dockerfile has a RUN instruction at `line` or below.
    pub(super) fn runs_from(&self, line: usize) -> bool {
        self.dockerfile
            .nodes
            .iter()
            .any(|n| n.line >= line && n.keyword.eq_ignore_ascii_case("RUN"))
    }

    /// A config-only step: `change` edits the config; history says
    /// `created_by` with `empty_layer`.
    pub(super) fn config_step(
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
    pub(super) fn layer_dirs(&self, state: &ImageState) -> Result<Vec<PathBuf>, BuildError> {
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
    pub(super) fn fs_step(
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
            state.push_layer(&blob, &diff_ids);
            state.push_history(&now, created_by, false);
            Ok(())
        })
    }
}
