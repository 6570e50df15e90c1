//! The test harness: locate the built tools, start a real `docker-registry`
//! on a free loopback port, and build busybox fixture images to push to it.
//! Everything it starts is stopped when its handle drops, even on panic.

pub mod fixture;
pub mod pty;
pub mod registry;
pub mod tools;

pub use fixture::Fixture;
pub use registry::Registry;
pub use tools::{Run, tool};
