//! Running a container from a stored image: rootfs as an overlay of the
//! unpacked layers, spec, libcontainer in-process, wait, record, clean up.

pub mod attach;
pub mod exec;
mod monitor;
pub mod relay;
mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod step;
pub mod tty;
pub mod user;

use crate::container::owner::{self, Owner};
use crate::container::{self, Config, ContainerError, HostConfig, MountPoint, Record, State};
use crate::layer::LayerError;
use crate::store::{Store, StoreError};
use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::Spec;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

pub use crate::network::NetworkMode;
pub use monitor::{run_attached, run_detached, spawn_monitor};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("invalid {flag} value {value:?}: {why}")]
    BadFlag {
        flag: &'static str,
        value: String,
        why: String,
    },
    #[error("Unable to find image '{0}' locally")]
    NoImage(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    #[error("{0}")]
    User(String),
    #[error("No command specified")]
    NoCommand,
    #[error("image platform {image} does not match the requested platform {wanted}")]
    Platform { image: String, wanted: String },
    #[error("generating the runtime spec: {0}")]
    Spec(String),
    #[error("mounting the container's root filesystem at {path}: {source}")]
    Mount {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("starting the container: {0}")]
    Runtime(String),
    #[error("the container monitor failed: {0}")]
    Monitor(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error(transparent)]
    Attach(#[from] attach::AttachError),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> RunError + use<> {
    let path = path.to_path_buf();
    move |source| RunError::Io { path, source }
}

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

/// Everything `ctr-run` was asked, as flags and values from the command line.
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
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub volumes: Vec<String>,
    pub read_only: bool,
    pub tmpfs: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub memory: Option<String>,
    pub cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub network: String,
    pub entrypoint: Option<String>,
    pub privileged: bool,
    pub security_opt: Vec<String>,
    pub platform: Option<String>,
}

/// The flags checked and turned into values, before anything is touched.
struct Checked {
    network: NetworkMode,
    volumes: Vec<Volume>,
    tmpfs: Vec<Tmpfs>,
    limits: Limits,
    cap_add: Vec<String>,
    cap_drop: Vec<String>,
    no_new_privileges: bool,
    seccomp: seccomp::Seccomp,
    env: Vec<String>,
}

fn bad(flag: &'static str, value: &str, why: impl Into<String>) -> RunError {
    RunError::BadFlag {
        flag,
        value: value.to_string(),
        why: why.into(),
    }
}

/// Docker's byte sizes: `512`, `64k`, `256m`, `1g`, `1.5g`.
pub fn parse_bytes(flag: &'static str, value: &str) -> Result<i64, RunError> {
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
        _ => return Err(bad(flag, value, "expected a size such as 256m or 1g")),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| bad(flag, value, "expected a size such as 256m or 1g"))?;
    if !n.is_finite() || n <= 0.0 {
        return Err(bad(flag, value, "must be positive"));
    }
    Ok((n * factor) as i64)
}

fn check(opts: &RunOptions) -> Result<Checked, RunError> {
    let network: NetworkMode = opts.network.parse()?;
    let mut volumes = Vec::new();
    for spec in &opts.volumes {
        let parts: Vec<&str> = spec.split(':').collect();
        let (source, target, read_only) = match parts.as_slice() {
            [s, t] => (*s, *t, false),
            [s, t, "ro"] => (*s, *t, true),
            [s, t, "rw"] => (*s, *t, false),
            _ => return Err(bad("--volume", spec, "expected HOST:CONTAINER[:ro]")),
        };
        if !source.starts_with('/') {
            return Err(bad(
                "--volume",
                spec,
                "the host path must be absolute (named volumes are not supported)",
            ));
        }
        if !target.starts_with('/') {
            return Err(bad("--volume", spec, "the container path must be absolute"));
        }
        volumes.push(Volume {
            source: PathBuf::from(source),
            target: target.to_string(),
            read_only,
        });
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
    let memory = opts
        .memory
        .as_deref()
        .map(|m| parse_bytes("--memory", m))
        .transpose()?;
    if memory.is_some_and(|m| m < 6 * 1024 * 1024) {
        return Err(bad(
            "--memory",
            opts.memory.as_deref().unwrap_or(""),
            "Minimum memory limit allowed is 6MB",
        ));
    }
    let nano_cpus = match opts.cpus.as_deref() {
        None => None,
        Some(c) => {
            let n: f64 = c
                .parse()
                .map_err(|_| bad("--cpus", c, "expected a number such as 1.5"))?;
            if !n.is_finite() || n <= 0.0 {
                return Err(bad("--cpus", c, "must be positive"));
            }
            Some((n * 1e9) as i64)
        }
    };
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
        let text = fs::read_to_string(file).map_err(io_error(file))?;
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
    Ok(Checked {
        network,
        volumes,
        tmpfs,
        limits: Limits {
            memory,
            nano_cpus,
            pids,
        },
        cap_add,
        cap_drop,
        no_new_privileges,
        seccomp,
        env: resolved,
    })
}

/// Sets `KEY=VALUE` in `env`, replacing an earlier value of KEY.
fn set_env(env: &mut Vec<String>, entry: String) {
    let key = entry.split('=').next().unwrap_or("").to_string();
    env.retain(|e| e.split('=').next() != Some(key.as_str()));
    env.push(entry);
}

/// A container made ready to start: record written, rootfs mounted, spec saved.
pub struct Prepared {
    pub store: Store,
    pub id: String,
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub remove: bool,
    pub interactive: bool,
    /// Docker's StdinOnce: the container's stdin closes when the first
    /// attached client's input ends (`-i` in the foreground), rather than
    /// staying open for the next one (`-di`).
    pub stdin_once: bool,
    pub tty: bool,
    /// Held for as long as someone owns the running container: the
    /// foreground ctr-run or the monitor. Free means nobody will record an
    /// exit any more.
    owner: Option<Owner>,
    /// Whether a failure before start removes the container (a new one) or
    /// leaves it as it was (one being started again).
    new: bool,
    armed: bool,
}

impl Prepared {
    /// libcontainer's state directory for all berth containers.
    fn runtime_root(&self) -> PathBuf {
        self.store.root().join("runtime")
    }

    /// Tears the running parts down (the one teardown: the overlay,
    /// libcontainer's state, the cgroups); with `remove` also the
    /// container's directory (its upper dir is kept otherwise, so that a
    /// restart finds its files).
    pub fn cleanup(&mut self, remove: bool) {
        owner::teardown(&self.store, &self.id, &self.rootfs);
        if remove {
            let _ = self.store.remove_container(&self.id);
        }
        self.armed = false;
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if self.armed {
            self.cleanup(self.new);
        }
    }
}

/// Checks the flags, resolves the image, unpacks its layers, writes the
/// record, mounts the rootfs and saves the spec. On any error nothing is
/// left behind.
pub fn prepare(store: &Store, opts: &RunOptions) -> Result<Prepared, RunError> {
    let checked = check(opts)?;
    let wanted_platform: Option<crate::platform::Platform> = opts
        .platform
        .as_deref()
        .map(|wanted| {
            wanted
                .parse()
                .map_err(|e| bad("--platform", wanted, format!("{e}")))
        })
        .transpose()?;
    // Leased from here until the container's record names the image, so
    // img-rm and img-prune see it in use while its layers are unpacked.
    let (image, lease) = store.lease_image(|store| {
        // A multi-platform tag gives the platform asked for, if it is here.
        let found = match &wanted_platform {
            Some(platform) => match store.resolve_image_on(&opts.image, platform) {
                Err(StoreError::NoSuchImage(_)) => store.resolve_image(&opts.image),
                other => other,
            },
            None => store.resolve_image(&opts.image),
        };
        found.map_err(|e| match e {
            StoreError::NoSuchImage(_) => RunError::NoImage(opts.image.clone()),
            other => RunError::Store(other),
        })
    })?;
    crate::testhook::pause(crate::testhook::AFTER_LEASE);
    let image_config = store.read_image_config(&image)?;
    if let (Some(wanted), Some(wanted_platform)) = (&opts.platform, &wanted_platform) {
        let arch = image_config.architecture().to_string();
        let os = image_config.os().to_string();
        if !wanted_platform.matches(&os, &arch, image_config.variant().as_deref()) {
            return Err(RunError::Platform {
                image: format!("{os}/{arch}"),
                wanted: wanted.clone(),
            });
        }
    }
    let config = image_config.config().clone().unwrap_or_default();

    // Docker's override rules: --entrypoint replaces the image's and drops
    // its Cmd; arguments replace Cmd.
    let entrypoint: Vec<String> = match &opts.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => config.entrypoint().clone().unwrap_or_default(),
    };
    let cmd: Vec<String> = if !opts.command.is_empty() {
        opts.command.clone()
    } else if opts.entrypoint.is_some() {
        Vec::new()
    } else {
        config.cmd().clone().unwrap_or_default()
    };
    let args: Vec<String> = entrypoint.iter().chain(&cmd).cloned().collect();
    if args.is_empty() {
        return Err(RunError::NoCommand);
    }

    let layers = store.unpack_layers(&image, &image_config)?;

    let id = container::new_id().map_err(io_error(Path::new("/dev/urandom")))?;
    let name = opts.name.clone().unwrap_or_else(container::random_name);
    let hostname = opts
        .hostname
        .clone()
        .unwrap_or_else(|| id[..12].to_string());
    let dir = store.container_dir(&id);
    let user_spec = opts
        .user
        .clone()
        .or_else(|| config.user().clone())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "0".to_string());
    let workdir = opts
        .workdir
        .clone()
        .or_else(|| config.working_dir().clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".to_string());
    if !workdir.starts_with('/') {
        return Err(bad(
            "--workdir",
            &workdir,
            "the working directory must be absolute",
        ));
    }
    let mut env: Vec<String> = config.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        );
    }
    set_env(&mut env, format!("HOSTNAME={hostname}"));
    for entry in &checked.env {
        set_env(&mut env, entry.clone());
    }
    let mut volume_map = BTreeMap::new();
    for v in config.volumes().clone().unwrap_or_default() {
        volume_map.insert(v, serde_json::json!({}));
    }

    let record = Record {
        id: id.clone(),
        name: format!("/{name}"),
        created: container::now(),
        path: args[0].clone(),
        args: args[1..].to_vec(),
        state: State::created(),
        image: image.id().to_string(),
        config: Config {
            hostname: hostname.clone(),
            user: opts
                .user
                .clone()
                .or_else(|| config.user().clone())
                .unwrap_or_default(),
            attach_stdin: opts.interactive && !opts.detach,
            attach_stdout: !opts.detach,
            attach_stderr: !opts.detach,
            tty: opts.tty,
            open_stdin: opts.interactive,
            stdin_once: opts.interactive && !opts.detach,
            env: env.clone(),
            cmd: cmd.clone(),
            image: opts.image.clone(),
            volumes: volume_map,
            working_dir: workdir.clone(),
            entrypoint: (!entrypoint.is_empty()).then(|| entrypoint.clone()),
            labels: config
                .labels()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            stop_signal: config.stop_signal().clone().unwrap_or_default(),
            ..Config::default()
        },
        host_config: HostConfig {
            binds: opts.volumes.clone(),
            network_mode: opts.network.clone(),
            auto_remove: opts.remove,
            privileged: opts.privileged,
            readonly_rootfs: opts.read_only,
            cap_add: checked.cap_add.clone(),
            cap_drop: checked.cap_drop.clone(),
            security_opt: opts.security_opt.clone(),
            memory: checked.limits.memory.unwrap_or(0),
            nano_cpus: checked.limits.nano_cpus.unwrap_or(0),
            pids_limit: checked.limits.pids.unwrap_or(0),
            tmpfs: checked
                .tmpfs
                .iter()
                .map(|t| (t.target.clone(), t.options.join(",")))
                .collect(),
            cgroup_parent: "/berth".to_string(),
        },
        mounts: Vec::new(),
        log_path: dir.join(format!("{id}-json.log")).display().to_string(),
        resolv_conf_path: dir.join("resolv.conf").display().to_string(),
        hostname_path: dir.join("hostname").display().to_string(),
        hosts_path: dir.join("hosts").display().to_string(),
        driver: "overlay2".to_string(),
        platform: "linux".to_string(),
    };
    // The owner lock comes before the record: a record nobody owns is never
    // one being made.
    let owner = store.claim_container_dir(&id, Owner::take)?;
    if let Err(e) = store.create_container(&record) {
        let _ = fs::remove_dir_all(&dir);
        return Err(e.into());
    }
    drop(lease); // the record keeps the image in use from now on
    let mut prepared = Prepared {
        store: store.clone(),
        id: id.clone(),
        dir: dir.clone(),
        rootfs: dir.join("rootfs"),
        remove: opts.remove,
        interactive: opts.interactive,
        stdin_once: opts.interactive && !opts.detach,
        tty: opts.tty,
        owner: Some(owner),
        new: true,
        armed: true,
    };

    for sub in ["upper", "work", "rootfs"] {
        let path = dir.join(sub);
        fs::create_dir(&path).map_err(io_error(&path))?;
    }
    fs::set_permissions(
        dir.join("upper"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .map_err(io_error(&dir))?;
    rootfs::prepare(&layers, &dir)?;

    let user = user::resolve(&prepared.rootfs, &user_spec)?;
    if let Some(home) = &user.home
        && !env.iter().any(|e| e.starts_with("HOME="))
    {
        env.push(format!("HOME={home}"));
    }
    mkdir_in_root(&prepared.rootfs, &workdir).map_err(io_error(
        &prepared.rootfs.join(workdir.trim_start_matches('/')),
    ))?;
    crate::network::write_etc_files(&dir, &hostname, checked.network)?;

    let mut volumes = checked.volumes.clone();
    for v in &volumes {
        // Docker makes a missing host path a directory; a file, socket or
        // device that is there is bound as it is.
        if fs::symlink_metadata(&v.source).is_err() {
            fs::create_dir_all(&v.source).map_err(io_error(&v.source))?;
        }
        // The target as the container resolves it: a symlink in the image
        // leads inside the root, and what it names is made if missing.
        let target_dir = if v.source.is_dir() {
            v.target.as_str()
        } else {
            v.target.rsplit_once('/').map_or("/", |(dir, _)| dir)
        };
        mkdir_in_root(&prepared.rootfs, target_dir).map_err(io_error(
            &prepared.rootfs.join(v.target.trim_start_matches('/')),
        ))?;
    }
    for (i, target) in record.config.volumes.keys().enumerate() {
        if volumes.iter().any(|v| v.target == *target) {
            continue;
        }
        let source = dir.join("volumes").join(i.to_string());
        fs::create_dir_all(&source).map_err(io_error(&source))?;
        // Docker starts a new anonymous volume with what the image has there.
        rootfs::copy_image_dir(&prepared.rootfs, target, &source).map_err(io_error(&source))?;
        volumes.push(Volume {
            source,
            target: target.clone(),
            read_only: false,
        });
    }
    if !opts.privileged {
        spec::prepare_cgroup_mountpoint(&prepared.rootfs)?;
    }
    let caps = spec::capabilities(opts.privileged, &checked.cap_add, &checked.cap_drop);
    let seccomp = seccomp::filter(&checked.seccomp, &caps, opts.privileged)?;
    let spec = spec::build(&spec::SpecInput {
        id: &id,
        rootfs: &prepared.rootfs,
        container_dir: &dir,
        args: &args,
        env: &env,
        cwd: &workdir,
        user: &user,
        hostname: &hostname,
        tty: opts.tty,
        read_only: opts.read_only,
        privileged: opts.privileged,
        no_new_privileges: checked.no_new_privileges,
        caps: &caps,
        network: checked.network,
        volumes: &volumes,
        tmpfs: &checked.tmpfs,
        limits: &checked.limits,
        seccomp,
    })?;
    let spec_path = dir.join("config.json");
    let spec_json = serde_json::to_vec_pretty(&spec).map_err(|e| RunError::Spec(e.to_string()))?;
    container::write_private(&spec_path, &spec_json).map_err(io_error(&spec_path))?;
    let mounts = volumes
        .iter()
        .map(|v| MountPoint {
            kind: "bind".to_string(),
            source: v.source.display().to_string(),
            destination: v.target.clone(),
            mode: if v.read_only { "ro" } else { "" }.to_string(),
            rw: !v.read_only,
            propagation: "rprivate".to_string(),
        })
        .collect();
    store.update_container(&id, |r| {
        r.mounts = mounts;
        r.config.env = env.clone();
    })?;
    prepared.armed = true;
    Ok(prepared)
}

/// Makes a stopped container ready to start again: the same spec, the same
/// upper dir over its image's layers. A failure leaves it as it was.
pub fn reopen(store: &Store, id: &str) -> Result<Prepared, RunError> {
    let dir = store.container_dir(id);
    let owner = Owner::take(&dir)?;
    let record = store.load_container(id)?;
    let image = store.resolve_image(&record.image).map_err(|e| match e {
        StoreError::NoSuchImage(_) => RunError::NoImage(record.image.clone()),
        other => RunError::Store(other),
    })?;
    let image_config = store.read_image_config(&image)?;
    let layers = store.unpack_layers(&image, &image_config)?;
    for sub in ["upper", "work", "rootfs"] {
        let path = dir.join(sub);
        fs::create_dir_all(&path).map_err(io_error(&path))?;
    }
    let rootfs = dir.join("rootfs");
    // A crash may have left the old overlay mounted, and its runtime state.
    owner::teardown(store, id, &rootfs);
    rootfs::prepare(&layers, &dir)?;
    Ok(Prepared {
        store: store.clone(),
        id: id.to_string(),
        dir,
        rootfs,
        remove: record.host_config.auto_remove,
        interactive: record.config.open_stdin,
        stdin_once: record.config.stdin_once,
        tty: record.config.tty,
        owner: Some(owner),
        new: false,
        armed: true,
    })
}

/// `mkdir -p` inside the container's root, with every lookup resolved as
/// if the rootfs were `/` so an image symlink cannot point us outside.
fn mkdir_in_root(rootfs: &Path, path: &str) -> io::Result<()> {
    use rustix::fs::{Mode, OFlags};
    let root = rustix::fs::open(
        rootfs,
        OFlags::DIRECTORY | OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    mkdir_following(&root, path, 0)
}

/// `mkdir -p` of `path` below `root`, resolving as the container will: a
/// component that is a symlink leading nowhere yet (`/data -> /srv/data`)
/// has its target made, inside the root, as Docker makes a volume's.
fn mkdir_following(root: &std::os::fd::OwnedFd, path: &str, depth: u32) -> io::Result<()> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    // The kernel's own limit on links followed in one lookup.
    if depth > 40 {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    let open_in_root = |path: &str| {
        rustix::fs::openat2(
            root,
            if path.is_empty() { "." } else { path },
            OFlags::DIRECTORY | OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT,
        )
    };
    let mut prefix = String::new();
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        let parent = open_in_root(&prefix)?;
        match rustix::fs::mkdirat(&parent, part, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let here = format!("{prefix}/{part}");
        if let Err(rustix::io::Errno::NOENT) = open_in_root(&here)
            && let Ok(target) = rustix::fs::readlinkat(&parent, part, Vec::new())
        {
            let target = target.to_string_lossy().into_owned();
            // Relative to the link's directory; IN_ROOT keeps `..` inside.
            let target = if target.starts_with('/') {
                target
            } else {
                format!("{prefix}/{target}")
            };
            mkdir_following(root, &target, depth + 1)?;
        }
        prefix = here;
    }
    Ok(())
}

/// Runs the payload: execvp, and on failure Docker's 127 (not found) or
/// 126 (cannot invoke) as the container's own exit code.
#[derive(Clone, Default)]
struct Exec {
    /// For `ctr-exec`: the filter libcontainer's tenant path leaves out.
    late_seccomp: Option<LateSeccomp>,
    /// For build steps: the init is killed when the thread that started it
    /// dies (the builder's main thread), so a SIGKILLed img-build takes its
    /// RUN with it instead of leaving it to PID 1. Whatever escapes that
    /// (the builder dying before the init gets this far) is swept later
    /// through the step's cgroup.
    die_with_parent: bool,
}

/// A seccomp filter to load just before the exec, and the capabilities to
/// drop to after it. The tenant holds CAP_SYS_ADMIN until then, so the
/// filter loads without no-new-privileges, as runc does for `runc exec`.
#[derive(Clone)]
struct LateSeccomp {
    // Loaded only when berth is built with libcontainer's libseccomp.
    #[cfg_attr(not(feature = "seccomp"), allow(dead_code))]
    filter: oci_spec::runtime::LinuxSeccomp,
    capabilities: oci_spec::runtime::LinuxCapabilities,
}

impl LateSeccomp {
    fn apply(&self) -> Result<(), String> {
        #[cfg(feature = "seccomp")]
        libcontainer::seccomp::initialize_seccomp(&self.filter)
            .map_err(|e| format!("loading the seccomp filter: {e}"))?;
        let syscall = libcontainer::syscall::syscall::create_syscall();
        libcontainer::capabilities::drop_privileges(&self.capabilities, &*syscall)
            .map_err(|e| format!("dropping capabilities: {e}"))
    }
}

impl Executor for Exec {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        if self.die_with_parent {
            // SAFETY: prctl with integer arguments has no memory effects.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
        }
        if let Some(late) = &self.late_seccomp
            && let Err(why) = late.apply()
        {
            let line = format!("exec: {why}\n");
            // SAFETY: as below, in the forked process before exec.
            unsafe {
                libc::write(2, line.as_ptr().cast(), line.len());
                libc::_exit(126);
            }
        }
        let args = spec
            .process()
            .as_ref()
            .and_then(|p| p.args().clone())
            .ok_or(ExecutorError::InvalidArg)?;
        let c_args: Vec<std::ffi::CString> = args
            .iter()
            .map(|a| std::ffi::CString::new(a.as_bytes()).map_err(|_| ExecutorError::InvalidArg))
            .collect::<Result<_, _>>()?;
        let mut argv: Vec<*const libc::c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        // SAFETY: argv is a null-terminated array of valid C strings that
        // outlive the call; execvp only returns on failure.
        unsafe { libc::execvp(argv[0], argv.as_ptr()) };
        let err = io::Error::last_os_error();
        let (code, why) = match err.raw_os_error() {
            Some(libc::ENOENT) if !args[0].contains('/') => {
                (127, "executable file not found in $PATH".to_string())
            }
            Some(libc::ENOENT) => (127, "no such file or directory".to_string()),
            _ => (126, err.to_string()),
        };
        let line = format!("exec: \"{}\": {why}\n", args[0]);
        // SAFETY: writing a buffer to fd 2 and exiting without unwinding
        // are sound in the forked init process.
        unsafe {
            libc::write(2, line.as_ptr().cast(), line.len());
            libc::_exit(code);
        }
    }

    fn validate(&self, _spec: &Spec) -> Result<(), ExecutorValidationError> {
        // The exec itself reports a missing command, with Docker's codes.
        Ok(())
    }
}

/// The container's stdio; `None` inherits ours. With a console socket the
/// init makes a pty instead and sends its master there (`-t`).
#[derive(Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub console_socket: Option<PathBuf>,
}

/// Creates and starts the container through libcontainer; returns it and
/// its init's host PID. The init is our child (waitpid it with __WALL).
pub fn start(prepared: &Prepared, stdio: Stdio) -> Result<(Container, i32), RunError> {
    start_with(prepared, stdio, Exec::default())
}

fn start_with(
    prepared: &Prepared,
    stdio: Stdio,
    executor: Exec,
) -> Result<(Container, i32), RunError> {
    let runtime_root = prepared.runtime_root();
    fs::create_dir_all(&runtime_root).map_err(io_error(&runtime_root))?;
    let runtime = |e: libcontainer::error::LibcontainerError| RunError::Runtime(e.to_string());
    let mut builder = ContainerBuilder::new(prepared.id.clone(), SyscallType::Linux)
        .with_executor(executor)
        .with_root_path(&runtime_root)
        .map_err(runtime)?;
    let stdin = match stdio.stdin {
        Some(fd) => fd,
        None if prepared.interactive => {
            rustix::io::dup(rustix::stdio::stdin()).map_err(|e| RunError::Runtime(e.to_string()))?
        }
        None => File::open("/dev/null")
            .map_err(io_error(Path::new("/dev/null")))?
            .into(),
    };
    builder = builder.with_stdin(stdin);
    if let Some(fd) = stdio.stdout {
        builder = builder.with_stdout(fd);
    }
    if let Some(fd) = stdio.stderr {
        builder = builder.with_stderr(fd);
    }
    // libcontainer takes a console socket only for a "detached" init; the
    // flag changes nothing else, the init stays our child either way.
    let console = stdio.console_socket.is_some();
    let mut container = builder
        .with_console_socket(stdio.console_socket)
        .as_init(&prepared.dir)
        .with_systemd(false)
        .with_detach(console)
        .build()
        .map_err(runtime)?;
    crate::testhook::pause(crate::testhook::BEFORE_START);
    container.start().map_err(runtime)?;
    let pid = container
        .pid()
        .map(|p| p.as_raw())
        .ok_or_else(|| RunError::Runtime("libcontainer reported no init PID".to_string()))?;
    prepared
        .store
        .update_container(&prepared.id, |r| r.state.start(pid))?;
    Ok((container, pid))
}

/// Waits for the init (not our normal child: it has no exit signal, hence
/// __WALL), forwarding each signal `forward` yields. Returns Docker's code.
///
/// The exit is seen through a pidfd, and caught signals are looked for at
/// least every 50 ms: in a process with other threads (img-build's) a
/// signal may interrupt one of those instead of this wait.
pub fn wait(pid: i32, forward: &dyn Fn() -> Option<i32>) -> i32 {
    let pidfd = rustix::process::Pid::from_raw(pid)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    loop {
        if let Some(code) = try_reap(pid) {
            return code;
        }
        if let Some(sig) = forward() {
            // SAFETY: sending a signal to a PID has no memory effects.
            unsafe { libc::kill(pid, sig) };
        }
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        };
        match &pidfd {
            Some(fd) => {
                let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
                let _ = rustix::event::poll(&mut fds, Some(&timeout));
            }
            None => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
}

/// Docker's exit code of `pid` if it has exited (128+N for signal N), or
/// 125 if it cannot be waited for; `None` while it runs. It is not our
/// ordinary child (no exit signal), hence __WALL.
pub(super) fn try_reap(pid: i32) -> Option<i32> {
    let mut status = 0;
    // SAFETY: waitpid only writes the status integer we own.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL | libc::WNOHANG) };
    if r == pid {
        if libc::WIFEXITED(status) {
            return Some(libc::WEXITSTATUS(status));
        }
        if libc::WIFSIGNALED(status) {
            return Some(128 + libc::WTERMSIG(status));
        }
        return None; // stopped or continued: still there
    }
    if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
        return Some(125);
    }
    None
}

/// Records the exit of a container whose init has been waited for, removes
/// the runtime's state and the cgroups, unmounts, and honours `--rm`.
pub fn finish(prepared: Prepared, container: Container, code: i32) -> Result<(), RunError> {
    finish_reporting(prepared, container, code, None)
}

/// [`finish`], keeping in the record's `State.Error` (as Docker keeps a
/// failure there) what went wrong while the container ran, e.g. that its
/// log could not be written.
pub(crate) fn finish_reporting(
    mut prepared: Prepared,
    container: Container,
    code: i32,
    problem: Option<String>,
) -> Result<(), RunError> {
    let oom = oom_killed(&prepared.id);
    // The init has exited, and with it its PID namespace and every process
    // in it, so the cgroups are empty: `cleanup` removes them and the
    // runtime's state directly. libcontainer's `delete` would do the same,
    // but its cgroup manager re-reads /proc/self/mountinfo once per
    // controller: about 4 ms of a 25 ms `ctr-run --rm IMAGE true`.
    drop(container);
    let remove = prepared.remove;
    let result = if remove {
        Ok(())
    } else {
        prepared
            .store
            .update_container(&prepared.id, |r| {
                r.state.exit(code);
                r.state.oom_killed = oom;
                r.state.error = problem.unwrap_or_default();
            })
            .map(|_| ())
            .map_err(RunError::from)
    };
    prepared.cleanup(remove);
    result
}

/// cgroup v1 counts OOM kills in memory.oom_control; v2 in memory.events.
fn oom_killed(id: &str) -> bool {
    let v1 = Path::new("/sys/fs/cgroup/memory/berth")
        .join(id)
        .join("memory.oom_control");
    fs::read_to_string(v1)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
            })
        })
        .is_some_and(|n| n > 0)
}

static PENDING_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn remember_signal(sig: libc::c_int) {
    PENDING_SIGNAL.store(sig, std::sync::atomic::Ordering::SeqCst);
}

/// The signal caught since the last call, if any, to pass on.
pub fn pending_signal() -> Option<i32> {
    match PENDING_SIGNAL.swap(0, std::sync::atomic::Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// Catches the signals an attached client passes on to the container
/// (Docker's sig-proxy): interrupt, terminate, hang-up, quit, USR1, USR2.
/// No SA_RESTART, so a blocking wait returns EINTR and forwards at once.
pub fn catch_forwarded_signals() {
    for sig in [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ] {
        // SAFETY: the handler only stores into an atomic (async-signal-safe).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = remember_signal as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

/// `ctr-run` in the foreground: the container's stdio are ours, and its
/// exit code (128+N for signal N) is returned.
pub fn run_foreground(store: &Store, opts: &RunOptions) -> Result<i32, RunError> {
    let prepared = prepare(store, opts)?;
    // Like an attached `docker run`: the container writes to pipes, and we
    // pass its output on and keep it in its json-file log for ctr-logs.
    let pipe = || rustix::pipe::pipe().map_err(|e| RunError::Runtime(e.to_string()));
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let stdio = Stdio {
        stdout: Some(out_w),
        stderr: Some(err_w),
        ..Stdio::default()
    };
    // Caught from before the start: an interrupt that comes while the
    // container starts is passed on once it runs, never lost.
    catch_forwarded_signals();
    let (container, pid) = start(&prepared, stdio)?;
    // A closed stdout of ours must be an EPIPE we handle, not our death
    // (which would orphan the container).
    // SAFETY: changing a signal disposition has no memory effects.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let pending = pending_signal;
    let mut log = prepared.store.open_log(&prepared.id).ok();
    monitor::copy_to_log(out_r, err_r, log.as_mut(), true, &|| {
        if let Some(sig) = pending() {
            // SAFETY: sending a signal has no memory effects.
            unsafe { libc::kill(pid, sig) };
        }
    });
    let code = wait(pid, &pending);
    finish(prepared, container, code)?;
    Ok(code)
}
