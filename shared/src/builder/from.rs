//! Where a state comes from: `scratch`, a stage built earlier, or an image
//! in the store (pulled when missing, or always with `--pull`); and
//! `source_root`, the one set-up of `--from` that COPY and RUN's bind
//! mounts share.

use super::context::Context;
use super::error::BuildError;
use super::rootfs::ReadRoot;
use super::state::ImageState;
use super::step::Builder;
use crate::dockerfile::Node;
use crate::platform::Platform;
use crate::registry::{self, PullNeed, PullOptions, PullPolicy};
use crate::store::{Image, StoreError};

/// Where COPY's or a bind mount's sources are read from.
pub(super) struct SourceRoot {
    /// The build context, or the root of the stage or image `--from` named.
    pub(super) context: Context,
    /// What the cache key calls that stage or image (its ID); `None` for
    /// the context.
    pub(super) from_id: Option<String>,
    /// The stage's or image's root, unmounted when this is dropped.
    _root: Option<ReadRoot>,
}

impl Builder<'_> {
    /// The state a FROM starts from: scratch, an earlier stage, or an image
    /// (pulled if the store lacks it, or always with --pull).
    pub(super) fn base(
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

    /// An image by name, pulled first if the store lacks it (or always,
    /// with `--pull`); one neither here nor pullable is an error at `node`.
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

    /// The state `--from` names: a stage (by name or index) built earlier,
    /// or an image.
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

    /// The sources' root for `--from` (a stage or image, mounted read-only
    /// for as long as the result lives), or the build context without it.
    pub(super) fn source_root(
        &mut self,
        node: &Node,
        from: Option<&str>,
    ) -> Result<SourceRoot, BuildError> {
        let Some(from) = from else {
            return Ok(SourceRoot {
                context: self.context.clone(),
                from_id: None,
                _root: None,
            });
        };
        let state = self.stage_or_image(node, from)?;
        let from_id = state.parent_key();
        let lowers = self.layer_dirs(&state)?;
        let root = ReadRoot::mount(self.store, &lowers)?;
        Ok(SourceRoot {
            context: Context::rootfs(root.path()),
            from_id: Some(from_id),
            _root: Some(root),
        })
    }
}
