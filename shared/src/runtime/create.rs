//! A container made ready to start: `prepare` checks the flags, resolves
//! the image, writes the record, mounts the rootfs and saves the spec,
//! leaving nothing behind on error; `reopen` readies a stopped one again,
//! leaving it as it was on error.

use super::options::{self, RunOptions};
use super::spec::{self, Volume};
use super::{FlagError, RunError, rootfs, seccomp, user};
use crate::container::endpoint::{self, NetworkSettings};
use crate::container::owner::{self, Owner};
use crate::container::{self, Config, HostConfig, MountPoint, Record, State};
use crate::network::ports::{Port, Published};
use crate::network::{self, EtcFiles, NetworkMode, NetworkRequest};
use crate::store::{Store, StoreError};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn env_key(entry: &str) -> &str {
    entry.split('=').next().unwrap_or(entry)
}

/// The container's `Config.Env` as Docker keeps it: the `-e` entries in
/// order, then the image's entries whose name `-e` did not set.
fn merged_env(user: &[String], image: &[String]) -> Vec<String> {
    let mut env = user.to_vec();
    env.extend(
        image
            .iter()
            .filter(|i| !user.iter().any(|u| env_key(u) == env_key(i)))
            .cloned(),
    );
    env
}

/// The process's environment as Docker's engine makes it: a default PATH
/// and HOSTNAME first, then `config_env`, each entry replacing the one of
/// its name in place or appended (HOME comes last, from the user).
fn process_env(hostname: &str, config_env: &[String]) -> Vec<String> {
    let mut env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        format!("HOSTNAME={hostname}"),
    ];
    for entry in config_env {
        match env.iter_mut().find(|e| env_key(e) == env_key(entry)) {
            Some(slot) => *slot = entry.clone(),
            None => env.push(entry.clone()),
        }
    }
    env
}

/// The image's labels with `--label KEY=VALUE` (or `KEY`, an empty value)
/// set over them.
fn merged_labels(
    image: std::collections::HashMap<String, String>,
    flags: &[String],
) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = image.into_iter().collect();
    for flag in flags {
        let (key, value) = flag.split_once('=').unwrap_or((flag, ""));
        labels.insert(key.to_string(), value.to_string());
    }
    labels
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
    /// Held for as long as someone owns the running container: this
    /// process, then the monitor it hands the container to.
    pub(super) owner: Option<Owner>,
    /// Whether a failure before start removes the container (a new one) or
    /// leaves it as it was (one being started again).
    pub(super) new: bool,
    /// Whether dropping it tears it down (it has not been handed on).
    pub(super) armed: bool,
}

impl Prepared {
    /// libcontainer's state directory for all berth containers.
    pub(super) fn runtime_root(&self) -> PathBuf {
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
    let checked = options::check(opts)?;
    let wanted = opts.platform.as_ref();
    // Leased from here until the container's record names the image, so
    // img-rm and img-prune see it in use while its layers are unpacked.
    let (image, lease) = store.lease_image(|store| {
        // A multi-platform tag gives the platform asked for, if it is here;
        // an image of another platform is found by name, to be refused below.
        let found = match store.resolve_image_for(&opts.image, wanted) {
            Err(StoreError::NoSuchImage(_)) if wanted.is_some() => store.resolve_image(&opts.image),
            other => other,
        };
        found.map_err(|e| match e {
            StoreError::NoSuchImage(_) => RunError::NoImage(opts.image.clone()),
            other => RunError::Store(other),
        })
    })?;
    crate::testhook::pause(crate::testhook::AFTER_LEASE);
    let image_config = store.read_image_config(&image)?;
    if let Some(wanted) = wanted {
        let arch = image_config.architecture().to_string();
        let os = image_config.os().to_string();
        if !wanted.matches(&os, &arch, image_config.variant().as_deref()) {
            return Err(RunError::Platform {
                image: format!("{os}/{arch}"),
                wanted: wanted.to_string(),
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

    let id = container::new_id().map_err(RunError::io(Path::new("/dev/urandom")))?;
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
        return Err(FlagError::new(
            "--workdir",
            &workdir,
            "the working directory must be absolute",
        )
        .into());
    }
    let config_env = merged_env(&checked.env, &config.env().clone().unwrap_or_default());
    let mut env = process_env(&hostname, &config_env);
    let mut volume_map = BTreeMap::new();
    for v in config.volumes().clone().unwrap_or_default() {
        volume_map.insert(v, serde_json::json!({}));
    }
    // Docker's ExposedPorts: the image's, and every port -p publishes.
    let mut exposed_ports = BTreeMap::new();
    let image_ports = config.exposed_ports().clone().unwrap_or_default();
    let published_ports = checked.publish.iter().map(|p| p.container.to_string());
    for port in image_ports.into_iter().chain(published_ports) {
        if let Ok(port) = port.parse::<Port>() {
            exposed_ports.insert(port.to_string(), serde_json::json!({}));
        }
    }

    // The volumes, known before anything is made, so the record is written
    // once with its mounts: the `-v` binds, then an anonymous volume in the
    // container's directory for each image VOLUME no bind covers.
    let mut volumes = checked.volumes.clone();
    let binds = volumes.len();
    for (i, target) in volume_map.keys().enumerate() {
        if volumes.iter().any(|v| v.target == *target) {
            continue;
        }
        volumes.push(Volume {
            source: dir.join("volumes").join(i.to_string()),
            target: target.clone(),
            read_only: false,
        });
    }
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
            env: config_env.clone(),
            cmd: cmd.clone(),
            image: opts.image.clone(),
            volumes: volume_map,
            working_dir: workdir.clone(),
            entrypoint: (!entrypoint.is_empty()).then(|| entrypoint.clone()),
            labels: merged_labels(config.labels().clone().unwrap_or_default(), &opts.labels),
            stop_signal: config.stop_signal().clone().unwrap_or_default(),
            exposed_ports,
            ..Config::default()
        },
        host_config: HostConfig {
            binds: opts.volumes.clone(),
            network_mode: opts.network.to_string(),
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
            port_bindings: endpoint::port_bindings(&checked.publish),
            publish_all_ports: opts.publish_all,
            extra_hosts: checked
                .extra_hosts
                .iter()
                .map(|(name, ip)| format!("{name}:{ip}"))
                .collect(),
            dns: opts.dns.clone(),
        },
        mounts,
        log_path: dir.join(format!("{id}-json.log")).display().to_string(),
        resolv_conf_path: dir.join("resolv.conf").display().to_string(),
        hostname_path: dir.join("hostname").display().to_string(),
        hosts_path: dir.join("hosts").display().to_string(),
        driver: "overlay2".to_string(),
        platform: "linux".to_string(),
        network_settings: NetworkSettings::unattached(
            opts.network.clone(),
            opts.ip,
            &opts.network_aliases,
        ),
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
        fs::create_dir(&path).map_err(RunError::io(&path))?;
    }
    fs::set_permissions(
        dir.join("upper"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .map_err(RunError::io(&dir))?;
    rootfs::prepare(&layers, &dir, opts.remove)?;

    let user = user::resolve(&prepared.rootfs, &user_spec)?;
    if let Some(home) = &user.home
        && !env.iter().any(|e| e.starts_with("HOME="))
    {
        env.push(format!("HOME={home}"));
    }
    rootfs::mkdir_in_root(&prepared.rootfs, &workdir).map_err(RunError::io(
        &prepared.rootfs.join(workdir.trim_start_matches('/')),
    ))?;
    connect(store, &record)?;

    for v in &volumes[..binds] {
        // Docker makes a missing host path a directory; a file, socket or
        // device that is there is bound as it is.
        if fs::symlink_metadata(&v.source).is_err() {
            fs::create_dir_all(&v.source).map_err(RunError::io(&v.source))?;
        }
        // The target as the container resolves it: a symlink in the image
        // leads inside the root, and what it names is made if missing.
        let target_dir = if v.source.is_dir() {
            v.target.as_str()
        } else {
            v.target.rsplit_once('/').map_or("/", |(dir, _)| dir)
        };
        rootfs::mkdir_in_root(&prepared.rootfs, target_dir).map_err(RunError::io(
            &prepared.rootfs.join(v.target.trim_start_matches('/')),
        ))?;
    }
    for v in &volumes[binds..] {
        fs::create_dir_all(&v.source).map_err(RunError::io(&v.source))?;
        // Docker starts a new anonymous volume with what the image has there.
        rootfs::copy_image_dir(&prepared.rootfs, &v.target, &v.source)
            .map_err(RunError::io(&v.source))?;
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
        network: opts.network.clone(),
        volumes: &volumes,
        tmpfs: &checked.tmpfs,
        limits: &checked.limits,
        seccomp,
    })?;
    let spec_path = dir.join("config.json");
    let spec_json = serde_json::to_vec_pretty(&spec).map_err(|e| RunError::Spec(e.to_string()))?;
    container::write_private(&spec_path, &spec_json).map_err(RunError::io(&spec_path))?;
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
        fs::create_dir_all(&path).map_err(RunError::io(&path))?;
    }
    let rootfs = dir.join("rootfs");
    // A crash may have left the old overlay mounted, its runtime state, and
    // its network.
    owner::teardown(store, id, &rootfs);
    rootfs::prepare(&layers, &dir, record.host_config.auto_remove)?;
    if let Err(e) = connect(store, &record) {
        owner::teardown(store, id, &rootfs);
        return Err(e);
    }
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

/// What container `record` asks of its network: its mode, `--ip`, and its
/// ports (`-p`, and with `-P` every exposed port not published already).
fn network_request(record: &Record) -> Result<NetworkRequest, RunError> {
    let mode: NetworkMode = record.host_config.network_mode.parse()?;
    let endpoint = record.network_settings.networks.get(mode.as_str());
    let ip = endpoint
        .and_then(|e| e.ipam_config.as_ref())
        .and_then(|c| c.ipv4_address.parse().ok());
    let aliases = endpoint.and_then(|e| e.aliases.clone()).unwrap_or_default();
    let mut publish = endpoint::published(&record.host_config.port_bindings);
    if record.host_config.publish_all_ports {
        for port in exposed(record) {
            if !publish.iter().any(|p| p.container == port) {
                publish.push(Published {
                    container: port,
                    host_ip: None,
                    host_port: None,
                });
            }
        }
    }
    Ok(NetworkRequest {
        mode,
        ip,
        publish,
        aliases,
    })
}

/// The container's exposed ports (`Config.ExposedPorts`).
fn exposed(record: &Record) -> Vec<Port> {
    record
        .config
        .exposed_ports
        .keys()
        .filter_map(|key| key.parse().ok())
        .collect()
}

/// Attaches the container of `record` to its network (for a bridge: an
/// address, host ports, a namespace, netavark's wiring), writes the files
/// that name it inside, and records what it got. Its owner's teardown
/// undoes it.
pub(super) fn connect(store: &Store, record: &Record) -> Result<(), RunError> {
    let request = network_request(record)?;
    let name = record.name.trim_start_matches('/');
    let earlier = record.network_settings.host_ports();
    let attached = network::attach::attach(store, &record.id, name, &request, &earlier)?;
    let gateway = attached
        .as_ref()
        .and_then(|a| a.network.subnet().ok())
        .map(|s| s.gateway().to_string());
    let extra_hosts: Vec<(String, String)> = record
        .host_config
        .extra_hosts
        .iter()
        .filter_map(|entry| entry.split_once(':'))
        .map(|(name, ip)| {
            let ip = match (ip, &gateway) {
                (options::HOST_GATEWAY, Some(gateway)) => gateway.clone(),
                _ => ip.to_string(),
            };
            (name.to_string(), ip)
        })
        .collect();
    let dir = store.container_dir(&record.id);
    network::write_etc_files(
        &dir,
        &EtcFiles {
            hostname: &record.config.hostname,
            network: request.mode.clone(),
            address: attached.as_ref().map(|a| a.ip),
            extra_hosts: &extra_hosts,
            // --dns wins; else a network that resolves names is asked.
            dns: match (&record.host_config.dns, &attached) {
                (dns, Some(attached)) if dns.is_empty() => &attached.dns_servers,
                (dns, _) => dns,
            },
        },
    )?;
    let exposed = exposed(record);
    store.update_container(&record.id, |r| {
        r.network_settings =
            NetworkSettings::unattached(request.mode.clone(), request.ip, &request.aliases);
        if let Some(attached) = &attached {
            r.network_settings.attached(&record.id, attached, &exposed);
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod env_tests {
    use super::*;

    #[test]
    fn env_is_ordered_as_docker_s_engine_orders_it() {
        let image = ["PATH=/bin".to_string(), "A=image".to_string()];
        let user = ["B=2".to_string(), "A=1".to_string()];
        let config = merged_env(&user, &image);
        assert_eq!(config, ["B=2", "A=1", "PATH=/bin"]);
        assert_eq!(
            process_env("h", &config),
            ["PATH=/bin", "HOSTNAME=h", "B=2", "A=1"]
        );
        // `-e HOSTNAME=x` wins in place.
        assert_eq!(
            process_env("h", &["HOSTNAME=x".to_string()])[1],
            "HOSTNAME=x"
        );
    }

    #[test]
    fn labels_from_flags_override_the_image_s() {
        let image = [("a".to_string(), "image".to_string())].into();
        let labels = merged_labels(image, &["a=flag".into(), "bare".into(), "c=x=y".into()]);
        let want: BTreeMap<String, String> = [("a", "flag"), ("bare", ""), ("c", "x=y")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(labels, want);
    }
}
