//! ctr-run end to end: real containers from busybox fixture images, run
//! through libcontainer, checked from inside and through their records.

use berth_harness::fixture::layer_of;
use berth_harness::fixture::write_layers;
use berth_harness::{Fixture, Run, tool, wait_for};
use serde_json::{Value, json};
use std::path::Path;

const IMG: &str = "test/busybox:latest";

fn fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture.busybox(IMG, "run");
    fixture
}

fn ctr_run(fixture: &Fixture, args: &[&str]) -> Run {
    Run::of(tool("ctr-run", fixture.root()).args(args), None)
}

#[test]
fn echo_hi_prints_hi_and_rm_leaves_nothing() {
    let fixture = fixture();
    let run = ctr_run(&fixture, &["--rm", IMG, "echo", "hi"]).success();
    assert_eq!(run.stdout, "hi\n");
    assert!(
        fixture.container_ids().is_empty(),
        "{:?}",
        fixture.container_ids()
    );
    // libcontainer's state is gone: on a tmpfs where the machine has one,
    // shared with other stores' containers, none of which has its bundle
    // in this store.
    let runtime = fixture.store.runtime_dir();
    let ours = fixture.root().display().to_string();
    for entry in std::fs::read_dir(&runtime).into_iter().flatten().flatten() {
        let state = std::fs::read_to_string(entry.path().join("state.json")).unwrap_or_default();
        assert!(
            !state.contains(&ours),
            "{:?} is left: {state}",
            entry.path()
        );
    }
}

#[test]
fn the_containers_exit_code_is_ours() {
    let fixture = fixture();
    ctr_run(&fixture, &["--rm", IMG, "sh", "-c", "exit 7"]).failure(7);
    // PID 1 ignores a signal it has no handler for, as under Docker without --init.
    ctr_run(
        &fixture,
        &["--rm", IMG, "sh", "-c", "kill -TERM $$; echo survived"],
    )
    .success();
}

#[test]
fn a_missing_command_exits_127_and_a_non_executable_126() {
    let fixture = fixture();
    let run = ctr_run(&fixture, &["--rm", IMG, "no-such-command"]).failure(127);
    assert!(run.stderr.contains("executable file not found"), "{run:#?}");
    ctr_run(&fixture, &["--rm", IMG, "/etc/passwd"]).failure(126);
    assert!(fixture.container_ids().is_empty());
}

/// The root's mount options as the container sees them.
fn root_mount_options(fixture: &Fixture, flags: &[&str]) -> String {
    let args = [
        flags,
        &["--network", "none", IMG, "cat", "/proc/self/mountinfo"],
    ]
    .concat();
    let run = ctr_run(fixture, &args).success();
    run.stdout
        .lines()
        .find(|line| line.split(' ').nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("no root in {}", run.stdout))
        .to_string()
}

#[test]
fn only_a_removed_container_s_overlay_skips_syncs() {
    let fixture = fixture();
    // Its upper dir goes with it, so overlay's syncs (the whole upper
    // filesystem's, at unmount) buy nothing.
    let removed = root_mount_options(&fixture, &["--rm"]);
    assert!(
        removed.contains("overlay") && removed.contains("volatile"),
        "{removed}"
    );
    // A kept container's writes must survive a crash.
    let kept = root_mount_options(&fixture, &[]);
    assert!(
        kept.contains("overlay") && !kept.contains("volatile"),
        "{kept}"
    );
    // Kept, it starts again on the same upper dir.
    let id = fixture.container_ids().pop().unwrap();
    let again = Run::of(tool("ctr-start", fixture.root()).args(["-a", &id]), None).success();
    assert!(again.stdout.contains(" / / "), "{again:#?}");
}

#[test]
fn the_record_keeps_the_exit_without_rm() {
    let fixture = fixture();
    ctr_run(&fixture, &["--name", "kept", IMG, "sh", "-c", "exit 3"]).failure(3);
    let ids = fixture.container_ids();
    assert_eq!(ids.len(), 1);
    let kept = fixture.container_record(&ids[0]);
    assert_eq!(kept["Name"], "/kept");
    assert_eq!(kept["State"]["Status"], "exited");
    assert_eq!(kept["State"]["ExitCode"], 3);
    assert_eq!(kept["Path"], "sh");
    assert_eq!(kept["Args"], json!(["-c", "exit 3"]));
    assert_ne!(kept["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    // The overlay is unmounted once the container is gone.
    let rootfs = fixture
        .root()
        .join("containers")
        .join(&ids[0])
        .join("rootfs");
    assert!(std::fs::read_dir(rootfs).unwrap().next().is_none());
}

#[test]
fn detached_returns_the_id_at_once_and_the_process_is_pid_1() {
    let fixture = fixture();
    let run = ctr_run(&fixture, &["-d", IMG, "sleep", "1000"]).success();
    let id = run.stdout.trim().to_string();
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{run:#?}"
    );
    let running = fixture.container_record(&id);
    assert_eq!(running["State"]["Status"], "running");
    let pid = running["State"]["Pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert_eq!(nspid.split_whitespace().last(), Some("1"), "{nspid}");
    // SAFETY: killing the container's init, which we started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    assert!(wait_for(
        10,
        || fixture.container_record(&id)["State"]["Status"] == "exited"
    ));
    assert_eq!(fixture.container_record(&id)["State"]["ExitCode"], 137);
}

#[test]
fn detached_output_goes_to_a_json_file_log_and_rm_is_honoured() {
    let fixture = fixture();
    let run = ctr_run(&fixture, &["-d", IMG, "sh", "-c", "echo out; echo err >&2"]).success();
    let id = run.stdout.trim().to_string();
    let log = fixture
        .root()
        .join("containers")
        .join(&id)
        .join(format!("{id}-json.log"));
    assert!(wait_for(
        10,
        || fixture.container_record(&id)["State"]["Status"] == "exited"
    ));
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["log"] == "out\n" && l["stream"] == "stdout"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["log"] == "err\n" && l["stream"] == "stderr"),
        "{lines:?}"
    );

    let id = ctr_run(&fixture, &["-d", "--rm", IMG, "true"])
        .success()
        .stdout
        .trim()
        .to_string();
    assert!(wait_for(10, || !fixture
        .root()
        .join("containers")
        .join(&id)
        .exists()));
}

#[test]
fn env_workdir_user_and_hostname_are_seen_inside() {
    let fixture = fixture();
    let env_file = fixture.root().join("env.list");
    std::fs::write(&env_file, "# comment\nFROM_FILE=yes\nFOO=file\n").unwrap();
    let run = ctr_run(
        &fixture,
        &[
            "--rm",
            "-e",
            "FOO=bar",
            "--env-file",
            env_file.to_str().unwrap(),
            "-w",
            "/srv/app",
            "-u",
            "nobody",
            "--hostname",
            "box",
            IMG,
            "sh",
            "-c",
            "echo $FOO $FROM_FILE; pwd; id -u; id -g; hostname; cat /etc/hostname",
        ],
    )
    .success();
    assert_eq!(run.stdout, "bar yes\n/srv/app\n65534\n65534\nbox\nbox\n");
    let run = ctr_run(
        &fixture,
        &[
            "--rm",
            "-u",
            "1234:0",
            IMG,
            "sh",
            "-c",
            "id -u; id -g; hostname",
        ],
    )
    .success();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(&lines[..2], ["1234", "0"]);
    assert!(
        lines[2].len() == 12 && lines[2].bytes().all(|b| b.is_ascii_hexdigit()),
        "{run:#?}"
    );
}

#[test]
fn bind_mounts_read_only_and_tmpfs_are_honoured() {
    let fixture = fixture();
    let host = tempfile::tempdir().unwrap();
    let rw = format!("{}:/data", host.path().display());
    ctr_run(
        &fixture,
        &["--rm", "-v", &rw, IMG, "sh", "-c", "echo inside > /data/f"],
    )
    .success();
    assert_eq!(
        std::fs::read_to_string(host.path().join("f")).unwrap(),
        "inside\n"
    );
    let ro = format!("{}:/data:ro", host.path().display());
    ctr_run(
        &fixture,
        &["--rm", "-v", &ro, IMG, "sh", "-c", "echo x > /data/g"],
    )
    .failure(1);
    assert!(!host.path().join("g").exists());
    let run = ctr_run(
        &fixture,
        &[
            "--rm",
            "--read-only",
            "--tmpfs",
            "/scratch",
            IMG,
            "sh",
            "-c",
            "touch /nope || echo refused; touch /scratch/ok && echo tmpfs",
        ],
    )
    .success();
    assert_eq!(run.stdout, "refused\ntmpfs\n");
}

#[test]
fn bind_mounts_take_files_sockets_devices_and_follow_image_symlinks() {
    let fixture = Fixture::new();
    // An image whose /data leads to a directory it does not have yet.
    let base = berth_harness::fixture::busybox_layer("links");
    let links = layer_of(&[
        ("data", tar::EntryType::Symlink, "/srv/data"),
        ("relative", tar::EntryType::Symlink, "../srv/rel"),
    ]);
    let reference = berth::Reference::parse("test/links:latest").unwrap();
    write_layers(
        &fixture.store,
        &reference,
        &[base, links],
        json!({"Cmd": ["sh"]}),
    );
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("f"), "from the host\n").unwrap();
    let socket = host.path().join("s.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let volume = |source: &Path, target: &str| format!("{}:{target}", source.display());
    let run = ctr_run(
        &fixture,
        &[
            "--rm",
            "-v",
            &volume(host.path(), "/data"),
            "-v",
            &volume(host.path(), "/relative"),
            "-v",
            &volume(&host.path().join("f"), "/etc/from-host:ro"),
            "-v",
            &volume(&socket, "/run/s.sock"),
            "-v",
            "/dev/null:/devnull",
            "test/links:latest",
            "sh",
            "-c",
            "cat /srv/data/f /srv/rel/f /etc/from-host; test -S /run/s.sock && echo socket; \
             test -c /devnull && echo device; echo x > /etc/from-host || echo ro",
        ],
    )
    .success();
    assert_eq!(
        run.stdout, "from the host\nfrom the host\nfrom the host\nsocket\ndevice\nro\n",
        "{run:#?}"
    );
    // Nothing of the host's was replaced by a directory.
    assert!(host.path().join("f").is_file());
}

#[test]
fn capabilities_and_proc_masks_follow_docker() {
    let fixture = fixture();
    let caps = |extra: &[&str]| {
        let mut args = vec!["--rm"];
        args.extend(extra);
        args.extend([IMG, "grep", "CapEff", "/proc/self/status"]);
        ctr_run(&fixture, &args).success().stdout
    };
    assert_eq!(caps(&[]), "CapEff:\t00000000a80425fb\n");
    assert_eq!(caps(&["--cap-drop", "ALL"]), "CapEff:\t0000000000000000\n");
    assert_eq!(
        caps(&["--cap-drop", "chown", "--cap-add", "NET_ADMIN"]),
        "CapEff:\t00000000a80435fa\n"
    );
    let run = ctr_run(
        &fixture,
        &[
            "--rm",
            IMG,
            "sh",
            "-c",
            "cat /proc/kcore | wc -c; echo 1 > /proc/sys/kernel/panic || echo ro",
        ],
    )
    .success();
    assert_eq!(
        run.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "ro"]
    );
}

#[test]
fn seccomp_filters_by_default_and_follows_security_opt() {
    let fixture = fixture();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let profile_opt = format!("seccomp={}", profile.display());
    // A user namespace needs no capability, so only the filter stops it.
    let probe = "grep Seccomp: /proc/self/status; unshare -U true && echo userns || echo refused; mkdir /made && echo mkdir || echo no-mkdir";
    let inside = |extra: &[&str]| {
        let mut args = vec!["--rm"];
        args.extend(extra);
        args.extend([IMG, "sh", "-c", probe]);
        let out = ctr_run(&fixture, &args).success().stdout;
        out.split_whitespace().map(String::from).collect::<Vec<_>>()
    };
    assert_eq!(inside(&[]), ["Seccomp:", "2", "refused", "mkdir"]);
    assert_eq!(
        inside(&["--security-opt", "seccomp=unconfined"]),
        ["Seccomp:", "0", "userns", "mkdir"]
    );
    assert_eq!(
        inside(&["--privileged"]),
        ["Seccomp:", "0", "userns", "mkdir"]
    );
    assert_eq!(
        inside(&["--security-opt", &profile_opt]),
        ["Seccomp:", "2", "userns", "no-mkdir"]
    );
    std::fs::write(&profile, "{").unwrap();
    ctr_run(&fixture, &["--security-opt", &profile_opt, IMG, "true"])
        .failure(125)
        .one_error_line(&["--security-opt", "no-mkdir.json"]);
    assert!(fixture.container_ids().is_empty());
}

#[test]
fn a_memory_limit_oom_kills_a_hog_with_137() {
    let fixture = fixture();
    let hog = "x=0123456789abcdef; while true; do x=$x$x; done";
    ctr_run(
        &fixture,
        &["--name", "hog", "--memory", "16m", IMG, "sh", "-c", hog],
    )
    .failure(137);
    let id = fixture.container_ids().remove(0);
    assert_eq!(fixture.container_record(&id)["State"]["OOMKilled"], true);
    assert_eq!(
        fixture.container_record(&id)["HostConfig"]["Memory"],
        16 * 1024 * 1024
    );
}

/// More layers than fit in one page of overlay options by path (about 40
/// with the store's paths): Docker allows 128.
#[test]
fn an_image_of_130_layers_runs() {
    use tar::EntryType::{Directory as D, Regular as F};
    let fixture = Fixture::new();
    let mut layers = vec![berth_harness::fixture::busybox_layer("many")];
    let names: Vec<String> = (1..130).map(|n| format!("many/{n:03}")).collect();
    for name in &names {
        layers.push(layer_of(&[("many/", D, ""), (name, F, "x")]));
    }
    let reference = berth::Reference::parse("test/many:130").unwrap();
    write_layers(&fixture.store, &reference, &layers, json!({"Cmd": ["sh"]}));
    let run = ctr_run(
        &fixture,
        &["--rm", "test/many:130", "sh", "-c", "ls /many | wc -l"],
    )
    .success();
    assert_eq!(run.stdout.trim(), "129");
}

#[test]
fn whiteouts_across_three_layers_give_the_right_tree() {
    use tar::EntryType::{Directory as D, Regular as F};
    let fixture = Fixture::new();
    let base = berth_harness::fixture::busybox_layer("whiteouts");
    let one = layer_of(&[
        ("data/", D, ""),
        ("data/a", F, "a"),
        ("data/b", F, "b"),
        ("opq/", D, ""),
        ("opq/old", F, "old"),
    ]);
    let two = layer_of(&[
        ("data/.wh.a", F, ""),
        ("opq/", D, ""),
        ("opq/.wh..wh..opq", F, ""),
        ("opq/new", F, "new"),
    ]);
    let three = layer_of(&[("data/c", F, "c")]);
    let reference = berth::Reference::parse("test/layers:3").unwrap();
    write_layers(
        &fixture.store,
        &reference,
        &[base, one, two, three],
        json!({"Cmd": ["sh"]}),
    );
    let run = ctr_run(
        &fixture,
        &["--rm", "test/layers:3", "sh", "-c", "ls /data; ls /opq"],
    )
    .success();
    assert_eq!(
        run.stdout.split_whitespace().collect::<Vec<_>>(),
        ["b", "c", "new"]
    );
    // Each layer was unpacked once, by chain ID, and stays for the next run.
    assert_eq!(
        std::fs::read_dir(fixture.root().join("layers"))
            .unwrap()
            .count(),
        4
    );
    ctr_run(&fixture, &["--rm", "test/layers:3", "true"]).success();

    // Without overlayfs the layers are copied, whiteouts applied the same
    // way; the copy is the container's own and survives a restart.
    let copied = Run::of(
        tool("ctr-run", fixture.root())
            .env("BERTH_ROOTFS", "copy")
            .args(["--name", "copied", "test/layers:3", "sh", "-c"])
            .arg("ls /data; ls /opq; echo kept > /kept; grep -c ' / overlay' /proc/mounts || true"),
        None,
    )
    .success();
    assert_eq!(
        copied.stdout.split_whitespace().collect::<Vec<_>>(),
        ["b", "c", "new", "0"]
    );
    let id = fixture.container_ids().pop().unwrap();
    assert!(
        fixture
            .root()
            .join("containers")
            .join(&id)
            .join("rootfs/kept")
            .is_file()
    );
}

#[test]
fn foreground_output_is_passed_on_and_kept_for_ctr_logs() {
    let fixture = fixture();
    let run = ctr_run(
        &fixture,
        &[
            "--name",
            "fg",
            IMG,
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    )
    .failure(3);
    assert_eq!(
        (run.stdout.as_str(), run.stderr.as_str()),
        ("out\n", "err\n")
    );
    let logs = Run::of(tool("ctr-logs", fixture.root()).arg("fg"), None).success();
    assert_eq!(
        (logs.stdout.as_str(), logs.stderr.as_str()),
        ("out\n", "err\n")
    );

    // Our stdout closing ends a writer in the container as a pipe would.
    let ctr_run = berth_harness::tools::binary("ctr-run");
    let piped = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} --root {} --rm {IMG} busybox yes | head -1",
            ctr_run.display(),
            fixture.root().display()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&piped.stdout), "y\n");
    assert!(
        wait_for(10, || fixture.container_ids().len() == 1),
        "--rm left the yes container"
    );
}

#[test]
fn an_anonymous_volume_starts_with_what_the_image_has_there() {
    use tar::EntryType::{Directory as D, Regular as F};
    let fixture = Fixture::new();
    let base = berth_harness::fixture::busybox_layer("volume");
    let data = layer_of(&[("data/", D, ""), ("data/seed", F, "from the image")]);
    let reference = berth::Reference::parse("test/volume:1").unwrap();
    write_layers(
        &fixture.store,
        &reference,
        &[base, data],
        json!({"Cmd": ["sh"], "Volumes": {"/data": {}, "/empty": {}}}),
    );
    let run = ctr_run(
        &fixture,
        &[
            "--name",
            "vol",
            "test/volume:1",
            "sh",
            "-c",
            "cat /data/seed; echo; echo mine > /data/written; ls /empty | wc -l",
        ],
    )
    .success();
    assert_eq!(run.stdout, "from the image\n0\n");
    let id = fixture.container_ids().pop().unwrap();
    let record = fixture.container_record(&id);
    let mount = record["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/data")
        .expect("the /data volume is listed in Mounts")
        .clone();
    let source = std::path::PathBuf::from(mount["Source"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(source.join("written")).unwrap(),
        "mine\n"
    );
    // The image's layer is untouched: the volume is the container's own.
    let again = ctr_run(&fixture, &["--rm", "test/volume:1", "ls", "/data"]).success();
    assert_eq!(again.stdout, "seed\n");
}

#[test]
fn hostile_layers_are_refused_and_write_nothing_outside() {
    use tar::EntryType::{Link as H, Regular as F, Symlink as S};
    let outside = tempfile::tempdir().unwrap();
    let planted = outside.path().display().to_string();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot",
            layer_of(&[("a/../../../escaped", F, "x")]),
            "a/../../../escaped",
        ),
        (
            "symlink",
            layer_of(&[("evil", S, &planted), ("evil/pwned", F, "x")]),
            "evil/pwned",
        ),
        (
            "hardlink",
            layer_of(&[("shadow", H, "/etc/shadow")]),
            "shadow",
        ),
    ];
    for (tag, hostile, entry) in cases {
        let fixture = Fixture::new();
        let reference = berth::Reference::parse(&format!("test/hostile:{tag}")).unwrap();
        let base = berth_harness::fixture::busybox_layer("hostile");
        write_layers(
            &fixture.store,
            &reference,
            &[base, hostile],
            json!({"Cmd": ["sh"]}),
        );
        let run = ctr_run(&fixture, &["--rm", &reference.to_string(), "true"]).failure(125);
        let quoted = format!("{entry:?}");
        run.one_error_line(&["refused", &quoted]);
        assert_eq!(
            std::fs::read_dir(fixture.root().join("layers"))
                .unwrap()
                .count(),
            1,
            "{tag}"
        );
        assert!(
            std::fs::read_dir(fixture.root().join("tmp"))
                .unwrap()
                .next()
                .is_none(),
            "{tag}"
        );
        assert!(fixture.container_ids().is_empty());
        assert!(!fixture.root().parent().unwrap().join("escaped").exists());
    }
    assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
}

#[test]
fn bad_input_exits_125_with_one_line_and_leaves_nothing() {
    let fixture = fixture();
    ctr_run(
        &fixture,
        &["--rm", "--pull", "never", "no/such:image", "true"],
    )
    .failure(125)
    .one_error_line(&["Unable to find image 'no/such:image'"]);
    ctr_run(&fixture, &["--rm", "--memory", "lots", IMG, "true"])
        .failure(125)
        .one_error_line(&["--memory", "lots"]);
    ctr_run(&fixture, &["--rm", "--cap-add", "CAP_NOPE", IMG, "true"])
        .failure(125)
        .one_error_line(&["CAP_NOPE"]);
    ctr_run(&fixture, &["--rm", "-v", "./relative:/x", IMG, "true"])
        .failure(125)
        .one_error_line(&["--volume"]);
    ctr_run(&fixture, &["--rm", "--no-such-flag", IMG, "true"])
        .failure(125)
        .one_error_line(&["--no-such-flag"]);
    // This one fails after the rootfs is mounted: the mount and record go too.
    ctr_run(&fixture, &["--rm", "-u", "ghost", IMG, "true"])
        .failure(125)
        .one_error_line(&["ghost"]);
    assert!(fixture.container_ids().is_empty());
    ctr_run(&fixture, &["--name", "taken", IMG, "true"]).success();
    let before = fixture.container_ids();
    ctr_run(&fixture, &["--name", "taken", IMG, "true"])
        .failure(125)
        .one_error_line(&["\"/taken\" is already in use"]);
    assert_eq!(fixture.container_ids(), before);
}

#[test]
fn the_image_can_come_from_stdin() {
    let fixture = fixture();
    let input = format!("{}\n", json!({"reference": format!("docker.io/{IMG}")}));
    let run = Run::of(
        tool("ctr-run", fixture.root()).args(["--rm", "-", "echo", "piped"]),
        Some(&input),
    )
    .success();
    assert_eq!(run.stdout, "piped\n");
    assert!(Path::new(fixture.root()).join("layers").is_dir());
}

#[test]
fn interactive_feeds_stdin_and_without_it_stdin_is_empty() {
    let fixture = fixture();
    let run = Run::of(
        tool("ctr-run", fixture.root()).args(["--rm", "-i", IMG, "cat"]),
        Some("fed\n"),
    )
    .success();
    assert_eq!(run.stdout, "fed\n");
    let run = Run::of(
        tool("ctr-run", fixture.root()).args(["--rm", IMG, "cat"]),
        Some("ignored\n"),
    )
    .success();
    assert_eq!(run.stdout, "");
}

#[test]
fn a_missing_image_is_pulled_first_unless_pull_never() {
    use berth_harness::Registry;
    use berth_harness::fixture::Format;
    let registry = Registry::start();
    let source = Fixture::new();
    let image = source.busybox("src/busybox:latest", "pulled");
    let pushed = source
        .push(&image, &registry.host, "busybox:run", Format::Oci)
        .to_string();
    let empty = Fixture::new();
    let run = |args: &[&str]| {
        let mut command = tool("ctr-run", empty.root());
        command.env("DOCKER_CONFIG", "/nonexistent/berth-test-docker-config");
        Run::of(command.args(args), None)
    };
    let familiar = format!("{}/busybox:run", registry.host);

    run(&["--rm", "--pull", "never", &pushed, "true"])
        .failure(125)
        .one_error_line(&["Unable to find image", &familiar]);
    assert!(
        !empty.store.images_dir().join("index.json").exists() || {
            let index: Value = serde_json::from_slice(
                &std::fs::read(empty.store.images_dir().join("index.json")).unwrap(),
            )
            .unwrap();
            index["manifests"].as_array().unwrap().is_empty()
        }
    );

    let first = run(&["--rm", &pushed, "cat", "/etc/fixture"]).success();
    assert_eq!(first.stdout, "pulled");
    assert!(
        first
            .stderr
            .starts_with(&format!("Unable to find image '{familiar}' locally\n")),
        "{}",
        first.stderr
    );
    assert!(first.stderr.contains("Status: Downloaded newer image for"));

    let again = run(&["--rm", &pushed, "true"]).success();
    assert_eq!(again.stderr, "");
    let always = run(&["--rm", "--pull", "always", &pushed, "true"]).success();
    assert!(
        always.stderr.contains("Status: Image is up to date for"),
        "{}",
        always.stderr
    );
    run(&["--rm", "--pull", "sometimes", &pushed, "true"])
        .failure(125)
        .one_error_line(&["sometimes"]);
}

/// The detached monitor outlives ctr-run, so it must not keep what ctr-run
/// inherited: here a pipe on descriptor 9 (as a make jobserver or a CI
/// runner passes one) reaches its end once ctr-run has returned, while the
/// container still runs.
#[test]
fn a_detached_container_keeps_none_of_the_callers_descriptors() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fixture = fixture();
    let (read, write) = rustix::pipe::pipe().unwrap();
    let write_fd = write.as_raw_fd();
    let mut command = tool("ctr-run", fixture.root());
    command.args(["-d", IMG, "sleep", "1000"]);
    // SAFETY: dup2 is async-signal-safe; it runs in the child before exec.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(write_fd, 9) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let id = Run::of(&mut command, None)
        .success()
        .stdout
        .trim()
        .to_string();
    drop(write);
    rustix::io::ioctl_fionbio(&read, true).unwrap();
    let mut buf = [0u8; 16];
    assert!(
        wait_for(10, || matches!(rustix::io::read(&read, &mut buf), Ok(0))),
        "something still holds the caller's pipe open"
    );
    assert_eq!(fixture.container_record(&id)["State"]["Status"], "running");
    Run::of(tool("ctr-rm", fixture.root()).args(["-f", &id]), None).success();
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o7777
}

#[test]
fn a_containers_secrets_are_its_owners_alone() {
    // A store root berth makes is private from its creation.
    let parent = tempfile::tempdir().unwrap();
    let fresh = parent.path().join("fresh");
    Run::of(tool("img-ls", &fresh).arg("-q"), None).success();
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&fresh.join("containers")), 0o700);

    let fixture = fixture();
    let run = ctr_run(
        &fixture,
        &[
            "-d",
            "-e",
            "PASSWORD=hunter2",
            IMG,
            "sh",
            "-c",
            "echo the password is $PASSWORD",
        ],
    )
    .success();
    let id = run.stdout.trim().to_string();
    assert!(wait_for(
        10,
        || fixture.container_record(&id)["State"]["Status"] == "exited"
    ));
    let dir = fixture.root().join("containers").join(&id);
    assert_eq!(mode(&dir), 0o700);
    let log = format!("{id}-json.log");
    for (file, holds) in [
        ("container.json", "PASSWORD=hunter2"),
        ("config.json", "PASSWORD=hunter2"),
        (log.as_str(), "the password is hunter2"),
    ] {
        let path = dir.join(file);
        assert_eq!(mode(&path), 0o600, "{file}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(holds), "{file} lacks {holds:?}: {text}");
    }
    // The container's own root directory stays readable inside it.
    assert_eq!(mode(&dir.join("upper")), 0o755);
    ctr_run(&fixture, &["--rm", "-u", "1000", IMG, "ls", "/etc/fixture"]).success();
}

#[test]
fn a_store_named_by_a_relative_root_runs_containers_from_any_cwd() {
    let fixture = fixture();
    let root = fixture.root();
    let (parent, name) = (root.parent().unwrap(), root.file_name().unwrap());
    // `--root store` from the store's parent: the container's spec names
    // its rootfs, and a relative one is refused by the runtime.
    let relative = |tool_name: &str, args: &[&str]| {
        let mut command = std::process::Command::new(berth_harness::tools::binary(tool_name));
        command
            .current_dir(parent)
            .arg("--root")
            .arg(name)
            .args(args);
        Run::of(&mut command, None)
    };
    let ran = relative("ctr-run", &["--name", "rel", IMG, "cat", "/etc/hostname"]).success();
    assert!(!ran.stdout.trim().is_empty(), "{ran:?}");
    let detached = relative("ctr-run", &["-d", "--name", "rel-d", IMG, "sleep", "1000"])
        .success()
        .stdout;
    // Tools run with the absolute root elsewhere see and manage both.
    let inspected = Run::of(
        tool("ctr-inspect", root).args(["-f", "{{.State.Running}} {{.Id}}", "rel-d"]),
        None,
    )
    .success();
    assert_eq!(inspected.stdout, format!("true {}", detached));
    Run::of(tool("ctr-exec", root).args(["rel-d", "true"]), None).success();
    Run::of(tool("ctr-rm", root).args(["-f", "rel", "rel-d"]), None).success();
    assert!(fixture.container_ids().is_empty());
}
