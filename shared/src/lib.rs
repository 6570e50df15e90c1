//! berth's library: everything the tools share. Each module owns one concept
//! and its typed error; the tools only parse flags, call in here, and print.

pub mod builder;
pub mod cli;
pub mod compression;
pub mod container;
pub mod diff_id;
pub mod digest;
pub mod dockerfile;
pub mod exit;
pub mod format;
pub mod fsck;
pub mod glob;
pub mod identity;
pub mod image;
pub mod layer;
pub mod lifecycle;
pub mod network;
pub mod output;
pub mod overlay;
pub mod parallel_gzip;
pub mod pipe;
pub mod platform;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod root;
pub mod run_flags;
pub mod runtime;
pub mod store;
pub mod testhook;
pub mod tools;
pub mod volume;

pub use digest::Digest;
pub use exit::{Exit, Failure};
pub use reference::Reference;
pub use store::Store;
