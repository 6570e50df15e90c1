//! Health checks and restart policies on real containers: the monitor's
//! prober makes a container healthy or unhealthy as Docker's engine does
//! (ctr-ps STATUS, `-f health=`, `State.Health` in ctr-inspect), kills a
//! probe at its timeout, and the monitor restarts a container per its
//! policy, never undoing a user's stop or kill.

use berth_harness::{Fixture, Run, tool, wait_for};
use serde_json::Value;
use std::path::Path;

const IMG: &str = "health/busybox:latest";

fn fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture.busybox(IMG, "health");
    fixture
}

fn run(fixture: &Fixture, name: &str, args: &[&str]) -> Run {
    Run::of(tool(name, fixture.root()).args(args), None)
}

fn inspect(fixture: &Fixture, target: &str) -> Value {
    let out = run(fixture, "ctr-inspect", &[target]).success().stdout;
    let list: Value = serde_json::from_str(&out).unwrap();
    list[0].clone()
}

fn field(fixture: &Fixture, target: &str, template: &str) -> String {
    run(fixture, "ctr-inspect", &["-f", template, target])
        .success()
        .stdout
        .trim()
        .to_string()
}

fn ps_status(fixture: &Fixture, name: &str) -> String {
    let filter = format!("name=^{name}$");
    run(
        fixture,
        "ctr-ps",
        &["-a", "-f", &filter, "--format", "{{.Status}}"],
    )
    .success()
    .stdout
    .trim()
    .to_string()
}

fn names_with(fixture: &Fixture, filter: &str) -> Vec<String> {
    let mut names: Vec<String> = run(
        fixture,
        "ctr-ps",
        &["-a", "-f", filter, "--format", "{{.Names}}"],
    )
    .success()
    .stdout
    .lines()
    .map(str::to_string)
    .collect();
    names.sort();
    names
}

fn detached(fixture: &Fixture, args: &[&str]) -> String {
    let args = [&["-d"], args].concat();
    run(fixture, "ctr-run", &args)
        .success()
        .stdout
        .trim()
        .to_string()
}

#[test]
fn a_passing_check_makes_a_container_healthy_and_ps_and_inspect_say_so() {
    let fixture = fixture();
    detached(
        &fixture,
        &[
            "--name",
            "ok",
            "--health-cmd",
            "echo fine",
            "--health-interval",
            "100ms",
            IMG,
            "sleep",
            "300",
        ],
    );
    // A check whose first probe is far away stays starting.
    detached(
        &fixture,
        &[
            "--name",
            "later",
            "--health-cmd",
            "true",
            "--health-interval",
            "1h",
            IMG,
            "sleep",
            "300",
        ],
    );
    detached(&fixture, &["--name", "plain", IMG, "sleep", "300"]);
    assert!(
        wait_for(20, || field(&fixture, "ok", "{{.State.Health.Status}}")
            == "healthy"),
        "{:#}",
        inspect(&fixture, "ok")["State"]
    );
    let status = ps_status(&fixture, "ok");
    assert!(
        status.starts_with("Up ") && status.ends_with(" (healthy)"),
        "{status}"
    );
    let later = ps_status(&fixture, "later");
    assert!(later.ends_with(" (health: starting)"), "{later}");
    assert!(!ps_status(&fixture, "plain").contains('('));

    let health = &inspect(&fixture, "ok")["State"]["Health"];
    assert_eq!(health["FailingStreak"], 0);
    let log = health["Log"].as_array().unwrap();
    assert!(!log.is_empty() && log.len() <= 5, "{health:#}");
    assert_eq!(log[0]["ExitCode"], 0);
    assert_eq!(log[0]["Output"], "fine\n");
    assert!(log[0]["Start"].as_str().unwrap() <= log[0]["End"].as_str().unwrap());
    let config = &inspect(&fixture, "ok")["Config"]["Healthcheck"];
    assert_eq!(
        config["Test"],
        serde_json::json!(["CMD-SHELL", "echo fine"])
    );
    assert_eq!(config["Interval"], 100_000_000);

    assert_eq!(names_with(&fixture, "health=healthy"), ["ok"]);
    assert_eq!(names_with(&fixture, "health=starting"), ["later"]);
    assert_eq!(names_with(&fixture, "health=none"), ["plain"]);
    assert!(names_with(&fixture, "health=unhealthy").is_empty());
    run(&fixture, "ctr-ps", &["-f", "health=poorly"])
        .failure(1)
        .one_error_line(&["health="]);
    // More than five probes keep five results.
    assert!(wait_for(20, || {
        inspect(&fixture, "ok")["State"]["Health"]["Log"]
            .as_array()
            .is_some_and(|l| l.len() == 5)
    }));
    run(&fixture, "ctr-rm", &["-f", "ok", "later", "plain"]).success();
}

#[test]
fn a_failing_check_makes_it_unhealthy_after_its_retries() {
    let fixture = fixture();
    detached(
        &fixture,
        &[
            "--name",
            "bad",
            "--health-cmd",
            "echo broken; exit 1",
            "--health-interval",
            "100ms",
            "--health-retries",
            "3",
            IMG,
            "sleep",
            "300",
        ],
    );
    let mut streaks_while_starting = Vec::new();
    assert!(wait_for(20, || {
        let health = &inspect(&fixture, "bad")["State"]["Health"];
        if health["Status"] == "starting" {
            streaks_while_starting.push(health["FailingStreak"].as_i64().unwrap());
        }
        health["Status"] == "unhealthy"
    }));
    assert!(
        streaks_while_starting.iter().all(|s| *s < 3),
        "{streaks_while_starting:?}"
    );
    let health = &inspect(&fixture, "bad")["State"]["Health"];
    assert!(health["FailingStreak"].as_i64().unwrap() >= 3, "{health:#}");
    for result in health["Log"].as_array().unwrap() {
        assert_eq!(result["ExitCode"], 1);
        assert_eq!(result["Output"], "broken\n");
    }
    let status = ps_status(&fixture, "bad");
    assert!(status.ends_with(" (unhealthy)"), "{status}");
    assert_eq!(names_with(&fixture, "health=unhealthy"), ["bad"]);
    run(&fixture, "ctr-rm", &["-f", "bad"]).success();
}

#[test]
fn the_image_s_healthcheck_runs_and_no_healthcheck_disables_it() {
    let fixture = fixture();
    let dockerfile =
        format!("FROM {IMG}\nHEALTHCHECK --interval=100ms --retries=1 CMD [\"true\"]\n");
    Run::of(
        tool("img-build", fixture.root()).args(["-q", "-t", "checked:1", "-"]),
        Some(&dockerfile),
    )
    .success();
    detached(&fixture, &["--name", "imaged", "checked:1", "sleep", "300"]);
    detached(
        &fixture,
        &[
            "--name",
            "off",
            "--no-healthcheck",
            "checked:1",
            "sleep",
            "300",
        ],
    );
    // Once the image's check made one container healthy, the other's
    // probes would have had their time too.
    assert!(wait_for(20, || field(
        &fixture,
        "imaged",
        "{{.State.Health.Status}}"
    ) == "healthy"));
    assert_eq!(
        field(&fixture, "imaged", "{{json .Config.Healthcheck.Test}}"),
        r#"["CMD","true"]"#
    );
    let off = inspect(&fixture, "off");
    assert_eq!(
        off["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["NONE"])
    );
    assert!(off["State"].get("Health").is_none(), "{:#}", off["State"]);
    assert!(!ps_status(&fixture, "off").contains('('));
    assert_eq!(names_with(&fixture, "health=none"), ["off"]);
    run(&fixture, "ctr-rm", &["-f", "imaged", "off"]).success();
}

#[test]
fn a_probe_that_hangs_is_killed_at_its_timeout_and_counts_as_a_failure() {
    let fixture = fixture();
    detached(
        &fixture,
        &[
            "--name",
            "hangs",
            "--health-cmd",
            // A shell that must fork its sleep: the whole probe goes.
            "sleep 100; true",
            "--health-timeout",
            "300ms",
            "--health-interval",
            "100ms",
            "--health-retries",
            "1",
            IMG,
            "sleep",
            "300",
        ],
    );
    assert!(wait_for(20, || field(
        &fixture,
        "hangs",
        "{{.State.Health.Status}}"
    ) == "unhealthy"));
    let health = &inspect(&fixture, "hangs")["State"]["Health"];
    let first = &health["Log"][0];
    assert_eq!(first["ExitCode"], -1, "{health:#}");
    assert_eq!(first["Output"], "Health check exceeded timeout (300ms)");
    let took = |r: &Value| {
        let at = |key: &str| berth::format::human::parse_rfc3339(r[key].as_str().unwrap()).unwrap();
        at("End").duration_since(at("Start")).unwrap()
    };
    let took = took(first);
    assert!(
        took >= std::time::Duration::from_millis(300) && took < std::time::Duration::from_secs(5),
        "{took:?}"
    );
    // Killed, not left behind: at most the probe running now sleeps.
    assert!(wait_for(20, || {
        inspect(&fixture, "hangs")["State"]["Health"]["Log"]
            .as_array()
            .is_some_and(|l| l.len() >= 3)
    }));
    let ps = run(&fixture, "ctr-exec", &["hangs", "ps", "-o", "args"])
        .success()
        .stdout;
    let sleeping = ps.lines().filter(|l| l.trim() == "sleep 100").count();
    assert!(sleeping <= 1, "{ps}");
    run(&fixture, "ctr-rm", &["-f", "hangs"]).success();
}

#[test]
fn on_failure_restarts_at_most_its_count_then_stays_exited() {
    let fixture = fixture();
    detached(
        &fixture,
        &[
            "--name",
            "flaky",
            "--restart",
            "on-failure:2",
            IMG,
            "sh",
            "-c",
            "echo run; exit 3",
        ],
    );
    // Between runs it is `restarting`; only the last exit leaves it exited.
    assert!(wait_for(30, || field(
        &fixture,
        "flaky",
        "{{.State.Status}}"
    ) == "exited"));
    let record = inspect(&fixture, "flaky");
    assert_eq!(record["State"]["Status"], "exited", "{:#}", record["State"]);
    assert_eq!(record["State"]["ExitCode"], 3);
    assert_eq!(record["RestartCount"], 2);
    assert_eq!(
        record["HostConfig"]["RestartPolicy"],
        serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 2})
    );
    let logs = run(&fixture, "ctr-logs", &["flaky"]).success().stdout;
    assert_eq!(logs, "run\nrun\nrun\n", "three runs");
    run(&fixture, "ctr-rm", &["flaky"]).success();
}

#[test]
fn always_restarts_until_the_user_stops_or_kills_it() {
    let fixture = fixture();
    for (name, verb) in [("again", "ctr-stop"), ("killed", "ctr-kill")] {
        detached(
            &fixture,
            &[
                "--name",
                name,
                "--restart",
                "always",
                IMG,
                "sh",
                "-c",
                "echo run; sleep 0.2",
            ],
        );
        assert!(wait_for(20, || {
            field(&fixture, name, "{{.RestartCount}}")
                .parse::<i64>()
                .unwrap()
                >= 2
        }));
        run(&fixture, verb, &[name]).success();
        if verb == "ctr-kill" {
            assert!(wait_for(20, || field(&fixture, name, "{{.State.Status}}")
                == "exited"));
        }
        let record = inspect(&fixture, name);
        assert_eq!(
            record["State"]["Status"], "exited",
            "{verb}: {:#}",
            record["State"]
        );
        assert_eq!(record["HostConfig"]["RestartPolicy"]["Name"], "always");
        // Nobody owns it any more: nothing is left to start it again.
        let dir = fixture
            .root()
            .join("containers")
            .join(record["Id"].as_str().unwrap());
        let unowned = || {
            std::fs::File::open(dir.join("monitor.lock"))
                .unwrap()
                .try_lock()
                .is_ok()
        };
        assert!(wait_for(10, unowned), "{verb}: its monitor is gone");
        assert!(ps_status(&fixture, name).starts_with("Exited"));
        // A start by the user starts it again, policy and all.
        run(&fixture, "ctr-start", &[name]).success();
        assert!(wait_for(20, || {
            field(&fixture, name, "{{.RestartCount}}")
                .parse::<i64>()
                .unwrap()
                >= 1
        }));
        run(&fixture, "ctr-rm", &["-f", name]).success();
    }
}

/// The monitor of container `id`: the parent of its init (the init is its
/// child, see runtime::process::start).
fn monitor_of(fixture: &Fixture, id: &str) -> i32 {
    let pid: i32 = field(fixture, id, "{{.State.Pid}}").parse().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(") ").unwrap().1;
    after.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn mounted(path: &Path) -> bool {
    let wanted = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some(wanted.as_str()))
}

fn cgroups_of(id: &str) -> Vec<String> {
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|c| c.path().join("berth").join(id))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect()
}

#[test]
fn a_sigkilled_monitor_leaves_nothing_after_a_forced_rm() {
    let fixture = fixture();
    let id = detached(
        &fixture,
        &[
            "--name",
            "orphan",
            "--restart",
            "always",
            "--health-cmd",
            "true",
            "--health-interval",
            "100ms",
            IMG,
            "sleep",
            "300",
        ],
    );
    assert!(wait_for(20, || field(
        &fixture,
        "orphan",
        "{{.State.Health.Status}}"
    ) == "healthy"));
    let monitor = monitor_of(&fixture, &id);
    let rootfs = fixture.root().join("containers").join(&id).join("rootfs");
    assert!(mounted(&rootfs));
    // SAFETY: a signal to the monitor's PID, read just above.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    assert!(wait_for(10, || !Path::new(&format!("/proc/{monitor}"))
        .exists()
        || std::fs::read_to_string(format!("/proc/{monitor}/stat"))
            .is_ok_and(|s| s.contains(") Z"))));
    run(&fixture, "ctr-rm", &["-f", "orphan"]).success();
    assert!(!mounted(&rootfs), "the root filesystem is unmounted");
    assert_eq!(cgroups_of(&id), Vec::<String>::new());
    assert!(!fixture.root().join("containers").join(&id).exists());
    assert!(!fixture.store.runtime_dir().join(&id).exists());
}

#[test]
fn bad_health_and_restart_flags_are_refused_with_125_and_change_nothing() {
    let fixture = fixture();
    let before = berth_harness::store_listing(fixture.root());
    for (args, words) in [
        (
            &["--health-interval", "soon"][..],
            &["--health-interval", "time: invalid duration \"soon\""][..],
        ),
        (
            &["--health-timeout", "-1s"],
            &["--health-timeout", "cannot be negative"],
        ),
        (
            &["--restart", "sometimes"],
            &["invalid restart policy 'sometimes'"],
        ),
        (
            &["--restart", "on-failure:x"],
            &["maximum retry count must be an integer"],
        ),
        (
            &["--restart", "always:2"],
            &["maximum retry count cannot be used with restart policy 'always'"],
        ),
        (
            &["--restart", "always", "--rm"],
            &["Conflicting options: --restart and --rm"],
        ),
        (
            &["--no-healthcheck", "--health-cmd", "true"],
            &["--no-healthcheck conflicts with --health-* options"],
        ),
        (
            &["--health-retries", "-2"],
            &["--health-retries", "cannot be negative"],
        ),
    ] {
        let args = [args, &[IMG, "true"]].concat();
        run(&fixture, "ctr-run", &args)
            .failure(125)
            .one_error_line(words);
    }
    assert_eq!(berth_harness::store_listing(fixture.root()), before);
}

#[test]
fn between_restarts_it_shows_restarting_and_a_stop_then_ends_it() {
    let fixture = fixture();
    detached(
        &fixture,
        &[
            "--name",
            "loops",
            "--restart",
            "always",
            IMG,
            "sh",
            "-c",
            "exit 1",
        ],
    );
    // The back-off doubles from 100 ms, so the waits soon outlast a poll.
    let mut seen = String::new();
    assert!(
        wait_for(30, || {
            seen = ps_status(&fixture, "loops");
            seen.starts_with("Restarting (1) ") && seen.ends_with(" ago")
        }),
        "{seen}"
    );
    let state = &inspect(&fixture, "loops")["State"];
    if state["Status"] == "restarting" {
        assert_eq!(state["Restarting"], true);
        assert_eq!(
            state["Running"], true,
            "Docker's: restarting counts as running"
        );
        assert_eq!(state["Pid"], 0);
    }
    let started = std::time::Instant::now();
    run(&fixture, "ctr-stop", &["loops"]).success();
    assert!(started.elapsed() < std::time::Duration::from_secs(8));
    let record = inspect(&fixture, "loops");
    assert_eq!(record["State"]["Status"], "exited", "{:#}", record["State"]);
    assert_eq!(record["State"]["Restarting"], false);
    let count: i64 = record["RestartCount"].as_i64().unwrap();
    assert!(count >= 1);
    // Stopped for good: the count stays.
    let unowned = || {
        let dir = fixture
            .root()
            .join("containers")
            .join(record["Id"].as_str().unwrap());
        std::fs::File::open(dir.join("monitor.lock"))
            .unwrap()
            .try_lock()
            .is_ok()
    };
    assert!(wait_for(10, unowned));
    assert_eq!(inspect(&fixture, "loops")["RestartCount"], count);
    run(&fixture, "ctr-rm", &["loops"]).success();
}

#[test]
fn a_foreground_run_is_probed_and_one_with_a_policy_returns_at_its_first_exit() {
    let fixture = fixture();
    let mut foreground = tool("ctr-run", fixture.root())
        .args([
            "--name",
            "fg",
            "--health-cmd",
            "true",
            "--health-interval",
            "100ms",
            IMG,
            "sleep",
            "300",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(20, || {
        run(
            &fixture,
            "ctr-ps",
            &["-a", "-f", "name=^fg$", "--format", "{{.Status}}"],
        )
        .stdout
        .ends_with("(healthy)\n")
    }));
    run(&fixture, "ctr-stop", &["-t", "0", "fg"]).success();
    assert_eq!(foreground.wait().unwrap().code(), Some(137));
    assert_eq!(field(&fixture, "fg", "{{.State.Status}}"), "exited");

    // Docker's client returns the first run's code; the container goes on.
    let first = run(
        &fixture,
        "ctr-run",
        &[
            "--name",
            "again",
            "--restart",
            "on-failure:2",
            IMG,
            "sh",
            "-c",
            "echo run; exit 3",
        ],
    )
    .failure(3);
    assert!(first.stdout.starts_with("run\n"), "{first:#?}");
    assert!(wait_for(30, || field(
        &fixture,
        "again",
        "{{.State.Status}}"
    ) == "exited"));
    assert_eq!(field(&fixture, "again", "{{.RestartCount}}"), "2");
    run(&fixture, "ctr-rm", &["fg", "again"]).success();
}
