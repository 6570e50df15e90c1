//! The container lifecycle end to end on real containers: ctr-run -d, then
//! ps, exec, logs, stop, start, kill, rm, with ctr-inspect agreeing at
//! every step.

use berth_harness::pty::PtySession;
use berth_harness::{Fixture, Run, tool, wait_for};
use serde_json::Value;
use std::time::{Duration, Instant};

const IMG: &str = "test/busybox:latest";

/// A shell that exits 143 on SIGTERM (PID 1 gets no default handlers).
const TRAPS_TERM: &str =
    "trap 'exit 143' TERM; echo started; echo oops >&2; while true; do sleep 0.05; done";

fn fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture.busybox(IMG, "lifecycle");
    fixture
}

fn run(fixture: &Fixture, name: &str, args: &[&str]) -> Run {
    Run::of(tool(name, fixture.root()).args(args), None)
}

fn status(fixture: &Fixture, target: &str) -> String {
    run(
        fixture,
        "ctr-inspect",
        &["--format", "{{.State.Status}}", target],
    )
    .success()
    .stdout
    .trim()
    .to_string()
}

#[test]
fn a_full_lifecycle_with_inspect_agreeing_at_every_step() {
    let fixture = fixture();
    let id = run(
        &fixture,
        "ctr-run",
        &["-d", "--name", "web", IMG, "sh", "-c", TRAPS_TERM],
    )
    .success()
    .stdout
    .trim()
    .to_string();
    assert_eq!(status(&fixture, "web"), "running");

    let ps = run(&fixture, "ctr-ps", &[]).success().stdout;
    let row = ps.lines().nth(1).expect("a row for the container");
    assert!(row.starts_with(&id[..12]), "{ps}");
    assert!(row.contains(" Up "), "{ps}");
    assert!(row.trim_end().ends_with("web"), "{ps}");

    let cmdline = run(&fixture, "ctr-exec", &["web", "cat", "/proc/1/cmdline"])
        .success()
        .stdout;
    assert_eq!(cmdline.split('\0').next(), Some("sh"));
    run(&fixture, "ctr-exec", &["web", "sh", "-c", "exit 5"]).failure(5);
    run(&fixture, "ctr-exec", &["web", "no-such-command"]).failure(127);
    run(
        &fixture,
        "ctr-exec",
        &["web", "sh", "-c", "echo kept > /kept"],
    )
    .success();

    assert!(wait_for(10, || {
        run(&fixture, "ctr-logs", &["web"]).success().stdout == "started\n"
    }));
    let logs = run(&fixture, "ctr-logs", &["web"]).success();
    assert_eq!(logs.stderr, "oops\n");

    // SIGTERM is handled: the stop is quick, and the code is the trap's.
    let started = Instant::now();
    let stop = run(&fixture, "ctr-stop", &["web"]).success();
    assert_eq!(stop.stdout, "web\n");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status(&fixture, "web"), "exited");
    assert!(
        run(&fixture, "ctr-ps", &[])
            .success()
            .stdout
            .lines()
            .count()
            == 1
    );
    let all = run(&fixture, "ctr-ps", &["-a"]).success().stdout;
    assert!(all.contains("Exited (143)"), "{all}");

    run(&fixture, "ctr-start", &["web"]).success();
    assert_eq!(status(&fixture, &id[..6]), "running");
    let kept = run(&fixture, "ctr-exec", &["web", "cat", "/kept"]).success();
    assert_eq!(
        kept.stdout, "kept\n",
        "the upper dir did not survive the restart"
    );

    run(&fixture, "ctr-kill", &["web"]).success();
    assert!(wait_for(10, || status(&fixture, "web") == "exited"));
    let code = run(
        &fixture,
        "ctr-inspect",
        &["--format", "{{.State.ExitCode}}", "web"],
    )
    .success();
    assert_eq!(code.stdout, "137\n");

    run(&fixture, "ctr-rm", &["web"]).success();
    run(&fixture, "ctr-inspect", &["web"])
        .failure(1)
        .one_error_line(&["No such container: web"]);
    assert!(!fixture.root().join("containers").join(&id).exists());
}

#[test]
fn stop_kills_after_the_timeout_when_the_signal_is_ignored() {
    let fixture = fixture();
    // PID 1 without a handler ignores SIGTERM, as in Docker.
    run(
        &fixture,
        "ctr-run",
        &["-d", "--name", "stubborn", IMG, "sleep", "1000"],
    )
    .success();
    let started = Instant::now();
    run(&fixture, "ctr-stop", &["-t", "1", "stubborn"]).success();
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let exit = run(
        &fixture,
        "ctr-inspect",
        &["-f", "{{.State.Status}} {{.State.ExitCode}}", "stubborn"],
    );
    assert_eq!(exit.success().stdout, "exited 137\n");
}

#[test]
fn a_container_killed_from_outside_is_reported_exited() {
    let fixture = fixture();
    run(
        &fixture,
        "ctr-run",
        &["-d", "--name", "victim", IMG, "sleep", "1000"],
    )
    .success();
    let inspect: Value =
        serde_json::from_str(&run(&fixture, "ctr-inspect", &["victim"]).success().stdout).unwrap();
    let pid = inspect[0]["State"]["Pid"].as_i64().unwrap() as i32;
    assert!(pid > 0);
    // SAFETY: killing the container's init, as `kill -9 <pid>` would.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(wait_for(10, || status(&fixture, "victim") == "exited"));
    let ps = run(
        &fixture,
        "ctr-ps",
        &["-a", "--format", "{{.Names}} {{.State}} {{.Status}}"],
    )
    .success()
    .stdout;
    assert!(ps.starts_with("victim exited Exited (137)"), "{ps}");
    assert!(run(&fixture, "ctr-ps", &["-q"]).success().stdout.is_empty());
}

#[test]
fn ps_filters_formats_and_the_pipe_to_rm() {
    let fixture = fixture();
    run(&fixture, "ctr-run", &["--name", "done0", IMG, "true"]).success();
    run(
        &fixture,
        "ctr-run",
        &["--name", "done3", IMG, "sh", "-c", "exit 3"],
    )
    .failure(3);
    let up = run(
        &fixture,
        "ctr-run",
        &["-d", "--name", "up", IMG, "sleep", "1000"],
    )
    .success()
    .stdout;

    let names = |args: &[&str]| {
        let mut args = args.to_vec();
        args.extend(["--format", "{{.Names}}"]);
        let out = run(&fixture, "ctr-ps", &args).success().stdout;
        let mut names: Vec<String> = out.lines().map(String::from).collect();
        names.sort();
        names
    };
    assert_eq!(names(&[]), ["up"]);
    assert_eq!(names(&["-a"]), ["done0", "done3", "up"]);
    assert_eq!(names(&["-f", "status=exited"]), ["done0", "done3"]);
    assert_eq!(names(&["-a", "-f", "exited=3"]), ["done3"]);
    assert_eq!(names(&["-a", "-f", "name=done"]), ["done0", "done3"]);
    // Docker's name filter is a regular expression, on `/name` or `name`.
    assert_eq!(names(&["-a", "-f", "name=^/done3$"]), ["done3"]);
    assert_eq!(names(&["-a", "-f", "name=^d.*0$"]), ["done0"]);
    assert_eq!(names(&["-a", "-f", &format!("id={}", &up[..8])]), ["up"]);
    assert_eq!(names(&["-a", "-f", &format!("ancestor={IMG}")]).len(), 3);
    assert_eq!(names(&["-l"]), ["up"]);

    let json = run(&fixture, "ctr-ps", &["--format", "json"])
        .success()
        .stdout;
    let row: Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(row["Names"], "up");
    assert_eq!(row["State"], "running");
    assert_eq!(row["Command"], "\"sleep 1000\"");
    assert_eq!(row["Image"], IMG);

    run(&fixture, "ctr-ps", &["-f", "colour=red"])
        .failure(1)
        .one_error_line(&["colour=red"]);

    // Every container, from ps to rm by pipe; -f takes the running one too.
    let ids = run(&fixture, "ctr-ps", &["-aq"]).success().stdout;
    assert_eq!(ids.lines().count(), 3);
    let removed = Run::of(tool("ctr-rm", fixture.root()).arg("-f"), Some(&ids)).success();
    assert_eq!(removed.stdout.lines().count(), 3);
    assert!(
        run(&fixture, "ctr-ps", &["-aq"])
            .success()
            .stdout
            .is_empty()
    );
}

#[test]
fn inspect_has_dockers_shape_and_templates() {
    let fixture = fixture();
    run(
        &fixture,
        "ctr-run",
        &["-d", "--name", "shape", "-e", "A=1", IMG, "sleep", "1000"],
    )
    .success();
    let inspect: Value = serde_json::from_str(
        &run(&fixture, "ctr-inspect", &["--size", "shape"])
            .success()
            .stdout,
    )
    .unwrap();
    let c = &inspect[0];
    assert_eq!(c["Name"], "/shape");
    assert_eq!(c["Path"], "sleep");
    assert_eq!(c["Args"], serde_json::json!(["1000"]));
    assert_eq!(c["State"]["Running"], true);
    assert_eq!(c["RestartCount"], 0);
    // On the default bridge, as Docker's: an address there, named twice.
    let address = c["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(address.parse::<std::net::Ipv4Addr>().is_ok(), "{address:?}");
    assert_eq!(
        c["NetworkSettings"]["Networks"]["bridge"]["IPAddress"],
        address
    );
    assert_eq!(c["HostConfig"]["NetworkMode"], "bridge");
    assert!(
        c["Config"]["Env"]
            .as_array()
            .unwrap()
            .contains(&Value::from("A=1"))
    );
    assert!(c["SizeRootFs"].as_u64().unwrap() >= c["SizeRw"].as_u64().unwrap());
    for field in [
        "LogPath",
        "ResolvConfPath",
        "HostnamePath",
        "HostsPath",
        "HostConfig",
        "Mounts",
    ] {
        assert!(c.get(field).is_some(), "{field}");
    }
    let templated = run(
        &fixture,
        "ctr-inspect",
        &["-f", "{{.Name}} {{json .Config.Cmd}} {{index .Config.Cmd 0}} [{{.NetworkSettings.IPAddress}}]", "shape"],
    )
    .success();
    assert_eq!(
        templated.stdout,
        format!("/shape [\"sleep\",\"1000\"] sleep [{address}]\n")
    );
    run(&fixture, "ctr-rm", &["shape"])
        .failure(1)
        .one_error_line(&["container is running"]);
    run(&fixture, "ctr-rm", &["-f", "shape"]).success();
}

#[test]
fn bad_targets_get_one_line_and_the_others_are_still_done() {
    let fixture = fixture();
    for name in ["aa", "bb"] {
        run(&fixture, "ctr-run", &["--name", name, IMG, "true"]).success();
    }
    let mixed = run(&fixture, "ctr-rm", &["aa", "ghost", "bb"]).failure(1);
    assert_eq!(mixed.stdout, "aa\nbb\n");
    assert_eq!(mixed.stderr, "ctr-rm: No such container: ghost\n");
    // Run containers until two IDs share a first hex digit: by the
    // pigeonhole principle that happens by the seventeenth (aa and bb are
    // gone), and by the birthday bound usually by the sixth.
    let shared = loop {
        run(&fixture, "ctr-run", &[IMG, "true"]).success();
        let all = run(&fixture, "ctr-ps", &["-aq", "--no-trunc"])
            .success()
            .stdout;
        let mut firsts: Vec<&str> = all.lines().map(|id| &id[..1]).collect();
        assert!(
            firsts.len() <= 17,
            "past 16 IDs and still no shared first digit:\n{all}"
        );
        firsts.sort_unstable();
        if let Some(pair) = firsts.windows(2).find(|pair| pair[0] == pair[1]) {
            break pair[0].to_string();
        }
    };
    run(&fixture, "ctr-inspect", &[&shared])
        .failure(1)
        .one_error_line(&["ambiguous"]);
    // Exec into a stopped container: refused, and it stays as it was.
    run(&fixture, "ctr-run", &["--name", "stopped", IMG, "true"]).success();
    let record = run(&fixture, "ctr-inspect", &["stopped"]).success().stdout;
    run(&fixture, "ctr-exec", &["stopped", "true"])
        .failure(1)
        .one_error_line(&["is not running"]);
    assert_eq!(
        run(&fixture, "ctr-inspect", &["stopped"]).success().stdout,
        record
    );
}

#[test]
fn exec_with_a_tty_runs_on_a_pty_inside() {
    let fixture = fixture();
    run(
        &fixture,
        "ctr-run",
        &["-d", "--name", "term", IMG, "sleep", "1000"],
    )
    .success();
    let mut session =
        PtySession::spawn(tool("ctr-exec", fixture.root()).args(["-it", "term", "sh"]));
    session.expect("# ", 30);
    session.send(b"tty; stty size\r");
    session.expect("/dev/pts/", 10);
    session.expect("24 80", 10);
    session.send(b"exit 4\r");
    assert_eq!(session.wait(20).code(), Some(4));
    run(&fixture, "ctr-rm", &["-f", "term"]).success();
}

/// An exec'd process is confined like the init: the same seccomp filter
/// and the same capabilities (none left over from loading the filter).
#[test]
fn exec_runs_under_the_containers_seccomp_filter_and_capabilities() {
    let fixture = fixture();
    let probe = "grep -E '^(Seccomp|CapEff|CapPrm|CapBnd):' /proc/self/status; \
                 unshare -U true 2>/dev/null && echo userns || echo refused";
    let init_view = |name: &str| {
        run(&fixture, "ctr-exec", &[name, "cat", "/proc/1/status"])
            .success()
            .stdout
            .lines()
            .filter(|l| {
                ["Seccomp:", "CapEff:", "CapPrm:", "CapBnd:"]
                    .iter()
                    .any(|k| l.starts_with(k))
            })
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
    };
    let exec_view = |name: &str, user: &[&str]| {
        let mut args = user.to_vec();
        args.extend([name, "sh", "-c", probe]);
        run(&fixture, "ctr-exec", &args)
            .success()
            .stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
    };

    run(
        &fixture,
        "ctr-run",
        &["-d", "--name", "filtered", IMG, "sleep", "1000"],
    )
    .success();
    let init = init_view("filtered");
    assert!(init.contains(&"Seccomp: 2".to_string()), "{init:?}");
    let exec = exec_view("filtered", &[]);
    assert_eq!(exec[..4], init[..], "exec'd process differs from the init");
    assert_eq!(exec[4], "refused");
    // A non-root user is filtered too and keeps no capability.
    let as_user = exec_view("filtered", &["-u", "1000"]);
    assert!(as_user.contains(&"Seccomp: 2".to_string()), "{as_user:?}");
    assert!(
        as_user.contains(&"CapPrm: 0000000000000000".to_string()),
        "{as_user:?}"
    );
    assert!(
        as_user.contains(&"CapEff: 0000000000000000".to_string()),
        "{as_user:?}"
    );

    let unconfined = [
        "-d",
        "--name",
        "open",
        "--security-opt",
        "seccomp=unconfined",
    ];
    run(
        &fixture,
        "ctr-run",
        &[&unconfined[..], &[IMG, "sleep", "1000"]].concat(),
    )
    .success();
    let exec = exec_view("open", &[]);
    assert_eq!(exec[..4], init_view("open")[..]);
    assert!(exec.contains(&"Seccomp: 0".to_string()), "{exec:?}");
    run(&fixture, "ctr-rm", &["-f", "filtered", "open"]).success();
}

#[test]
fn logs_tail_timestamps_and_follow() {
    let fixture = fixture();
    run(
        &fixture,
        "ctr-run",
        &[
            "-d",
            "--name",
            "talker",
            IMG,
            "sh",
            "-c",
            "for i in 1 2 3; do echo line$i; done; sleep 1; echo last",
        ],
    )
    .success();
    // -f returns only once the container has exited, with every line.
    let followed = run(&fixture, "ctr-logs", &["-f", "talker"]).success();
    assert_eq!(followed.stdout, "line1\nline2\nline3\nlast\n");
    assert_eq!(status(&fixture, "talker"), "exited");
    let tail = run(&fixture, "ctr-logs", &["--tail", "2", "talker"]).success();
    assert_eq!(tail.stdout, "line3\nlast\n");
    let stamped = run(&fixture, "ctr-logs", &["-t", "-n", "1", "talker"]).success();
    let (time, line) = stamped.stdout.split_once(' ').unwrap();
    assert!(time.ends_with('Z') && time.contains('T'), "{time}");
    assert_eq!(line, "last\n");
    let none = run(
        &fixture,
        "ctr-logs",
        &["--since", "2999-01-01T00:00:00Z", "talker"],
    )
    .success();
    assert!(none.stdout.is_empty());
}

#[test]
fn stops_and_starts_racing_on_one_container_never_corrupt_its_record() {
    let fixture = fixture();
    run(
        &fixture,
        "ctr-run",
        &["-d", "--name", "raced", IMG, "sh", "-c", TRAPS_TERM],
    )
    .success();
    let root = fixture.root().to_path_buf();
    let racers: Vec<_> = (0..6)
        .map(|i| {
            let root = root.clone();
            std::thread::spawn(move || {
                let tool_name = if i % 2 == 0 { "ctr-stop" } else { "ctr-start" };
                // Either may lose a race (start of a running one is a no-op);
                // what matters is what is left behind.
                let _ = Run::of(tool(tool_name, &root).arg("raced"), None);
            })
        })
        .collect();
    for racer in racers {
        racer.join().unwrap();
    }
    // Whatever the order, the record parses, agrees with the process, and
    // the container can still be stopped, started and removed.
    let settled = |fixture: &Fixture| {
        let inspect: Value =
            serde_json::from_str(&run(fixture, "ctr-inspect", &["raced"]).success().stdout)
                .unwrap();
        let state = &inspect[0]["State"];
        let pid = state["Pid"].as_i64().unwrap() as i32;
        match state["Status"].as_str().unwrap() {
            // SAFETY: signal 0 only checks that the process exists.
            "running" => pid > 0 && unsafe { libc::kill(pid, 0) } == 0,
            "exited" => pid == 0,
            _ => false,
        }
    };
    assert!(wait_for(10, || settled(&fixture)));
    run(&fixture, "ctr-stop", &["raced"]).success();
    assert_eq!(status(&fixture, "raced"), "exited");
    run(&fixture, "ctr-start", &["raced"]).success();
    assert_eq!(status(&fixture, "raced"), "running");
    run(&fixture, "ctr-rm", &["-f", "raced"]).success();
}

/// A container's cgroups exist while it runs and are gone once it stopped,
/// even with a process that ctr-exec left running in the background (the
/// PID namespace ends with the init, and the cgroups are then empty), and
/// libcontainer's state goes with them.
#[test]
fn a_stopped_container_leaves_no_cgroup_or_runtime_state() {
    let fixture = fixture();
    let id = run(
        &fixture,
        "ctr-run",
        &[
            "-d",
            "--memory",
            "64m",
            "--pids-limit",
            "50",
            IMG,
            "sleep",
            "1000",
        ],
    )
    .success()
    .stdout
    .trim()
    .to_string();
    run(&fixture, "ctr-exec", &["-d", &id, "sleep", "1000"]).success();
    let controllers = ["memory", "pids", "cpu", "freezer", "devices"];
    let cgroup = |controller: &str| {
        std::path::Path::new("/sys/fs/cgroup")
            .join(controller)
            .join("berth")
            .join(&id)
    };
    for controller in controllers {
        assert!(
            cgroup(controller).is_dir(),
            "no {controller} cgroup while running"
        );
    }
    let procs = std::fs::read_to_string(cgroup("pids").join("cgroup.procs")).unwrap();
    assert_eq!(
        procs.lines().count(),
        2,
        "init and the exec'd sleep: {procs}"
    );
    let runtime_state = fixture.store.runtime_dir().join(&id);
    assert!(runtime_state.is_dir());

    run(&fixture, "ctr-stop", &["-t", "0", &id]).success();
    for controller in controllers {
        assert!(
            !cgroup(controller).exists(),
            "{controller} cgroup left behind"
        );
    }
    assert!(!runtime_state.exists(), "libcontainer's state left behind");
    assert_eq!(status(&fixture, &id), "exited");
}

/// `ctr-rm -f` of a container its owner is still starting (a killed
/// ctr-run's monitor, a slow start) waits for the start and then removes
/// it: torn down under its owner, the start failed with whatever it found
/// missing and a cgroup could stay behind with nobody's container in it.
#[test]
fn rm_of_a_container_being_started_waits_for_the_start_and_leaves_nothing() {
    let fixture = fixture();
    for round in 0..8 {
        let starting = tool("ctr-run", fixture.root())
            .args(["-d", "--network", "none", IMG, "sleep", "60"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut id = String::new();
        assert!(
            wait_for(10, || {
                id = run(&fixture, "ctr-ps", &["-aq", "--no-trunc"]).stdout;
                !id.trim().is_empty()
            }),
            "round {round}: the container never appeared"
        );
        let id = id.trim().to_string();
        run(&fixture, "ctr-rm", &["-f", &id]).success();
        let started = starting.wait_with_output().unwrap();
        assert!(
            started.status.success(),
            "round {round}: ctr-run failed under ctr-rm: {}",
            String::from_utf8_lossy(&started.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&started.stdout).trim(), id);
        assert_eq!(
            run(&fixture, "ctr-ps", &["-aq"]).stdout,
            "",
            "round {round}"
        );
        for controller in ["pids", "memory", "freezer"] {
            let cgroup = std::path::Path::new("/sys/fs/cgroup")
                .join(controller)
                .join("berth")
                .join(&id);
            assert!(!cgroup.exists(), "round {round}: {cgroup:?} left behind");
        }
    }
}

/// ctr-stats reads what the kernel counts for the container: CPU a busy
/// loop burns, memory it holds in tmpfs (not reclaimable, so it counts)
/// against its limit, its processes; a stopped one reads as zeros.
#[test]
fn stats_show_what_the_container_uses() {
    let fixture = fixture();
    let busy = run(
        &fixture,
        "ctr-run",
        &[
            "-d",
            "--network",
            "none",
            IMG,
            "sh",
            "-c",
            "while :; do :; done",
        ],
    )
    .success()
    .stdout;
    let holder = run(
        &fixture,
        "ctr-run",
        &[
            "-d",
            "--network",
            "none",
            "-m",
            "64m",
            IMG,
            "sh",
            "-c",
            "head -c 20000000 /dev/zero > /dev/shm/held; touch /dev/shm/done; sleep 600",
        ],
    )
    .success()
    .stdout;
    let (busy, holder) = (busy.trim(), holder.trim());
    assert!(wait_for(20, || run(
        &fixture,
        "ctr-exec",
        &[holder, "test", "-e", "/dev/shm/done"]
    )
    .code
        == Some(0)));
    run(&fixture, "ctr-exec", &["-d", holder, "sleep", "600"]).success();
    run(
        &fixture,
        "ctr-run",
        &["--name", "gone", "--network", "none", IMG, "true"],
    )
    .success();

    let stats = run(
        &fixture,
        "ctr-stats",
        &[
            "--no-stream",
            "--format",
            "{{json .}}",
            busy,
            holder,
            "gone",
        ],
    )
    .success()
    .stdout;
    let rows: Vec<Value> = stats
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3, "{stats}");
    let percent = |v: &Value| {
        v.as_str()
            .unwrap()
            .trim_end_matches('%')
            .parse::<f64>()
            .unwrap()
    };
    assert!(percent(&rows[0]["CPUPerc"]) > 5.0, "a busy loop: {stats}");
    assert_eq!(rows[0]["PIDs"], "1");
    let memory = rows[1]["MemUsage"].as_str().unwrap();
    let (used, limit) = memory.split_once(" / ").unwrap();
    assert_eq!(limit, "64MiB", "{stats}");
    assert!(
        used.ends_with("MiB") && used.trim_end_matches("MiB").parse::<f64>().unwrap() >= 19.0,
        "20 MB held in tmpfs: {stats}"
    );
    assert!(percent(&rows[1]["MemPerc"]) > 29.0, "{stats}");
    assert_eq!(rows[1]["PIDs"], "2", "its init and the exec'd sleep");
    assert_eq!(rows[1]["ID"], &holder[..12]);
    assert_eq!(rows[2]["Name"], "gone");
    assert_eq!(rows[2]["MemUsage"], "0B / 0B");
    assert_eq!(rows[2]["PIDs"], "0");

    // By default: the running ones only, in ctr-ps's order, by short ID.
    let table = run(&fixture, "ctr-stats", &["--no-stream"])
        .success()
        .stdout;
    let ids: Vec<&str> = table.lines().skip(1).map(|l| &l[..12]).collect();
    assert_eq!(ids, [&holder[..12], &busy[..12]], "{table}");
    assert!(table.starts_with("CONTAINER ID   NAME "), "{table}");

    let missing = run(&fixture, "ctr-stats", &["--no-stream", holder, "nosuch"]).failure(1);
    assert_eq!(missing.stderr, "ctr-stats: No such container: nosuch\n");
    assert_eq!(missing.stdout.lines().count(), 2, "the others still shown");
}

/// ctr-update changes a running container's cgroups at once, and a
/// stopped one's for its next start; what the kernel refuses (a memory
/// limit below what cannot be reclaimed) is one line and changes nothing.
#[test]
fn update_changes_limits_now_and_for_later_starts() {
    let fixture = fixture();
    let id = run(
        &fixture,
        "ctr-run",
        &["-d", "--network", "none", "-m", "64m", IMG, "sleep", "600"],
    )
    .success()
    .stdout
    .trim()
    .to_string();
    let limits = |fixture: &Fixture| {
        run(
            fixture,
            "ctr-exec",
            &[
                &id,
                "cat",
                "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
                "/sys/fs/cgroup/pids/pids.max",
            ],
        )
        .success()
        .stdout
    };
    let inspected = |fixture: &Fixture| {
        run(
            fixture,
            "ctr-inspect",
            &[
                "-f",
                "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}",
                &id,
            ],
        )
        .success()
        .stdout
    };
    let short = &id[..12];
    let updated = run(
        &fixture,
        "ctr-update",
        &["-m", "32m", "--cpus", "0.5", "--pids-limit", "20", short],
    )
    .success();
    assert_eq!(updated.stdout, format!("{short}\n"));
    assert_eq!(limits(&fixture), "33554432\n50000\n20\n");
    assert_eq!(inspected(&fixture), "33554432 500000000 20\n");

    // 24 MB held in tmpfs cannot be reclaimed: a 10m limit is refused.
    run(
        &fixture,
        "ctr-exec",
        &[
            &id,
            "sh",
            "-c",
            "head -c 24000000 /dev/zero > /dev/shm/held",
        ],
    )
    .success();
    let refused = run(&fixture, "ctr-update", &["-m", "10m", &id]).failure(1);
    assert!(
        refused
            .stderr
            .starts_with(&format!("ctr-update: Cannot update container {id}: ")),
        "{refused:#?}"
    );
    assert_eq!(refused.stderr.lines().count(), 1);
    assert_eq!(inspected(&fixture), "33554432 500000000 20\n", "unchanged");

    // Stopped: the next start has the new limits.
    run(&fixture, "ctr-stop", &["-t", "0", &id]).success();
    run(
        &fixture,
        "ctr-update",
        &["-m", "48m", "--pids-limit", "-1", &id],
    )
    .success();
    run(&fixture, "ctr-start", &[&id]).success();
    assert_eq!(limits(&fixture), "50331648\n50000\nmax\n");
    assert_eq!(inspected(&fixture), "50331648 500000000 0\n");

    let none = run(&fixture, "ctr-update", &[&id]).failure(1);
    assert_eq!(
        none.stderr,
        "ctr-update: you must provide one or more flags when using this command\n"
    );
}

/// ctr-create makes the container and leaves it created, holding nothing
/// (no mount, no cgroup); ctr-start runs it as Docker's start does.
#[test]
fn create_leaves_a_container_that_start_runs() {
    let fixture = fixture();
    let id = run(
        &fixture,
        "ctr-create",
        &[
            "--name",
            "made",
            "-e",
            "X=1",
            IMG,
            "sh",
            "-c",
            "echo $X; exit 4",
        ],
    )
    .success()
    .stdout
    .trim()
    .to_string();
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(status(&fixture, "made"), "created");
    let listed = run(
        &fixture,
        "ctr-ps",
        &["-a", "--format", "{{.Names}} {{.Status}}"],
    )
    .success();
    assert_eq!(listed.stdout, "made Created\n");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&id), "a created container mounts nothing");
    assert!(
        !std::path::Path::new("/sys/fs/cgroup/pids/berth")
            .join(&id)
            .exists()
    );

    let started = run(&fixture, "ctr-start", &["-a", "made"]).failure(4);
    assert_eq!(started.stdout, "1\n");
    assert_eq!(status(&fixture, "made"), "exited");
    run(&fixture, "ctr-create", &["--name", "made", IMG, "true"])
        .failure(1)
        .one_error_line(&["Conflict. The container name \"/made\" is already in use"]);
}
