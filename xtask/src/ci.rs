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
    // To build the tools that run containers: libcontainer's seccomp links
    // the C libseccomp, found through pkg-config.
    ("pkg-config", "pkg-config"),
    ("/usr/include/seccomp.h", "libseccomp-dev"),
    // img-build's interop test runs a built image under podman.
    ("podman", "podman"),
];

/// What only `cargo xtask bench` needs: the tools we are compared with.
pub const BENCH_PREREQUISITES: &[(&str, &str)] = &[
    ("podman", "podman"),
    ("buildah", "buildah"),
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
    std::fs::read("/bin/busybox").is_ok_and(|elf| is_static_elf64(&elf))
}

/// A 64-bit little-endian ELF with no PT_INTERP program header: the kernel
/// runs it without a dynamic loader, so it works inside an empty rootfs.
fn is_static_elf64(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let word = |at: usize, len: usize| -> Option<u64> {
        let bytes = elf.get(at..at + len)?;
        Some(bytes.iter().rev().fold(0, |n, b| n << 8 | u64::from(*b)))
    };
    if elf.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (word(0x20, 8), word(0x36, 2), word(0x38, 2))
    else {
        return false;
    };
    (0..phnum).all(|n| {
        word((phoff + n * phentsize) as usize, 4).is_some_and(|kind| kind != PT_INTERP as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_binary_is_not_static_and_garbage_is_neither() {
        assert!(!is_static_elf64(&std::fs::read("/bin/sh").unwrap()));
        assert!(!is_static_elf64(b"\x7fELF\x02\x01 too short"));
        assert!(!is_static_elf64(b"#!/bin/sh\n"));
    }

    #[test]
    fn debians_busybox_static_is_static() {
        // CI installs busybox-static before the tests run.
        assert!(is_static_elf64(&std::fs::read("/bin/busybox").unwrap()));
    }
}
