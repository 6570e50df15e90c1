//! `ctr-exec`: a new process in a running container's namespaces and
//! cgroup, through libcontainer's tenant builder, with the container's own
//! process settings (capabilities, env, user) as the baseline.

use super::process::{Exec, LateSeccomp, wait};
use super::tty::{self, ConsoleSocket};
use super::{FlagError, RunError, relay, user};
use crate::container::{Record, owner};
use crate::store::Store;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use oci_spec::runtime::{Capability, LinuxCapabilities, Process, Spec, UserBuilder};
use std::fs::File;
use std::path::Path;

/// What `ctr-exec` was asked.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub interactive: bool,
    pub tty: bool,
    pub detach: bool,
}

/// Runs the command in the container; returns its exit code (0 at once
/// with `detach`).
pub fn exec(store: &Store, record: &Record, opts: &ExecOptions) -> Result<i32, RunError> {
    super::grace_period::begin();
    if !record.state.running || !owner::init_alive(&record.id, record.state.pid) {
        return Err(RunError::NotRunning(record.id.clone()));
    }
    if record.state.paused {
        // Its new process would join the frozen cgroup and hang there.
        return Err(RunError::Paused(record.id.clone()));
    }
    if opts.command.is_empty() {
        return Err(RunError::NoCommand);
    }
    if opts.tty && opts.interactive && !tty::is_terminal(rustix::stdio::stdin()) {
        return Err(super::attach::AttachError::NotATerminal.into());
    }
    let dir = store.container_dir(&record.id);
    let process_path = dir.join(format!("exec-{}.json", std::process::id()));
    let (process, late_seccomp) = process_for(&dir, opts)?;
    let file = File::create(&process_path).map_err(RunError::io(&process_path))?;
    serde_json::to_writer(file, &process).map_err(|e| RunError::Spec(e.to_string()))?;
    let executor = Exec {
        late_seccomp,
        die_with_parent: false,
    };
    let result = run(store, &dir, &record.id, &process_path, executor, opts);
    let _ = std::fs::remove_file(&process_path);
    result
}

/// The init's process from the saved spec, with the command, env, working
/// dir, user and terminal changed as asked, and the container's seccomp
/// filter for the executor to load (libcontainer's tenant path drops it).
pub(super) fn process_for(
    dir: &Path,
    opts: &ExecOptions,
) -> Result<(Process, Option<LateSeccomp>), RunError> {
    let spec_path = dir.join("config.json");
    let spec = Spec::load(&spec_path).map_err(|e| RunError::Spec(e.to_string()))?;
    let mut process = spec.process().clone().unwrap_or_default();
    let mut env = process.env().clone().unwrap_or_default();
    for entry in &opts.env {
        let key = entry.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(entry.clone());
    }
    process.set_env(Some(env));
    process.set_args(Some(opts.command.clone()));
    process.set_terminal(Some(opts.tty));
    if let Some(workdir) = &opts.workdir {
        if !workdir.starts_with('/') {
            return Err(FlagError::new(
                "--workdir",
                workdir,
                "the working directory must be absolute",
            )
            .into());
        }
        if !workdir_exists(dir, workdir) {
            return Err(RunError::NoWorkdir(workdir.clone()));
        }
        process.set_cwd(workdir.into());
    }
    if let Some(spec) = &opts.user {
        let resolved = user::resolve(&dir.join("rootfs"), spec)?;
        let user = UserBuilder::default()
            .uid(resolved.uid)
            .gid(resolved.gid)
            .additional_gids(resolved.additional_gids)
            .umask(super::spec::UMASK)
            .build()
            .map_err(|e| RunError::Spec(e.to_string()))?;
        process.set_user(user);
    }
    let late_seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().clone()) {
        Some(filter) => {
            let capabilities = process.capabilities().clone().unwrap_or_default();
            process.set_capabilities(Some(with_sys_admin(&capabilities)));
            Some(LateSeccomp {
                filter,
                capabilities,
            })
        }
        None => None,
    };
    Ok((process, late_seccomp))
}

/// Whether `workdir` is a directory in the container: looked up in its
/// root filesystem with every symlink resolved inside it. What a mount
/// made inside the container (a volume, a tmpfs) holds cannot be seen
/// from here, so a path under one counts as there (the runtime decides).
fn workdir_exists(dir: &Path, workdir: &str) -> bool {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let spec = Spec::load(dir.join("config.json")).ok();
    let under_mount = spec
        .as_ref()
        .and_then(|s| s.mounts().clone())
        .unwrap_or_default()
        .iter()
        .map(|m| m.destination().display().to_string())
        .filter(|d| {
            d != "/" && !d.starts_with("/proc") && !d.starts_with("/sys") && !d.starts_with("/dev")
        })
        .any(|d| workdir == d || workdir.starts_with(&format!("{d}/")));
    // An empty root is one not mounted where we can see it: no answer.
    let visible = std::fs::read_dir(dir.join("rootfs")).is_ok_and(|mut d| d.next().is_some());
    if under_mount || !visible {
        return true;
    }
    let Ok(root) = rustix::fs::open(
        dir.join("rootfs"),
        OFlags::DIRECTORY | OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return true;
    };
    rustix::fs::openat2(
        &root,
        workdir.trim_start_matches('/'),
        OFlags::DIRECTORY | OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .is_ok()
}

/// The capabilities plus CAP_SYS_ADMIN in the sets that loading a filter
/// without no-new-privileges needs; the executor drops it again.
fn with_sys_admin(capabilities: &LinuxCapabilities) -> LinuxCapabilities {
    let add = |set: &Option<std::collections::HashSet<Capability>>| {
        let mut set = set.clone().unwrap_or_default();
        set.insert(Capability::SysAdmin);
        Some(set)
    };
    let mut raised = capabilities.clone();
    raised
        .set_bounding(add(capabilities.bounding()))
        .set_effective(add(capabilities.effective()))
        .set_permitted(add(capabilities.permitted()));
    raised
}

fn run(
    store: &Store,
    dir: &Path,
    id: &str,
    process_path: &Path,
    executor: Exec,
    opts: &ExecOptions,
) -> Result<i32, RunError> {
    let runtime = |e: libcontainer::error::LibcontainerError| RunError::Runtime(e.to_string());
    let console = if opts.tty {
        let name = format!("exec-{}.sock", std::process::id());
        Some(ConsoleSocket::bind(dir, &name).map_err(RunError::io(&dir.join(name)))?)
    } else {
        None
    };
    let mut builder = ContainerBuilder::new(id.to_string(), SyscallType::Linux)
        .with_executor(executor)
        .with_root_path(store.runtime_dir_holding(id))
        .map_err(runtime)?
        .with_console_socket(console.as_ref().map(|c| c.path().to_path_buf()));
    let null = || {
        File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map(std::os::fd::OwnedFd::from)
            .map_err(RunError::io(Path::new("/dev/null")))
    };
    // Never our own descriptors: everything in the container can open the
    // process's /proc/<pid>/fd/N, so a file we were redirected to (or the
    // user's terminal) would be theirs to read and write. The process gets
    // pipes we copy (Docker's exec does the same), the pty's slave with
    // -t, or /dev/null when detached (Docker drops a detached exec's output
    // too, and holding our stdout would keep `ctr-exec -d … | …` waiting).
    let mut relaying = None;
    let (stdin, stdout, stderr) = if console.is_some() || opts.detach {
        (null()?, null()?, null()?)
    } else {
        let pipes =
            relay::Pipes::new(opts.interactive).map_err(|e| RunError::Runtime(e.to_string()))?;
        let (ends, ours) = pipes.split();
        relaying = Some(ours);
        ends
    };
    builder = builder
        .with_stdin(stdin)
        .with_stdout(stdout)
        .with_stderr(stderr);
    let pid = builder
        .as_tenant()
        .with_process(Some(process_path))
        // libcontainer takes a console socket only for a "detached" tenant;
        // the process is our child either way.
        .with_detach(console.is_some())
        .build()
        .map_err(runtime)?
        .as_raw();
    if opts.detach {
        return Ok(0);
    }
    if let Some(console) = console {
        let master = console
            .receive_master()
            .map_err(|e| RunError::Runtime(format!("receiving the terminal: {e}")))?;
        drop(console);
        tty::relay(&master, opts.interactive).map_err(RunError::io(Path::new("/dev/tty")))?;
    }
    if let Some(relaying) = relaying {
        // A closed stdout of ours (`ctr-exec … | head -1`) is an EPIPE the
        // relay passes on, not our death.
        // SAFETY: changing a signal disposition has no memory effects.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        return Ok(relaying.run(pid, relay::Sink::Ours(1), relay::Sink::Ours(2), &|| None));
    }
    Ok(wait(pid, &|| None))
}
