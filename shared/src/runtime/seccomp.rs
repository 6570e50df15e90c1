//! Seccomp for containers: the default filter, `seccomp=unconfined`, and
//! profile files, turned into the OCI spec's `linux.seccomp`.
//!
//! The default filter is built from Docker's documented list of the system
//! calls its profile blocks and the capability that re-allows each one, as
//! a deny list with EPERM (Docker's profile is an allow list; the calls a
//! container can make differ only for system calls neither list names).

use super::{FlagError, RunError};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// What `--security-opt seccomp=…` asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Seccomp {
    #[default]
    Default,
    Unconfined,
    Profile(PathBuf),
}

impl Seccomp {
    /// Parses the value after `seccomp=` (or Docker's older `seccomp:`).
    pub fn parse(value: &str) -> Seccomp {
        match value {
            "unconfined" => Seccomp::Unconfined,
            "builtin" | "default" => Seccomp::Default,
            path => Seccomp::Profile(PathBuf::from(path)),
        }
    }
}

/// Calls blocked unless the container holds the capability (Docker's
/// documented gating).
const GATED: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "mount",
            "umount",
            "umount2",
            "unshare",
            "setns",
            "pivot_root",
            "quotactl",
            "lookup_dcookie",
            "bpf",
            "perf_event_open",
            "fanotify_init",
            "open_tree",
            "move_mount",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    (
        "CAP_SYS_MODULE",
        &["init_module", "finit_module", "delete_module"],
    ),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_adjtime"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_NICE",
        &["mbind", "set_mempolicy", "get_mempolicy", "move_pages"],
    ),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_PTRACE",
        &["process_vm_readv", "process_vm_writev", "kcmp"],
    ),
    ("CAP_SYSLOG", &["syslog"]),
];

/// Calls no container may make: kernel keyrings are not namespaced, the
/// rest are obsolete or reach the whole machine.
const ALWAYS_BLOCKED: &[&str] = &[
    "add_key",
    "request_key",
    "keyctl",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "kexec_load",
    "kexec_file_load",
    "nfsservctl",
    "swapon",
    "swapoff",
    "sysfs",
    "_sysctl",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
];

/// clone(2) flags that make namespaces: refused without CAP_SYS_ADMIN.
const NAMESPACE_FLAGS: &[u64] = &[
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// The spec's `linux.seccomp`, or `None` for no filter (unconfined, or
/// `--privileged`, which Docker runs without seccomp).
pub fn filter(
    mode: &Seccomp,
    caps: &[String],
    privileged: bool,
) -> Result<Option<Value>, RunError> {
    if privileged {
        return Ok(None);
    }
    // Without libseccomp linked in, libcontainer would ignore a filter:
    // say so for an explicit profile rather than pretend.
    if !cfg!(feature = "seccomp") {
        return match mode {
            Seccomp::Profile(path) => Err(bad_profile(
                path,
                "this build of berth has no seccomp support (feature `seccomp`)",
            )),
            _ => Ok(None),
        };
    }
    match mode {
        Seccomp::Unconfined => Ok(None),
        Seccomp::Default => Ok(Some(default_filter(caps))),
        Seccomp::Profile(path) => profile_file(path, caps).map(Some),
    }
}

fn has(caps: &[String], cap: &str) -> bool {
    caps.iter().any(|c| c == cap)
}

fn default_filter(caps: &[String]) -> Value {
    let mut blocked: Vec<&str> = ALWAYS_BLOCKED.to_vec();
    for (cap, calls) in GATED {
        if !has(caps, cap) {
            blocked.extend_from_slice(calls);
        }
    }
    let mut syscalls = vec![json!({
        "names": blocked,
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": EPERM,
    })];
    if !has(caps, "CAP_SYS_ADMIN") {
        for flag in NAMESPACE_FLAGS {
            syscalls.push(json!({
                "names": ["clone"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": EPERM,
                "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
            }));
        }
        // clone3 passes its flags in memory a filter cannot read: ENOSYS
        // makes the C library fall back to clone, which is checked above.
        syscalls.push(json!({
            "names": ["clone3"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": ENOSYS,
        }));
    }
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": native_architectures(),
        "syscalls": syscalls,
    })
}

/// The host's architecture and the ones its kernel also runs, so that a
/// 32-bit binary cannot slip past the filter.
fn native_architectures() -> Vec<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "aarch64" => vec!["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "x86" => vec!["SCMP_ARCH_X86"],
        "s390x" => vec!["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
        "riscv64" => vec!["SCMP_ARCH_RISCV64"],
        _ => Vec::new(),
    }
}

fn bad_profile(path: &Path, why: impl std::fmt::Display) -> RunError {
    let value = format!("seccomp={}", path.display());
    FlagError::new("--security-opt", &value, why.to_string()).into()
}

/// Reads a profile in Docker's format (the OCI one plus `archMap` and
/// per-rule `includes`/`excludes` of capabilities and architectures) and
/// reduces it to what the OCI spec carries for this container.
fn profile_file(path: &Path, caps: &[String]) -> Result<Value, RunError> {
    let text = std::fs::read_to_string(path).map_err(|e| bad_profile(path, e))?;
    let mut profile: Value = serde_json::from_str(&text).map_err(|e| bad_profile(path, e))?;
    let Some(object) = profile.as_object_mut() else {
        return Err(bad_profile(path, "not a JSON object"));
    };
    if !object.get("defaultAction").is_some_and(Value::is_string) {
        return Err(bad_profile(path, "no defaultAction"));
    }
    if let Some(arch_map) = object.remove("archMap") {
        let mut arches = Vec::new();
        for entry in arch_map.as_array().into_iter().flatten() {
            if let Some(arch) = entry.get("architecture") {
                arches.push(arch.clone());
            }
            if let Some(subs) = entry.get("subArchitectures").and_then(Value::as_array) {
                arches.extend(subs.iter().cloned());
            }
        }
        object
            .entry("architectures")
            .or_insert(Value::Array(arches));
    }
    let host_arch = crate::platform::Platform::host().architecture;
    let applies = |rule: &Value| {
        let listed = |side: &str, key: &str| -> Vec<String> {
            rule.get(side)
                .and_then(|s| s.get(key))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let needs = listed("includes", "caps");
        let needs_arch = listed("includes", "arches");
        let unless = listed("excludes", "caps");
        let unless_arch = listed("excludes", "arches");
        needs.iter().all(|c| has(caps, c))
            && (needs_arch.is_empty() || needs_arch.contains(&host_arch))
            && !unless.iter().any(|c| has(caps, c))
            && !unless_arch.contains(&host_arch)
    };
    if let Some(rules) = object.get_mut("syscalls").and_then(Value::as_array_mut) {
        rules.retain(|rule| applies(rule));
        for rule in rules.iter_mut() {
            if let Some(rule) = rule.as_object_mut() {
                rule.remove("includes");
                rule.remove("excludes");
                rule.remove("comment");
                // Docker's older single-name form.
                if let Some(name) = rule.remove("name") {
                    rule.entry("names").or_insert(json!([name]));
                }
            }
        }
    }
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(filter: &Value) -> Vec<String> {
        filter["syscalls"][0]["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn the_default_filter_blocks_mount_and_keyrings_unless_a_capability_allows() {
        let default_caps = vec!["CAP_CHOWN".to_string()];
        let filter = default_filter(&default_caps);
        let blocked = names(&filter);
        for call in ["mount", "keyctl", "reboot", "unshare", "setns"] {
            assert!(blocked.contains(&call.to_string()), "{call}");
        }
        let admin = default_filter(&["CAP_SYS_ADMIN".to_string()]);
        assert!(!names(&admin).contains(&"mount".to_string()));
        assert!(names(&admin).contains(&"keyctl".to_string()));
        assert_eq!(admin["syscalls"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn privileged_and_unconfined_have_no_filter() {
        assert_eq!(filter(&Seccomp::Default, &[], true).unwrap(), None);
        assert_eq!(
            filter(&Seccomp::Default, &[], false).unwrap().is_some(),
            cfg!(feature = "seccomp")
        );
        assert_eq!(filter(&Seccomp::Unconfined, &[], false).unwrap(), None);
        assert_eq!(Seccomp::parse("unconfined"), Seccomp::Unconfined);
        assert_eq!(
            Seccomp::parse("/p.json"),
            Seccomp::Profile(PathBuf::from("/p.json"))
        );
    }

    #[test]
    fn a_docker_profile_keeps_only_the_rules_that_apply() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(
            &path,
            r#"{"defaultAction":"SCMP_ACT_ERRNO",
                "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}],
                "syscalls":[
                  {"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
                  {"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
                  {"names":["chown"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SYS_ADMIN"]}}
                ]}"#,
        )
        .unwrap();
        let profile = profile_file(&path, &["CAP_CHOWN".to_string()]).unwrap();
        assert_eq!(
            profile["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
        );
        let kept: Vec<&Value> = profile["syscalls"].as_array().unwrap().iter().collect();
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[1]["names"], json!(["chown"]));
        assert!(kept[1].get("excludes").is_none());
        let broken = dir.path().join("broken.json");
        std::fs::write(&broken, "{").unwrap();
        let e = profile_file(&broken, &[]).unwrap_err().to_string();
        assert!(e.contains("broken.json"), "{e}");
    }
}
