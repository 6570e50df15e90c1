//! img-pull against registries that misbehave on purpose, served by the
//! test itself on 127.0.0.1 (the harness's `hostile` module): endless and
//! oversized manifests, stalls in every phase, redirect loops, digests we
//! cannot verify, and images that cannot run. Each must fail in bounded
//! time and memory with one line naming the cause, and leave the store as
//! it was.

use berth::Digest;
use berth_harness::hostile::{FakeRegistry, Layer, Reply, config_for, tar_of};
use berth_harness::{Run, store_listing, tool, wait_for};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The deadline the tests give img-pull (`BERTH_REGISTRY_TIMEOUT`).
const TIMEOUT_SECS: u64 = 2;
/// Far above what any bounded case needs (a few deadlines), far below
/// what the unbounded ones took (minutes).
const WITHIN_SECS: u64 = 30;

/// img-pull with the short deadline and no credentials from the machine.
fn img_pull(root: &Path) -> Command {
    let mut command = tool("img-pull", root);
    command
        .env("DOCKER_CONFIG", "/nonexistent/berth-test-docker-config")
        .env("BERTH_REGISTRY_TIMEOUT", TIMEOUT_SECS.to_string());
    command
}

/// Runs `command` to its end, which must come within [`WITHIN_SECS`]: a
/// run still going then is killed and the test fails saying so.
fn run_bounded(command: &mut Command) -> (Run, Duration) {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn img-pull");
    let finished = wait_for(WITHIN_SECS, || child.try_wait().unwrap().is_some());
    if !finished {
        child.kill().unwrap();
    }
    let run = Run::from(child.wait_with_output().unwrap());
    assert!(finished, "still running after {WITHIN_SECS} s: {run:#?}");
    (run, started.elapsed())
}

/// A fresh store, opened so that its empty layout is the "before".
fn empty_store() -> (tempfile::TempDir, BTreeMap<String, String>) {
    let store = tempfile::tempdir().unwrap();
    berth::Store::open(store.path()).unwrap();
    let before = store_listing(store.path());
    (store, before)
}

/// Pulls `reference` expecting exit 1 with a last stderr line naming every
/// one of `parts`, as the only error line, and the store untouched.
fn refused(reference: &str, parts: &[&str]) -> Duration {
    let (store, before) = empty_store();
    let (run, elapsed) = run_bounded(img_pull(store.path()).arg(reference));
    let run = run.failure(1);
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("img-pull:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {run:#?}");
    eprintln!("{reference}: {} ({elapsed:?})", errors[0]);
    assert_eq!(run.stderr.lines().last(), Some(errors[0]), "{run:#?}");
    for part in parts {
        assert!(errors[0].contains(part), "lacks {part:?}: {run:#?}");
    }
    assert_eq!(
        store_listing(store.path()),
        before,
        "{reference}: store changed"
    );
    elapsed
}

fn valid_layer() -> (Layer, Digest) {
    Layer::gzip_tar("hello.txt", b"hello\n")
}

#[test]
fn the_fake_registry_serves_a_valid_image_that_pulls() {
    let fake = FakeRegistry::start();
    let (layer, diff_id) = valid_layer();
    let served = fake.image("ok/app", "1", &config_for(&[diff_id]), &[layer], |_| {});
    let store = tempfile::tempdir().unwrap();
    let (run, _) = run_bounded(img_pull(store.path()).args(["-q", &served.reference]));
    let run = run.success();
    assert_eq!(
        run.stdout,
        format!("{}@{}\n", served.reference, Digest::of(&served.manifest))
    );
}

#[test]
fn manifests_over_four_mib_are_refused_without_being_buffered() {
    let fake = FakeRegistry::start();
    let (layer, diff_id) = valid_layer();
    let config = config_for(&[diff_id]);
    // Valid JSON of 5 MiB with a length: refused from its header.
    let served = fake.image("big/app", "1", &config, std::slice::from_ref(&layer), |m| {
        m["annotations"] = json!({"padding": " ".repeat(5 << 20)});
    });
    refused(&served.reference, &["too large", &served.reference]);

    // An endless body: reading stops just past 4 MiB.
    fake.route(
        "/v2/big/app/manifests/endless",
        Reply::Endless {
            content_type: "application/vnd.oci.image.manifest.v1+json".into(),
        },
    );
    let endless = format!("{}/big/app:endless", fake.host);
    refused(&endless, &["too large", &endless]);

    // A config announced over the limit is not even fetched.
    let served = fake.image("big/config", "1", &config, &[layer], |m| {
        m["config"]["size"] = json!(5 << 20);
    });
    refused(
        &served.reference,
        &["too large", &served.config_digest.to_string()],
    );
    let config_path = format!("/v2/big/config/blobs/{}", served.config_digest);
    assert!(
        !fake.requests().iter().any(|r| r.contains(&config_path)),
        "{:#?}",
        fake.requests()
    );
}

#[test]
fn images_that_cannot_run_are_refused_and_nothing_is_stored() {
    let fake = FakeRegistry::start();
    let (layer, diff_id) = valid_layer();

    let not_json = fake.image(
        "bad/notjson",
        "1",
        b"<html>no</html>",
        std::slice::from_ref(&layer),
        |_| {},
    );
    refused(
        &not_json.reference,
        &["not an image config", &not_json.reference],
    );

    // 5000 layers against one diff ID: refused before any layer is fetched.
    let served = fake.image(
        "bad/count",
        "1",
        &config_for(std::slice::from_ref(&diff_id)),
        std::slice::from_ref(&layer),
        |m| {
            let one = m["layers"][0].clone();
            m["layers"] = json!(vec![one; 5000]);
        },
    );
    refused(&served.reference, &["5000 layers", "1 diff IDs"]);
    let layer_path = format!("/v2/bad/count/blobs/{}", served.layer_digests[0]);
    assert!(!fake.requests().iter().any(|r| r.contains(&layer_path)));
}

/// A layer that matches its digest but not its config (no tar, or another
/// tar than its diff ID) is the publisher's own broken image: it pulls, as
/// with skopeo and containerd, and is refused where it is decompressed,
/// before any container sees it, with nothing unpacked left behind. The
/// error quotes the bad header, whose bytes are terminal escape sequences
/// here: they reach stderr escaped.
#[test]
fn layers_that_do_not_match_their_config_are_refused_when_unpacked() {
    let fake = FakeRegistry::start();
    let (layer, diff_id) = valid_layer();
    let not_tar = Layer {
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        bytes: b"\x1b]0;owned\x07\x1b[2J".repeat(200),
    };
    let not_tar_image = fake.image(
        "bad/nottar",
        "1",
        &config_for(&[Digest::of(&not_tar.bytes)]),
        &[not_tar],
        |_| {},
    );
    let other = Digest::of(&tar_of("other.txt", b"other\n"));
    let mismatched = fake.image(
        "bad/diffid",
        "1",
        &config_for(std::slice::from_ref(&other)),
        &[layer],
        |_| {},
    );
    let cases = [
        (&not_tar_image, vec!["not a tar archive".to_string()]),
        (
            &mismatched,
            vec![
                "diff ID mismatch".to_string(),
                other.to_string(),
                diff_id.to_string(),
            ],
        ),
    ];
    for (served, mut parts) in cases {
        let store = tempfile::tempdir().unwrap();
        let (run, _) = run_bounded(img_pull(store.path()).args(["-q", &served.reference]));
        run.success();
        let before = store_listing(store.path());
        let run = tool("ctr-run", store.path())
            .args(["--rm", "--network", "none", &served.reference, "true"])
            .output()
            .unwrap();
        parts.push(served.layer_digests[0].to_string());
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let run = Run::from(run).failure(125).one_error_line(&parts);
        assert!(!run.stderr.contains('\x1b'), "{run:#?}");
        // A build on it is refused the same way when its RUN needs the
        // layers.
        let context = tempfile::tempdir().unwrap();
        std::fs::write(
            context.path().join("Dockerfile"),
            format!("FROM {}\nRUN true\n", served.reference),
        )
        .unwrap();
        let build = tool("img-build", store.path())
            .args(["-q", "--network", "none"])
            .arg(context.path())
            .output()
            .unwrap();
        let build = Run::from(build).failure(1).one_error_line(&parts);
        assert!(!build.stderr.contains('\x1b'), "{build:#?}");
        assert_eq!(
            store_listing(store.path()),
            before,
            "{}: store changed",
            served.reference
        );
    }
}

#[test]
fn a_stalled_blob_times_out_in_seconds() {
    let fake = FakeRegistry::start();
    let (layer, diff_id) = valid_layer();
    let served = fake.image(
        "slow/blob",
        "1",
        &config_for(&[diff_id]),
        std::slice::from_ref(&layer),
        |_| {},
    );
    fake.route(
        &format!("/v2/slow/blob/blobs/{}", served.layer_digests[0]),
        Reply::Stall {
            content_type: "application/octet-stream".into(),
            length: layer.bytes.len() as u64,
            prefix: layer.bytes[..10].to_vec(),
        },
    );
    let elapsed = refused(
        &served.reference,
        &["timed out", &served.layer_digests[0].to_string()],
    );
    eprintln!("stalled blob failed after {elapsed:?}");
}

/// Downloads run three at a time, and one that ends starts the next at
/// once: a first layer that never finishes does not hold back the four
/// after it, which are all asked for before it times out.
#[test]
fn a_stalled_first_layer_does_not_hold_back_the_later_ones() {
    let fake = FakeRegistry::start();
    let (layers, diff_ids): (Vec<Layer>, Vec<Digest>) = (0..5)
        .map(|n| Layer::gzip_tar(&format!("file{n}.txt"), format!("layer {n}\n").as_bytes()))
        .unzip();
    let served = fake.image("slow/first", "1", &config_for(&diff_ids), &layers, |_| {});
    let path = |digest: &Digest| format!("/v2/slow/first/blobs/{digest}");
    fake.route(
        &path(&served.layer_digests[0]),
        Reply::Stall {
            content_type: "application/octet-stream".into(),
            length: layers[0].bytes.len() as u64,
            prefix: layers[0].bytes[..10].to_vec(),
        },
    );
    refused(
        &served.reference,
        &["timed out", &served.layer_digests[0].to_string()],
    );
    let requests = fake.requests();
    for digest in &served.layer_digests[1..] {
        assert!(
            requests.iter().any(|r| r.contains(&path(digest))),
            "{digest} was never asked for: {requests:#?}"
        );
    }
}

/// The largest layers are asked for first, whatever their place in the
/// manifest, so the longest download does not start last and run alone.
/// Every layer stalls, so no download ends and lets another start: the
/// three that start are exactly the three chosen first.
#[test]
fn the_largest_layers_are_fetched_first() {
    let fake = FakeRegistry::start();
    let sizes = [1 << 10, 2 << 10, 64 << 10, 3 << 10, 256 << 10];
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let (layers, diff_ids): (Vec<Layer>, Vec<Digest>) = sizes
        .iter()
        .enumerate()
        .map(|(n, size)| {
            // Bytes gzip cannot shrink, so the sizes stay in this order.
            let content = berth_harness::incompressible(*size, &mut seed);
            Layer::gzip_tar(&format!("file{n}"), &content)
        })
        .unzip();
    let served = fake.image("sized/app", "1", &config_for(&diff_ids), &layers, |_| {});
    for (layer, digest) in layers.iter().zip(&served.layer_digests) {
        fake.route(
            &format!("/v2/sized/app/blobs/{digest}"),
            Reply::Stall {
                content_type: "application/octet-stream".into(),
                length: layer.bytes.len() as u64,
                prefix: layer.bytes[..10].to_vec(),
            },
        );
    }
    refused(&served.reference, &["timed out"]);
    let mut started: Vec<usize> = Vec::new();
    for request in fake.requests() {
        if let Some(n) = served
            .layer_digests
            .iter()
            .position(|d| request.contains(&format!("/blobs/{d}")))
            && !started.contains(&n)
        {
            started.push(n);
        }
    }
    started.truncate(3);
    started.sort();
    assert_eq!(started, [2, 3, 4], "the three largest start first");
}

#[test]
fn a_stalled_manifest_times_out_in_seconds() {
    let fake = FakeRegistry::start();
    fake.route(
        "/v2/slow/manifest/manifests/1",
        Reply::Stall {
            content_type: "application/vnd.oci.image.manifest.v1+json".into(),
            length: 1000,
            prefix: b"{\"schemaVersion\":".to_vec(),
        },
    );
    let reference = format!("{}/slow/manifest:1", fake.host);
    let elapsed = refused(&reference, &["timed out", &reference]);
    eprintln!("stalled manifest failed after {elapsed:?}");
}

#[test]
fn a_silent_api_root_times_out_and_says_so() {
    let fake = FakeRegistry::start();
    fake.route("/v2/", Reply::Silent);
    let reference = format!("{}/slow/root:1", fake.host);
    let elapsed = refused(&reference, &["cannot reach registry", "timed out"]);
    eprintln!("silent /v2/ failed after {elapsed:?}");
}

#[test]
fn a_redirect_loop_is_reported_as_one_not_as_tls() {
    let fake = FakeRegistry::start();
    fake.route("/v2/", Reply::Redirect("/v2/".into()));
    let reference = format!("{}/loop/app:1", fake.host);
    let (store, _) = empty_store();
    let (run, _) = run_bounded(img_pull(store.path()).arg(&reference));
    let run = run.failure(1).one_error_line(&["too many redirects"]);
    assert!(!run.stderr.contains("InvalidContentType"), "{run:#?}");
}

#[test]
fn digests_in_other_algorithms_are_refused_by_name() {
    let fake = FakeRegistry::start();
    let (layer, diff_id) = valid_layer();
    let sha512 = format!("sha512:{}", "ab".repeat(64));
    let served = fake.image("algo/app", "1", &config_for(&[diff_id]), &[layer], |m| {
        m["layers"][0]["digest"] = json!(sha512);
    });
    refused(
        &served.reference,
        &["unsupported digest algorithm sha512 in", &served.reference],
    );
    assert!(
        !fake.requests().iter().any(|r| r.contains("/blobs/sha256:")
            && !r.contains(&served.config_digest.to_string())),
        "no layer fetched under a made-up sha256: {:#?}",
        fake.requests()
    );
}

/// A layer large enough to span several of the store's 1 MiB direct
/// windows, incompressible so that its gzip is as large.
fn large_layer() -> (Layer, Digest) {
    let mut content = vec![0u8; 3 << 20];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for byte in content.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    Layer::gzip_tar("random.bin", &content)
}

/// Serves an image whose one large layer's first transfer breaks after
/// `cut` bytes, pulls it, and returns the blob's GETs and the store.
fn pull_through_a_break(ranges: bool, cut: usize) -> (Vec<String>, Layer, tempfile::TempDir) {
    let fake = FakeRegistry::start();
    let (layer, diff_id) = large_layer();
    let served = fake.image(
        "flaky/app",
        "1",
        &config_for(&[diff_id]),
        std::slice::from_ref(&layer),
        |_| {},
    );
    let blob_path = format!("/v2/flaky/app/blobs/{}", served.layer_digests[0]);
    fake.route(
        &blob_path,
        Reply::Flaky {
            body: layer.bytes.clone(),
            cut,
            ranges,
        },
    );
    let store = tempfile::tempdir().unwrap();
    let (run, _) = run_bounded(img_pull(store.path()).args(["-q", &served.reference]));
    run.success();
    let gets = fake
        .requests()
        .into_iter()
        .filter(|r| r.contains(&blob_path))
        .collect();
    (gets, layer, store)
}

/// The layer's bytes as the store holds them.
fn stored_blob(store: &Path, layer: &Layer) -> Vec<u8> {
    let digest = Digest::of(&layer.bytes);
    std::fs::read(store.join("images/blobs/sha256").join(digest.hex())).unwrap()
}

#[test]
fn a_broken_transfer_resumes_where_it_broke() {
    let cut = (3 << 19) + 123;
    let (gets, layer, store) = pull_through_a_break(true, cut);
    assert_eq!(gets.len(), 2, "{gets:#?}");
    assert!(gets[0].ends_with("(range from 0)"), "{gets:#?}");
    assert!(
        gets[1].ends_with(&format!("(range from {cut})")),
        "{gets:#?}"
    );
    assert!(stored_blob(store.path(), &layer) == layer.bytes);
}

#[test]
fn a_registry_that_ignores_ranges_is_read_again_from_the_start() {
    let cut = (5 << 19) + 7;
    let (gets, layer, store) = pull_through_a_break(false, cut);
    assert_eq!(gets.len(), 2, "{gets:#?}");
    assert!(
        gets[1].ends_with(&format!("(range from {cut})")),
        "{gets:#?}"
    );
    // The first attempt's bytes were thrown away, not kept in front.
    assert!(stored_blob(store.path(), &layer) == layer.bytes);
    assert_eq!(
        std::fs::read_dir(store.path().join("tmp")).unwrap().count(),
        0,
        "no temp file left"
    );
}

#[test]
fn a_blob_longer_than_its_descriptor_is_refused_as_it_arrives() {
    let fake = FakeRegistry::start();
    let (layer, diff_id) = large_layer();
    let served = fake.image(
        "long/app",
        "1",
        &config_for(&[diff_id]),
        std::slice::from_ref(&layer),
        |m| m["layers"][0]["size"] = json!(layer.bytes.len() - 1),
    );
    refused(
        &served.reference,
        &["more than the", &served.layer_digests[0].to_string()],
    );
}

/// A small ext4 filesystem on a loop device, mounted for one test (ext4,
/// not tmpfs: a pull writes around the page cache only where `O_DIRECT`
/// exists, and its failure there comes from its writer thread). Dropped,
/// even when the test fails, it is unmounted.
struct SmallExt4 {
    dir: tempfile::TempDir,
}

impl SmallExt4 {
    fn mount(size_kib: u32) -> SmallExt4 {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).unwrap();
        std::fs::File::create(&image)
            .unwrap()
            .set_len(u64::from(size_kib) << 10)
            .unwrap();
        let status = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-b", "1024", "-m", "0"])
            .arg(&image)
            .status()
            .expect("mkfs.ext4 (e2fsprogs)");
        assert!(status.success(), "mkfs.ext4 failed");
        let status = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mount)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mount -o loop failed (root and loop devices needed)"
        );
        SmallExt4 { dir }
    }

    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("mnt/store")
    }
}

impl Drop for SmallExt4 {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg(self.dir.path().join("mnt"))
            .status();
    }
}

#[test]
fn a_pull_that_fills_the_disk_fails_with_one_line_and_leaves_the_store_as_it_was() {
    let fake = FakeRegistry::start();
    let (layer, diff_id) = large_layer();
    // Exactly two of the store's 2 MiB direct windows and no partial
    // block: every byte goes through the writer thread, whose failure
    // must reach the pull. (The pull fails before any unpacking looks
    // inside.)
    let mut bytes = layer.bytes;
    bytes.resize(4 << 20, 0);
    let layer = Layer {
        media_type: layer.media_type,
        bytes,
    };
    let served = fake.image(
        "full/app",
        "1",
        &config_for(&[diff_id]),
        std::slice::from_ref(&layer),
        |_| {},
    );
    // Room for the store and the config, not for the 4 MiB layer.
    let disk = SmallExt4::mount(2048);
    let root = disk.root();
    berth::Store::open(&root).unwrap();
    let before = store_listing(&root);
    let (run, _) = run_bounded(img_pull(&root).args(["-q", &served.reference]));
    run.failure(1).one_error_line(&[
        "No space left on device",
        &served.layer_digests[0].to_string(),
    ]);
    assert_eq!(store_listing(&root), before, "store changed");
    assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
}
