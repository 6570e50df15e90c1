//! `ctr-run`'s flags checked and typed at the edge, as ripgrep turns its
//! low-level arguments into high-level ones: clap parses `--memory`,
//! `--cpus`, `--network` and `--platform` once into the types here and
//! elsewhere, and [`check`] turns the rest into the mounts, limits and
//! security settings a container is made with, before anything is touched.

use super::mounts::{MountFlag, parse_mount, parse_volume};
use super::spec::{self, Limits, Tmpfs};
use super::{FlagError, RunError, seccomp, tty};
use crate::container;
use crate::network::NetworkMode;
use crate::network::ports::{self, Published};
use crate::platform::Platform;
use std::fs;
use std::path::PathBuf;
use std::str::FromStr;

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
        Ok(Cpus((n * 1e9) as i64))
    }
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
    Ok(Checked {
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
mod tests {
    use super::*;
    use crate::runtime::mounts::MountSource;

    /// The one line a bad value gives, as the flag's parser says it.
    fn refused<T: FromStr>(value: &str) -> String
    where
        T::Err: std::fmt::Display,
    {
        match value.parse::<T>() {
            Ok(_) => panic!("{value:?} was taken"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn memory_takes_dockers_sizes_from_6mb() {
        assert_eq!("256m".parse::<Memory>().unwrap().bytes(), 256 << 20);
        assert_eq!("1g".parse::<Memory>().unwrap().bytes(), 1 << 30);
        assert_eq!("1.5G".parse::<Memory>().unwrap().bytes(), 3 << 29);
        assert_eq!("64MB".parse::<Memory>().unwrap().bytes(), 64 << 20);
        assert_eq!(" 6m ".parse::<Memory>().unwrap().bytes(), 6 << 20);
        assert_eq!("6291456".parse::<Memory>().unwrap().bytes(), 6 << 20);
        assert_eq!(parse_bytes("--memory", "64k").unwrap(), 64 << 10);
        assert_eq!(parse_bytes("--memory", "2t").unwrap(), 2 << 40);
    }

    #[test]
    fn every_bad_memory_value_is_refused_in_dockers_words() {
        let size = "expected a size such as 256m or 1g";
        for (value, why) in [
            ("lots", size),
            ("", size),
            ("m", size),
            ("12x", size),
            ("1e3", size),
            ("inf", size),
            ("1.2.3m", size),
            ("0", "must be positive"),
            ("-1m", "must be positive"),
            ("0.0g", "must be positive"),
            ("1m", "Minimum memory limit allowed is 6MB"),
            ("6291455", "Minimum memory limit allowed is 6MB"),
            ("5.9m", "Minimum memory limit allowed is 6MB"),
        ] {
            assert_eq!(
                refused::<Memory>(value),
                format!("invalid --memory value {value:?}: {why}"),
            );
        }
    }

    #[test]
    fn cpus_are_kept_as_nano_cpus() {
        assert_eq!("1.5".parse::<Cpus>().unwrap().nano(), 1_500_000_000);
        assert_eq!("0.5".parse::<Cpus>().unwrap().nano(), 500_000_000);
        assert_eq!("2".parse::<Cpus>().unwrap().nano(), 2_000_000_000);
    }

    #[test]
    fn every_bad_cpus_value_is_refused_in_dockers_words() {
        let number = "expected a number such as 1.5";
        for (value, why) in [
            ("lots", number),
            ("", number),
            ("1,5", number),
            ("2cpus", number),
            ("0", "must be positive"),
            ("-1", "must be positive"),
            ("inf", "must be positive"),
            ("NaN", "must be positive"),
        ] {
            assert_eq!(
                refused::<Cpus>(value),
                format!("invalid --cpus value {value:?}: {why}"),
            );
        }
    }

    #[test]
    fn every_bad_network_value_is_refused_naming_the_supported_ones() {
        assert_eq!("none".parse::<NetworkMode>().unwrap(), NetworkMode::None);
        assert_eq!("host".parse::<NetworkMode>().unwrap(), NetworkMode::Host);
        for value in ["", "container:web", "none ", "a/b"] {
            assert_eq!(
                refused::<NetworkMode>(value),
                format!(
                    "invalid --network value {value:?}: supported: bridge, none, host, or a network's name"
                ),
            );
        }
    }

    #[test]
    fn every_bad_platform_value_is_refused_with_an_example() {
        let arm: Platform = "linux/aarch64".parse().unwrap();
        assert_eq!(arm.to_string(), "linux/arm64");
        for value in [
            "linux",
            "",
            "linux/",
            "/amd64",
            "linux/amd64/v1/x",
            "linux amd64",
            "linux/am.d64",
        ] {
            assert_eq!(
                refused::<Platform>(value),
                format!("invalid platform {value:?}: expected os/arch[/variant], e.g. linux/arm64"),
            );
        }
    }

    #[test]
    fn the_other_flags_are_checked_before_anything_is_touched() {
        let refused = |change: &dyn Fn(&mut RunOptions)| {
            let mut opts = RunOptions::default();
            change(&mut opts);
            match check(&opts) {
                Ok(_) => panic!("{opts:?} was taken"),
                Err(e) => e.to_string(),
            }
        };
        assert_eq!(
            refused(&|o| o.volumes = vec!["../x:/data".into()]),
            "invalid --volume value \"../x:/data\": ../x: \"../x\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        );
        assert_eq!(
            refused(&|o| o.volumes = vec!["data:rel".into()]),
            "invalid --volume value \"data:rel\": invalid mount path: 'rel' mount path must be absolute"
        );
        assert_eq!(
            refused(&|o| o.volumes = vec!["/a:/b:rx".into()]),
            "invalid --volume value \"/a:/b:rx\": invalid mode: rx"
        );
        assert_eq!(
            refused(&|o| o.volumes = vec!["a:b:c:d".into()]),
            "invalid --volume value \"a:b:c:d\": expected [HOST-DIR|VOLUME:]CONTAINER-DIR[:ro]"
        );
        assert_eq!(
            refused(&|o| o.mounts = vec!["type=volume,src=x".into()]),
            "invalid --mount value \"type=volume,src=x\": target is required"
        );
        assert_eq!(
            refused(&|o| o.mounts = vec!["type=bind,src=/no/such/dir,dst=/x".into()]),
            "invalid --mount value \"type=bind,src=/no/such/dir,dst=/x\": invalid mount config for type \"bind\": bind source path does not exist: /no/such/dir"
        );
        assert_eq!(
            refused(&|o| o.mounts = vec!["dst=/x,bogus=1".into()]),
            "invalid --mount value \"dst=/x,bogus=1\": unexpected key 'bogus' in 'bogus=1'"
        );
        assert_eq!(
            refused(&|o| o.tmpfs = vec!["run:size=1m".into()]),
            "invalid --tmpfs value \"run:size=1m\": the container path must be absolute"
        );
        assert_eq!(
            refused(&|o| o.pids_limit = Some(0)),
            "invalid --pids-limit value \"0\": must be positive, or -1 for unlimited"
        );
        assert_eq!(
            refused(&|o| o.cap_add = vec!["CAP_NOPE".into()]),
            "invalid --cap-add/--cap-drop value \"CAP_NOPE\": unknown capability"
        );
        assert_eq!(
            refused(&|o| o.security_opt = vec!["apparmor=x".into()]),
            "invalid --security-opt value \"apparmor=x\": supported: no-new-privileges, seccomp=unconfined|PROFILE.json"
        );
        assert_eq!(
            refused(&|o| o.hostname = Some("a b".into())),
            "invalid --hostname value \"a b\": expected a host name of at most 64 characters"
        );
        assert_eq!(
            refused(&|o| o.env = vec!["=x".into()]),
            "invalid --env value \"=x\": variable name is empty"
        );
        assert!(refused(&|o| o.name = Some("bad/name".into())).contains("invalid container name"));
        for (set, line) in [
            (
                (&|o: &mut RunOptions| o.publish = vec!["8080:x".into()])
                    as &dyn Fn(&mut RunOptions),
                "invalid --publish value \"8080:x\": invalid containerPort: x",
            ),
            (
                &|o| o.add_hosts = vec!["db".into()],
                "invalid --add-host value \"db\": expected HOST:IP",
            ),
            (
                &|o| o.add_hosts = vec!["db:10.0.0.999".into()],
                "invalid --add-host value \"db:10.0.0.999\": invalid IP address \"10.0.0.999\"",
            ),
            (
                &|o| o.dns = vec!["resolver".into()],
                "invalid --dns value \"resolver\": not an IP address",
            ),
            (
                &|o| {
                    o.network = NetworkMode::Host;
                    o.ip = Some("172.17.0.9".parse().unwrap());
                },
                "invalid --ip value \"172.17.0.9\": an address needs --network bridge",
            ),
            (
                &|o| o.network_aliases = vec!["db".into()],
                "invalid --network-alias value \"db\": network-scoped alias is supported only for containers in user defined networks",
            ),
        ] {
            assert_eq!(refused(set), line);
        }
        let opts = RunOptions {
            publish: vec!["127.0.0.1:8080:80".into(), "53/udp".into()],
            add_hosts: vec!["db:10.1.2.3".into(), "gw=host-gateway".into()],
            ..RunOptions::default()
        };
        let checked = check(&opts).unwrap();
        assert_eq!(checked.publish.len(), 2);
        assert_eq!(
            checked.extra_hosts,
            [
                ("db".to_string(), "10.1.2.3".to_string()),
                ("gw".to_string(), HOST_GATEWAY.to_string())
            ]
        );

        let opts = RunOptions {
            volumes: vec!["/srv:/data:ro".into()],
            tmpfs: vec!["/run:size=1m,mode=700".into()],
            memory: Some("16m".parse().unwrap()),
            cpus: Some("0.5".parse().unwrap()),
            pids_limit: Some(-1),
            cap_add: vec!["net_admin".into()],
            security_opt: vec!["no-new-privileges".into(), "seccomp=unconfined".into()],
            env: vec!["A=1".into()],
            ..RunOptions::default()
        };
        let checked = check(&opts).unwrap();
        assert_eq!(
            checked.volumes,
            [MountFlag {
                source: MountSource::Host(PathBuf::from("/srv")),
                target: "/data".into(),
                read_only: true,
                nocopy: false,
                mode: "ro".into(),
                bind: Some("/srv:/data:ro".into()),
                from_mount: false,
            }]
        );
        assert_eq!(checked.tmpfs[0].options, ["size=1m", "mode=700"]);
        assert_eq!(
            checked.limits,
            Limits {
                memory: Some(16 << 20),
                nano_cpus: Some(500_000_000),
                pids: None,
            }
        );
        assert_eq!(checked.cap_add, ["CAP_NET_ADMIN"]);
        assert!(checked.no_new_privileges);
        assert_eq!(checked.seccomp, seccomp::Seccomp::Unconfined);
        assert_eq!(checked.env, ["A=1"]);
    }
}
