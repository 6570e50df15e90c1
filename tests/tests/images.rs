//! img-ls, img-inspect, img-tag, img-rm and img-prune on a store of
//! fixture images: Docker's output, Docker's removal rules, and a store that
//! holds exactly what its index reaches afterwards.

use berth::format::human;
use berth_harness::fixture::{FixtureImage, busybox_content_size};
use berth_harness::tools::external;
use berth_harness::{Fixture, Run, tool};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

const WEEK: Duration = Duration::from_secs(7 * 86_400);

fn ago(weeks: u32) -> SystemTime {
    SystemTime::now() - WEEK * weeks - Duration::from_secs(3600)
}

/// Several repositories, two tags of one image, and a dangling image (made
/// the way Docker makes one: its tag moved to a newer image).
struct Scene {
    fixture: Fixture,
    web: FixtureImage,
    db: FixtureImage,
    old_web: FixtureImage,
}

fn scene() -> Scene {
    let fixture = Fixture::new();
    let old_web = fixture.busybox_created("web:latest", "web-old", ago(5));
    let db = fixture.busybox_created("registry.local:5000/team/db:15", "db", ago(3));
    let web = fixture.busybox_created("web:latest", "web-new", ago(2));
    Run::of(
        tool("img-tag", fixture.root()).args(["web:latest", "web:v2"]),
        None,
    )
    .success();
    Scene {
        fixture,
        web,
        db,
        old_web,
    }
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn img_ls_prints_dockers_table() {
    let s = scene();
    let run = Run::of(&mut tool("img-ls", s.fixture.root()), None).success();
    let size = |label| human::size(busybox_content_size(label));
    let want = [
        "REPOSITORY                    TAG       IMAGE ID       CREATED       SIZE".to_string(),
        format!(
            "web                           latest    {}   2 weeks ago   {}",
            s.web.config_digest.short(),
            size("web-new")
        ),
        format!(
            "web                           v2        {}   2 weeks ago   {}",
            s.web.config_digest.short(),
            size("web-new")
        ),
        format!(
            "registry.local:5000/team/db   15        {}   3 weeks ago   {}",
            s.db.config_digest.short(),
            size("db")
        ),
        format!(
            "<none>                        <none>    {}   5 weeks ago   {}",
            s.old_web.config_digest.short(),
            size("web-old")
        ),
    ];
    assert_eq!(lines(&run.stdout), want);
}

#[test]
fn img_ls_quiet_format_and_filters() {
    let s = scene();
    let root = s.fixture.root();
    let ls = |args: &[&str]| {
        Run::of(tool("img-ls", root).args(args), None)
            .success()
            .stdout
    };

    let ids = ls(&["-q"]);
    assert_eq!(
        lines(&ids),
        [
            s.web.config_digest.short(),
            s.db.config_digest.short(),
            s.old_web.config_digest.short()
        ]
    );
    assert_eq!(
        lines(&ls(&["--format", "{{.Repository}}:{{.Tag}}"])),
        [
            "web:latest",
            "web:v2",
            "registry.local:5000/team/db:15",
            "<none>:<none>"
        ]
    );
    assert_eq!(
        lines(&ls(&["-q", "--filter", "dangling=true"])),
        [s.old_web.config_digest.short()]
    );
    assert_eq!(
        lines(&ls(&["-q", "--filter", "reference=*/team/*"])),
        [s.db.config_digest.short()]
    );
    assert_eq!(
        lines(&ls(&[
            "-q",
            "--filter",
            "since=registry.local:5000/team/db:15"
        ])),
        [s.web.config_digest.short()]
    );
    assert_eq!(lines(&ls(&["-q", "--filter", "before=web:v2"])).len(), 2);
    assert_eq!(
        lines(&ls(&["-q", "--filter", "label=berth.fixture=db"])),
        [s.db.config_digest.short()]
    );
    assert_eq!(
        lines(&ls(&["--format", "{{.Tag}}", "web"])),
        ["latest", "v2"]
    );
    assert_eq!(lines(&ls(&["--format", "{{.Tag}}", "web:v2"])), ["v2"]);
    let table = ls(&["--format", "table {{.Repository}}\\t{{.ID}}", "web:v2"]);
    assert_eq!(
        lines(&table),
        [
            "REPOSITORY   IMAGE ID".to_string(),
            format!("web          {}", s.web.config_digest.short())
        ]
    );
    let full = ls(&["-q", "--no-trunc", "--filter", "dangling=true"]);
    assert_eq!(full.trim(), s.old_web.config_digest.to_string());
}

#[test]
fn img_ls_json_has_dockers_fields() {
    let s = scene();
    let run = Run::of(
        tool("img-ls", s.fixture.root()).args(["--format", "json", "web:v2"]),
        None,
    )
    .success();
    let row: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let keys: BTreeSet<&str> = row
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    // `docker images --format json` prints exactly these fields.
    let docker: BTreeSet<&str> = [
        "Containers",
        "CreatedAt",
        "CreatedSince",
        "Digest",
        "ID",
        "Repository",
        "SharedSize",
        "Size",
        "Tag",
        "UniqueSize",
        "VirtualSize",
    ]
    .into();
    assert_eq!(keys, docker);
    assert_eq!(row["Repository"], "web");
    assert_eq!(row["Tag"], "v2");
    assert_eq!(row["ID"], s.web.config_digest.short());
    assert_eq!(row["CreatedSince"], "2 weeks ago");
    assert_eq!(row["Size"], human::size(busybox_content_size("web-new")));
}

#[test]
fn img_inspect_reports_dockers_fields_and_templates() {
    let s = scene();
    let root = s.fixture.root();
    let run = Run::of(tool("img-inspect", root).arg("web:v2"), None).success();
    let all: Value = serde_json::from_str(&run.stdout).unwrap();
    let image = &all[0];
    assert_eq!(image["Id"], s.web.config_digest.to_string());
    assert_eq!(
        image["RepoTags"],
        serde_json::json!(["web:latest", "web:v2"])
    );
    assert_eq!(image["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(image["Config"]["Labels"]["berth.fixture"], "web-new");
    assert_eq!(
        image["RootFS"],
        serde_json::json!({"Type": "layers", "Layers": [s.web.diff_id.to_string()]})
    );
    assert_eq!(image["Os"], "linux");
    assert_eq!(image["Size"], busybox_content_size("web-new"));
    for invented in [
        "Variant",
        "DockerVersion",
        "GraphDriver",
        "VirtualSize",
        "ContainerConfig",
    ] {
        assert!(image.get(invented).is_none(), "{invented} should be absent");
    }

    let format = |template: &str, target: &str| {
        Run::of(
            tool("img-inspect", root).args(["--format", template, target]),
            None,
        )
        .success()
        .stdout
    };
    assert_eq!(format("{{.Config.Cmd}}", "web:v2"), "[sh]\n");
    assert_eq!(
        format("{{json .RootFS.Layers}}", "web"),
        format!("[\"{}\"]\n", s.web.diff_id)
    );
    assert_eq!(
        format(
            "{{index .Config.Labels \"berth.fixture\"}}",
            s.db.config_digest.short()
        ),
        "db\n"
    );
    assert_eq!(
        format("{{range .RepoTags}}{{.}} {{end}}", "web"),
        "web:latest web:v2 \n"
    );

    // Targets from a pipe, one per line, with a JSON line from another tool.
    let json_line = format!(
        "{{\"ID\":\"{}\",\"Repository\":\"x\"}}\n",
        s.db.config_digest.short()
    );
    let piped = Run::of(
        tool("img-inspect", root).args(["-f", "{{.Id}}"]),
        Some(&format!("web:v2\n{json_line}")),
    )
    .success();
    assert_eq!(
        lines(&piped.stdout),
        [
            s.web.config_digest.to_string(),
            s.db.config_digest.to_string()
        ]
    );
}

/// Every blob the layout's index reaches, walked independently of berth.
fn reachable_blobs(images: &Path) -> BTreeSet<String> {
    let mut reachable = BTreeSet::new();
    let index: Value =
        serde_json::from_slice(&std::fs::read(images.join("index.json")).unwrap()).unwrap();
    let mut pending: Vec<Value> = index["manifests"].as_array().unwrap().clone();
    while let Some(descriptor) = pending.pop() {
        let hex = descriptor["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string();
        if !reachable.insert(hex.clone()) {
            continue;
        }
        let media_type = descriptor["mediaType"].as_str().unwrap_or_default();
        if media_type.contains("manifest") || media_type.contains("index") {
            let blob: Value = serde_json::from_slice(
                &std::fs::read(images.join("blobs/sha256").join(&hex)).unwrap(),
            )
            .unwrap();
            pending.extend(blob["manifests"].as_array().cloned().unwrap_or_default());
            pending.extend(blob["layers"].as_array().cloned().unwrap_or_default());
            if !blob["config"].is_null() {
                pending.push(blob["config"].clone());
            }
        }
    }
    reachable
}

fn stored_blobs(images: &Path) -> BTreeSet<String> {
    std::fs::read_dir(images.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn img_rm_follows_dockers_rules_and_leaves_only_reachable_blobs() {
    let s = scene();
    let root = s.fixture.root();
    let images = s.fixture.store.images_dir();

    // By ID with two tags in one repository: untag both, delete.
    // First, untag one name only: the image stays.
    let one = Run::of(tool("img-rm", root).arg("web:v2"), None).success();
    assert_eq!(one.stdout, "Untagged: web:v2\n");
    assert!(s.fixture.store.has_blob(&s.web.layer_digest));

    // The last name goes: the image and its blobs go too.
    let last = Run::of(tool("img-rm", root).arg("web"), None).success();
    assert_eq!(
        lines(&last.stdout),
        [
            "Untagged: web:latest".to_string(),
            format!("Deleted: {}", s.web.config_digest)
        ]
    );
    assert!(!s.fixture.store.has_blob(&s.web.layer_digest));
    assert_eq!(stored_blobs(&images), reachable_blobs(&images));

    // What remains still reads with skopeo.
    let inspected = external(
        "skopeo",
        &[
            "--insecure-policy",
            "inspect",
            &format!("oci:{}:registry.local:5000/team/db:15", images.display()),
        ],
    );
    assert!(inspected.contains(&s.db.layer_digest.to_string()));

    // By ID prefix, piped from img-ls -q: the dangling image goes.
    let dangling = Run::of(
        tool("img-ls", root).args(["-q", "--filter", "dangling=true"]),
        None,
    )
    .success();
    let removed = Run::of(&mut tool("img-rm", root), Some(&dangling.stdout)).success();
    assert_eq!(
        removed.stdout,
        format!("Deleted: {}\n", s.old_web.config_digest)
    );
    assert_eq!(stored_blobs(&images), reachable_blobs(&images));
}

#[test]
fn img_rm_refuses_an_image_in_several_repositories_without_force() {
    let s = scene();
    let root = s.fixture.root();
    Run::of(
        tool("img-tag", root).args(["web:latest", "other/name:1"]),
        None,
    )
    .success();
    let index_before = std::fs::read(s.fixture.store.images_dir().join("index.json")).unwrap();
    let refused = Run::of(tool("img-rm", root).arg(s.web.config_digest.short()), None).failure(1);
    assert!(
        refused
            .stderr
            .contains("referenced in multiple repositories"),
        "{refused:?}"
    );
    assert_eq!(
        std::fs::read(s.fixture.store.images_dir().join("index.json")).unwrap(),
        index_before
    );
    let forced = Run::of(
        tool("img-rm", root).args(["-f", s.web.config_digest.short()]),
        None,
    )
    .success();
    assert_eq!(
        forced
            .stdout
            .lines()
            .filter(|l| l.starts_with("Untagged: "))
            .count(),
        3
    );
    assert!(
        forced
            .stdout
            .ends_with(&format!("Deleted: {}\n", s.web.config_digest))
    );
}

#[test]
fn img_prune_removes_dangling_then_everything_unused() {
    let s = scene();
    let root = s.fixture.root();
    let images = s.fixture.store.images_dir();
    // Asked even though stdin is not a terminal; `y` goes on.
    let pruned = Run::of(&mut tool("img-prune", root), Some("y\n")).success();
    assert!(
        pruned
            .stderr
            .ends_with("Are you sure you want to continue? [y/N] "),
        "{pruned:?}"
    );
    assert!(
        pruned.stdout.starts_with(&format!(
            "Deleted Images:\ndeleted: {}\n",
            s.old_web.config_digest
        )),
        "{pruned:?}"
    );
    assert!(pruned.stdout.contains("Total reclaimed space: "));
    assert!(!s.fixture.store.has_blob(&s.old_web.layer_digest));
    assert!(s.fixture.store.has_blob(&s.web.layer_digest));
    assert_eq!(stored_blobs(&images), reachable_blobs(&images));

    let filtered = Run::of(
        tool("img-prune", root).args(["-a", "-f", "--filter", "label=berth.fixture=db"]),
        None,
    )
    .success();
    assert!(
        filtered
            .stdout
            .contains("untagged: registry.local:5000/team/db:15"),
        "{filtered:?}"
    );
    assert!(s.fixture.store.has_blob(&s.web.layer_digest));

    Run::of(tool("img-prune", root).args(["-a", "-f"]), None).success();
    assert!(stored_blobs(&images).is_empty());
    let empty = Run::of(&mut tool("img-ls", root), None).success();
    assert_eq!(lines(&empty.stdout).len(), 1, "only the header: {empty:?}");
}

#[test]
fn bad_input_gets_one_line_and_changes_nothing() {
    let s = scene();
    let root = s.fixture.root();
    let images = s.fixture.store.images_dir();
    let index_before = std::fs::read(images.join("index.json")).unwrap();
    let blobs_before = stored_blobs(&images);

    Run::of(tool("img-rm", root).arg("nope:1"), None).failure(1);
    Run::of(tool("img-inspect", root).arg("nope"), None)
        .failure(1)
        .one_error_line(&["No such image: nope"]);
    Run::of(
        tool("img-ls", root).args(["--format", "{{.Repository"]),
        None,
    )
    .failure(1)
    .one_error_line(&["template parsing error"]);
    Run::of(tool("img-ls", root).args(["--filter", "colour=blue"]), None)
        .failure(1)
        .one_error_line(&["invalid filter 'colour=blue'"]);
    Run::of(
        tool("img-prune", root).args(["-f", "--filter", "until=soon"]),
        None,
    )
    .failure(1)
    .one_error_line(&["invalid filter 'until=soon'"]);
    Run::of(
        tool("img-inspect", root).args(["--format", "{{.Nope.Deeper}}", "web"]),
        None,
    )
    .failure(1)
    .one_error_line(&["Nope"]);
    Run::of(tool("img-ls", root).arg("--bogus"), None).failure(2);

    assert_eq!(
        std::fs::read(images.join("index.json")).unwrap(),
        index_before
    );
    assert_eq!(stored_blobs(&images), blobs_before);
}

/// Every file under `images/` with its bytes: equal snapshots mean the
/// layout was not touched.
fn snapshot(images: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![images.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn img_rm_refuses_an_image_a_real_container_uses() {
    let fixture = Fixture::new();
    let image = fixture.busybox("used/busybox:latest", "used");
    let root = fixture.root();
    let id = image.config_digest.short().to_string();

    // A stopped container: its image may be untagged only with -f.
    Run::of(tool("ctr-run", root).args(["used/busybox", "true"]), None).success();
    let before = snapshot(&fixture.store.images_dir());
    Run::of(tool("img-rm", root).arg("used/busybox"), None)
        .failure(1)
        .one_error_line(&["(must force)", "is using its referenced image", &id]);
    Run::of(tool("img-rm", root).arg(&id), None)
        .failure(1)
        .one_error_line(&["(must be forced)", "stopped container"]);
    assert!(before == snapshot(&fixture.store.images_dir()));

    // A running container: not even -f deletes its image by ID.
    let running = Run::of(
        tool("ctr-run", root).args(["-d", "used/busybox", "sleep", "1000"]),
        None,
    )
    .success();
    let container = running.stdout.trim().to_string();
    Run::of(tool("img-rm", root).args(["-f", &id]), None)
        .failure(1)
        .one_error_line(&["(cannot be forced)", "running container", &container[..12]]);
    assert!(before == snapshot(&fixture.store.images_dir()));

    // -f on the name untags it; the image stays (dangling) for its containers.
    let forced = Run::of(tool("img-rm", root).args(["-f", "used/busybox"]), None).success();
    assert_eq!(forced.stdout, "Untagged: used/busybox:latest\n");
    let ids = Run::of(tool("img-ls", root).args(["-aq"]), None).success();
    assert_eq!(ids.stdout.trim(), id);

    let record_path = root
        .join("containers")
        .join(&container)
        .join("container.json");
    let record =
        || -> Value { serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap() };
    let pid = record()["State"]["Pid"].as_i64().unwrap();
    // SAFETY: kill(2) on the container's init, which this test started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    // The monitor records the end; wait for it before the store goes away.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while record()["State"]["Running"] == true {
        assert!(
            std::time::Instant::now() < deadline,
            "monitor never recorded the exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Temp blobs left by killed pulls are garbage: img-prune removes them and
/// counts them in "Total reclaimed space".
#[test]
fn prune_counts_the_temp_files_of_killed_pulls() {
    let fixture = Fixture::new();
    let root = fixture.root();
    let tmp = root.join("tmp");
    std::fs::write(tmp.join(".blob-killed"), vec![7u8; 3_000_000]).unwrap();
    let pruned = Run::of(tool("img-prune", root).arg("-f"), None).success();
    assert!(
        pruned.stdout.contains("Total reclaimed space: 3MB"),
        "{pruned:#?}"
    );
    assert!(!tmp.join(".blob-killed").exists());
}
