//! The crash suite: img-pull, img-build and a detached ctr-run (and its
//! monitor) SIGKILLed at a spread of instants and at events seen on disk.
//! After each kill the store holds nothing img-fsck cannot repair; after
//! the next ordinary command (the one the design says cleans up) img-fsck
//! passes, and running the command again completes.

use berth_harness::pause::PausePoint;
use berth_harness::{Fixture, Registry, Run, tool, wait_for};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const IMG: &str = "crash/busybox:1";

fn fsck(root: &Path, args: &[&str]) -> Run {
    Run::of(tool("img-fsck", root).args(args), None)
}

fn spawn(command: &mut Command) -> Child {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGKILLs `child` (whatever it is doing); returns whether it was still
/// running then.
fn kill(mut child: Child) -> bool {
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    running
}

/// Runs `command` and SIGKILLs it after `delay`: the kill instant is what
/// varies, not a wait for something.
fn kill_after(command: &mut Command, delay: Duration) -> bool {
    let child = spawn(command);
    std::thread::sleep(delay);
    kill(child)
}

/// Right after a kill: whatever img-fsck reports is repairable garbage.
fn only_garbage_left(root: &Path, what: &str) {
    let report = fsck(root, &["--json"]);
    for line in report.stdout.lines() {
        let problem: Value = serde_json::from_str(line).unwrap();
        assert_eq!(problem["repairable"], true, "{what}: {report:#?}");
    }
    assert_eq!(
        report.code,
        Some(if report.stdout.is_empty() { 0 } else { 1 }),
        "{what}: {report:#?}"
    );
}

fn clean(root: &Path, what: &str) {
    let report = fsck(root, &[]);
    assert_eq!(report.code, Some(0), "{what}: {report:#?}");
    assert_eq!(report.stdout, "", "{what}: {report:#?}");
}

/// After a kill: either `img-fsck --repair` first or straight to `next`
/// (the next ordinary command, which cleans up), then a clean store.
fn recover(root: &Path, what: &str, repair_first: bool, next: impl FnOnce()) {
    only_garbage_left(root, what);
    if repair_first {
        let repaired = fsck(root, &["--repair"]);
        assert_eq!(repaired.code, Some(0), "{what}: {repaired:#?}");
        clean(root, what);
    }
    next();
    clean(root, what);
}

/// How long `run` takes uninterrupted on this machine, the faster of two
/// tries: kill instants are spread over it, because fixed delays fit one
/// machine's speed, and on a faster one most came after the command ended.
fn uninterrupted(mut run: impl FnMut()) -> Duration {
    (0..2)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .min()
        .unwrap()
}

/// Kill instants from the start to near the end of a command that takes
/// `full`, denser early, where the most distinct states are.
fn kill_instants(full: Duration) -> impl Iterator<Item = (usize, Duration)> {
    [0.0, 0.03, 0.08, 0.15, 0.25, 0.35, 0.5, 0.65, 0.8, 0.95]
        .into_iter()
        .map(move |fraction| full.mul_f64(fraction))
        .enumerate()
}

#[test]
fn a_killed_pull_leaves_only_garbage_and_the_next_pull_completes() {
    let registry = Registry::start();
    let source = Fixture::new();
    // Big enough that a pull lasts several of wait_for's polls on a fast
    // machine, so the event below is seen before the pull ends.
    source.random("src/crash:1", 3, 16 << 20);
    let reference = format!("{}/crash/pull:1", registry.host);
    berth_harness::tools::skopeo_copy(
        &format!(
            "oci:{}:docker.io/src/crash:1",
            source.store.images_dir().display()
        ),
        &format!("docker://{reference}"),
    );
    let pull = |root: &Path| {
        let mut command = tool("img-pull", root);
        command
            .env("DOCKER_CONFIG", "/nonexistent/berth-test-docker-config")
            .args(["-q", &reference]);
        command
    };
    let full = uninterrupted(|| {
        let store = tempfile::tempdir().unwrap();
        Run::of(&mut pull(store.path()), None).success();
    });
    let mut mid_pull = 0;
    for (i, delay) in kill_instants(full) {
        let store = tempfile::tempdir().unwrap();
        let root = store.path();
        mid_pull += usize::from(kill_after(&mut pull(root), delay));
        recover(
            root,
            &format!("pull killed after {delay:?}"),
            i % 2 == 1,
            || {
                Run::of(&mut pull(root), None).success();
            },
        );
    }
    // At an event: once a layer's temp file has bytes in it.
    let store = tempfile::tempdir().unwrap();
    let root = store.path();
    berth::Store::open(root).unwrap();
    let child = spawn(&mut pull(root));
    assert!(wait_for(30, || {
        std::fs::read_dir(root.join("tmp"))
            .unwrap()
            .flatten()
            .any(|e| e.metadata().is_ok_and(|m| m.is_file() && m.len() > 0))
    }));
    assert!(
        kill(child),
        "the pull finished before its temp file was seen"
    );
    recover(root, "pull killed mid-layer", false, || {
        Run::of(&mut pull(root), None).success();
    });
    assert!(
        mid_pull >= 3,
        "only {mid_pull} of 10 kills landed mid-pull (uninterrupted: {full:?})"
    );
}

#[test]
fn a_killed_build_leaves_only_garbage_and_the_next_build_completes() {
    let fixture = Fixture::new();
    let root = fixture.root();
    fixture.busybox(IMG, "crash build");
    let context = tempfile::tempdir().unwrap();
    std::fs::write(context.path().join("file.txt"), "copied\n").unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        format!(
            "FROM {IMG}\nRUN echo step > /step\nCOPY file.txt /file.txt\nRUN cat /file.txt /step > /both\n"
        ),
    )
    .unwrap();
    let build = || {
        let mut command = tool("img-build", root);
        command.args([
            "-q",
            "--no-cache",
            "-t",
            "crash/built:1",
            context.path().to_str().unwrap(),
        ]);
        command
    };
    let check = || {
        let out = Run::of(
            tool("ctr-run", root).args(["--rm", "crash/built:1", "cat", "/both"]),
            None,
        )
        .success();
        assert_eq!(out.stdout, "copied\nstep\n");
    };
    let full = uninterrupted(|| {
        Run::of(&mut build(), None).success();
    });
    let mut mid_build = 0;
    for (i, delay) in kill_instants(full) {
        mid_build += usize::from(kill_after(&mut build(), delay));
        recover(
            root,
            &format!("build killed after {delay:?}"),
            i % 2 == 0,
            || {
                Run::of(&mut build(), None).success();
                check();
                // Blobs a killed build stored but never named are the
                // collector's, as the design has it.
                Run::of(tool("img-prune", root).arg("-f"), None).success();
            },
        );
    }
    // At an event: while a RUN step's container exists; ctr-ps is the next
    // command, and sweeps what the builder left.
    let child = spawn(&mut build());
    assert!(wait_for(30, || !container_dirs(root).is_empty()));
    assert!(kill(child), "the build finished before its RUN was seen");
    recover(root, "build killed in a RUN step", false, || {
        Run::of(tool("ctr-ps", root).arg("-a"), None).success();
        Run::of(&mut build(), None).success();
        check();
        Run::of(tool("img-prune", root).arg("-f"), None).success();
    });
    assert!(
        mid_build >= 3,
        "only {mid_build} of 10 kills landed mid-build (uninterrupted: {full:?})"
    );
}

fn container_dirs(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root.join("containers"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// The processes holding `path` open (its owner lock), from /proc.
fn holders(path: &Path) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
        {
            pids.push(pid);
        }
    }
    pids
}

/// The monitor of the container in `dir`: a holder of its owner lock that
/// is not `not` (the ctr-run that made it), and whose parent holds no copy
/// (libcontainer's own forks inherit the monitor's descriptors).
fn monitor_of(dir: &Path, not: i32) -> Option<i32> {
    let holding = holders(&dir.join("monitor.lock"));
    holding.iter().copied().find(|pid| {
        *pid != not
            && std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let after = stat.rsplit_once(')')?.1.to_string();
                    after.split_whitespace().nth(1)?.parse::<i32>().ok()
                })
                .is_some_and(|parent| !holding.contains(&parent) || parent == not)
    })
}

fn owned(dir: &Path) -> bool {
    // The lock file goes with its directory: gone is not owned.
    std::fs::File::open(dir.join("monitor.lock")).is_ok_and(|f| f.try_lock().is_err())
}

#[test]
fn a_killed_detached_run_or_monitor_leaves_only_garbage_and_runs_complete() {
    let fixture = Fixture::new();
    let root = fixture.root();
    fixture.busybox(IMG, "crash run");
    let run_d = || {
        let mut command = tool("ctr-run", root);
        command.args(["-d", IMG, "sleep", "600"]);
        command
    };
    let rerun = || {
        Run::of(tool("ctr-ps", root).arg("-a"), None).success();
        Run::of(&mut run_d(), None).success();
    };
    let full = uninterrupted(|| {
        Run::of(&mut run_d(), None).success();
    });
    let mut mid_run = 0;
    for (i, delay) in kill_instants(full) {
        mid_run += usize::from(kill_after(&mut run_d(), delay));
        recover(
            root,
            &format!("ctr-run -d killed after {delay:?}"),
            i % 2 == 1,
            rerun,
        );
    }
    assert!(
        mid_run >= 3,
        "only {mid_run} of 10 kills landed mid-run (uninterrupted: {full:?})"
    );

    // The monitor of a running container: nobody logs or records it now,
    // which img-fsck says; stopping it is the next command.
    let id = Run::of(&mut run_d(), None)
        .success()
        .stdout
        .trim()
        .to_string();
    let dir = root.join("containers").join(&id);
    let monitor = monitor_of(&dir, 0).expect("the monitor holds the owner lock");
    // SAFETY: signalling a process has no memory effects.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    assert!(wait_for(10, || !owned(&dir)));
    let report = fsck(root, &[]).failure(1);
    assert_eq!(
        report.stdout,
        format!(
            "container containers/{id}: running, but its monitor is gone: its output is not \
             logged and its exit will not be recorded; ctr-rm -f it\n"
        ),
    );
    Run::of(tool("ctr-rm", root).args(["-f", &id]), None).success();
    clean(root, "after removing a container whose monitor was killed");
    Run::of(&mut run_d(), None).success();
    clean(root, "after running again");
}

/// A monitor killed after libcontainer created the init and before it was
/// told to start: the created init holds everything the monitor had open,
/// the report pipe too, so `ctr-run -d` once waited for ever. It must see
/// the monitor die, kill what was created and leave no container behind.
#[test]
fn a_monitor_killed_between_create_and_start_fails_the_run_cleanly() {
    let fixture = Fixture::new();
    let root = fixture.root();
    fixture.busybox(IMG, "crash monitor start");
    let pause = PausePoint::new(berth::testhook::BEFORE_START);
    let mut held = pause.hold(tool("ctr-run", root).args(["-d", IMG, "sleep", "600"]), 30);
    // The monitor is the process waiting at the pause point: the holder of
    // the FIFO that is neither the ctr-run we started nor this test.
    let not_monitor = [held.child.id() as i32, std::process::id() as i32];
    let monitor = holders(pause.path())
        .into_iter()
        .find(|pid| !not_monitor.contains(pid))
        .expect("the monitor waits at the pause point");
    // SAFETY: signalling a process has no memory effects.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    assert!(
        wait_for(20, || held.child.try_wait().unwrap().is_some()),
        "ctr-run -d still waits for a monitor that was killed"
    );
    held.release()
        .failure(125)
        .one_error_line(&["monitor", "exited before starting the container"]);
    assert!(container_dirs(root).is_empty(), "the container stayed");
    clean(root, "after a monitor killed before start");
    Run::of(tool("ctr-run", root).args(["-d", IMG, "true"]), None).success();
    clean(root, "after running again");
}
