//! The isolation table: probes run inside containers (ctr-run, ctr-exec and
//! img-build RUN alike) as an attacker's process would, each checking one
//! way out that Docker's defaults close.

use berth_harness::{Fixture, Run, tool, wait_for};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const IMG: &str = "test/busybox:latest";

fn fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture.busybox(IMG, "isolation");
    fixture
}

fn run(fixture: &Fixture, tool_name: &str, args: &[&str]) -> Run {
    Run::of(tool(tool_name, fixture.root()).args(args), None)
}

/// Starts a detached `sleep` container named `name`.
fn sleeper(fixture: &Fixture, name: &str, extra: &[&str]) {
    let mut args = vec!["-d", "--name", name];
    args.extend(extra);
    args.extend([IMG, "sleep", "1000"]);
    run(fixture, "ctr-run", &args).success();
}

/// What a process inside tries against its own limits: raise the memory
/// limit, the pids limit and the CPU quota, make a sub-cgroup; then what
/// the limits read afterwards.
const RAISE_LIMITS: &str = "\
echo 1073741824 > /sys/fs/cgroup/memory/memory.limit_in_bytes && echo RAISED memory; \
echo max > /sys/fs/cgroup/pids/pids.max && echo RAISED pids; \
echo -1 > /sys/fs/cgroup/cpu/cpu.cfs_quota_us && echo RAISED cpu; \
mkdir /sys/fs/cgroup/memory/escape && echo RAISED subgroup; \
cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max \
/sys/fs/cgroup/cpu/cpu.cfs_quota_us";

#[test]
fn a_container_cannot_raise_its_own_limits() {
    let fixture = fixture();
    let limits = ["-m", "20m", "--pids-limit", "50", "--cpus", "0.5"];
    let mut args = vec!["--rm"];
    args.extend(limits);
    args.extend([IMG, "sh", "-c", RAISE_LIMITS]);
    let probe = run(&fixture, "ctr-run", &args);
    assert!(!probe.stdout.contains("RAISED"), "{probe:#?}");
    assert_eq!(probe.stdout, "20971520\n50\n50000\n", "{probe:#?}");
    assert!(probe.stderr.contains("Read-only file system"), "{probe:#?}");

    // The same through ctr-exec, checked from the host's side too.
    sleeper(&fixture, "limited", &limits);
    let exec = run(&fixture, "ctr-exec", &["limited", "sh", "-c", RAISE_LIMITS]);
    assert!(!exec.stdout.contains("RAISED"), "{exec:#?}");
    let id = fixture.container_ids().pop().unwrap();
    let host = Path::new("/sys/fs/cgroup/memory/berth").join(&id);
    assert_eq!(
        fs::read_to_string(host.join("memory.limit_in_bytes")).unwrap(),
        "20971520\n"
    );
    assert!(!host.join("escape").exists());
    run(&fixture, "ctr-rm", &["-f", "limited"]).success();
}

#[test]
fn a_build_step_cannot_write_its_cgroups() {
    let fixture = fixture();
    let context = tempfile::tempdir().unwrap();
    fs::write(
        context.path().join("Dockerfile"),
        format!("FROM {IMG}\nRUN mkdir /sys/fs/cgroup/pids/escape\n"),
    )
    .unwrap();
    let build = run(&fixture, "img-build", &[context.path().to_str().unwrap()]).failure(1);
    assert!(build.stderr.contains("Read-only file system"), "{build:#?}");
}

#[test]
fn a_privileged_container_keeps_a_writable_cgroup_tree_as_docker_gives_it() {
    let fixture = fixture();
    let probe = run(
        &fixture,
        "ctr-run",
        &[
            "--rm",
            "--privileged",
            IMG,
            "sh",
            "-c",
            "echo 100 > /sys/fs/cgroup/pids/pids.max && echo written",
        ],
    );
    assert_eq!(probe.stdout, "written\n", "{probe:#?}");
}

/// The file `ctr-exec`'s stdout was redirected to, as an admin's log is.
fn exec_into_file(fixture: &Fixture, log: &Path, args: &[&str]) -> std::process::ExitStatus {
    let out = fs::OpenOptions::new().append(true).open(log).unwrap();
    tool("ctr-exec", fixture.root())
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .status()
        .unwrap()
}

#[test]
fn an_exec_process_gets_pipes_not_the_callers_files() {
    let fixture = fixture();
    sleeper(&fixture, "w", &[]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("admin.log");
    fs::write(&log, "precious\n").unwrap();
    // Everything in the container can open the exec'd process's fds: had
    // it our file, it could truncate it.
    let status = exec_into_file(
        &fixture,
        &log,
        &[
            "w",
            "sh",
            "-c",
            ": > /proc/self/fd/1; for fd in 0 1 2; do readlink /proc/self/fd/$fd; done",
        ],
    );
    assert!(status.success());
    let text = fs::read_to_string(&log).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("precious"), "{text}");
    assert_eq!(lines.next(), Some("/dev/null"), "{text}");
    assert!(lines.next().unwrap().starts_with("pipe:"), "{text}");
    assert!(lines.next().unwrap().starts_with("pipe:"), "{text}");
    // A process left behind cannot reach it either.
    assert!(exec_into_file(&fixture, &log, &["w", "sh", "-c", "sleep 100 >/dev/null &"]).success());
    let late = run(
        &fixture,
        "ctr-exec",
        &[
            "w",
            "sh",
            "-c",
            "for p in /proc/[0-9]*; do readlink $p/fd/1; done",
        ],
    );
    assert!(!late.stdout.contains("admin.log"), "{late:#?}");
    run(&fixture, "ctr-rm", &["-f", "w"]).success();
}

#[test]
fn an_exec_relays_stdin_stdout_stderr_and_exit_code() {
    let fixture = fixture();
    sleeper(&fixture, "relay", &[]);
    // More than a pipe holds each way, so a relay that blocked on one
    // direction would deadlock here.
    let input: String = (0..40_000).map(|i| format!("line {i}\n")).collect();
    let cat = Run::of(
        tool("ctr-exec", fixture.root()).args(["-i", "relay", "cat"]),
        Some(&input),
    )
    .success();
    assert_eq!(cat.stdout.len(), input.len());
    assert!(cat.stdout == input);
    let both = run(
        &fixture,
        "ctr-exec",
        &["relay", "sh", "-c", "echo out; echo err >&2; exit 5"],
    )
    .failure(5);
    assert_eq!(both.stdout, "out\n");
    assert_eq!(both.stderr, "err\n");
    // Our stdin is not theirs without -i.
    let stdin = Run::of(
        tool("ctr-exec", fixture.root()).args(["relay", "sh", "-c", "readlink /proc/self/fd/0"]),
        Some("secret"),
    )
    .success();
    assert_eq!(stdin.stdout, "/dev/null\n");
    // A closed reader ends a writer that would never stop.
    let ctr_exec = berth_harness::tools::binary("ctr-exec");
    let head = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' --root '{}' relay sh -c yes | head -1",
            ctr_exec.display(),
            fixture.root().display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&head.stdout),
        "y\n",
        "{}",
        String::from_utf8_lossy(&head.stderr)
    );
    run(&fixture, "ctr-rm", &["-f", "relay"]).success();
}

#[test]
fn a_build_step_gets_pipes_not_the_callers_files_and_quiet_builds_run_steps_that_print() {
    let fixture = fixture();
    let context = tempfile::tempdir().unwrap();
    fs::write(
        context.path().join("Dockerfile"),
        format!(
            "FROM {IMG}\nRUN : > /proc/self/fd/2; readlink /proc/self/fd/1; readlink /proc/self/fd/2 >&2; echo step-output\n"
        ),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ci.log");
    fs::write(&log, "earlier job\n").unwrap();
    let status = tool("img-build", fixture.root())
        .args(["-t", "probe", context.path().to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(fs::OpenOptions::new().append(true).open(&log).unwrap())
        .status()
        .unwrap();
    let text = fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");
    assert!(text.starts_with("earlier job\n"), "{text}");
    assert!(text.contains("step-output"), "{text}");
    // The step saw pipes as its stdout and stderr, not ci.log.
    assert_eq!(
        text.lines().filter(|l| l.starts_with("pipe:")).count(),
        2,
        "{text}"
    );
    assert!(!text.contains("ci.log"), "{text}");

    // -q drops the step's output but the step still runs (and may print).
    let quiet = run(
        &fixture,
        "img-build",
        &["-q", "--no-cache", context.path().to_str().unwrap()],
    )
    .success();
    assert!(quiet.stdout.trim().starts_with("sha256:"), "{quiet:#?}");
    assert!(!quiet.stderr.contains("step-output"), "{quiet:#?}");
}

#[test]
fn a_killed_build_takes_its_step_along_and_the_next_command_cleans_up() {
    let fixture = fixture();
    let context = tempfile::tempdir().unwrap();
    fs::write(
        context.path().join("Dockerfile"),
        format!("FROM {IMG}\nRUN sleep 4321\n"),
    )
    .unwrap();
    let mut builder = tool("img-build", fixture.root())
        .arg(context.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The step is running once its record says so.
    let mut step = None;
    assert!(wait_for(30, || {
        // A container's directory exists a moment before its record.
        step = fixture.container_ids().into_iter().find_map(|id| {
            let path = fixture
                .root()
                .join("containers")
                .join(&id)
                .join("container.json");
            let record: serde_json::Value = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
            let pid = record["State"]["Pid"].as_i64().filter(|p| *p > 0)?;
            // Running its command: past the executor, which set the
            // parent-death signal just before the exec.
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains("4321")
                .then_some((id, pid))
        });
        step.is_some()
    }));
    let (id, pid) = step.unwrap();
    builder.kill().unwrap();
    builder.wait().unwrap();
    // The step dies with its builder, not reparented to PID 1.
    let init_alive = || {
        fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|cgroups| cgroups.contains(&id))
    };
    assert!(
        wait_for(10, || !init_alive()),
        "the step outlived its builder"
    );

    // The next command that takes the store lock sweeps what is left.
    run(&fixture, "img-prune", &["-f"]).success();
    let root = fs::canonicalize(fixture.root()).unwrap();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(root.to_str().unwrap()),
        "left mounted:\n{mounts}"
    );
    let leftovers: Vec<_> = fs::read_dir(root.join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(run(&fixture, "ctr-ps", &["-aq"]).success().stdout, "");
    assert!(fixture.container_ids().is_empty());
    assert!(!Path::new("/sys/fs/cgroup/pids/berth").join(&id).exists());
    let fsck = run(&fixture, "img-fsck", &[]);
    assert_eq!(
        (fsck.code, fsck.stdout.as_str()),
        (Some(0), ""),
        "{fsck:#?}"
    );
    let mut again = tool("img-build", fixture.root());
    let rebuilt = again
        .args(["-q", "-f", "-", context.path().to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut rebuilt = rebuilt;
    rebuilt
        .stdin
        .take()
        .unwrap()
        .write_all(format!("FROM {IMG}\nRUN true\n").as_bytes())
        .unwrap();
    assert!(rebuilt.wait().unwrap().success());
}

/// The host's character and block devices directly in /dev.
fn host_device_names() -> Vec<String> {
    use std::os::unix::fs::FileTypeExt;
    fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_type()
                .is_ok_and(|t| t.is_char_device() || t.is_block_device())
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !matches!(name.as_str(), "console" | "ptmx"))
        .collect()
}

#[test]
fn a_privileged_container_has_the_hosts_devices_and_others_only_docker_s_few() {
    let fixture = fixture();
    let host = host_device_names();
    let privileged = run(
        &fixture,
        "ctr-run",
        &["--rm", "--privileged", IMG, "ls", "/dev"],
    )
    .success();
    let seen: Vec<&str> = privileged.stdout.lines().collect();
    let missing: Vec<&String> = host
        .iter()
        .filter(|d| !seen.contains(&d.as_str()))
        .collect();
    assert!(missing.is_empty(), "missing {missing:?} in {seen:?}");
    let plain = run(&fixture, "ctr-run", &["--rm", IMG, "ls", "/dev"]).success();
    for name in plain.stdout.lines() {
        assert!(
            matches!(
                name,
                "null"
                    | "zero"
                    | "full"
                    | "random"
                    | "urandom"
                    | "tty"
                    | "ptmx"
                    | "pts"
                    | "shm"
                    | "mqueue"
                    | "fd"
                    | "stdin"
                    | "stdout"
                    | "stderr"
                    | "core"
                    | "console"
            ),
            "unexpected /dev/{name}: {plain:#?}"
        );
    }
}

/// One row of the README's isolation table: a probe run by `sh -c` inside
/// a default container, and what it prints under Docker's defaults.
const TABLE: &[(&str, &str, &str)] = &[
    (
        "capabilities",
        "grep CapEff /proc/self/status",
        "CapEff:\t00000000a80425fb",
    ),
    (
        "seccomp filter",
        "grep Seccomp: /proc/self/status",
        "Seccomp:\t2",
    ),
    (
        "user namespaces (seccomp)",
        "unshare -U true 2>/dev/null && echo allowed || echo refused",
        "refused",
    ),
    (
        "mount (no CAP_SYS_ADMIN)",
        "mount -t tmpfs none /mnt 2>/dev/null && echo allowed || echo refused",
        "refused",
    ),
    (
        "/proc/sys read-only",
        "echo 1 > /proc/sys/kernel/panic 2>/dev/null && echo written || echo ro",
        "ro",
    ),
    (
        "/sys read-only",
        "touch /sys/kernel/probe 2>/dev/null && echo written || echo ro",
        "ro",
    ),
    (
        "/sys/fs/cgroup read-only",
        "echo 1 > /sys/fs/cgroup/pids/pids.max 2>/dev/null && echo written || echo ro",
        "ro",
    ),
    (
        "/proc/kcore masked",
        "cat /proc/kcore 2>/dev/null | wc -c",
        "0",
    ),
    (
        "/proc/keys masked",
        "cat /proc/keys 2>/dev/null | wc -c",
        "0",
    ),
    (
        "descriptors: 0-2 only",
        "ls /proc/self/fd | tr '\\n' ' '",
        "0 1 2 3 ",
    ),
    (
        "no host block devices",
        "ls /dev | grep -c -e loop -e sd -e nvme -e vd",
        "0",
    ),
    (
        "mknod of a host disk (devices cgroup)",
        "mknod /dev/probe-sda b 8 0 && (head -c1 /dev/probe-sda >/dev/null 2>&1 && echo read || echo denied)",
        "denied",
    ),
];

#[test]
fn the_isolation_table_holds_docker_s_defaults() {
    let fixture = fixture();
    let script: String = TABLE
        .iter()
        .map(|(_, probe, _)| format!("{{ {probe}; }}; echo '@@'; "))
        .collect();
    let inside = run(&fixture, "ctr-run", &["--rm", IMG, "sh", "-c", &script]).success();
    let answers: Vec<&str> = inside.stdout.split("@@\n").collect();
    for (i, (row, _, expected)) in TABLE.iter().enumerate() {
        assert_eq!(
            answers[i].trim_end_matches('\n'),
            *expected,
            "{row}: {inside:#?}"
        );
    }
}

/// `nohup`, a shell's `&` and a blocked mask leave a process ignoring or
/// blocking signals, and both survive exec: this starts a tool that way.
fn as_a_background_job(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: sigaction and sigprocmask are async-signal-safe, as pre_exec
    // requires.
    unsafe {
        command.pre_exec(|| {
            for sig in [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGPIPE] {
                libc::signal(sig, libc::SIG_IGN);
            }
            let mut blocked: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut blocked);
            libc::sigaddset(&mut blocked, libc::SIGTERM);
            libc::sigaddset(&mut blocked, libc::SIGUSR1);
            libc::sigprocmask(libc::SIG_SETMASK, &blocked, std::ptr::null_mut());
            Ok(())
        });
    }
    command
}

/// A container's process starts with every signal at its default and none
/// blocked, however the tool that started it was started: a `trap` on
/// SIGINT must fire and SIGTERM must arrive, as in Docker, where the daemon
/// starts containers. Run, run -d, exec and a build step alike.
#[test]
fn a_container_does_not_inherit_the_callers_ignored_or_blocked_signals() {
    let fixture = fixture();
    let probe = ["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"];
    let clean = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n";
    let started = |tool_name: &str, args: &[&str]| {
        let mut command = tool(tool_name, fixture.root());
        command.args(args);
        Run::of(as_a_background_job(&mut command), None).success()
    };

    let foreground = started("ctr-run", &[&["--rm", IMG][..], &probe].concat());
    assert_eq!(foreground.stdout, clean, "ctr-run: {foreground:#?}");

    started(
        "ctr-run",
        &[&["-d", "--name", "detached", IMG][..], &probe].concat(),
    );
    run(&fixture, "ctr-wait", &["detached"]).success();
    let logs = run(&fixture, "ctr-logs", &["detached"]).success();
    assert_eq!(logs.stdout, clean, "ctr-run -d: {logs:#?}");

    started("ctr-run", &["-d", "--name", "target", IMG, "sleep", "1000"]);
    let exec = started("ctr-exec", &[&["target"][..], &probe].concat());
    assert_eq!(exec.stdout, clean, "ctr-exec: {exec:#?}");

    let context = tempfile::tempdir().unwrap();
    fs::write(
        context.path().join("Dockerfile"),
        // The exec form: busybox sh ignores SIGQUIT itself in some forms.
        format!(
            "FROM {IMG}\nRUN {}\n",
            serde_json::to_string(&probe).unwrap()
        ),
    )
    .unwrap();
    let build = started(
        "img-build",
        &["--no-cache", context.path().to_str().unwrap()],
    );
    assert!(build.stderr.contains(clean), "img-build: {build:#?}");
}

/// What berth makes for a container or an image has Docker's modes whatever
/// the caller's umask: the process's umask is 0022 (run, exec and a build
/// step), and the directories berth makes (a run's -w, a build's WORKDIR and
/// COPY's missing parents) are 755, not the 700 a caller's 077 would give.
#[test]
fn the_callers_umask_reaches_neither_a_container_nor_an_image() {
    use std::os::unix::process::CommandExt;
    let fixture = fixture();
    let with_umask_077 = |tool_name: &str, args: &[&str]| {
        let mut command = tool(tool_name, fixture.root());
        command.args(args);
        // SAFETY: umask is async-signal-safe, as pre_exec requires.
        unsafe {
            command.pre_exec(|| {
                libc::umask(0o077);
                Ok(())
            });
        }
        Run::of(&mut command, None).success()
    };
    let probe = "umask; mkdir /made; stat -c '%a %n' /made $0 $*";

    let run_out = with_umask_077(
        "ctr-run",
        &[
            "--rm",
            "-w",
            "/work/dir",
            IMG,
            "sh",
            "-c",
            probe,
            "/work",
            "/work/dir",
        ],
    );
    assert_eq!(
        run_out.stdout, "0022\n755 /made\n755 /work\n755 /work/dir\n",
        "ctr-run: {run_out:#?}"
    );

    with_umask_077("ctr-run", &["-d", "--name", "target", IMG, "sleep", "1000"]);
    let exec = with_umask_077("ctr-exec", &["target", "sh", "-c", "umask"]);
    assert_eq!(exec.stdout, "0022\n", "ctr-exec: {exec:#?}");

    let context = tempfile::tempdir().unwrap();
    fs::write(context.path().join("file"), "x").unwrap();
    fs::write(
        context.path().join("Dockerfile"),
        format!(
            "FROM {IMG}\nWORKDIR /work/dir\nCOPY file /copied/into/\n\
             RUN [\"sh\", \"-c\", \"{probe}\", \"/work\", \"/work/dir\", \"/copied\", \"/copied/into\"]\n"
        ),
    )
    .unwrap();
    let build = with_umask_077(
        "img-build",
        &["-t", "umask", context.path().to_str().unwrap()],
    );
    assert!(
        build
            .stderr
            .contains("0022\n755 /made\n755 /work\n755 /work/dir\n755 /copied\n755 /copied/into\n"),
        "img-build: {build:#?}"
    );
}
