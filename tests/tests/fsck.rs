//! img-fsck on real stores: one made by pull, build and run is clean; each
//! kind of damage is its own line and exit 1; --repair removes what is
//! garbage and leaves (and reports) what only a person may decide.

use berth_harness::fixture::Format;
use berth_harness::{Fixture, Registry, Run, tool};
use serde_json::Value;
use std::path::Path;
use std::sync::Mutex;

/// Tests that look at (or make) host-wide berth cgroups run one at a time,
/// so one's stray cgroup is never another's problem.
static CGROUPS: Mutex<()> = Mutex::new(());

fn fsck(root: &Path, args: &[&str]) -> Run {
    Run::of(tool("img-fsck", root).args(args), None)
}

fn lines_with(run: &Run, prefix: &str) -> Vec<String> {
    run.stdout
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

/// Cgroups are host-wide: stale ones other stores (other tests) left on
/// this machine are any store's problem, so they are repaired first.
fn clear_host_leftovers(root: &Path) {
    let repaired = fsck(root, &["--repair"]);
    assert_eq!(repaired.stdout, "", "{repaired:#?}");
}

#[test]
fn a_store_after_pull_build_and_run_is_clean() {
    let _cgroups = CGROUPS.lock().unwrap_or_else(|e| e.into_inner());
    let registry = Registry::start();
    let source = Fixture::new();
    let image = source.busybox("src/app:1", "fsck clean");
    let reference = source.push(&image, &registry.host, "fsck/app:1", Format::Oci);
    let fixture = Fixture::new();
    let root = fixture.root();
    clear_host_leftovers(root);
    let mut pull = tool("img-pull", root);
    pull.env("DOCKER_CONFIG", "/nonexistent/berth-test-docker-config");
    Run::of(pull.args(["-q", &reference.to_string()]), None).success();
    let context = tempfile::tempdir().unwrap();
    std::fs::write(context.path().join("file.txt"), "copied\n").unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        format!("FROM {reference}\nRUN echo built > /built\nCOPY file.txt /file.txt\n"),
    )
    .unwrap();
    Run::of(
        tool("img-build", root).args([
            "-q",
            "-t",
            "fsck/built:1",
            context.path().to_str().unwrap(),
        ]),
        None,
    )
    .success();
    let out = Run::of(
        tool("ctr-run", root).args(["--rm", "fsck/built:1", "cat", "/built", "/file.txt"]),
        None,
    )
    .success();
    assert_eq!(out.stdout, "built\ncopied\n");
    let id = Run::of(
        tool("ctr-run", root).args(["-d", "fsck/built:1", "sleep", "600"]),
        None,
    )
    .success()
    .stdout
    .trim()
    .to_string();
    Run::of(
        tool("ctr-run", root).args(["--name", "done", "fsck/built:1", "true"]),
        None,
    )
    .success();
    let clean = fsck(root, &[]).success();
    assert_eq!(clean.stdout, "", "{clean:#?}");
    Run::of(tool("ctr-rm", root).args(["-f", &id]), None).success();
    let clean = fsck(root, &["--json"]).success();
    assert_eq!(clean.stdout, "", "{clean:#?}");
}

#[test]
fn each_kind_of_damage_is_its_own_line_and_repair_removes_the_garbage() {
    let _cgroups = CGROUPS.lock().unwrap_or_else(|e| e.into_inner());
    let fixture = Fixture::new();
    let root = fixture.root();
    let corrupt = fixture.busybox("fsck/corrupt:1", "corrupt");
    let partial = fixture.busybox("fsck/partial:1", "partial");
    fixture.busybox("fsck/run:1", "run");
    clear_host_leftovers(root);

    // A byte flipped in a tagged image's layer blob.
    let corrupt_blob = fixture.store.blob_path(&corrupt.layer_digest);
    let mut bytes = std::fs::read(&corrupt_blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&corrupt_blob, &bytes).unwrap();
    // A tagged image's layer blob deleted.
    std::fs::remove_file(fixture.store.blob_path(&partial.layer_digest)).unwrap();
    // A blob no image uses.
    let unused = fixture.store.put_blob(b"nobody's blob").unwrap();
    // A record whose image is gone.
    Run::of(
        tool("ctr-run", root).args(["--name", "orphan", "fsck/run:1", "true"]),
        None,
    )
    .success();
    let orphan = fixture.container_ids().pop().unwrap();
    let record_path = root.join("containers").join(&orphan).join("container.json");
    let mut record: Value = serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    let missing_image = format!("sha256:{}", "0".repeat(64));
    record["Image"] = Value::from(missing_image.clone());
    std::fs::write(&record_path, serde_json::to_vec(&record).unwrap()).unwrap();
    // A garbage record.
    let garbage = "9".repeat(64);
    std::fs::create_dir(root.join("containers").join(&garbage)).unwrap();
    std::fs::write(
        root.join("containers")
            .join(&garbage)
            .join("container.json"),
        "{not json",
    )
    .unwrap();
    // A temp file and a scratch directory whose owners died (nobody holds
    // their locks), and an unpacked layer no image has.
    std::fs::write(root.join("tmp/.blob-dead"), b"half a blob").unwrap();
    std::fs::create_dir(root.join("tmp/layer-dead")).unwrap();
    let unused_layer = "a".repeat(64);
    std::fs::create_dir(root.join("layers").join(&unused_layer)).unwrap();
    // A cgroup of no container, old enough not to be one being made.
    let stray_id = berth::container::new_id().unwrap();
    let stray = Path::new("/sys/fs/cgroup/pids/berth").join(&stray_id);
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::File::open(&stray)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(60))
        .unwrap();

    let damaged = fsck(root, &[]).failure(1);
    let corrupt_line = format!(
        "blob images/blobs/sha256/{}: its content hashes to",
        corrupt.layer_digest.hex()
    );
    let expected = [
        corrupt_line.clone(),
        format!(
            "blob images/blobs/sha256/{}: no image uses it",
            unused.hex()
        ),
        format!(
            "image docker.io/fsck/partial:1: its layer {} is missing; `img-pull docker.io/fsck/partial:1` fetches it again",
            partial.layer_digest
        ),
        format!("layer layers/{unused_layer}: unpacked, but no image"),
        format!("container containers/{orphan}: its image {missing_image} is not in the store"),
        format!("container containers/{garbage}: the record does not parse"),
        "temp tmp/.blob-dead: a temp file (11 bytes) whose writer died".to_string(),
        "temp tmp/layer-dead: a scratch directory whose owner died".to_string(),
        format!(
            "cgroup {}: no container has it and it is empty",
            stray.display()
        ),
    ];
    for line in &expected {
        assert_eq!(
            damaged
                .stdout
                .lines()
                .filter(|l| l.starts_with(line.as_str()))
                .count(),
            1,
            "{line:?} once in {damaged:#?}"
        );
    }
    assert_eq!(
        damaged.stdout.lines().count(),
        expected.len(),
        "{damaged:#?}"
    );
    assert!(
        lines_with(&damaged, &corrupt_line)[0].contains("img-rm -f docker.io/fsck/corrupt:1"),
        "{damaged:#?}"
    );

    let json = fsck(root, &["--json"]).failure(1);
    let objects: Vec<Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), expected.len(), "{json:#?}");
    let cgroup = objects.iter().find(|o| o["kind"] == "cgroup").unwrap();
    assert_eq!(cgroup["subject"], stray.display().to_string());
    assert_eq!(cgroup["repairable"], true);

    // What is garbage goes; what a person must decide stays, reported.
    let repaired = fsck(root, &["--repair"]).failure(1);
    assert_eq!(repaired.stdout.lines().count(), 4, "{repaired:#?}");
    for line in [&expected[0], &expected[2], &expected[4], &expected[5]] {
        assert_eq!(
            lines_with(&repaired, line).len(),
            1,
            "{line:?}: {repaired:#?}"
        );
    }
    assert!(
        corrupt_blob.exists(),
        "a tagged image's blob is never deleted"
    );
    assert!(!fixture.store.has_blob(&unused));
    assert!(!root.join("tmp/.blob-dead").exists());
    assert!(!root.join("tmp/layer-dead").exists());
    assert!(!root.join("layers").join(&unused_layer).exists());
    assert!(!stray.exists());
    assert!(fixture.store.resolve_image("fsck/run:1").is_ok());

    // The rest by hand, as the lines say.
    Run::of(
        tool("img-rm", root).args(["-f", "fsck/corrupt:1", "fsck/partial:1"]),
        None,
    )
    .success();
    std::fs::remove_dir_all(root.join("containers").join(&garbage)).unwrap();
    Run::of(tool("ctr-rm", root).arg(&orphan), None).success();
    let clean = fsck(root, &[]).success();
    assert_eq!(clean.stdout, "");
}
