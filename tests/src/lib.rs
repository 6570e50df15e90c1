//! The test harness: locate the built tools, start a real `docker-registry`
//! on a free loopback port, and build busybox fixture images to push to it.
//! Everything it starts is stopped when its handle drops, even on panic.

pub mod dockerd;
pub mod faulty;
pub mod fixture;
pub mod hostile;
pub mod net;
pub mod parity;
pub mod pause;
pub mod pty;
pub mod registry;
pub mod remote;
pub mod tools;

pub use fixture::Fixture;
pub use net::{network_leftovers, network_traces};
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

/// `len` pseudo-random bytes that gzip finds nothing to squeeze in
/// (xorshift64, fast), continuing from `seed`, which moves on: layers made
/// one after another from one seed all differ.
pub fn incompressible(len: usize, seed: &mut u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    for chunk in data.chunks_mut(8) {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        chunk.copy_from_slice(&seed.to_le_bytes()[..chunk.len()]);
    }
    data
}

/// Every file under the store (but its lock files) with its size, and the
/// index itself: equal listings mean nothing was added, removed or retagged.
pub fn store_listing(root: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    fn walk(
        dir: &std::path::Path,
        root: &std::path::Path,
        out: &mut std::collections::BTreeMap<String, String>,
    ) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            if name.starts_with("locks") {
                continue;
            }
            if path.is_dir() {
                walk(&path, root, out);
            } else if name == "images/index.json" {
                out.insert(name, std::fs::read_to_string(&path).unwrap());
            } else {
                out.insert(name, std::fs::metadata(&path).unwrap().len().to_string());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(root, root, &mut out);
    out
}
