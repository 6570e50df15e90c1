//! Containers become images and images travel as plain tarballs, end to
//! end on real containers: ctr-commit (a running container's writes and
//! deletions, `-c` changes, the history's top row), ctr-diff (Docker's
//! A/C/D lines, running and stopped), ctr-export piped into img-import (a
//! one-layer image that runs), and hostile input: bad changes, a tar that
//! climbs out with `..` or through an absolute symlink, a container that is
//! not there.

use berth_harness::{Fixture, Run, store_listing, tool};
use serde_json::Value;
use std::io::{Read, Write};
use std::process::Command;

const IMG: &str = "test/busybox:latest";

fn fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture.busybox(IMG, "commit");
    fixture
}

fn run(fixture: &Fixture, name: &str, args: &[&str]) -> Run {
    Run::of(tool(name, fixture.root()).args(args), None)
}

fn run_bytes(fixture: &Fixture, name: &str, args: &[&str], input: &[u8]) -> Run {
    Run::of_bytes(tool(name, fixture.root()).args(args), Some(input))
}

/// A detached container that sleeps, named `name`, with `script` run in it
/// by ctr-exec (so its writes happen while it runs).
fn running_with(fixture: &Fixture, name: &str, script: &str) -> String {
    let id = run(
        fixture,
        "ctr-run",
        &["-d", "--name", name, IMG, "sleep", "1000"],
    )
    .success()
    .stdout
    .trim()
    .to_string();
    run(fixture, "ctr-exec", &[name, "sh", "-c", script]).success();
    id
}

fn inspect(fixture: &Fixture, name: &str, target: &str) -> Value {
    let out = run(fixture, name, &[target]).success().stdout;
    let list: Value = serde_json::from_str(&out).unwrap();
    list[0].clone()
}

#[test]
fn diff_shows_added_changed_and_deleted_for_running_and_stopped_containers() {
    let fixture = fixture();
    running_with(
        &fixture,
        "differ",
        "echo new > /added && echo changed >> /etc/os-release && rm /etc/group",
    );
    // Docker walks the upper dir in name order.
    let expected = "A /added\nC /etc\nD /etc/group\nC /etc/os-release\n";
    let diff = run(&fixture, "ctr-diff", &["differ"]).success();
    assert_eq!(diff.stdout, expected, "{diff:#?}");
    run(&fixture, "ctr-stop", &["-t", "1", "differ"]).success();
    let diff = run(&fixture, "ctr-diff", &["differ"]).success();
    assert_eq!(diff.stdout, expected, "{diff:#?}");
}

#[test]
fn a_running_container_commits_its_writes_deletions_and_changes() {
    let fixture = fixture();
    let id = running_with(&fixture, "writer", "echo hello > /f && rm /etc/os-release");
    let committed = run(
        &fixture,
        "ctr-commit",
        &[
            "-c",
            r#"CMD ["cat","/f"]"#,
            "-c",
            "ENV MODE=committed",
            "-m",
            "a snapshot",
            "-a",
            "Tester <t@example.com>",
            "writer",
            "app:snap",
        ],
    )
    .success();
    let image_id = committed.stdout.trim().to_string();
    assert!(
        image_id.starts_with("sha256:") && image_id.len() == 71,
        "{committed:#?}"
    );
    // Paused while the layer was written, running again after.
    let state = inspect(&fixture, "ctr-inspect", "writer")["State"].clone();
    assert_eq!(state["Running"], Value::Bool(true), "{state}");
    assert_eq!(state["Paused"], Value::Bool(false), "{state}");
    let frozen =
        std::fs::read_to_string(format!("/sys/fs/cgroup/freezer/berth/{id}/freezer.state"))
            .unwrap_or_default();
    assert!(!frozen.contains("FROZEN"), "{frozen}");

    // The new image: its CMD, the file written, the file deleted.
    let out = run(&fixture, "ctr-run", &["--rm", "app:snap"]).success();
    assert_eq!(out.stdout, "hello\n");
    let gone = run(
        &fixture,
        "ctr-run",
        &[
            "--rm",
            "app:snap",
            "sh",
            "-c",
            "test -e /etc/os-release; echo $? $MODE",
        ],
    )
    .success();
    assert_eq!(gone.stdout, "1 committed\n");

    let image = inspect(&fixture, "img-inspect", "app:snap");
    assert_eq!(image["Id"], Value::from(image_id.clone()));
    assert_eq!(image["Config"]["Cmd"], serde_json::json!(["cat", "/f"]));
    assert_eq!(image["Author"], Value::from("Tester <t@example.com>"));
    // The container's environment, without what the runtime adds to it.
    let env: Vec<&str> = image["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(env.contains(&"MODE=committed"), "{env:?}");
    assert!(
        !env.iter()
            .any(|e| e.starts_with("HOSTNAME=") || e.starts_with("HOME=")),
        "{env:?}"
    );
    assert_eq!(image["RootFS"]["Layers"].as_array().unwrap().len(), 2);

    // img-history: the commit is the top row, as Docker writes it.
    let history = run(&fixture, "img-history", &["app:snap"]).success();
    let lines: Vec<&str> = history.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{history:#?}");
    assert!(lines[0].starts_with("IMAGE "), "{history:#?}");
    let short = &image_id["sha256:".len()..][..12];
    assert!(lines[1].starts_with(short), "{history:#?}");
    assert!(lines[1].contains("sleep 1000"), "{history:#?}");
    assert!(lines[1].ends_with("a snapshot"), "{history:#?}");
    // Docker's ages: "Less than a second", "1 second", "N seconds".
    assert!(
        [" seconds ago", " 1 second ago", "Less than a second ago"]
            .iter()
            .any(|age| lines[1].contains(age)),
        "{history:#?}"
    );
    assert!(lines[2].starts_with("<missing>"), "{history:#?}");
    assert!(lines[2].contains("berth test fixture"), "{history:#?}");
    let quiet = run(&fixture, "img-history", &["-q", "app:snap"]).success();
    assert_eq!(quiet.stdout, format!("{short}\n<missing>\n"));
    let json = run(
        &fixture,
        "img-history",
        &[
            "--no-trunc",
            "--format",
            "{{.ID}} {{.CreatedBy}} {{.Comment}}",
            "app:snap",
        ],
    )
    .success();
    assert_eq!(
        json.stdout.lines().next().unwrap(),
        format!("{image_id} sleep 1000 a snapshot")
    );
    let raw = run(
        &fixture,
        "img-history",
        &["-H=false", "--format", "{{.Size}}", "app:snap"],
    )
    .success();
    let sizes: Vec<u64> = raw.stdout.lines().map(|l| l.parse().unwrap()).collect();
    // The commit's layer holds the 6-byte /f (and the whiteout, no bytes).
    assert_eq!(sizes[0], 6, "{raw:#?}");
    assert!(sizes[1] > 100_000, "{raw:#?}");
}

#[test]
fn committing_a_container_with_no_changes_records_an_empty_layer() {
    let fixture = fixture();
    run(&fixture, "ctr-run", &["--name", "idle", IMG, "true"]).success();
    let id = run(&fixture, "ctr-commit", &["idle"]).success().stdout;
    let image = inspect(&fixture, "img-inspect", id.trim());
    assert_eq!(image["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(image["Config"]["Cmd"], serde_json::json!(["true"]));
    // Untagged, it is kept as a <none> image.
    let listed = run(&fixture, "img-ls", &["-q"]).success().stdout;
    assert!(
        listed.contains(&id.trim()["sha256:".len()..][..12]),
        "{listed}"
    );
}

#[test]
fn bad_changes_and_missing_containers_are_one_line_and_store_nothing() {
    let fixture = fixture();
    running_with(&fixture, "victim", "echo x > /x");
    let before = store_listing(fixture.root());
    for (change, words) in [
        ("RUN rm -rf /", "run is not a valid change command"),
        ("FROM busybox", "from is not a valid change command"),
        (
            "EXPOSE http",
            "invalid change \"EXPOSE http\": invalid containerPort: http",
        ),
    ] {
        run(&fixture, "ctr-commit", &["-c", change, "victim", "bad:one"])
            .failure(1)
            .one_error_line(&["ctr-commit:", words]);
    }
    run(&fixture, "ctr-commit", &["nope"])
        .failure(1)
        .one_error_line(&["No such container: nope"]);
    run(&fixture, "ctr-diff", &["nope"])
        .failure(1)
        .one_error_line(&["No such container: nope"]);
    run(&fixture, "ctr-export", &["-o", "/dev/null", "nope"])
        .failure(1)
        .one_error_line(&["No such container: nope"]);
    run(&fixture, "ctr-commit", &["--pause=maybe", "victim"]).failure(2);
    run(&fixture, "img-history", &["nope:missing"])
        .failure(1)
        .one_error_line(&["No such image"]);
    let after = store_listing(fixture.root());
    let images = |l: &std::collections::BTreeMap<String, String>| {
        l.iter()
            .filter(|(k, _)| k.starts_with("images/"))
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(images(&before), images(&after));
    // A removed container cannot be committed.
    run(&fixture, "ctr-rm", &["-f", "victim"]).success();
    run(&fixture, "ctr-commit", &["victim"])
        .failure(1)
        .one_error_line(&["No such container: victim"]);
    assert_eq!(images(&before), images(&store_listing(fixture.root())));
}

/// Serves `body` to every GET on a free 127.0.0.1 port; its URL base.
fn serve(body: Vec<u8>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

#[test]
fn an_exported_root_imports_as_a_one_layer_image_that_runs() {
    let fixture = fixture();
    running_with(&fixture, "web", "echo flat > /f && rm /etc/group");
    // ctr-export web | img-import - web:flat
    let tar = Command::new(berth_harness::tools::binary("ctr-export"))
        .args(["--root"])
        .arg(fixture.root())
        .arg("web")
        .output()
        .unwrap();
    assert!(tar.status.success(), "{tar:?}");
    let names: Vec<String> = tar::Archive::new(&tar.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.contains(&"f".to_string()), "{names:?}");
    assert!(names.contains(&"bin/busybox".to_string()), "{names:?}");
    assert!(
        !names.iter().any(|n| n == "etc/group" || n.contains(".wh.")),
        "{names:?}"
    );
    let imported = run_bytes(
        &fixture,
        "img-import",
        &["-c", r#"CMD ["cat","/f"]"#, "-", "web:flat"],
        &tar.stdout,
    )
    .success();
    let id = imported.stdout.trim().to_string();
    assert!(id.starts_with("sha256:"), "{imported:#?}");
    let out = run(&fixture, "ctr-run", &["--rm", "web:flat"]).success();
    assert_eq!(out.stdout, "flat\n");
    let image = inspect(&fixture, "img-inspect", "web:flat");
    assert_eq!(image["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    let history = run(&fixture, "img-history", &["web:flat"]).success();
    let top = history.stdout.lines().nth(1).unwrap().to_string();
    assert!(top.ends_with("Imported from -"), "{history:#?}");

    // -o FILE, then the same root gzipped from a file and over HTTP.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.tar");
    run(
        &fixture,
        "ctr-export",
        &["-o", file.to_str().unwrap(), "web"],
    )
    .success();
    let written = std::fs::read(&file).unwrap();
    assert_eq!(written.len(), tar.stdout.len());
    let gz = dir.path().join("web.tar.gz");
    std::fs::write(&gz, gzip(&written)).unwrap();
    let from_file = run(
        &fixture,
        "img-import",
        &["-m", "from a file", gz.to_str().unwrap(), "web:gz"],
    )
    .success();
    let url = format!("{}/rootfs.tar.gz", serve(gzip(&written)));
    let from_url = run(&fixture, "img-import", &[&url, "web:http"]).success();
    let layers = |r: &str| inspect(&fixture, "img-inspect", r)["RootFS"]["Layers"].clone();
    // The same root is the same layer, whatever carried it.
    assert_eq!(layers("web:gz"), layers("web:flat"));
    assert_eq!(layers("web:http"), layers("web:flat"));
    assert_ne!(from_file.stdout, from_url.stdout);
    let out = run(&fixture, "ctr-run", &["--rm", "web:http", "cat", "/f"]).success();
    assert_eq!(out.stdout, "flat\n");
}

/// A tar of `entries` (name, kind, link target or contents).
fn hostile_tar(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, data) in entries {
        let mut h = tar::Header::new_old();
        // Names are written raw: the tar crate refuses `..` itself.
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        if *kind == tar::EntryType::Symlink {
            h.set_link_name(data).unwrap();
            h.set_size(0);
        } else {
            h.set_size(data.len() as u64);
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        if *kind != tar::EntryType::Symlink {
            out.extend_from_slice(data.as_bytes());
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn hostile_tarballs_are_refused_or_kept_inside_and_store_nothing() {
    let fixture = fixture();
    let before = store_listing(fixture.root());
    let images = |l: &std::collections::BTreeMap<String, String>| {
        l.iter()
            .filter(|(k, _)| k.starts_with("images/"))
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
    };
    let marker = format!("berth-import-escape-{}", std::process::id());
    let climbing = hostile_tar(&[(
        &format!("../../../../../../tmp/{marker}"),
        tar::EntryType::Regular,
        "owned",
    )]);
    run_bytes(&fixture, "img-import", &["-", "evil:climb"], &climbing)
        .failure(1)
        .one_error_line(&["img-import:", "refused", marker.as_str()]);
    assert!(!std::path::Path::new(&format!("/tmp/{marker}")).exists());
    // An absolute symlink, then a file through it: never written on the host.
    let through = hostile_tar(&[
        ("link", tar::EntryType::Symlink, "/tmp"),
        (&format!("link/{marker}"), tar::EntryType::Regular, "owned"),
    ]);
    run_bytes(&fixture, "img-import", &["-", "evil:link"], &through)
        .failure(1)
        .one_error_line(&["img-import:", "refused"]);
    assert!(!std::path::Path::new(&format!("/tmp/{marker}")).exists());
    // Garbage, and a bad change: one line each.
    run_bytes(
        &fixture,
        "img-import",
        &["-", "evil:junk"],
        b"not a tarball at all",
    )
    .failure(1)
    .one_error_line(&["img-import:", "not a tar archive"]);
    run_bytes(
        &fixture,
        "img-import",
        &["-c", "RUN true", "-", "evil:change"],
        &hostile_tar(&[("ok", tar::EntryType::Regular, "fine")]),
    )
    .failure(1)
    .one_error_line(&["img-import: run is not a valid change command"]);
    run(
        &fixture,
        "img-import",
        &["/nonexistent/root.tar", "evil:missing"],
    )
    .failure(1)
    .one_error_line(&["img-import:", "/nonexistent/root.tar"]);
    assert_eq!(images(&before), images(&store_listing(fixture.root())));
    // A plain absolute symlink alone is content, and stays a symlink.
    let ok = hostile_tar(&[("etc-link", tar::EntryType::Symlink, "/etc")]);
    run_bytes(&fixture, "img-import", &["-", "fine:link"], &ok).success();
}

/// Counts as fast as it can, a line per number appended to /tmp/c.
const COUNTER: &str = "while :; do echo $((i+=1)) >> /tmp/c; done";

#[test]
fn a_busy_container_is_frozen_while_its_layer_is_written_and_gc_waits() {
    use berth::testhook::COMMIT_WRITTEN;
    use berth_harness::pause::PausePoint;
    let fixture = fixture();
    let id = run(
        &fixture,
        "ctr-run",
        &["-d", "--name", "busy", IMG, "sh", "-c", COUNTER],
    )
    .success()
    .stdout
    .trim()
    .to_string();
    let upper_count = fixture.root().join(format!("containers/{id}/upper/tmp/c"));
    assert!(berth_harness::wait_for(10, || upper_count.exists()));
    let point = PausePoint::new(COMMIT_WRITTEN);
    let held = point.hold(
        tool("ctr-commit", fixture.root()).args(["busy", "busy:snap"]),
        60,
    );
    // Held after the layer is written: the container is frozen, and says so.
    let freezer = format!("/sys/fs/cgroup/freezer/berth/{id}/freezer.state");
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    let state = inspect(&fixture, "ctr-inspect", "busy")["State"].clone();
    assert_eq!(state["Paused"], Value::Bool(true), "{state}");
    let frozen_len = std::fs::metadata(&upper_count).unwrap().len();
    // A collection started now waits for the commit (its blobs are not yet
    // named), then finds the image tagged and keeps it.
    let prune = tool("img-prune", fixture.root())
        .arg("-f")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(std::fs::metadata(&upper_count).unwrap().len(), frozen_len);
    let committed = held.release().success();
    let prune = Run::from(prune.wait_with_output().unwrap()).success();
    assert!(!prune.stdout.contains("deleted: sha256"), "{prune:#?}");
    assert_ne!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    assert!(berth_harness::wait_for(10, || {
        std::fs::metadata(&upper_count).unwrap().len() > frozen_len
    }));
    // The layer holds the file as it was when frozen: whole lines 1..=N.
    let out = run(
        &fixture,
        "ctr-run",
        &["--rm", committed.stdout.trim(), "cat", "/tmp/c"],
    )
    .success()
    .stdout;
    assert_eq!(out.len() as u64, frozen_len);
    assert!(out.ends_with('\n'));
    for (i, line) in out.lines().enumerate() {
        assert_eq!(line, (i + 1).to_string());
    }
    run(&fixture, "ctr-rm", &["-f", "busy"]).success();
}
