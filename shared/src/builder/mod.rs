//! `img-build`: a Dockerfile and its context turned into an image in the
//! store, one cached step at a time (config changes, COPY/ADD, RUN).
//!
//! Top down, each file importing only from those below it (`layering.rs`
//! checks it):
//! - `stage`: `build`, the stages in order, each instruction handed to its
//!   step;
//! - `step_config`, `step_copy`, `step_run`: the steps, `impl Builder`
//!   blocks, one kind each;
//! - `from`: the states FROM and `--from` name, and `source_root`;
//! - `step`: `Builder` and what every step goes through (cache, commit,
//!   the step's root, the writers' lock);
//! - `remote`: a context at a git or http(s) URL;
//! - `stdin`, `shared_cache`, `import`: `img-build -`'s input, the cache
//!   shared through a registry, img-import's image from a rootfs tarball;
//! - `commit`: ctr-commit's image over a container's upper dir, and the
//!   one way a made image is named;
//! - `changes`: `--change` lines applied to a config (ctr-commit,
//!   img-import) with the config steps' helpers;
//! - `state`, `options`, `error`: the image being built, the request and
//!   the errors;
//! - the mechanics, which know nothing of a build: `cache`, `context`,
//!   `copy`, `archive`, `fetch`, `layer`, `rootfs`, and `file_digests`
//!   (what the context's files hashed to in the last build).

pub mod archive;
pub mod cache;
pub mod changes;
pub mod commit;
pub mod context;
pub mod copy;
mod error;
pub mod fetch;
mod file_digests;
mod from;
pub mod import;
pub mod layer;
#[cfg(test)]
mod layering;
mod options;
pub mod remote;
pub mod rootfs;
pub mod shared_cache;
mod stage;
mod state;
pub mod stdin;
mod step;
mod step_config;
mod step_copy;
mod step_run;

pub use error::BuildError;
pub use options::{BuildObserver, BuildOptions, Built};
pub use stage::build;
