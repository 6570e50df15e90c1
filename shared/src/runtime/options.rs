//! `ctr-run`'s flags checked and typed at the edge, as ripgrep turns its
//! low-level arguments into high-level ones: clap parses `--memory`,
//! `--cpus`, `--network` and `--platform` once into the types here and
//! elsewhere, and [`check`] turns the rest into the mounts, limits and
//! security settings a container is made with, before anything is touched.

use super::mounts::{MountFlag, parse_mount, parse_volume};
use super::spec::{self, Limits, Tmpfs};
use super::{FlagError, RunError, seccomp, tty};
use crate::container;
use crate::container::health::HealthConfig;
use crate::container::restart::RestartPolicy;
use crate::network::NetworkMode;
use crate::network::ports::{self, Published};
use crate::platform::Platform;
use std::fs;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Everything `ctr-run` was asked: the typed flags, and the rest as given.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub detach_keys: tty::DetachKeys,
    pub image: String,
    pub command: Vec<String>,
    pub name: Option<String>,
    pub detach: bool,
    pub remove: bool,
    pub interactive: bool,
    pub tty: bool,
    pub env: Vec<String>,
    pub env_files: Vec<PathBuf>,
    /// `--label KEY=VALUE` (or `KEY`), over the image's labels.
    pub labels: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    /// `-v`, as given.
    pub volumes: Vec<String>,
    /// `--mount`, as given.
    pub mounts: Vec<String>,
    pub read_only: bool,
    pub tmpfs: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub memory: Option<Memory>,
    pub cpus: Option<Cpus>,
    pub pids_limit: Option<i64>,
    pub network: NetworkMode,
    /// `-p`, as given.
    pub publish: Vec<String>,
    /// `-P`: every exposed port to a random host port.
    pub publish_all: bool,
    /// `--ip`.
    pub ip: Option<std::net::Ipv4Addr>,
    /// `--add-host NAME:IP`, as given.
    pub add_hosts: Vec<String>,
    /// `--dns`, as given.
    pub dns: Vec<String>,
    /// `--network-alias`.
    pub network_aliases: Vec<String>,
    pub entrypoint: Option<String>,
    pub privileged: bool,
    pub security_opt: Vec<String>,
    /// The image must be for this platform (a multi-platform tag gives it).
    pub platform: Option<Platform>,
    /// `--health-*` and `--no-healthcheck`.
    pub health: HealthFlags,
    /// `--restart`.
    pub restart: RestartPolicy,
}

/// `ctr-run`'s health flags, durations already read ([`parse_duration`]).
#[derive(Debug, Clone, Default)]
pub struct HealthFlags {
    pub cmd: Option<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<i64>,
    pub none: bool,
}

impl HealthFlags {
    /// The check the flags ask for, as Docker's client makes it: none
    /// without flags (the image's stands), `["NONE"]` for
    /// `--no-healthcheck`, else a CMD-SHELL test (or none, to keep the
    /// image's test) with the values given.
    pub fn config(&self) -> Result<Option<HealthConfig>, RunError> {
        let nanos = |d: Option<Duration>| d.map_or(0, |d| d.as_nanos() as i64);
        let any = self.cmd.is_some()
            || nanos(self.interval) != 0
            || nanos(self.timeout) != 0
            || nanos(self.start_period) != 0
            || nanos(self.start_interval) != 0
            || self.retries.unwrap_or(0) != 0;
        if self.none {
            if any {
                return Err(RunError::Conflicting(
                    "--no-healthcheck conflicts with --health-* options",
                ));
            }
            return Ok(Some(HealthConfig {
                test: vec!["NONE".to_string()],
                ..HealthConfig::default()
            }));
        }
        if !any {
            return Ok(None);
        }
        if let Some(retries) = self.retries
            && retries < 0
        {
            return Err(FlagError::new(
                "--health-retries",
                &retries.to_string(),
                "cannot be negative",
            )
            .into());
        }
        Ok(Some(HealthConfig {
            test: self
                .cmd
                .iter()
                .map(|cmd| vec!["CMD-SHELL".to_string(), cmd.clone()])
                .next()
                .unwrap_or_default(),
            interval: nanos(self.interval),
            timeout: nanos(self.timeout),
            start_period: nanos(self.start_period),
            start_interval: nanos(self.start_interval),
            retries: self.retries.unwrap_or(0),
        }))
    }
}

/// Docker's (Go's) durations: `30s`, `1m30s`, `500ms`, `0`. Negative ones
/// and ones below Docker's 1 ms least are refused.
pub fn parse_duration(flag: &'static str, value: &str) -> Result<Duration, FlagError> {
    if value.starts_with('-') && crate::format::human::parse_go_duration(&value[1..]).is_some() {
        return Err(FlagError::new(flag, value, "cannot be negative"));
    }
    let duration =
        crate::format::human::parse_go_duration(value.strip_prefix('+').unwrap_or(value))
            .ok_or_else(|| {
                FlagError::new(flag, value, format!("time: invalid duration \"{value}\""))
            })?;
    if !duration.is_zero() && duration < Duration::from_millis(1) {
        return Err(FlagError::new(flag, value, "cannot be less than 1ms"));
    }
    Ok(duration)
}

/// Docker's byte sizes: `512`, `64k`, `256m`, `1g`, `1.5g`.
pub fn parse_bytes(flag: &'static str, value: &str) -> Result<i64, FlagError> {
    let lower = value.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (number, unit) = match lower.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => lower.split_at(i),
        None => (lower, ""),
    };
    let factor: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0f64.powi(4),
        _ => {
            return Err(FlagError::new(
                flag,
                value,
                "expected a size such as 256m or 1g",
            ));
        }
    };
    let n: f64 = number
        .parse()
        .map_err(|_| FlagError::new(flag, value, "expected a size such as 256m or 1g"))?;
    if !n.is_finite() || n <= 0.0 {
        return Err(FlagError::new(flag, value, "must be positive"));
    }
    Ok((n * factor) as i64)
}

/// `--memory`: a byte size ([`parse_bytes`]) of at least 6 MB, Docker's least.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory(i64);

impl Memory {
    const LEAST: i64 = 6 * 1024 * 1024;

    pub fn bytes(self) -> i64 {
        self.0
    }
}

impl FromStr for Memory {
    type Err = FlagError;
    fn from_str(value: &str) -> Result<Memory, FlagError> {
        let bytes = parse_bytes("--memory", value)?;
        if bytes < Memory::LEAST {
            return Err(FlagError::new(
                "--memory",
                value,
                "Minimum memory limit allowed is 6MB",
            ));
        }
        Ok(Memory(bytes))
    }
}

/// `--cpus`: a positive number of CPUs, kept as Docker's `NanoCpus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpus(i64);

impl Cpus {
    pub fn nano(self) -> i64 {
        self.0
    }
}

impl FromStr for Cpus {
    type Err = FlagError;
    fn from_str(value: &str) -> Result<Cpus, FlagError> {
        let n: f64 = value
            .parse()
            .map_err(|_| FlagError::new("--cpus", value, "expected a number such as 1.5"))?;
        if !n.is_finite() || n <= 0.0 {
            return Err(FlagError::new("--cpus", value, "must be positive"));
        }
        let host = host_cpus();
        if n < 0.01 || n > host as f64 {
            return Err(FlagError::new(
                "--cpus",
                value,
                format!(
                    "Range of CPUs is from 0.01 to {host}.00, as there are only {host} CPUs available"
                ),
            ));
        }
        Ok(Cpus((n * 1e9) as i64))
    }
}

/// The CPUs this process may run on, as Docker counts them (Go's
/// `runtime.NumCPU`: the scheduler affinity mask).
fn host_cpus() -> usize {
    // SAFETY: a zeroed cpu_set_t is a valid empty set, and
    // sched_getaffinity writes at most its size into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            return libc::CPU_COUNT(&set) as usize;
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The other flags checked and turned into values, before anything is touched.
pub(super) struct Checked {
    pub volumes: Vec<MountFlag>,
    pub tmpfs: Vec<Tmpfs>,
    pub limits: Limits,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub no_new_privileges: bool,
    pub seccomp: seccomp::Seccomp,
    /// `--env-file` lines, then `-e`, each `KEY=VALUE`.
    pub env: Vec<String>,
    /// `-p`, read (host ports still to choose for `-p CTRPORT`).
    pub publish: Vec<Published>,
    /// `--add-host`: name and address (`host-gateway` kept as written).
    pub extra_hosts: ExtraHosts,
    /// The health check the flags ask for (the image's is merged later).
    pub healthcheck: Option<HealthConfig>,
}

/// `--add-host` entries: name and address.
type ExtraHosts = Vec<(String, String)>;

/// Docker's word for the bridge's gateway in `--add-host NAME:host-gateway`.
pub const HOST_GATEWAY: &str = "host-gateway";

/// The network flags checked: `-p`, `--add-host`, `--dns`, and that
/// `--ip` and `--network-alias` have a network to apply to.
fn check_network(opts: &RunOptions) -> Result<(Vec<Published>, ExtraHosts), RunError> {
    let bad = |flag, value: &str, why: &str| RunError::from(FlagError::new(flag, value, why));
    let mut publish = Vec::new();
    for value in &opts.publish {
        let read =
            ports::parse_publish(value).map_err(|e| bad("--publish", value, &e.to_string()))?;
        publish.extend(read);
    }
    let mut extra_hosts = Vec::new();
    for value in &opts.add_hosts {
        // Docker splits at the first ':' (an IPv6 address keeps its own),
        // and takes '=' too.
        let split = value.split_once('=').or_else(|| value.split_once(':'));
        let Some((name, ip)) = split.filter(|(n, ip)| !n.is_empty() && !ip.is_empty()) else {
            return Err(bad("--add-host", value, "expected HOST:IP"));
        };
        if ip != HOST_GATEWAY && ip.parse::<std::net::IpAddr>().is_err() {
            return Err(bad(
                "--add-host",
                value,
                &format!("invalid IP address {ip:?}"),
            ));
        }
        extra_hosts.push((name.to_string(), ip.to_string()));
    }
    for value in &opts.dns {
        if value.parse::<std::net::IpAddr>().is_err() {
            return Err(bad("--dns", value, "not an IP address"));
        }
    }
    if matches!(opts.network, NetworkMode::Container(_)) {
        // Docker's refusals, in its order: the namespace, its names and
        // its ports are the other container's.
        let conflict = if opts.hostname.is_some() {
            Some("hostname and the network mode")
        } else if !opts.dns.is_empty() {
            Some("dns and the network mode")
        } else if !opts.add_hosts.is_empty() {
            Some("custom host-to-IP mapping and the network mode")
        } else if !opts.publish.is_empty() || opts.publish_all {
            Some("port publishing and the container type network mode")
        } else {
            None
        };
        if let Some(conflict) = conflict {
            return Err(RunError::Conflict(conflict));
        }
    }
    if let Some(ip) = opts.ip
        && opts.network.network().is_none()
    {
        return Err(bad(
            "--ip",
            &ip.to_string(),
            "an address needs --network bridge",
        ));
    }
    if let Some(alias) = opts.network_aliases.first()
        && !matches!(opts.network, NetworkMode::Named(_))
    {
        return Err(bad(
            "--network-alias",
            alias,
            "network-scoped alias is supported only for containers in user defined networks",
        ));
    }
    Ok((publish, extra_hosts))
}

pub(super) fn check(opts: &RunOptions) -> Result<Checked, RunError> {
    let bad = |flag, value: &str, why: &str| RunError::from(FlagError::new(flag, value, why));
    let mut volumes = Vec::new();
    for spec in &opts.volumes {
        volumes.push(parse_volume(spec).map_err(|why| bad("--volume", spec, &why))?);
    }
    for spec in &opts.mounts {
        volumes.push(parse_mount(spec).map_err(|why| bad("--mount", spec, &why))?);
    }
    let mut tmpfs = Vec::new();
    for spec in &opts.tmpfs {
        let (target, options) = spec.split_once(':').unwrap_or((spec, ""));
        if !target.starts_with('/') {
            return Err(bad("--tmpfs", spec, "the container path must be absolute"));
        }
        tmpfs.push(Tmpfs {
            target: target.to_string(),
            options: options
                .split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_string)
                .collect(),
        });
    }
    if let Some(p) = opts.pids_limit
        && p == 0
    {
        return Err(bad(
            "--pids-limit",
            &p.to_string(),
            "must be positive, or -1 for unlimited",
        ));
    }
    let pids = opts.pids_limit.filter(|p| *p > 0);
    let cap_add = opts
        .cap_add
        .iter()
        .map(|c| spec::capability_name(c))
        .collect::<Result<_, _>>()?;
    let cap_drop = opts
        .cap_drop
        .iter()
        .map(|c| spec::capability_name(c))
        .collect::<Result<_, _>>()?;
    let mut no_new_privileges = false;
    let mut seccomp = seccomp::Seccomp::Default;
    for opt in &opts.security_opt {
        if let Some(value) = opt
            .strip_prefix("seccomp=")
            .or_else(|| opt.strip_prefix("seccomp:"))
        {
            seccomp = seccomp::Seccomp::parse(value);
            continue;
        }
        match opt.as_str() {
            "no-new-privileges" | "no-new-privileges=true" | "no-new-privileges:true" => {
                no_new_privileges = true
            }
            "no-new-privileges=false" | "no-new-privileges:false" => no_new_privileges = false,
            other => {
                return Err(bad(
                    "--security-opt",
                    other,
                    "supported: no-new-privileges, seccomp=unconfined|PROFILE.json",
                ));
            }
        }
    }
    if let Some(name) = &opts.name {
        container::check_name(name)?;
    }
    if let Some(h) = &opts.hostname
        && (h.is_empty() || h.len() > 64 || h.contains(['/', ' ']))
    {
        return Err(bad(
            "--hostname",
            h,
            "expected a host name of at most 64 characters",
        ));
    }
    // Docker: --env-file lines first, then -e; a bare KEY takes the host's value.
    let mut env = Vec::new();
    for file in &opts.env_files {
        let text = fs::read_to_string(file).map_err(RunError::io(file))?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            env.push(line.to_string());
        }
    }
    env.extend(opts.env.iter().cloned());
    let mut resolved = Vec::new();
    for entry in env {
        match entry.split_once('=') {
            Some(("", _)) => return Err(bad("--env", &entry, "variable name is empty")),
            Some(_) => resolved.push(entry),
            None => {
                if let Ok(value) = std::env::var(&entry) {
                    resolved.push(format!("{entry}={value}"));
                }
            }
        }
    }
    let (publish, extra_hosts) = check_network(opts)?;
    // Docker's client refuses both: a container removed at its exit has
    // nothing to restart.
    if opts.remove && !opts.restart.is_none() {
        return Err(RunError::Conflicting(
            "Conflicting options: --restart and --rm",
        ));
    }
    let healthcheck = opts.health.config()?;
    Ok(Checked {
        healthcheck,
        publish,
        extra_hosts,
        volumes,
        tmpfs,
        limits: Limits {
            memory: opts.memory.map(Memory::bytes),
            nano_cpus: opts.cpus.map(Cpus::nano),
            pids,
        },
        cap_add,
        cap_drop,
        no_new_privileges,
        seccomp,
        env: resolved,
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod health_tests {
    use super::*;

    #[test]
    fn health_flags_make_the_check_docker_s_client_makes() {
        assert_eq!(
            HealthFlags::default().config().unwrap(),
            None,
            "the image's stands"
        );
        let none = HealthFlags {
            none: true,
            ..HealthFlags::default()
        };
        assert_eq!(none.config().unwrap().unwrap().test, ["NONE"]);
        let conflict = HealthFlags {
            none: true,
            retries: Some(2),
            ..HealthFlags::default()
        };
        assert_eq!(
            conflict.config().unwrap_err().to_string(),
            "--no-healthcheck conflicts with --health-* options"
        );
        let check = HealthFlags {
            cmd: Some("curl -f x".into()),
            interval: Some(parse_duration("--health-interval", "1m30s").unwrap()),
            ..HealthFlags::default()
        }
        .config()
        .unwrap()
        .unwrap();
        assert_eq!(check.test, ["CMD-SHELL", "curl -f x"]);
        assert_eq!(check.interval, 90_000_000_000);
        let only_timeout = HealthFlags {
            timeout: Some(Duration::from_secs(7)),
            ..HealthFlags::default()
        };
        assert!(
            only_timeout.config().unwrap().unwrap().test.is_empty(),
            "the image's test stays"
        );
        assert_eq!(
            parse_duration("--health-interval", "0").unwrap(),
            Duration::ZERO
        );
    }
}
