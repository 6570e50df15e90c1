//! Volumes end to end, as Docker has them: named volumes kept in the store
//! and made on first use, anonymous ones (`-v /path`, an image's VOLUME)
//! filled from the image with its owner and mode, vol-* tools, `ctr-rm -v`,
//! `--rm`, vol-prune, parallel first use, and hostile names and images.

use berth_harness::fixture::layer_of;
use berth_harness::fixture::write_layers;
use berth_harness::{Fixture, Run, tool};
use serde_json::{Value, json};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const IMG: &str = "test/busybox:latest";

fn fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture.busybox(IMG, "volumes");
    fixture
}

fn run(fixture: &Fixture, name: &str, args: &[&str]) -> Run {
    Run::of(tool(name, fixture.root()).args(args), None)
}

fn ctr_run(fixture: &Fixture, args: &[&str]) -> Run {
    run(fixture, "ctr-run", args)
}

/// The names `vol-ls -q` prints.
fn volume_names(fixture: &Fixture) -> Vec<String> {
    let out = run(fixture, "vol-ls", &["-q"]).success();
    out.stdout.lines().map(str::to_string).collect()
}

fn inspect(fixture: &Fixture, tool_name: &str, target: &str) -> Value {
    let out = run(fixture, tool_name, &[target]).success();
    let all: Value = serde_json::from_str(&out.stdout).unwrap();
    all[0].clone()
}

#[test]
fn a_named_volume_outlives_its_container_and_is_refused_removal_while_used() {
    let fixture = fixture();
    ctr_run(
        &fixture,
        &[
            "--name",
            "writer",
            "-v",
            "data:/data",
            IMG,
            "sh",
            "-c",
            "echo kept > /data/f",
        ],
    )
    .success();
    assert_eq!(volume_names(&fixture), ["data"]);
    let read = ctr_run(&fixture, &["--rm", "-v", "data:/x:ro", IMG, "cat", "/x/f"]).success();
    assert_eq!(read.stdout, "kept\n");
    // Read-only means read-only.
    ctr_run(
        &fixture,
        &["--rm", "-v", "data:/x:ro", IMG, "touch", "/x/g"],
    )
    .failure(1);

    let volume = inspect(&fixture, "vol-inspect", "data");
    assert_eq!(volume["Name"], "data");
    assert_eq!(volume["Driver"], "local");
    assert_eq!(volume["Scope"], "local");
    let mountpoint = volume["Mountpoint"].as_str().unwrap();
    assert!(mountpoint.ends_with("/volumes/data/_data"), "{volume}");
    assert!(mountpoint.starts_with(&fixture.root().display().to_string()));

    let record = inspect(&fixture, "ctr-inspect", "writer");
    assert_eq!(
        record["Mounts"],
        json!([{
            "Type": "volume",
            "Name": "data",
            "Source": mountpoint,
            "Destination": "/data",
            "Driver": "local",
            "Mode": "z",
            "RW": true,
            "Propagation": "",
        }])
    );
    assert_eq!(record["HostConfig"]["Binds"], json!(["data:/data"]));

    // The stopped writer still uses it: refused in Docker's words, kept.
    let id = record["Id"].as_str().unwrap().to_string();
    run(&fixture, "vol-rm", &["data"])
        .failure(1)
        .one_error_line(&[&format!("vol-rm: remove data: volume is in use - [{id}]")]);
    assert!(Path::new(mountpoint).join("f").exists());
    let dangling = run(&fixture, "vol-ls", &["-q", "-f", "dangling=true"]).success();
    assert_eq!(dangling.stdout, "");

    run(&fixture, "ctr-rm", &["-v", "writer"]).success();
    // ctr-rm -v never takes a named volume.
    assert_eq!(volume_names(&fixture), ["data"]);
    let dangling = run(&fixture, "vol-ls", &["-q", "-f", "dangling=true"]).success();
    assert_eq!(dangling.stdout, "data\n");
    let names = run(&fixture, "vol-ls", &["-q"]).success();
    let removed = Run::of(&mut tool("vol-rm", fixture.root()), Some(&names.stdout)).success();
    assert_eq!(removed.stdout, "data\n");
    assert!(volume_names(&fixture).is_empty());
    assert!(!Path::new(mountpoint).exists());
    run(&fixture, "vol-rm", &["data"])
        .failure(1)
        .one_error_line(&["vol-rm: No such volume: data"]);
    run(&fixture, "vol-rm", &["-f", "data"]).success();
}

#[test]
fn vol_create_ls_and_inspect_read_as_docker_s() {
    let fixture = fixture();
    let made = run(&fixture, "vol-create", &["--label", "team=a", "web"]).success();
    assert_eq!(made.stdout, "web\n");
    // Made again: the same volume, as Docker's create.
    run(&fixture, "vol-create", &["web"]).success();
    let random = run(&fixture, "vol-create", &[]).success();
    let random = random.stdout.trim().to_string();
    assert_eq!(random.len(), 64, "{random}");
    assert!(random.chars().all(|c| c.is_ascii_hexdigit()));

    let table = run(&fixture, "vol-ls", &[]).success();
    let mut want = vec![format!("local     {random}"), "local     web".to_string()];
    want.sort();
    let mut lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.remove(0), "DRIVER    VOLUME NAME");
    assert_eq!(lines, want);
    let labelled = run(&fixture, "vol-ls", &["-q", "-f", "label=team=a"]).success();
    assert_eq!(labelled.stdout, "web\n");
    let by_name = run(&fixture, "vol-ls", &["-q", "-f", "name=we"]).success();
    assert_eq!(by_name.stdout, "web\n");
    run(&fixture, "vol-ls", &["-f", "bogus=1"])
        .failure(1)
        .one_error_line(&["invalid filter 'bogus'"]);

    let volume = inspect(&fixture, "vol-inspect", "web");
    let keys: Vec<&String> = volume.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "CreatedAt",
            "Driver",
            "Labels",
            "Mountpoint",
            "Name",
            "Options",
            "Scope"
        ]
    );
    assert_eq!(volume["Labels"], json!({"team": "a"}));
    assert_eq!(volume["Options"], json!({}));
    let formatted = run(
        &fixture,
        "vol-inspect",
        &["-f", "{{.Name}} {{.Driver}}", "web"],
    )
    .success();
    assert_eq!(formatted.stdout, "web local\n");
    let missing = run(&fixture, "vol-inspect", &["web", "nope"]).failure(1);
    assert!(
        missing.stderr.contains("No such volume: nope"),
        "{missing:#?}"
    );
    let listed: Value = serde_json::from_str(&missing.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

/// An image whose /data is made and owned by uid 1000, with a file in it,
/// run as that user, with /data a VOLUME (issue 17, defect 3).
#[test]
fn an_image_volume_keeps_the_owner_and_mode_so_its_user_can_write() {
    let fixture = fixture();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {IMG}\nRUN mkdir /data && echo seeded > /data/seed && chown -R 1000 /data && chmod 750 /data\nUSER 1000\nVOLUME /data\n"
        ),
    )
    .unwrap();
    run(
        &fixture,
        "img-build",
        &["-t", "test/owned:1", ctx.path().to_str().unwrap()],
    )
    .success();
    let out = ctr_run(
        &fixture,
        &[
            "--name",
            "owned",
            "test/owned:1",
            "sh",
            "-c",
            "cat /data/seed && echo mine > /data/new && cat /data/new",
        ],
    )
    .success();
    assert_eq!(out.stdout, "seeded\nmine\n");
    let record = inspect(&fixture, "ctr-inspect", "owned");
    let mount = &record["Mounts"][0];
    assert_eq!(mount["Type"], "volume");
    assert_eq!(mount["Destination"], "/data");
    let name = mount["Name"].as_str().unwrap();
    assert_eq!(name.len(), 64);
    let data = Path::new(mount["Source"].as_str().unwrap());
    let meta = std::fs::metadata(data).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (1000, 0o750));
    // Anonymous, as Docker 23 labels one.
    let volume = inspect(&fixture, "vol-inspect", name);
    assert_eq!(volume["Labels"], json!({"com.docker.volume.anonymous": ""}));
    assert_eq!(record["Config"]["Volumes"], json!({"/data": {}}));
    assert_eq!(record["HostConfig"]["Binds"], Value::Null);
}

#[test]
fn ctr_rm_v_takes_the_anonymous_volume_and_vol_prune_the_unused_ones() {
    let fixture = fixture();
    ctr_run(
        &fixture,
        &[
            "--name",
            "both",
            "-v",
            "keep:/named",
            "-v",
            "/anon",
            IMG,
            "touch",
            "/anon/f",
        ],
    )
    .success();
    let record = inspect(&fixture, "ctr-inspect", "both");
    let anonymous = record["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/anon")
        .unwrap()["Name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(record["Mounts"][1]["Mode"], "");
    assert_eq!(record["HostConfig"]["Binds"], json!(["keep:/named"]));
    let mut want = vec!["keep".to_string(), anonymous.clone()];
    want.sort();
    assert_eq!(volume_names(&fixture), want);
    run(&fixture, "ctr-rm", &["-v", "both"]).success();
    assert_eq!(volume_names(&fixture), ["keep"]);

    // Without -v the anonymous volume stays, dangling, for vol-prune.
    ctr_run(
        &fixture,
        &[
            "--name",
            "left",
            "-v",
            "/anon",
            IMG,
            "sh",
            "-c",
            "echo 12345 > /anon/f",
        ],
    )
    .success();
    let record = inspect(&fixture, "ctr-inspect", "left");
    let left = record["Mounts"][0]["Name"].as_str().unwrap().to_string();
    run(&fixture, "ctr-rm", &["left"]).success();
    assert_eq!(volume_names(&fixture).len(), 2);
    // Asked, not answered yes: nothing goes.
    let asked = Run::of(&mut tool("vol-prune", fixture.root()), Some("n\n")).success();
    assert_eq!(asked.stdout, "Total reclaimed space: 0B\n");
    assert!(
        asked
            .stderr
            .contains("Are you sure you want to continue? [y/N]")
    );
    assert_eq!(volume_names(&fixture).len(), 2);
    let pruned = run(&fixture, "vol-prune", &["-f"]).success();
    assert_eq!(
        pruned.stdout,
        format!("Deleted Volumes:\n{left}\n\nTotal reclaimed space: 6B\n")
    );
    // A named one goes only with -a.
    assert_eq!(volume_names(&fixture), ["keep"]);
    // The pipe contract: vol-ls's names (or its JSON) into vol-inspect.
    let listed = run(&fixture, "vol-ls", &["--format", "json"]).success();
    let piped = Run::of(
        &mut tool("vol-inspect", fixture.root()),
        Some(&listed.stdout),
    )
    .success();
    let piped: Value = serde_json::from_str(&piped.stdout).unwrap();
    assert_eq!(piped[0]["Name"], "keep");
    let all = run(&fixture, "vol-prune", &["-f", "-a"]).success();
    assert_eq!(
        all.stdout,
        "Deleted Volumes:\nkeep\n\nTotal reclaimed space: 0B\n"
    );
    assert!(volume_names(&fixture).is_empty());
}

#[test]
fn ctr_run_rm_takes_its_anonymous_volumes_and_leaves_named_ones() {
    let fixture = fixture();
    ctr_run(
        &fixture,
        &[
            "--rm",
            "-v",
            "named:/n",
            "-v",
            "/a",
            "--mount",
            "type=volume,target=/m",
            IMG,
            "true",
        ],
    )
    .success();
    assert_eq!(volume_names(&fixture), ["named"]);
    // --mount with a source is a named volume; readonly is kept.
    let out = ctr_run(
        &fixture,
        &[
            "--rm",
            "--mount",
            "type=volume,source=named,target=/n,readonly",
            IMG,
            "touch",
            "/n/x",
        ],
    );
    assert_eq!(out.code, Some(1), "{out:#?}");
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("h"), "host").unwrap();
    let bind = format!("type=bind,source={},target=/h", host.path().display());
    let out = ctr_run(&fixture, &["--rm", "--mount", &bind, IMG, "cat", "/h/h"]).success();
    assert_eq!(out.stdout, "host");
}

#[test]
fn eight_parallel_first_uses_of_a_name_make_one_volume() {
    let fixture = fixture();
    let children: Vec<_> = (0..8)
        .map(|i| {
            tool("ctr-run", fixture.root())
                .args(["--rm", "-v", "same:/x", IMG, "sh", "-c"])
                .arg(format!("echo {i} > /x/{i}"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(out.stderr.is_empty(), "{out:?}");
    }
    assert_eq!(volume_names(&fixture), ["same"]);
    let files = ctr_run(&fixture, &["--rm", "-v", "same:/x", IMG, "ls", "/x"]).success();
    assert_eq!(files.stdout, "0\n1\n2\n3\n4\n5\n6\n7\n");
    assert!(fixture.container_ids().is_empty());
}

#[test]
fn bad_volume_flags_are_one_line_exit_125_and_change_nothing() {
    let fixture = fixture();
    let before = berth_harness::store_listing(fixture.root());
    for (flag, value, words) in [
        (
            "-v",
            "../x:/data",
            "includes invalid characters for a local volume name",
        ),
        (
            "-v",
            "a:/data",
            "includes invalid characters for a local volume name",
        ),
        (
            "-v",
            "x/y:/data",
            "includes invalid characters for a local volume name",
        ),
        ("-v", "data:relative", "mount path must be absolute"),
        ("-v", "relative", "mount path must be absolute"),
        ("-v", "data:/x:bogus", "invalid mode: bogus"),
        (
            "--mount",
            "type=volume,source=../x,target=/x",
            "invalid characters",
        ),
        ("--mount", "type=volume,source=data", "target is required"),
    ] {
        ctr_run(&fixture, &["--rm", flag, value, IMG, "true"])
            .failure(125)
            .one_error_line(&[value, words]);
    }
    run(&fixture, "vol-create", &["../x"])
        .failure(1)
        .one_error_line(&["\"../x\" includes invalid characters"]);
    assert_eq!(berth_harness::store_listing(fixture.root()), before);
    assert!(!fixture.root().join("x").exists());
}

/// An image whose VOLUME path is a symlink to a directory of the host's:
/// the volume is filled from the image's own tree (the link resolved inside
/// the root), never from the host's directory, which stays as it was.
#[test]
fn a_volume_path_that_is_a_symlink_out_of_the_root_copies_and_chowns_nothing_of_the_host() {
    use tar::EntryType::{Directory as D, Regular as F, Symlink as S};
    let fixture = fixture();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "host secret").unwrap();
    std::fs::set_permissions(
        outside.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let before = std::fs::metadata(outside.path()).unwrap();
    let target = outside.path().display().to_string();
    // The same directory reached by climbing: `..` stops at the root.
    let climbing = format!("../../../../../../../..{target}");
    let base = berth_harness::fixture::busybox_layer("hostile-volume");
    let hostile = layer_of(&[
        ("data", S, &target),
        ("climb", S, &climbing),
        ("etc/", D, ""),
        ("etc/marker", F, "image"),
    ]);
    let reference = berth::Reference::parse("test/hostile-volume:1").unwrap();
    write_layers(
        &fixture.store,
        &reference,
        &[base, hostile],
        json!({"Cmd": ["sh"], "User": "1000", "Volumes": {"/data": {}, "/climb": {}}}),
    );
    let out = ctr_run(
        &fixture,
        &[
            "--name",
            "hostile",
            "test/hostile-volume:1",
            "sh",
            "-c",
            "ls -A /data /climb",
        ],
    );
    assert_eq!(volume_names(&fixture).len(), 2, "{out:#?}");
    let after = std::fs::metadata(outside.path()).unwrap();
    assert_eq!(
        (after.uid(), after.gid(), after.mode()),
        (before.uid(), before.gid(), before.mode())
    );
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret")).unwrap(),
        "host secret"
    );
    assert_eq!(
        std::fs::metadata(outside.path().join("secret"))
            .unwrap()
            .uid(),
        0
    );
    // Whatever the container saw, the host's secret was not copied in.
    assert!(!out.stdout.contains("secret"), "{out:#?}");
    for volume in volume_names(&fixture) {
        let data = fixture.root().join("volumes").join(&volume).join("_data");
        assert!(!data.join("secret").exists(), "{volume}");
    }
}

#[test]
fn volume_contents_stay_out_of_commit_diff_and_export() {
    let fixture = fixture();
    ctr_run(
        &fixture,
        &[
            "--name",
            "c",
            "-v",
            "vdata:/vol",
            "-v",
            "/anon",
            IMG,
            "sh",
            "-c",
            "echo v > /vol/inside; echo a > /anon/inside; echo r > /rootfile",
        ],
    )
    .success();
    let diff = run(&fixture, "ctr-diff", &["c"]).success();
    assert!(diff.stdout.contains("A /rootfile"), "{diff:#?}");
    assert!(!diff.stdout.contains("inside"), "{diff:#?}");
    let export = tool("ctr-export", fixture.root())
        .arg("c")
        .output()
        .unwrap();
    assert!(export.status.success());
    let mut names = Vec::new();
    for entry in tar::Archive::new(&export.stdout[..]).entries().unwrap() {
        names.push(entry.unwrap().path().unwrap().display().to_string());
    }
    assert!(names.iter().any(|n| n.ends_with("rootfile")));
    assert!(!names.iter().any(|n| n.ends_with("inside")), "{names:?}");
    run(&fixture, "ctr-commit", &["c", "test/committed:1"]).success();
    let out = ctr_run(
        &fixture,
        &[
            "--rm",
            "test/committed:1",
            "sh",
            "-c",
            "cat /rootfile /vol/inside /anon/inside 2>/dev/null; echo done",
        ],
    );
    assert_eq!(out.stdout, "r\ndone\n");
}

#[test]
fn img_fsck_finds_a_volume_without_record_and_a_record_without_files() {
    let fixture = fixture();
    run(&fixture, "vol-create", &["good"]).success();
    run(&fixture, "vol-create", &["lost"]).success();
    let clean = run(&fixture, "img-fsck", &[]).success();
    assert!(!clean.stdout.contains("volume"), "{clean:#?}");
    std::fs::remove_dir_all(fixture.root().join("volumes/lost/_data")).unwrap();
    std::fs::create_dir_all(fixture.root().join("volumes/stray/_data")).unwrap();
    let found = run(&fixture, "img-fsck", &[]);
    assert!(
        found
            .stdout
            .contains("volume volumes/lost: a volume record without its _data directory"),
        "{found:#?}"
    );
    assert!(
        found
            .stdout
            .contains("volume volumes/stray: a volume directory without a record"),
        "{found:#?}"
    );
    assert!(!found.stdout.contains("volumes/good"), "{found:#?}");
}
