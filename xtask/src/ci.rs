//! `cargo xtask ci`: what `.ci/run` calls on a fresh machine. Installs what
//! the tests need, then fmt, clippy and the whole test suite.

use crate::step;
use std::process::Command;

/// (command the tests run, Debian package that provides it)
pub const PREREQUISITES: &[(&str, &str)] = &[
    ("docker-registry", "docker-registry"),
    ("skopeo", "skopeo"),
    ("umoci", "umoci"),
    ("busybox", "busybox-static"),
    ("hyperfine", "hyperfine"),
    ("runc", "runc"),
    ("htpasswd", "apache2-utils"),
    ("openssl", "openssl"),
];

/// What only `cargo xtask bench` needs: the tools we are compared with.
pub const BENCH_PREREQUISITES: &[(&str, &str)] = &[
    ("podman", "podman"),
    ("curl", "curl"),
    // GNU time, for peak memory (the shell's `time` keyword has no %M).
    ("/usr/bin/time", "time"),
];

pub fn run() -> Result<(), String> {
    install_prerequisites(PREREQUISITES)?;
    step("cargo", &["fmt", "--all", "--check"])?;
    step(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    crate::build_tools(false)?;
    step("cargo", &["test", "--workspace"])
}

/// Installs with apt-get the packages of `wanted` whose command is missing.
pub fn install_prerequisites(wanted: &[(&str, &str)]) -> Result<(), String> {
    let mut missing: Vec<&str> = wanted
        .iter()
        .filter(|(command, _)| !present(command))
        .map(|(_, package)| *package)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    let quiet_apt = |args: &[&str]| {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("apt-get: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("apt-get {} failed: {status}", args.join(" ")))
        }
    };
    eprintln!("installing: {}", missing.join(" "));
    quiet_apt(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    quiet_apt(&args)
}

fn present(command: &str) -> bool {
    match command {
        "busybox" => static_busybox_at_bin(),
        absolute if absolute.starts_with('/') => std::path::Path::new(absolute).is_file(),
        _ => on_path(command),
    }
}

fn on_path(command: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(command).is_file()))
}

/// The fixtures need a statically linked busybox at /bin/busybox: a dynamic
/// one on PATH would not run inside a container.
fn static_busybox_at_bin() -> bool {
    std::fs::read("/bin/busybox").is_ok_and(|bytes| !contains(&bytes, b"ld-linux"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
