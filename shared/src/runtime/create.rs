//! A container made ready to start: `prepare` checks the flags, resolves
//! the image, writes the record, mounts the rootfs and saves the spec,
//! leaving nothing behind on error; `reopen` readies a stopped one again,
//! leaving it as it was on error.

use super::mounts::{MountFlag, MountSource};
use super::options::{self, RunOptions};
use super::spec::{self, Volume};
use super::{FlagError, RunError, rootfs, seccomp, user};
use crate::container::endpoint::{self, EndpointSettings, NetworkSettings};
use crate::container::health::HealthConfig;
use crate::container::owner::{self, Owner};
use crate::container::{self, Config, HostConfig, MountPoint, Record, State};
use crate::network::ports::{Port, Published};
use crate::network::{self, Endpoint, EtcFiles, NetworkMode, NetworkRequest};
use crate::store::{Store, StoreError};
use crate::volume::Volumes;
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
    /// Where libcontainer keeps its state of the container: in memory
    /// when the machine allows (see `Store::runtime_dir`).
    pub(super) fn runtime_root(&self) -> PathBuf {
        self.store.runtime_dir()
    }

    /// Tears the running parts down (the one teardown: the overlay,
    /// libcontainer's state, the cgroups); with `remove` also the
    /// container's directory (its upper dir is kept otherwise, so that a
    /// restart finds its files).
    pub fn cleanup(&mut self, remove: bool) {
        // A start that failed midway may have left libcontainer's init in
        // the cgroup, which then could not be removed.
        owner::kill_cgroup(&self.id);
        owner::teardown(&self.store, &self.id, &self.rootfs);
        if remove {
            let record = self.store.load_container(&self.id);
            let _ = self.store.remove_container(&self.id);
            // `--rm` takes the container's anonymous volumes with it, as
            // Docker's does; named ones stay.
            if let Ok(record) = record {
                let _ = Volumes::of(&self.store).remove_anonymous_of(&record);
            }
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
    let healthcheck = HealthConfig::merged(
        checked.healthcheck.clone(),
        image_healthcheck(store, &image),
    );

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
    // `--network container:NAME` names the other container by its full ID
    // from here on (Docker's HostConfig.NetworkMode), and takes its host
    // name, as its namespace.
    let (network_mode, joined_hostname) = match &opts.network {
        NetworkMode::Container(target) => {
            let other = store.find_container(target)?;
            (
                NetworkMode::Container(other.id),
                Some(other.config.hostname),
            )
        }
        mode => (mode.clone(), None),
    };
    let hostname = opts
        .hostname
        .clone()
        .or(joined_hostname)
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
    // Docker keeps `-v /path` in Config.Volumes beside the image's.
    for flag in &checked.volumes {
        if flag.source == MountSource::Anonymous && !flag.from_mount {
            volume_map.insert(flag.target.clone(), serde_json::json!({}));
        }
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
            healthcheck,
            ..Config::default()
        },
        host_config: HostConfig {
            binds: checked
                .volumes
                .iter()
                .filter_map(|v| v.bind.clone())
                .collect(),
            mounts: checked
                .volumes
                .iter()
                .filter(|v| v.from_mount)
                .map(MountFlag::mount_json)
                .collect(),
            network_mode: network_mode.to_string(),
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
            restart_policy: Some(opts.restart),
        },
        mounts: Vec::new(),
        log_path: dir.join(format!("{id}-json.log")).display().to_string(),
        resolv_conf_path: dir.join("resolv.conf").display().to_string(),
        hostname_path: dir.join("hostname").display().to_string(),
        hosts_path: dir.join("hosts").display().to_string(),
        driver: "overlay2".to_string(),
        platform: "linux".to_string(),
        network_settings: NetworkSettings::unattached(
            network_mode.clone(),
            opts.ip,
            &opts.network_aliases,
        ),
        restart_count: 0,
    };
    let mut record = record;
    // Every mount the container will have: the flags', then the image's
    // VOLUMEs no flag covers, each an anonymous volume.
    let mut wanted: Vec<MountFlag> = checked.volumes.clone();
    for target in record.config.volumes.keys() {
        if !wanted.iter().any(|v| v.target == *target) {
            wanted.push(MountFlag {
                source: MountSource::Anonymous,
                target: target.clone(),
                read_only: false,
                nocopy: false,
                mode: String::new(),
                bind: None,
                from_mount: false,
            });
        }
    }
    // The owner lock comes before the record: a record nobody owns is never
    // one being made.
    let owner = store.claim_container_dir(&id, Owner::take)?;
    // The volumes are made and the record naming them written under the
    // volumes lock: vol-rm and vol-prune, which take it too, see the
    // volume in use as soon as it exists for this container.
    // A container without volumes leaves the volumes alone (and the lock:
    // every start would queue behind vol-prune otherwise).
    let volumes = Volumes::of(store);
    let any_volume = wanted
        .iter()
        .any(|v| !matches!(v.source, MountSource::Host(_)));
    let created = (|| -> Result<(), RunError> {
        let _lock = any_volume.then(|| volumes.lock()).transpose()?;
        mount_points(&volumes, &wanted, &mut record.mounts)?;
        store.create_container(&record)?;
        Ok(())
    })();
    if let Err(e) = created {
        let _ = fs::remove_dir_all(&dir);
        let _ = volumes.remove_anonymous_of(&record);
        return Err(e);
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

    let mut binds = Vec::new();
    for (mount, flag) in record.mounts.iter().zip(&wanted) {
        let source = PathBuf::from(&mount.source);
        // Docker makes a missing host path a directory; a file, socket or
        // device that is there is bound as it is.
        if mount.name.is_none() && fs::symlink_metadata(&source).is_err() {
            fs::create_dir_all(&source).map_err(RunError::io(&source))?;
        }
        // The target as the container resolves it: a symlink in the image
        // leads inside the root, and what it names is made if missing.
        let target_dir = if source.is_dir() {
            flag.target.as_str()
        } else {
            flag.target.rsplit_once('/').map_or("/", |(dir, _)| dir)
        };
        rootfs::mkdir_in_root(&prepared.rootfs, target_dir).map_err(RunError::io(
            &prepared.rootfs.join(flag.target.trim_start_matches('/')),
        ))?;
        // Docker fills an empty volume with what the image has there:
        // contents, owner and mode, read inside the root so an image's
        // symlink cannot point the copy at the host.
        if let Some(name) = &mount.name
            && !flag.nocopy
        {
            volumes.populate_once(name, |data| {
                rootfs::copy_image_dir(&prepared.rootfs, &flag.target, data)
            })?;
        }
        binds.push(Volume {
            source,
            target: flag.target.clone(),
            read_only: flag.read_only,
        });
    }
    let volumes = binds;
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
        network: network_mode.clone(),
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

/// The container's `Mounts` in Docker's shape, its volumes made (named
/// ones if missing, anonymous ones new), each added as it is made so a
/// failure can remove the anonymous ones. The caller holds the volumes lock.
fn mount_points(
    volumes: &Volumes,
    wanted: &[MountFlag],
    mounts: &mut Vec<MountPoint>,
) -> Result<(), RunError> {
    for flag in wanted {
        let mount = match &flag.source {
            MountSource::Host(path) => MountPoint {
                kind: "bind".to_string(),
                name: None,
                source: path.display().to_string(),
                destination: flag.target.clone(),
                driver: None,
                mode: flag.mode.clone(),
                rw: !flag.read_only,
                propagation: "rprivate".to_string(),
            },
            source => {
                let name = match source {
                    MountSource::Named(name) => Some(name.as_str()),
                    _ => None,
                };
                let volume = volumes.ensure(name)?;
                MountPoint {
                    kind: "volume".to_string(),
                    source: volumes.data_dir(&volume.name).display().to_string(),
                    name: Some(volume.name),
                    destination: flag.target.clone(),
                    driver: Some(volume.driver),
                    mode: flag.mode.clone(),
                    rw: !flag.read_only,
                    propagation: String::new(),
                }
            }
        };
        mounts.push(mount);
    }
    Ok(())
}

/// Makes a stopped container ready to start again: the same spec, the same
/// upper dir over its image's layers. A failure leaves it as it was.
pub fn reopen(store: &Store, id: &str) -> Result<Prepared, RunError> {
    let owner = Owner::take(&store.container_dir(id))?;
    reopen_owned(store, id, owner)
}

/// [`reopen`] by the owner already holding it: the monitor restarting the
/// container per its restart policy.
pub(super) fn reopen_owned(store: &Store, id: &str, owner: Owner) -> Result<Prepared, RunError> {
    super::grace_period::begin();
    let dir = store.container_dir(id);
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

/// The image's HEALTHCHECK (`config.Healthcheck` of its config blob, which
/// the OCI config type drops), if it has one.
fn image_healthcheck(store: &Store, image: &crate::store::Image) -> Option<HealthConfig> {
    let bytes = store.read_blob(&image.id()).ok()?;
    let config: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    serde_json::from_value(config.get("config")?.get("Healthcheck")?.clone()).ok()
}

/// What container `record` asks of its network: its mode, and on a
/// bridge each network its record names (the mode's first, with `--ip`
/// and its ports: `-p`, and with `-P` every exposed port not published
/// already; then those net-connect added, by name). A record that names
/// none (a build step's, or one disconnected from all) is on its mode's.
fn network_request(record: &Record) -> Result<NetworkRequest, RunError> {
    let mode: NetworkMode = record.host_config.network_mode.parse()?;
    let Some(primary) = mode.network().and(mode.endpoint_name()) else {
        return Ok(NetworkRequest {
            mode,
            endpoints: Vec::new(),
        });
    };
    let networks = &record.network_settings.networks;
    let endpoint = |key: &str, settings: Option<&EndpointSettings>| Endpoint {
        network: key.to_string(),
        ip: settings.and_then(EndpointSettings::wanted_ip),
        aliases: settings.and_then(|e| e.aliases.clone()).unwrap_or_default(),
        publish: Vec::new(),
    };
    let mut endpoints = Vec::new();
    if networks.contains_key(primary) || networks.is_empty() {
        let mut first = endpoint(primary, networks.get(primary));
        first.publish = endpoint::published(&record.host_config.port_bindings);
        if record.host_config.publish_all_ports {
            for port in exposed(record) {
                if !first.publish.iter().any(|p| p.container == port) {
                    first.publish.push(Published {
                        container: port,
                        host_ip: None,
                        host_port: None,
                    });
                }
            }
        }
        endpoints.push(first);
    }
    for (key, settings) in networks {
        if key != primary && !["host", "none"].contains(&key.as_str()) {
            endpoints.push(endpoint(key, Some(settings)));
        }
    }
    Ok(NetworkRequest { mode, endpoints })
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

/// Attaches the container of `record` to its networks (for a bridge: a
/// namespace, and per network an address, host ports, netavark's wiring;
/// for `container:ID`, that container's namespace), writes the files that
/// name it inside, and records what it got. Its owner's teardown undoes it.
pub(super) fn connect(store: &Store, record: &Record) -> Result<(), RunError> {
    let request = network_request(record)?;
    if let NetworkMode::Container(other) = &request.mode {
        return join(store, record, other);
    }
    let name = record.name.trim_start_matches('/');
    let earlier = record.network_settings.host_ports();
    let attached = network::attach::attach(store, &record.id, name, &request, &earlier)?;
    let first = attached.first();
    let gateway = first
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
    // --dns wins; else the networks that resolve names are asked.
    let resolvers: Vec<String> = attached
        .iter()
        .flat_map(|a| a.dns_servers.iter().cloned())
        .collect();
    let dir = store.container_dir(&record.id);
    network::write_etc_files(
        &dir,
        &EtcFiles {
            hostname: &record.config.hostname,
            network: request.mode.clone(),
            address: first.map(|a| a.ip),
            extra_hosts: &extra_hosts,
            dns: match &record.host_config.dns {
                dns if dns.is_empty() => &resolvers,
                dns => dns,
            },
        },
    )?;
    let exposed = exposed(record);
    let primary = request.mode.endpoint_name().map(str::to_string);
    store.update_container(&record.id, |r| {
        // What a stopped container shows (its networks named, what they
        // asked for), then what each network gave; entries net-connect
        // added meanwhile are kept.
        r.network_settings = r.network_settings.shown(false);
        for (endpoint, attached) in request.endpoints.iter().zip(&attached) {
            let is_primary = primary.as_deref() == Some(endpoint.network.as_str());
            r.network_settings.attached(
                &record.id,
                &endpoint.network,
                attached,
                is_primary.then_some(exposed.as_slice()),
            );
        }
    })?;
    Ok(())
}

/// `--network container:ID`: pins the running container `other`'s network
/// namespace as this one's, and gives it that container's host name,
/// hosts file and resolv.conf, as Docker's joined containers share them.
fn join(store: &Store, record: &Record, other: &str) -> Result<(), RunError> {
    let target = owner::refresh(store, store.find_container(other)?);
    let pid = target.state.pid;
    if !target.state.running || !owner::init_alive(&target.id, pid) {
        return Err(RunError::JoinStopped(other.to_string()));
    }
    network::attach::join(store, &record.id, &target.id, pid)?;
    // The PID was the other container's init before the pin; if it still
    // is, the pinned namespace is that container's.
    if !owner::init_alive(&target.id, pid) {
        network::attach::detach(store, &record.id);
        return Err(RunError::JoinStopped(other.to_string()));
    }
    let (from, to) = (
        store.container_dir(&target.id),
        store.container_dir(&record.id),
    );
    for file in ["hostname", "hosts", "resolv.conf"] {
        fs::copy(from.join(file), to.join(file)).map_err(RunError::io(&from.join(file)))?;
    }
    store.update_container(&record.id, |r| {
        r.network_settings = NetworkSettings::default();
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
