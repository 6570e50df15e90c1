//! The container verbs Docker users reach for, end to end on real
//! containers: ctr-wait, ctr-rename, ctr-pause and ctr-unpause, ctr-top
//! and ctr-prune, with ctr-ps, ctr-inspect and ctr-exec agreeing.

use berth_harness::{Fixture, Run, tool, wait_for};
use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};

const IMG: &str = "test/busybox:latest";

/// A shell that exits 143 on SIGTERM (PID 1 gets no default handlers).
const TRAPS_TERM: &str = "trap 'exit 143' TERM; while true; do sleep 0.05; done";

/// Counts as fast as it can, a line per number appended to /tmp/c (in the
/// container's upper dir), so the file never reads empty.
const COUNTER: &str = "while :; do echo $((i+=1)) >> /tmp/c; done";

fn fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture.busybox(IMG, "verbs");
    fixture
}

fn run(fixture: &Fixture, name: &str, args: &[&str]) -> Run {
    Run::of(tool(name, fixture.root()).args(args), None)
}

/// `ctr-run -d` of `command`, named `name`; its full ID.
fn detached(fixture: &Fixture, name: &str, command: &[&str]) -> String {
    let mut args = vec!["-d", "--name", name, IMG];
    args.extend(command);
    run(fixture, "ctr-run", &args)
        .success()
        .stdout
        .trim()
        .to_string()
}

fn inspect(fixture: &Fixture, template: &str, target: &str) -> String {
    run(fixture, "ctr-inspect", &["--format", template, target])
        .success()
        .stdout
        .trim()
        .to_string()
}

fn freezer_state(id: &str) -> String {
    std::fs::read_to_string(format!("/sys/fs/cgroup/freezer/berth/{id}/freezer.state"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// How far the counter has counted: its lines, read from its upper dir on
/// the host (so a frozen container can be read too).
fn count(fixture: &Fixture, id: &str) -> usize {
    let path = fixture
        .root()
        .join("containers")
        .join(id)
        .join("upper/tmp/c");
    std::fs::read(path)
        .map(|bytes| bytes.iter().filter(|b| **b == b'\n').count())
        .unwrap_or(0)
}

/// Whether process `pid` comes to wait on container `id`'s owner lock: the
/// kernel's lock table lists it waiting (`->`) on its monitor.lock.
fn blocked_on_owner_lock(fixture: &Fixture, id: &str, pid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let lock = fixture
        .root()
        .join("containers")
        .join(id)
        .join("monitor.lock");
    let inode = std::fs::metadata(&lock).unwrap().ino();
    wait_for(10, || {
        std::fs::read_to_string("/proc/locks")
            .unwrap()
            .lines()
            .any(|l| {
                l.contains("->")
                    && l.contains(&format!(" {pid} "))
                    && l.contains(&format!(":{inode} "))
            })
    })
}

#[test]
fn wait_prints_each_exit_code_once_each_container_has_stopped() {
    let fixture = fixture();
    detached(&fixture, "three", &["sh", "-c", "exit 3"]);
    let code = run(&fixture, "ctr-wait", &["three"]).success();
    assert_eq!(code.stdout, "3\n");
    // Stopped already: answered at once, again and again.
    let started = Instant::now();
    assert_eq!(
        run(&fixture, "ctr-wait", &["three"]).success().stdout,
        "3\n"
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    let id = detached(&fixture, "long", &["sh", "-c", TRAPS_TERM]);
    let waiter = tool("ctr-wait", fixture.root())
        .args(["long", "three"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(blocked_on_owner_lock(&fixture, &id, waiter.id()));
    let stopper = {
        let root = fixture.root().to_path_buf();
        std::thread::spawn(move || Run::of(tool("ctr-stop", &root).arg("long"), None))
    };
    let out = Run::from(waiter.wait_with_output().unwrap()).success();
    assert_eq!(out.stdout, "143\n3\n");
    assert_eq!(stopper.join().unwrap().success().stdout, "long\n");
    assert_eq!(inspect(&fixture, "{{.State.Status}}", "long"), "exited");

    // Removed on exit (--rm): the code is still the waiter's, as Docker's.
    let gone = TRAPS_TERM.replace("143", "4");
    let id = run(
        &fixture,
        "ctr-run",
        &["-d", "--rm", "--name", "gone", IMG, "sh", "-c", &gone],
    )
    .success()
    .stdout
    .trim()
    .to_string();
    let waiter = tool("ctr-wait", fixture.root())
        .arg("gone")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(blocked_on_owner_lock(&fixture, &id, waiter.id()));
    run(&fixture, "ctr-stop", &["gone"]).success();
    let out = Run::from(waiter.wait_with_output().unwrap()).success();
    assert_eq!(out.stdout, "4\n");
    assert!(!fixture.root().join("containers").join(&id).exists());

    // One unknown container among others: its own line, exit 1 at the end.
    let mixed = run(&fixture, "ctr-wait", &["three", "nope", "long"]).failure(1);
    assert_eq!(mixed.stdout, "3\n143\n");
    mixed.one_error_line(&["ctr-wait: No such container: nope"]);
}

#[test]
fn rename_takes_a_free_name_for_running_and_stopped_containers() {
    let fixture = fixture();
    let id = detached(&fixture, "old", &["sleep", "1000"]);
    run(&fixture, "ctr-run", &["--name", "other", IMG, "true"]).success();

    run(&fixture, "ctr-rename", &["old", "other"])
        .failure(1)
        .one_error_line(&[
            "Conflict. The container name \"/other\" is already in use by container",
            "You have to remove (or rename) that container to be able to reuse that name.",
        ]);
    run(&fixture, "ctr-rename", &["old", "old"])
        .failure(1)
        .one_error_line(&["Renaming a container with the same name as its current name"]);
    run(&fixture, "ctr-rename", &["old", "bad/name"])
        .failure(1)
        .one_error_line(&["invalid container name"]);

    // Running: renamed, like Docker's rename, with nothing on stdout.
    let renamed = run(&fixture, "ctr-rename", &["old", "new"]).success();
    assert_eq!(renamed.stdout, "");
    assert_eq!(
        inspect(&fixture, "{{.Name}} {{.State.Status}}", "new"),
        "/new running"
    );
    assert_eq!(inspect(&fixture, "{{.Id}}", "new"), id);
    let hi = run(&fixture, "ctr-exec", &["new", "echo", "hi"]).success();
    assert_eq!(hi.stdout, "hi\n");
    run(&fixture, "ctr-inspect", &["old"])
        .failure(1)
        .one_error_line(&["No such container: old"]);
    run(&fixture, "ctr-exec", &["old", "true"])
        .failure(1)
        .one_error_line(&["No such container: old"]);

    // Stopped: renamed too; the old names are free for new containers.
    run(&fixture, "ctr-rename", &["other", "/stopped"]).success();
    let mut names: Vec<String> = run(&fixture, "ctr-ps", &["-a", "--format", "{{.Names}}"])
        .success()
        .stdout
        .lines()
        .map(String::from)
        .collect();
    names.sort();
    assert_eq!(names, ["new", "stopped"]);
    run(&fixture, "ctr-run", &["--name", "old", IMG, "true"]).success();
    run(&fixture, "ctr-run", &["--name", "other", IMG, "true"]).success();
    // The renamed container is still the one its monitor stops.
    assert_eq!(
        run(&fixture, "ctr-kill", &["new"]).success().stdout,
        "new\n"
    );
    assert!(wait_for(10, || inspect(
        &fixture,
        "{{.State.Status}}",
        "new"
    ) == "exited"));
}

#[test]
fn a_paused_container_stops_counting_until_it_is_unpaused() {
    let fixture = fixture();
    let id = detached(&fixture, "counter", &["sh", "-c", COUNTER]);
    assert!(wait_for(10, || count(&fixture, &id) > 0));

    let paused = run(&fixture, "ctr-pause", &["counter"]).success();
    assert_eq!(paused.stdout, "counter\n");
    assert_eq!(freezer_state(&id), "FROZEN");
    let frozen_at = count(&fixture, &id);

    let ps = run(
        &fixture,
        "ctr-ps",
        &["--format", "{{.Names}} {{.State}} {{.Status}}"],
    )
    .success()
    .stdout;
    assert!(ps.starts_with("counter paused Up "), "{ps}");
    assert!(ps.trim_end().ends_with("(Paused)"), "{ps}");
    assert_eq!(
        inspect(
            &fixture,
            "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
            "counter"
        ),
        "paused true true"
    );
    run(&fixture, "ctr-pause", &["counter"])
        .failure(1)
        .one_error_line(&[&format!("Container {id} is already paused")]);
    run(&fixture, "ctr-exec", &["counter", "true"])
        .failure(1)
        .one_error_line(&["is paused, unpause the container before exec"]);
    run(&fixture, "ctr-start", &["counter"])
        .failure(1)
        .one_error_line(&["cannot start a paused container, try unpause instead"]);
    // All those tools ran while it was frozen: it has not counted since.
    assert_eq!(count(&fixture, &id), frozen_at);

    let unpaused = run(&fixture, "ctr-unpause", &["counter"]).success();
    assert_eq!(unpaused.stdout, "counter\n");
    assert_eq!(freezer_state(&id), "THAWED");
    assert!(wait_for(10, || {
        run(
            &fixture,
            "ctr-exec",
            &["counter", "sh", "-c", "wc -l < /tmp/c"],
        )
        .success()
        .stdout
        .trim()
        .parse::<usize>()
        .is_ok_and(|n| n > frozen_at)
    }));
    assert_eq!(
        inspect(
            &fixture,
            "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
            "counter"
        ),
        "running false true"
    );
    run(&fixture, "ctr-unpause", &["counter"])
        .failure(1)
        .one_error_line(&[&format!("Container {id} is not paused")]);
}

#[test]
fn stop_kill_and_rm_f_thaw_a_paused_container_first() {
    let fixture = fixture();
    let p1 = detached(&fixture, "p1", &["sh", "-c", TRAPS_TERM]);
    let p2 = detached(&fixture, "p2", &["sleep", "1000"]);
    let p3 = detached(&fixture, "p3", &["sleep", "1000"]);
    let paused = run(&fixture, "ctr-pause", &["p1", "p2", "p3"]).success();
    assert_eq!(paused.stdout, "p1\np2\np3\n");
    for id in [&p1, &p2, &p3] {
        assert_eq!(freezer_state(id), "FROZEN");
    }

    // The stop signal reaches the thawed init: its trap's code, quickly.
    let started = Instant::now();
    assert_eq!(run(&fixture, "ctr-stop", &["p1"]).success().stdout, "p1\n");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let state = "{{.State.Status}} {{.State.ExitCode}} {{.State.Paused}} {{.State.Running}}";
    assert_eq!(inspect(&fixture, state, "p1"), "exited 143 false false");

    run(&fixture, "ctr-kill", &["p2"]).success();
    assert!(wait_for(10, || inspect(&fixture, state, "p2")
        == "exited 137 false false"));

    assert_eq!(
        run(&fixture, "ctr-rm", &["-f", "p3"]).success().stdout,
        "p3\n"
    );
    run(&fixture, "ctr-inspect", &["p3"])
        .failure(1)
        .one_error_line(&["No such container: p3"]);
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/freezer/berth/{p3}")).exists());

    // Stopped containers are refused in Docker's words.
    run(&fixture, "ctr-pause", &["p1"])
        .failure(1)
        .one_error_line(&[&format!("ctr-pause: Container {p1} is not running")]);
    run(&fixture, "ctr-unpause", &["p2"])
        .failure(1)
        .one_error_line(&[&format!("ctr-unpause: Container {p2} is not paused")]);
    let all = run(
        &fixture,
        "ctr-ps",
        &["-a", "--format", "{{.Names}} {{.Status}}"],
    )
    .success()
    .stdout;
    assert!(all.contains("p1 Exited (143)"), "{all}");
    assert!(all.contains("p2 Exited (137)"), "{all}");
}

#[test]
fn top_lists_the_container_s_processes_by_host_pid() {
    let fixture = fixture();
    let id = detached(&fixture, "sleeper", &["sleep", "1000"]);
    let record: Value =
        serde_json::from_str(&run(&fixture, "ctr-inspect", &["sleeper"]).success().stdout).unwrap();
    let init = record[0]["State"]["Pid"].as_i64().unwrap();
    // The host PID, as Docker shows it: the host's /proc knows it as ours.
    let cmdline = std::fs::read(format!("/proc/{init}/cmdline")).unwrap();
    assert_eq!(cmdline, b"sleep\x001000\x00");
    let cgroup = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    assert!(cgroup.contains(&format!("/berth/{id}")), "{cgroup}");

    let top = run(&fixture, "ctr-top", &["sleeper"]).success().stdout;
    let mut lines = top.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("UID                 PID                 PPID"),
        "{top}"
    );
    let titles: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        titles,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 1, "{top}");
    assert_eq!(rows[0][0], "root");
    assert_eq!(rows[0][1], init.to_string());
    assert_eq!(rows[0][7..], ["sleep", "1000"]);

    // A second process joins the container's cgroup, and its rows.
    run(&fixture, "ctr-exec", &["-d", "sleeper", "sleep", "999"]).success();
    let mut second = None;
    assert!(wait_for(10, || {
        let top = run(&fixture, "ctr-top", &["sleeper", "-o", "pid,comm,args"])
            .success()
            .stdout;
        second = top
            .lines()
            .find(|l| l.ends_with("sleep 999"))
            .map(|l| l.split_whitespace().next().unwrap().to_string());
        second.is_some()
    }));
    let second = second.unwrap();
    let cgroup = std::fs::read_to_string(format!("/proc/{second}/cgroup")).unwrap();
    assert!(cgroup.contains(&format!("/berth/{id}")), "{cgroup}");

    // ps options as Docker passes them: its columns, our PIDs only.
    let short = run(&fixture, "ctr-top", &["sleeper", "-o", "pid,comm"])
        .success()
        .stdout;
    let lines: Vec<Vec<&str>> = short
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["PID", "COMMAND"]);
    let mut pids: Vec<&str> = lines[1..].iter().map(|row| row[0]).collect();
    pids.sort();
    let mut expected = vec![init.to_string(), second.clone()];
    expected.sort();
    assert_eq!(pids, expected, "{short}");
    assert!(lines[1..].iter().all(|row| row[1] == "sleep"), "{short}");
    run(&fixture, "ctr-top", &["sleeper", "-o", "ppid=PID"])
        .failure(1)
        .one_error_line(&["specifying \"ppid=PID\" is not allowed"]);

    // A paused container's processes are listed too; a stopped one has none.
    run(&fixture, "ctr-pause", &["sleeper"]).success();
    let paused = run(&fixture, "ctr-top", &["sleeper"]).success().stdout;
    assert_eq!(paused.lines().count(), 3, "{paused}");
    run(&fixture, "ctr-kill", &["sleeper"]).success();
    assert!(wait_for(10, || inspect(
        &fixture,
        "{{.State.Status}}",
        "sleeper"
    ) == "exited"));
    run(&fixture, "ctr-top", &["sleeper"])
        .failure(1)
        .one_error_line(&[&format!("Container {id} is not running")]);
}

#[test]
fn prune_removes_the_stopped_containers_and_keeps_the_running_ones() {
    let fixture = fixture();
    run(&fixture, "ctr-run", &["--name", "done0", IMG, "true"]).success();
    run(
        &fixture,
        "ctr-run",
        &[
            "--name",
            "done3",
            IMG,
            "sh",
            "-c",
            "echo written > /file; exit 3",
        ],
    )
    .failure(3);
    let up = detached(&fixture, "up", &["sleep", "1000"]);
    let stopped: Vec<String> = ["done0", "done3"]
        .iter()
        .map(|name| inspect(&fixture, "{{.Id}}", name))
        .collect();

    // Every stopped container here is newer than an hour: none passes.
    let none = run(&fixture, "ctr-prune", &["-f", "--filter", "until=1h"]).success();
    assert_eq!(none.stdout, "Total reclaimed space: 0B\n");
    run(&fixture, "ctr-prune", &["-f", "--filter", "colour=red"])
        .failure(1)
        .one_error_line(&["invalid filter 'colour=red'"]);

    // Asked even though stdin is not a terminal (Docker asks too): an
    // answer other than `y` cancels, `y` goes on.
    let kept = Run::of(&mut tool("ctr-prune", fixture.root()), Some("yes\n")).success();
    assert_eq!(kept.stdout, "Total reclaimed space: 0B\n");
    let pruned = Run::of(&mut tool("ctr-prune", fixture.root()), Some("y\n")).success();
    assert!(pruned.stderr.ends_with("[y/N] "), "{pruned:?}");
    let lines: Vec<&str> = pruned.stdout.lines().collect();
    assert_eq!(lines[0], "Deleted Containers:", "{}", pruned.stdout);
    let mut deleted: Vec<String> = lines[1..3].iter().map(|s| s.to_string()).collect();
    deleted.sort();
    let mut expected = stopped.clone();
    expected.sort();
    assert_eq!(deleted, expected);
    assert_eq!(lines[3], "");
    assert!(
        lines[4].starts_with("Total reclaimed space: "),
        "{}",
        pruned.stdout
    );
    assert_ne!(lines[4], "Total reclaimed space: 0B", "done3 wrote /file");
    assert_eq!(lines.len(), 5);

    for id in &stopped {
        assert!(!fixture.root().join("containers").join(id).exists());
    }
    let left = run(&fixture, "ctr-ps", &["-aq", "--no-trunc"])
        .success()
        .stdout;
    assert_eq!(left, format!("{up}\n"));
    assert_eq!(inspect(&fixture, "{{.State.Status}}", "up"), "running");
    let again = run(&fixture, "ctr-prune", &["-f"]).success();
    assert_eq!(again.stdout, "Total reclaimed space: 0B\n");
}

#[test]
fn bad_input_is_one_line_with_the_documented_code() {
    let fixture = fixture();
    for args in [
        &["ctr-wait", "nope"][..],
        &["ctr-pause", "nope"],
        &["ctr-unpause", "nope"],
        &["ctr-top", "nope"],
        &["ctr-rename", "nope", "new"],
    ] {
        run(&fixture, args[0], &args[1..])
            .failure(1)
            .one_error_line(&[&format!("{}: No such container: nope", args[0])]);
    }
    // Multi-target tools with no targets read stdin; an empty one is an error.
    for name in ["ctr-wait", "ctr-pause", "ctr-unpause"] {
        run(&fixture, name, &[])
            .failure(1)
            .one_error_line(&["no targets: give them as arguments or on stdin"]);
    }
    // Missing arguments and unknown flags: usage, code 2, one line.
    for args in [
        &["ctr-rename"][..],
        &["ctr-rename", "only-one"],
        &["ctr-top"],
        &["ctr-prune", "--bogus"],
        &["ctr-wait", "--bogus"],
    ] {
        run(&fixture, args[0], &args[1..])
            .failure(2)
            .one_error_line(&[]);
    }
}
