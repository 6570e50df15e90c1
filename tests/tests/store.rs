//! The store as other tools see it, and as it survives concurrency, crashes
//! and bad content: the foundation's guarantees, checked end to end.

use berth::Store;
use berth_harness::fixture::Format;
use berth_harness::fixture::write_busybox;
use berth_harness::pause::{Held, PausePoint};
use berth_harness::tools::{binary, external, skopeo_copy};
use berth_harness::{Fixture, Registry, Run, tool, wait_for};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn skopeo_inspect(transport_ref: &str) -> serde_json::Value {
    let out = external(
        "skopeo",
        &[
            "--insecure-policy",
            "inspect",
            "--tls-verify=false",
            transport_ref,
        ],
    );
    serde_json::from_str(&out).unwrap()
}

#[test]
fn a_store_written_by_berth_is_read_by_skopeo_and_umoci() {
    let fixture = Fixture::new();
    let image = fixture.busybox("busybox:latest", "written-by-berth");
    let layout = fixture.store.images_dir();

    let inspected = skopeo_inspect(&format!("oci:{}:{}", layout.display(), image.reference));
    assert_eq!(inspected["Digest"], image.manifest_digest.to_string());
    assert_eq!(inspected["Layers"][0], image.layer_digest.to_string());

    let bundle = tempfile::tempdir().unwrap();
    let bundle_dir = bundle.path().join("bundle");
    external(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:{}", layout.display(), image.reference),
            bundle_dir.to_str().unwrap(),
        ],
    );
    let rootfs = bundle_dir.join("rootfs");
    assert!(rootfs.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/fixture")).unwrap(),
        "written-by-berth"
    );
}

#[test]
fn a_layout_written_by_skopeo_is_read_by_berth() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let image = fixture.busybox("busybox:latest", "from-skopeo");
    let pushed = fixture.push(&image, &registry.host, "busybox:v2s2", Format::DockerV2s2);

    // skopeo makes the layout from nothing: berth did not create this root.
    let root = tempfile::tempdir().unwrap();
    skopeo_copy(
        &format!("docker://{pushed}"),
        &format!("oci:{}/images:busybox", root.path().display()),
    );
    let store = Store::open(root.path()).unwrap();
    // skopeo wrote the short name "busybox"; berth reads it as Docker would.
    let found = store.resolve_image("busybox").unwrap();
    assert_eq!(
        found.id(),
        image.config_digest,
        "same config, same image ID"
    );
    let layers = found.manifest.layers();
    assert_eq!(layers.len(), 1);
    assert!(store.has_blob(&berth::store::descriptor_digest(&layers[0])));

    let tagged = Run::of(
        tool("img-tag", root.path()).args(["busybox", "copied:1"]),
        None,
    )
    .success();
    assert_eq!(tagged.stdout, "docker.io/library/copied:1\n");
    let inspected = skopeo_inspect(&format!(
        "oci:{}/images:docker.io/library/copied:1",
        root.path().display()
    ));
    assert_eq!(
        inspected["Layers"],
        serde_json::json!([found.manifest.layers()[0].digest().to_string()])
    );
}

#[test]
fn sixteen_parallel_taggers_lose_no_tag() {
    let fixture = Fixture::new();
    fixture.busybox("base:1", "parallel");
    let children: Vec<_> = (0..16)
        .map(|i| {
            tool("img-tag", fixture.root())
                .args(["base:1", &format!("parallel:{i}")])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let tags: BTreeSet<String> = fixture
        .store
        .images()
        .unwrap()
        .into_iter()
        .flat_map(|i| i.tags)
        .map(|t| t.to_string())
        .collect();
    let mut want: BTreeSet<String> = (0..16)
        .map(|i| format!("docker.io/library/parallel:{i}"))
        .collect();
    want.insert("docker.io/library/base:1".to_string());
    assert_eq!(tags, want);
}

#[test]
fn a_writer_killed_mid_blob_leaves_no_visible_partial_blob() {
    let fixture = Fixture::new();
    fixture.busybox("before:1", "crash");
    let blobs_before = entries(&fixture.store.blobs_dir());
    let payload: Vec<u8> = (0..8u32 << 20).map(|i| (i * 7 + i / 253) as u8).collect();

    let mut writer = Command::new(binary("blob-writer"))
        .arg(fixture.root())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = writer.stdin.take().unwrap();
    stdin.write_all(&payload[..4 << 20]).unwrap();
    // Wait for the condition we want to interrupt: bytes on disk in tmp/.
    let deadline = Instant::now() + Duration::from_secs(10);
    let tmp = fixture.store.tmp_dir();
    while !std::fs::read_dir(&tmp)
        .unwrap()
        .any(|e| e.unwrap().metadata().unwrap().len() > 0)
    {
        assert!(Instant::now() < deadline, "blob-writer never wrote");
        std::thread::sleep(Duration::from_millis(5));
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    drop(stdin);

    assert_eq!(entries(&fixture.store.blobs_dir()), blobs_before);
    let store = Store::open(fixture.root()).unwrap();
    assert_eq!(store.images().unwrap().len(), 1);

    let rerun = Run::of_bytes(
        Command::new(binary("blob-writer")).arg(fixture.root()),
        Some(&payload),
    )
    .success();
    let digest: berth::Digest = rerun.stdout.trim().parse().unwrap();
    assert_eq!(digest, berth::Digest::of(&payload));
    assert_eq!(std::fs::read(store.blob_path(&digest)).unwrap(), payload);
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused_and_not_stored() {
    let fixture = Fixture::new();
    let claimed = berth::Digest::of(b"the bytes that were promised");
    let actual = berth::Digest::of(b"the bytes that came");
    let blobs_before = entries(&fixture.store.blobs_dir());
    Run::of(
        Command::new(binary("blob-writer"))
            .args([fixture.root().to_str().unwrap(), &claimed.to_string()]),
        Some("the bytes that came"),
    )
    .failure(1)
    .one_error_line(&[&claimed.to_string(), &actual.to_string()]);
    assert_eq!(entries(&fixture.store.blobs_dir()), blobs_before);
    assert!(entries(&fixture.store.tmp_dir()).is_empty());
}

#[test]
fn bad_targets_get_one_line_and_leave_the_index_alone() {
    let fixture = Fixture::new();
    // Fixture IDs are deterministic; by pigeonhole, 17 images must include
    // two whose IDs share a first hex digit.
    let mut by_first: std::collections::BTreeMap<char, Vec<String>> = Default::default();
    let mut shared_prefix = None;
    for i in 0..17 {
        let image = fixture.busybox(&format!("img{i}:1"), &format!("label {i}"));
        let hex = image.config_digest.hex().to_string();
        let first = hex.chars().next().unwrap();
        by_first.entry(first).or_default().push(hex);
        if by_first[&first].len() == 2 {
            shared_prefix = Some(first);
            break;
        }
    }
    let prefix = shared_prefix.unwrap().to_string();
    let index = fixture.store.images_dir().join("index.json");
    let before = std::fs::read(&index).unwrap();

    let ambiguous =
        Run::of(tool("img-tag", fixture.root()).args([&prefix, "x:1"]), None).failure(1);
    let candidates: Vec<&str> = by_first[&prefix.chars().next().unwrap()]
        .iter()
        .map(String::as_str)
        .collect();
    ambiguous.one_error_line(&["ambiguous image ID prefix", candidates[0], candidates[1]]);
    Run::of(
        tool("img-tag", fixture.root()).args(["nope:1", "x:1"]),
        None,
    )
    .failure(1)
    .one_error_line(&["No such image: nope:1"]);
    Run::of(
        tool("img-tag", fixture.root()).args(["img0:1", "Bad:Name"]),
        None,
    )
    .failure(1)
    .one_error_line(&["repository name (library/Bad) must be lowercase"]);
    Run::of(tool("img-tag", fixture.root()).args(["img0:1"]), None).failure(2);
    Run::of(
        tool("img-tag", fixture.root()).args(["-", "x:1"]),
        Some("{not json\n"),
    )
    .failure(1)
    .one_error_line(&["stdin line 1"]);
    assert_eq!(
        std::fs::read(&index).unwrap(),
        before,
        "index.json unchanged"
    );
}

#[test]
fn targets_arrive_by_pipe_and_root_by_environment() {
    let fixture = Fixture::new();
    let image = fixture.busybox("piped:1", "pipe");
    let json = format!("{{\"id\":\"{}\",\"size\":1}}\n", image.config_digest);
    let run = Run::of(
        Command::new(binary("img-tag"))
            .env("BERTH_ROOT", fixture.root())
            .args(["-", "from-json:1"]),
        Some(&json),
    )
    .success();
    assert_eq!(run.stdout, "docker.io/library/from-json:1\n");
    let short = &image.config_digest.hex()[..12];
    Run::of(
        tool("img-tag", fixture.root()).args([short, "by-short-id:1"]),
        None,
    )
    .success();
    let found = fixture.store.resolve_image("by-short-id:1").unwrap();
    assert_eq!(found.id(), image.config_digest);
}

/// `ctr-run` held between leasing its image and recording its container:
/// the window (~1.5 s of unpacking for a Debian image) made deterministic.
fn hold_ctr_run(fixture: &Fixture, pause: &PausePoint, args: &[&str]) -> Held {
    pause.hold(tool("ctr-run", fixture.root()).args(args), 30)
}

#[test]
fn an_image_a_container_is_being_created_from_survives_img_rm_and_img_prune() {
    let fixture = Fixture::new();
    let image = fixture.busybox("leased/busybox:latest", "leased");
    let root = fixture.root();
    let id = image.config_digest.short().to_string();
    let pause = PausePoint::new(berth::testhook::AFTER_LEASE);
    let held = hold_ctr_run(&fixture, &pause, &["-d", "leased/busybox", "sleep", "1000"]);

    // In use, as if a container had it: refused without -f, kept by prune,
    // only untagged with -f.
    Run::of(tool("img-rm", root).arg("leased/busybox"), None)
        .failure(1)
        .one_error_line(&["(must force)", "a container being created", &id]);
    Run::of(tool("img-rm", root).arg(&id), None)
        .failure(1)
        .one_error_line(&["(must be forced)", "a container being created"]);
    let pruned = Run::of(tool("img-prune", root).args(["-a", "-f"]), None).success();
    assert!(!pruned.stdout.contains(&id), "{pruned:#?}");
    let forced = Run::of(tool("img-rm", root).args(["-f", "leased/busybox"]), None).success();
    assert_eq!(forced.stdout, "Untagged: leased/busybox:latest\n");
    Run::of(tool("img-prune", root).args(["-a", "-f"]), None).success();
    assert!(fixture.store.has_blob(&image.layer_digest));

    // Let it go on: the container is created and runs from the image.
    let run = held.release().success();
    let container = run.stdout.trim().to_string();
    assert_eq!(container.len(), 64, "{run:#?}");
    let leases = root.join("locks/leases");
    assert_eq!(entries(&leases), BTreeSet::new(), "the lease ended");
    Run::of(tool("ctr-stop", root).args(["-t", "0", &container]), None).success();
    // Its record keeps the image now: the collection after the stop leaves
    // it, and the container starts again from it.
    Run::of(tool("img-prune", root).args(["-a", "-f"]), None).success();
    Run::of(tool("ctr-start", root).arg(&container), None).success();
    let status = Run::of(
        tool("ctr-inspect", root).args(["-f", "{{.State.Status}}", &container]),
        None,
    )
    .success();
    assert_eq!(status.stdout, "running\n");
    Run::of(tool("ctr-rm", root).args(["-f", &container]), None).success();
}

#[test]
fn a_lease_whose_holder_died_pins_nothing() {
    let fixture = Fixture::new();
    let image = fixture.busybox("orphan/busybox:latest", "orphan");
    let root = fixture.root();
    let pause = PausePoint::new(berth::testhook::AFTER_LEASE);
    let mut held = hold_ctr_run(&fixture, &pause, &["orphan/busybox", "true"]);
    held.child.kill().unwrap();
    held.child.wait().unwrap();

    let removed = Run::of(tool("img-rm", root).arg("orphan/busybox"), None).success();
    assert!(
        removed
            .stdout
            .contains(&format!("Deleted: {}", image.config_digest)),
        "{removed:#?}"
    );
    assert!(!fixture.store.has_blob(&image.layer_digest));
    assert_eq!(entries(&root.join("locks/leases")), BTreeSet::new());
}

/// A small tmpfs as a store root for one test. Dropped (even when the test
/// fails), it frees its space, removes its containers, then is unmounted.
struct SmallFs {
    store: Store,
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> SmallFs {
        let dir = tempfile::tempdir().unwrap();
        rustix::mount::mount(
            "tmpfs",
            dir.path(),
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            std::ffi::CString::new(format!("size={size},mode=0700"))
                .unwrap()
                .as_c_str(),
        )
        .expect("mount a tmpfs (as root)");
        let store = Store::open(dir.path()).unwrap();
        SmallFs { store, dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> std::path::PathBuf {
        self.root().join("filler")
    }

    /// Writes until the filesystem refuses: not one page is left.
    fn fill(&self) {
        let mut file = std::fs::File::create(self.filler()).unwrap();
        let chunk = vec![0u8; 1 << 20];
        loop {
            if let Err(e) = file.write_all(&chunk) {
                assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}");
                return;
            }
        }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.filler());
        for record in berth::lifecycle::list(&self.store).unwrap_or_default() {
            let _ = berth::lifecycle::remove(&self.store, &record, true, true);
        }
        let _ = rustix::mount::unmount(self.root(), rustix::mount::UnmountFlags::DETACH);
    }
}

#[test]
fn a_detached_container_keeps_its_exit_code_when_the_disk_fills_up() {
    let disk = SmallFs::mount("16m");
    let root = disk.root();
    write_busybox(
        &disk.store,
        &berth::Reference::parse("full/busybox").unwrap(),
        "full",
    );
    // The container waits on a FIFO outside the small disk, then prints
    // (to a log that can no longer grow) and exits 3.
    let gate = tempfile::tempdir().unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        gate.path().join("go"),
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let volume = format!("{}:/gate", gate.path().display());
    let run = Run::of(
        tool("ctr-run", root).args([
            "-d",
            "-v",
            &volume,
            "full/busybox",
            "sh",
            "-c",
            "read line < /gate/go; echo printed on a full disk; exit 3",
        ]),
        None,
    )
    .success();
    let id = run.stdout.trim().to_string();

    disk.fill();
    std::fs::write(gate.path().join("go"), "go\n").unwrap();
    assert!(
        wait_for(30, || !berth::container::owner::is_owned(&disk.store, &id)),
        "the monitor never finished"
    );

    let state = Run::of(
        tool("ctr-inspect", root).args(["-f", "{{.State.Status}} {{.State.ExitCode}}", &id]),
        None,
    )
    .success();
    assert_eq!(state.stdout, "exited 3\n", "{state:#?}");
    // The lost output is reported where ctr-inspect shows it.
    let error = Run::of(
        tool("ctr-inspect", root).args(["-f", "{{.State.Error}}", &id]),
        None,
    )
    .success();
    assert!(
        error.stdout.contains("log") && error.stdout.contains("No space left on device"),
        "{error:#?}"
    );
}
