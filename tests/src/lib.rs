//! The test harness: locate the built tools, start a real `docker-registry`
//! on a free loopback port, and build busybox fixture images to push to it.
//! Everything it starts is stopped when its handle drops, even on panic.

pub mod fixture;
pub mod hostile;
pub mod pause;
pub mod pty;
pub mod registry;
pub mod tools;

pub use fixture::Fixture;
pub use registry::Registry;
pub use tools::{Run, tool};

/// Polls `condition` every 20 ms until it holds or `seconds` pass: tests
/// wait on a condition, never for a fixed time.
pub fn wait_for(seconds: u64, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}
