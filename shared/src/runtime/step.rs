//! A build step's container: a RUN command run to completion on a root
//! filesystem the builder has already mounted, so its changes land in the
//! builder's overlay upper dir. Same spec and defaults as `ctr-run`.

use super::create::{self, Prepared};
use super::process::{self, Exec, Stdio};
use super::spec::{self, Limits, Tmpfs, Volume};
use super::{RunError, relay, rootfs, seccomp, user};
use crate::container::{self, Config, HostConfig, Owner, Record, STEP_LABEL, State};
use crate::network::NetworkMode;
use crate::store::Store;
use std::os::fd::OwnedFd;
use std::path::Path;

/// What one RUN step runs, and how.
pub struct StepOptions<'a> {
    /// The mounted root filesystem (the builder unmounts nothing itself:
    /// it is detached when the step's container is cleaned up).
    pub rootfs: &'a Path,
    pub args: &'a [String],
    pub env: &'a [String],
    pub workdir: &'a str,
    /// Docker's user syntax, resolved through the rootfs's /etc/passwd.
    pub user: &'a str,
    pub network: NetworkMode,
    /// `RUN --mount=type=cache` directories and tmpfs mounts.
    pub volumes: &'a [Volume],
    pub tmpfs: &'a [Tmpfs],
    /// Where the command's stdout and stderr go (copied through pipes of
    /// ours, never handed to the step); `None` drops them (`img-build -q`).
    pub output: Option<OwnedFd>,
}

/// Runs the step's command in a throwaway container and returns its exit
/// code (Docker's 126/127 when the command cannot run). The container's
/// record exists only while it runs, as Docker's intermediate containers.
pub fn run_step(store: &Store, options: StepOptions) -> Result<i32, RunError> {
    super::grace_period::begin();
    let id = container::new_id().map_err(RunError::io(Path::new("/dev/urandom")))?;
    let hostname = id[..12].to_string();
    let dir = store.container_dir(&id);
    let record = Record {
        id: id.clone(),
        name: format!("/{}", container::random_name()),
        created: container::now(),
        path: options.args.first().cloned().unwrap_or_default(),
        args: options.args.iter().skip(1).cloned().collect(),
        state: State::created(),
        config: Config {
            hostname: hostname.clone(),
            user: options.user.to_string(),
            env: options.env.to_vec(),
            cmd: options.args.to_vec(),
            working_dir: options.workdir.to_string(),
            labels: [(STEP_LABEL.to_string(), "true".to_string())].into(),
            ..Config::default()
        },
        host_config: HostConfig {
            network_mode: options.network.to_string(),
            auto_remove: true,
            cgroup_parent: "/berth".to_string(),
            ..HostConfig::default()
        },
        driver: "overlay2".to_string(),
        platform: "linux".to_string(),
        ..Record::default()
    };
    // The owner lock comes before the record, so a step record nobody owns
    // is always one whose builder died.
    let owner = store.claim_container_dir(&id, Owner::take)?;
    if let Err(e) = store.create_container(&record) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e.into());
    }
    let prepared = Prepared {
        store: store.clone(),
        id: id.clone(),
        dir: dir.clone(),
        rootfs: options.rootfs.to_path_buf(),
        remove: true,
        interactive: false,
        stdin_once: false,
        tty: false,
        owner: Some(owner),
        new: true,
        armed: true,
    };
    let resolved = user::resolve(options.rootfs, options.user)?;
    let mut env = options.env.to_vec();
    if let Some(home) = &resolved.home
        && !env.iter().any(|e| e.starts_with("HOME="))
    {
        env.push(format!("HOME={home}"));
    }
    rootfs::mkdir_in_root(options.rootfs, options.workdir).map_err(RunError::io(
        &options.rootfs.join(options.workdir.trim_start_matches('/')),
    ))?;
    create::connect(store, &record)?;
    spec::prepare_cgroup_mountpoint(options.rootfs)?;
    let caps = spec::capabilities(false, &[], &[]);
    // Docker's build steps run under the default seccomp filter too.
    let seccomp = seccomp::filter(&seccomp::Seccomp::Default, &caps, false)?;
    let spec = spec::build(&spec::SpecInput {
        id: &id,
        rootfs: options.rootfs,
        container_dir: &dir,
        args: options.args,
        env: &env,
        cwd: options.workdir,
        user: &resolved,
        hostname: &hostname,
        tty: false,
        read_only: false,
        privileged: false,
        no_new_privileges: false,
        caps: &caps,
        network: options.network,
        volumes: options.volumes,
        tmpfs: options.tmpfs,
        limits: &Limits::default(),
        seccomp,
    })?;
    spec.save(dir.join("config.json"))
        .map_err(|e| RunError::Spec(e.to_string()))?;
    // Ctrl-C cancels the step, as it cancels a docker build: its command is
    // killed (a PID 1 would ignore SIGINT) and the builder then cleans up
    // as after any failed step, instead of dying with the step mounted.
    // Caught from before the start, so no interrupt falls in between.
    process::catch_forwarded_signals();
    let pipes = relay::Pipes::new(false).map_err(|e| RunError::Runtime(e.to_string()))?;
    let ((stdin, stdout, stderr), relaying) = pipes.split();
    let (out, err) = match options.output {
        Some(fd) => {
            let copy = fd
                .try_clone()
                .map_err(RunError::io(Path::new("RUN output")))?;
            (relay::Sink::Fd(fd), relay::Sink::Fd(copy))
        }
        None => (relay::Sink::Discard, relay::Sink::Discard),
    };
    let (container, pid) = process::start_with(
        &prepared,
        Stdio {
            stdin: Some(stdin),
            stdout: Some(stdout),
            stderr: Some(stderr),
            console_socket: None,
        },
        Exec {
            die_with_parent: true,
            ..Exec::default()
        },
    )?;
    let code = relaying.run(pid, out, err, &|| {
        process::pending_signal().map(|_| libc::SIGKILL)
    });
    process::finish(prepared, container, code)?;
    Ok(code)
}
