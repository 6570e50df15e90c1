//! berth's library: everything the tools share. Each module owns one concept
//! and its typed error; the tools only parse flags, call in here, and print.

pub mod cli;
pub mod compression;
pub mod digest;
pub mod dockerfile;
pub mod exit;
pub mod format;
pub mod glob;
pub mod image;
pub mod output;
pub mod pipe;
pub mod platform;
pub mod reference;
pub mod root;
pub mod store;

pub use digest::Digest;
pub use exit::{Exit, Failure};
pub use reference::Reference;
pub use store::Store;
