//! What each task needs installed, in one table, and the apt-get installer.
//! Every task that builds the tools installs the build's needs first, so no
//! task compiles for minutes and then fails to link on a fresh machine.

use std::process::Command;

/// A task of `cargo xtask`, as far as what it needs installed goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Ci,
    Demo,
    Bench,
    /// `install` and `deb`: a release build, nothing more.
    Install,
}

/// Why a prerequisite is needed. Each task needs a growing part of them:
/// the demo builds and shows the tools, CI also tests them, the bench also
/// compares them with other tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Building the tools: libcontainer's seccomp links the C libseccomp,
    /// found through pkg-config.
    Build,
    /// The demo's local registry and its image built from /bin/busybox.
    Demo,
    /// Only the tests.
    Tests,
    /// Only the bench: the tools we are compared with.
    Bench,
}

impl Task {
    fn needs(self, need: Need) -> bool {
        match self {
            Task::Install => need == Need::Build,
            Task::Demo => matches!(need, Need::Build | Need::Demo),
            Task::Ci => need != Need::Bench,
            Task::Bench => true,
        }
    }
}

/// (command or file that shows it is there, Debian package, why): the one
/// list every task installs from.
const PREREQUISITES: &[(&str, &str, Need)] = &[
    ("pkg-config", "pkg-config", Need::Build),
    ("/usr/include/seccomp.h", "libseccomp-dev", Need::Build),
    ("docker-registry", "docker-registry", Need::Demo),
    // The fixtures are pushed into the registry with skopeo.
    ("skopeo", "skopeo", Need::Demo),
    ("busybox", "busybox-static", Need::Demo),
    ("umoci", "umoci", Need::Tests),
    ("hyperfine", "hyperfine", Need::Tests),
    ("runc", "runc", Need::Tests),
    ("htpasswd", "apache2-utils", Need::Tests),
    ("openssl", "openssl", Need::Tests),
    // img-build's interop test runs a built image under podman.
    ("podman", "podman", Need::Tests),
    // Bridge networking, every container's default (the demo's too):
    // podman's network stack, its DNS server, the firewall it drives, and
    // iproute2's `ip`, which plugs containers into the standing default
    // bridge; the network tests look with `ip` and `nsenter`.
    ("/usr/lib/podman/netavark", "netavark", Need::Demo),
    ("/usr/lib/podman/aardvark-dns", "aardvark-dns", Need::Demo),
    ("iptables", "iptables", Need::Demo),
    ("ip", "iproute2", Need::Demo),
    ("nsenter", "util-linux", Need::Tests),
    // A pull that fills the disk is tested on a small loop-mounted ext4.
    ("mkfs.ext4", "e2fsprogs", Need::Tests),
    ("mount", "mount", Need::Tests),
    // img-build clones git contexts with the git CLI; the test serves a
    // repository and tarballs over a python http.server on 127.0.0.1.
    ("git", "git", Need::Tests),
    ("python3", "python3", Need::Tests),
    // The parity suite's oracle: Debian's Docker engine and the client of
    // the same release. Looked for by path: a newer `docker` client on
    // PATH (such as /usr/local/bin/docker) is not the engine.
    ("/usr/sbin/dockerd", "docker.io", Need::Tests),
    ("/usr/bin/docker", "docker.io", Need::Tests),
    ("buildah", "buildah", Need::Bench),
    // Debian's buildah runs RUN steps on a CNI bridge (as img-build runs
    // them on its default bridge): without the plugins every build fails.
    (
        "/usr/lib/cni/bridge",
        "containernetworking-plugins",
        Need::Bench,
    ),
    ("curl", "curl", Need::Bench),
    // The start path's limit: crun runs the same bundle as runc.
    ("crun", "crun", Need::Bench),
    // The unpack's limit: `tar -I pigz -x` of the same layer.
    ("pigz", "pigz", Need::Bench),
    ("openssl", "openssl", Need::Bench),
    // GNU time, for peak memory (the shell's `time` keyword has no %M).
    ("/usr/bin/time", "time", Need::Bench),
];

/// (command, package) for everything `task` needs.
pub fn of(task: Task) -> Vec<(&'static str, &'static str)> {
    PREREQUISITES
        .iter()
        .filter(|(_, _, need)| task.needs(*need))
        .map(|(command, package, _)| (*command, *package))
        .collect()
}

/// Installs what `task` needs and is missing.
pub fn install(task: Task) -> Result<(), String> {
    install_packages(&of(task))
}

/// Installs with apt-get the packages of `wanted` whose command is missing.
pub fn install_packages(wanted: &[(&str, &str)]) -> Result<(), String> {
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

    fn packages(task: Task) -> Vec<&'static str> {
        of(task).into_iter().map(|(_, package)| package).collect()
    }

    #[test]
    fn the_demo_installs_what_it_builds_and_runs_with() {
        let demo = packages(Task::Demo);
        for package in [
            "libseccomp-dev",
            "pkg-config",
            "docker-registry",
            "busybox-static",
            "skopeo",
        ] {
            assert!(demo.contains(&package), "{package} missing from {demo:?}");
        }
    }

    #[test]
    fn each_task_needs_a_growing_part_of_one_list() {
        let (demo, ci, bench) = (
            packages(Task::Demo),
            packages(Task::Ci),
            packages(Task::Bench),
        );
        assert!(demo.iter().all(|p| ci.contains(p)), "{demo:?} ⊄ {ci:?}");
        assert!(ci.iter().all(|p| bench.contains(p)), "{ci:?} ⊄ {bench:?}");
        assert!(demo.len() < ci.len() && ci.len() < bench.len());
        // Building comes first in every task's list, so it is never skipped.
        for task in [Task::Install, Task::Demo, Task::Ci, Task::Bench] {
            assert_eq!(packages(task)[..2], ["pkg-config", "libseccomp-dev"]);
        }
    }

    #[test]
    fn the_parity_oracle_is_looked_for_by_path_not_on_path() {
        let ci = of(Task::Ci);
        let docker: Vec<&str> = ci
            .iter()
            .filter(|(_, package)| *package == "docker.io")
            .map(|(command, _)| *command)
            .collect();
        // A Docker 28 client at /usr/local/bin/docker must not count as
        // the engine being installed.
        assert_eq!(docker, ["/usr/sbin/dockerd", "/usr/bin/docker"]);
        assert!(!packages(Task::Demo).contains(&"docker.io"));
    }

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
