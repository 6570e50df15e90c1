//! `build`: a Dockerfile's stages built in order up to the target: the
//! ARGs before the first FROM, each stage's base and its ONBUILD triggers,
//! every instruction handed to its step; then `--label`, the tags, and the
//! warning for build args nothing consumed.

use super::context::Context;
use super::error::BuildError;
use super::file_digests::FileDigests;
use super::options::{BuildObserver, BuildOptions, Built, PROXY_ARGS};
use super::shared_cache;
use super::state::{ImageState, StageRun};
use super::step::Builder;
use crate::dockerfile::{self, Instruction, Node, Vars};
use crate::platform::Platform;
use crate::registry::{PullOptions, PushOptions};
use crate::store::Store;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

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
    // A context from stdin or a URL is unpacked under the store, new each
    // build: nothing of it is worth remembering.
    let file_digests = match &options.context {
        Some(dir) if !in_store(store, dir) => FileDigests::load(store, dir),
        _ => FileDigests::default(),
    };
    // What a killed builder left: its steps' containers, then the overlays
    // and directories they ran on, and its half-written layer blobs (as a
    // pull removes a killed pull's). Best effort: leftovers never fail a build.
    crate::container::owner::sweep_orphans(store);
    store.sweep_scratch("");
    let _ = store.sweep_temp_files();
    // Shared caches first: their entries are hits like local ones.
    for from in &options.cache_from {
        let steps = shared_cache::import(store, from, PullOptions::default())?;
        observer.cache_imported(from, steps);
    }
    // A writer's lease: no collection sweeps the steps' blobs mid-build.
    let writers = store.lease()?;
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
        pins: None,
        cache_entries: BTreeMap::new(),
        file_digests,
        line: 0,
        warm: None,
    };
    builder.meta_args(&globals)?;
    builder.precheck(&stages[..=target])?;
    for stage in &stages[..=target] {
        let state = builder.stage(stage)?;
        builder.built.push(state);
    }
    let mut state = builder.built.pop().expect("at least one stage");
    if !options.labels.is_empty() {
        state.add_labels(&options.labels);
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
    builder.file_digests.save(store);
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
    if let Some(to) = &options.cache_to {
        let pushed =
            shared_cache::export(store, &builder.cache_entries, to, PushOptions::default())?;
        builder
            .observer
            .cache_exported(&pushed.reference.with_digest(pushed.digest.clone()));
    }
    Ok(Built {
        id,
        manifest_digest: manifest,
        tags: options.tags.clone(),
    })
}

impl Builder<'_> {
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

    fn begin(&mut self, node: &Node) {
        self.step += 1;
        self.line = node.line;
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
        let triggers = state.triggers();
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

    /// One instruction, handed to its step.
    fn instruction(
        &mut self,
        run: &mut StageRun,
        node: &Node,
        instruction: &Instruction,
    ) -> Result<(), BuildError> {
        match instruction {
            Instruction::From { .. } => Err(self.at(node, "FROM is not allowed here")),
            Instruction::Arg(list) => self.arg_step(run, node, list),
            Instruction::Env(pairs) => self.env_step(run, node, pairs),
            Instruction::Label(pairs) => self.label_step(run, node, pairs),
            Instruction::Maintainer(name) => self.maintainer_step(run, name),
            Instruction::User(user) => self.user_step(run, node, user),
            Instruction::StopSignal(signal) => self.stop_signal_step(run, node, signal),
            Instruction::Expose(text) => self.expose_step(run, node, text),
            Instruction::Volume(command) => self.volume_step(run, node, command),
            Instruction::Shell(shell) => self.shell_step(run, shell),
            Instruction::Cmd(command) => self.cmd_step(run, command),
            Instruction::Entrypoint(command) => self.entrypoint_step(run, command),
            Instruction::Healthcheck(check) => self.healthcheck_step(run, check),
            Instruction::Onbuild(trigger, _) => self.onbuild_step(run, trigger),
            Instruction::Workdir(dir) => self.workdir_step(run, node, dir),
            Instruction::Run {
                command,
                heredocs,
                network,
                mounts,
            } => self.run_step(run, node, command, heredocs, mounts, network.clone()),
            Instruction::Copy(args) => self.copy_step(run, node, args, false),
            Instruction::Add(args) => self.copy_step(run, node, args, true),
        }
    }

    /// ARG in a stage: its value (a build arg, its default, or the global
    /// ARG's) for the steps below it; not a change to the image.
    fn arg_step(
        &mut self,
        run: &mut StageRun,
        node: &Node,
        list: &[(String, Option<String>)],
    ) -> Result<(), BuildError> {
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
}

/// Whether `dir` lies in the store (a context the build unpacked itself).
fn in_store(store: &Store, dir: &std::path::Path) -> bool {
    match (
        std::fs::canonicalize(dir),
        std::fs::canonicalize(store.root()),
    ) {
        (Ok(dir), Ok(root)) => dir.starts_with(root),
        _ => true,
    }
}
