//! The OCI runtime spec for one container, generated from the image config
//! and the run flags with Docker's defaults (capabilities, /proc masks, mounts),
//! and the bind, tmpfs and cgroup-limit values it is made from.

use super::user::ResolvedUser;
use super::{FlagError, RunError};
use crate::network::NetworkMode;
use oci_spec::runtime::{Capability, Spec};
use serde_json::{Value, json};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A `-v host:ctr[:ro]` bind mount (or an image's anonymous volume).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
}

/// A `--tmpfs /path[:opts]` mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmpfs {
    pub target: String,
    pub options: Vec<String>,
}

/// Cgroup limits from `--memory`, `--cpus`, `--pids-limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub pids: Option<i64>,
}

/// CFS period the `--cpus` quota is a share of (Docker's).
pub const CPU_PERIOD: i64 = 100_000;

/// A container process's umask, Docker's: its daemon fixes its own at 022
/// and runc passes that on. Written into the spec (and an exec's process)
/// so any runtime that reads the bundle gives the same, whatever its own.
pub const UMASK: u32 = 0o022;

impl Limits {
    /// `--cpus` as a CFS quota per [`CPU_PERIOD`].
    pub fn cpu_quota(nano_cpus: i64) -> i64 {
        nano_cpus * CPU_PERIOD / 1_000_000_000
    }
}

/// Writes the limits that are set into a spec's `linux.resources`; a PIDs
/// limit of 0 or less removes the limit (Docker's "unlimited").
fn set_limits(resources: &mut Value, limits: &Limits) {
    if let Some(memory) = limits.memory {
        resources["memory"] = json!({"limit": memory});
    }
    if let Some(nano) = limits.nano_cpus {
        resources["cpu"] = json!({"quota": Limits::cpu_quota(nano), "period": CPU_PERIOD});
    }
    match limits.pids {
        Some(pids) if pids > 0 => resources["pids"] = json!({"limit": pids}),
        Some(_) => {
            if let Some(map) = resources.as_object_mut() {
                map.remove("pids");
            }
        }
        None => {}
    }
}

/// Changes the limits that are set in the saved spec `path` (a container's
/// `config.json`), so its next start has them: written beside, then
/// renamed over it.
pub fn update_limits(path: &Path, limits: &Limits) -> io::Result<()> {
    let mut spec: Value = serde_json::from_slice(&fs::read(path)?)?;
    if !spec["linux"]["resources"].is_object() {
        spec["linux"]["resources"] = json!({});
    }
    set_limits(&mut spec["linux"]["resources"], limits);
    let temporary = path.with_extension("json.tmp");
    crate::container::write_private(&temporary, &serde_json::to_vec_pretty(&spec)?)?;
    fs::rename(&temporary, path)
}

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Normalises a capability name (`net_admin`, `CAP_NET_ADMIN`) to the
/// spec's `CAP_NET_ADMIN`; `ALL` stays as is.
pub fn capability_name(name: &str) -> Result<String, RunError> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if bare == "ALL" {
        return Ok("ALL".to_string());
    }
    Capability::from_str(bare)
        .map(|_| format!("CAP_{bare}"))
        .map_err(|_| FlagError::new("--cap-add/--cap-drop", name, "unknown capability").into())
}

fn all_caps() -> Vec<String> {
    // Every capability this oci-spec version knows that we hold ourselves:
    // inside a restricted parent (a CI container, say) asking for more than
    // our bounding set makes the container's capset fail.
    let ours = caps::read(None, caps::CapSet::Bounding).ok();
    ALL_CAP_NAMES
        .iter()
        .filter(|c| Capability::from_str(c).is_ok())
        .map(|c| format!("CAP_{c}"))
        .filter(|c| {
            ours.as_ref().is_none_or(|set| {
                c.parse::<caps::Capability>()
                    .is_ok_and(|cap| set.contains(&cap))
            })
        })
        .collect()
}

const ALL_CAP_NAMES: &[&str] = &[
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETGID",
    "SETFCAP",
    "SETPCAP",
    "SETUID",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "SYSLOG",
    "WAKE_ALARM",
];

/// Docker's rule: start from the default set (or all, privileged), add,
/// then drop; `ALL` on either side means every capability.
pub fn capabilities(privileged: bool, add: &[String], drop: &[String]) -> Vec<String> {
    let mut caps: Vec<String> = if privileged || add.iter().any(|c| c == "ALL") {
        all_caps()
    } else {
        DEFAULT_CAPS.iter().map(|c| format!("CAP_{c}")).collect()
    };
    for cap in add {
        if cap != "ALL" && !caps.contains(cap) {
            caps.push(cap.clone());
        }
    }
    if drop.iter().any(|c| c == "ALL") {
        caps.retain(|c| add.contains(c));
    } else {
        caps.retain(|c| !drop.contains(c));
    }
    caps
}

/// Makes the container's cgroup tree read-only, as runc and Docker do.
///
/// libcontainer mounts a cgroup v1 tree as a tmpfs with one bind mount per
/// controller of the container's own cgroup, and binds those read-write
/// whatever the spec asks: a process inside could raise its own
/// `memory.limit_in_bytes`, `pids.max` or CPU quota, or make sub-cgroups
/// that outlive it. So the tree libcontainer has just built is bound again
/// onto itself with `rro` (recursive read-only: every controller mount too).
/// The source is the rootfs path as the container's mount namespace sees it
/// before the pivot; `prepare_cgroup_mountpoint` has made sure that path is
/// plain directories, so no symlink in the image can point it elsewhere.
fn cgroup_read_only(rootfs: &Path) -> Value {
    json!({
        "destination": "/sys/fs/cgroup",
        "type": "bind",
        "source": rootfs.join("sys/fs/cgroup"),
        "options": ["rbind", "rro", "nosuid", "noexec", "nodev"],
    })
}

/// Makes `/sys/fs/cgroup` in the root filesystem plain directories (an
/// image may ship `/sys` as a symlink, or nothing at all), so that the
/// read-only rebind of the cgroup tree reads the container's own mounts.
pub fn prepare_cgroup_mountpoint(rootfs: &Path) -> Result<(), RunError> {
    let mut path = rootfs.to_path_buf();
    for part in ["sys", "fs", "cgroup"] {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(_) => {
                // A symlink or a file where the kernel's directory goes: it
                // is replaced in the container's upper dir, as a mount over
                // it would hide it anyway.
                std::fs::remove_file(&path).map_err(RunError::io(&path))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RunError::io(&path)(e)),
        }
        std::fs::create_dir(&path).map_err(RunError::io(&path))?;
    }
    Ok(())
}

/// The host's device nodes below `dir`, for a privileged container's
/// `/dev` (Docker gives it every one). The directories the runtime mounts
/// its own filesystems on, and the console and ptmx it makes itself, are
/// left out, as runc leaves them out.
fn host_devices(dir: &Path) -> Vec<Value> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut devices = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            if !matches!(
                name.as_str(),
                "pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev"
            ) {
                devices.extend(host_devices(&path));
            }
            continue;
        }
        let type_letter = if kind.is_char_device() {
            "c"
        } else if kind.is_block_device() {
            "b"
        } else {
            continue;
        };
        if matches!(name.as_str(), "console" | "ptmx") {
            continue;
        }
        let rdev = meta.rdev();
        devices.push(json!({
            "path": path,
            "type": type_letter,
            "major": libc::major(rdev),
            "minor": libc::minor(rdev),
            "fileMode": meta.mode() & 0o777,
            "uid": meta.uid(),
            "gid": meta.gid(),
        }));
    }
    devices
}

/// Everything the spec is made from.
pub struct SpecInput<'a> {
    pub id: &'a str,
    pub rootfs: &'a Path,
    pub container_dir: &'a Path,
    pub args: &'a [String],
    pub env: &'a [String],
    pub cwd: &'a str,
    pub user: &'a ResolvedUser,
    pub hostname: &'a str,
    pub tty: bool,
    pub read_only: bool,
    pub privileged: bool,
    pub no_new_privileges: bool,
    pub caps: &'a [String],
    pub network: NetworkMode,
    pub volumes: &'a [Volume],
    pub tmpfs: &'a [Tmpfs],
    pub limits: &'a Limits,
    /// `linux.seccomp`, when the container is filtered.
    pub seccomp: Option<Value>,
}

pub fn build(input: &SpecInput) -> Result<Spec, RunError> {
    let caps = input.caps;
    let (effective, permitted): (&[String], &[String]) = if input.user.uid == 0 {
        (caps, caps)
    } else {
        // Docker gives a non-root user the bounding set only.
        (&[], &[])
    };
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match input.network {
        NetworkMode::None => namespaces.push(json!({"type": "network"})),
        // The namespace netavark wired up, or the other container's it
        // joins, pinned in the container's directory.
        NetworkMode::Bridge | NetworkMode::Named(_) | NetworkMode::Container(_) => {
            namespaces.push(json!({
                "type": "network",
                "path": crate::network::attach::netns_path(input.container_dir),
            }))
        }
        NetworkMode::Host => {}
    }
    let sys_options = if input.privileged {
        vec!["nosuid", "noexec", "nodev"]
    } else {
        vec!["nosuid", "noexec", "nodev", "ro"]
    };
    let cgroup_options = if input.privileged {
        vec!["nosuid", "noexec", "nodev", "relatime"]
    } else {
        vec!["nosuid", "noexec", "nodev", "relatime", "ro"]
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_options}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": cgroup_options}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
    ];
    if !input.privileged {
        mounts.push(cgroup_read_only(input.rootfs));
    }
    for file in ["resolv.conf", "hostname", "hosts"] {
        mounts.push(json!({
            "destination": format!("/etc/{file}"),
            "type": "bind",
            "source": input.container_dir.join(file),
            "options": ["rbind", "rprivate"],
        }));
    }
    for volume in input.volumes {
        let mut options = vec!["rbind", "rprivate"];
        if volume.read_only {
            options.push("ro");
        }
        mounts.push(json!({"destination": volume.target, "type": "bind", "source": volume.source, "options": options}));
    }
    for tmpfs in input.tmpfs {
        let mut options: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
        options.extend(tmpfs.options.iter().cloned());
        mounts.push(json!({"destination": tmpfs.target, "type": "tmpfs", "source": "tmpfs", "options": options}));
    }
    let devices = if input.privileged {
        json!([{"allow": true, "access": "rwm"}])
    } else {
        let allow = |kind: &str, major: i64, minor: Option<i64>, access: &str| {
            let mut rule = json!({"allow": true, "type": kind, "major": major, "access": access});
            if let Some(minor) = minor {
                rule["minor"] = json!(minor);
            }
            rule
        };
        json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "access": "m"},
            {"allow": true, "type": "b", "access": "m"},
            allow("c", 1, Some(3), "rwm"),
            allow("c", 1, Some(5), "rwm"),
            allow("c", 1, Some(7), "rwm"),
            allow("c", 1, Some(8), "rwm"),
            allow("c", 1, Some(9), "rwm"),
            allow("c", 5, Some(0), "rwm"),
            allow("c", 5, Some(1), "rwm"),
            allow("c", 5, Some(2), "rwm"),
            allow("c", 136, None, "rwm"),
            allow("c", 10, Some(200), "rwm"),
        ])
    };
    let mut resources = json!({"devices": devices});
    set_limits(&mut resources, input.limits);
    let (masked, readonly): (&[&str], &[&str]) = if input.privileged {
        (&[], &[])
    } else {
        (MASKED_PATHS, READONLY_PATHS)
    };
    let devices: Vec<Value> = if input.privileged {
        host_devices(Path::new("/dev"))
    } else {
        Vec::new()
    };
    let mut spec: Value = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": input.tty,
            "user": {"uid": input.user.uid, "gid": input.user.gid, "additionalGids": input.user.additional_gids, "umask": UMASK},
            "args": input.args,
            "env": input.env,
            "cwd": input.cwd,
            "capabilities": {"bounding": caps, "effective": effective, "permitted": permitted},
        },
        "root": {"path": input.rootfs, "readonly": input.read_only},
        "hostname": input.hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            // Explicit: libcontainer's own default is an odd `:youki:<id>`.
            "cgroupsPath": format!("/berth/{}", input.id),
            "resources": resources,
            "devices": devices,
            "maskedPaths": masked,
            "readonlyPaths": readonly,
        },
    });
    // Only when true: libcontainer loads the filter while it still holds
    // CAP_SYS_ADMIN only if the field is absent, and any value (false too)
    // moves the load after the capabilities are dropped, where it fails.
    if input.no_new_privileges {
        spec["process"]["noNewPrivileges"] = json!(true);
    }
    if let Some(filter) = &input.seccomp {
        spec["linux"]["seccomp"] = filter.clone();
    }
    serde_json::from_value(spec).map_err(|e| RunError::Spec(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_rules_follow_docker() {
        let add = vec![capability_name("net_admin").unwrap()];
        let drop = vec![capability_name("CAP_CHOWN").unwrap()];
        let caps = capabilities(false, &add, &drop);
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(capabilities(false, &[], &[]).len(), DEFAULT_CAPS.len());
        let only = capabilities(false, &["CAP_KILL".to_string()], &["ALL".to_string()]);
        assert_eq!(only, ["CAP_KILL"]);
        assert!(capability_name("CAP_NOPE").is_err());
        assert!(capabilities(true, &[], &[]).contains(&"CAP_SYS_ADMIN".to_string()));
    }
}
