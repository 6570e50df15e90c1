//! img-pull against the real docker-registry: every manifest form, indexes
//! by platform, tag and digest, a TLS registry with auth, tampered and
//! interrupted transfers, and bad names. skopeo checks what was stored.

use berth_harness::fixture::Format;
use berth_harness::registry::free_port;
use berth_harness::tools::external;
use berth_harness::{Fixture, Registry, Run, store_listing, tool};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// img-pull with no credentials from the machine's own docker config.
fn img_pull(root: &Path) -> Command {
    let mut command = tool("img-pull", root);
    command.env("DOCKER_CONFIG", "/nonexistent/berth-test-docker-config");
    command
}

fn inspect(target: &str, extra: &[&str]) -> Value {
    let mut args = vec!["inspect", "--tls-verify=false"];
    args.extend(extra);
    args.push(target);
    serde_json::from_str(&external("skopeo", &args)).unwrap()
}

/// skopeo reads the same image from our store as from the registry.
fn assert_store_matches_registry(root: &Path, reference: &str, extra: &[&str]) {
    let ours = inspect(
        &format!("oci:{}:{reference}", root.join("images").display()),
        extra,
    );
    let theirs = inspect(&format!("docker://{reference}"), extra);
    assert_eq!(ours["Digest"], theirs["Digest"], "{reference}");
    assert_eq!(ours["Layers"], theirs["Layers"], "{reference}");
    assert_eq!(ours["Architecture"], theirs["Architecture"], "{reference}");
}

fn index_json(root: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(root.join("images/index.json")).unwrap()).unwrap()
}

/// The descriptor index.json holds for `name`.
fn tagged(root: &Path, name: &str) -> Option<Value> {
    index_json(root)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == name)
        .cloned()
}

fn blob_requests(registry: &Registry) -> usize {
    registry
        .log()
        .lines()
        .filter(|l| l.contains("GET /v2/") && l.contains("/blobs/"))
        .count()
}

#[test]
fn oci_v2s2_and_zstd_images_are_stored_as_the_registry_serves_them() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let image = fixture.busybox("src/busybox:1", "forms");
    for (format, name) in [
        (Format::Oci, "forms/oci:1"),
        (Format::DockerV2s2, "forms/v2s2:1"),
        (Format::OciZstd, "forms/zstd:1"),
    ] {
        // A store per form: the gzip layer of OCI and v2s2 is one blob.
        let store = tempfile::tempdir().unwrap();
        let reference = fixture.push(&image, &registry.host, name, format);
        let remote = inspect(&format!("docker://{reference}"), &[]);
        let run = Run::of(img_pull(store.path()).arg(reference.to_string()), None).success();
        let digest = remote["Digest"].as_str().unwrap();
        assert_eq!(run.stdout, format!("{reference}@{digest}\n"));
        let layer = remote["Layers"][0].as_str().unwrap();
        let short = &layer[7..19];
        for line in [
            format!("1: Pulling from {}", reference.path()),
            format!("{short}: Pulling fs layer"),
            format!("{short}: Pull complete"),
            format!("Digest: {digest}"),
            format!("Status: Downloaded newer image for {reference}"),
        ] {
            assert!(run.stderr.lines().any(|l| l == line), "{line:?}: {run:#?}");
        }
        // Manifests are stored byte for byte, their media types with them.
        let tag = tagged(store.path(), &reference.to_string()).unwrap();
        assert_eq!(tag["digest"], digest);
        let blobs = store.path().join("images/blobs/sha256");
        let manifest = std::fs::read_to_string(blobs.join(&digest[7..])).unwrap();
        let served = external(
            "skopeo",
            &[
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{reference}"),
            ],
        );
        assert_eq!(manifest, served);
        if format != Format::DockerV2s2 {
            // skopeo 1.9 finds only OCI-typed entries in a layout's index.
            assert_store_matches_registry(store.path(), &reference.to_string(), &[]);
        }
        let (media_type, layer_type) = match format {
            Format::Oci => ("application/vnd.oci.image.manifest.v1+json", "tar+gzip"),
            Format::DockerV2s2 => (
                "application/vnd.docker.distribution.manifest.v2+json",
                "rootfs.diff.tar.gzip",
            ),
            Format::OciZstd => ("application/vnd.oci.image.manifest.v1+json", "tar+zstd"),
        };
        assert_eq!(tag["mediaType"], media_type);
        assert!(manifest.contains(layer_type), "{manifest}");
    }
}

#[test]
fn a_second_pull_is_up_to_date_and_fetches_no_blob() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let image = fixture.busybox("src/again:1", "again");
    let reference = fixture.push(&image, &registry.host, "again/app", Format::Oci);
    let store = tempfile::tempdir().unwrap();
    let first = Run::of(img_pull(store.path()).arg(reference.repository()), None).success();
    assert!(
        first.stderr.starts_with("Using default tag: latest\n"),
        "{first:#?}"
    );
    let fetched = blob_requests(&registry);
    assert_eq!(fetched, 2, "a config and a layer: {}", registry.log());
    let before = store_listing(store.path());
    let second = Run::of(img_pull(store.path()).arg(reference.repository()), None).success();
    assert_eq!(second.stdout, first.stdout);
    assert!(
        second
            .stderr
            .contains(&format!("Status: Image is up to date for {reference}")),
        "{second:#?}"
    );
    assert!(!second.stderr.contains("Pulling fs layer"), "{second:#?}");
    assert_eq!(blob_requests(&registry), fetched, "{}", registry.log());
    assert_eq!(store_listing(store.path()), before);
}

#[test]
fn an_index_yields_the_host_platform_and_any_other_on_request() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let index = fixture.index("src/multi:1", "multi");
    let reference = fixture.push_index(&index, &registry.host, "multi/app:1");
    let store = tempfile::tempdir().unwrap();
    let blob = |digest: &berth::Digest| store.path().join("images/blobs/sha256").join(digest.hex());

    let run = Run::of(
        img_pull(store.path()).args(["--json", &reference.to_string()]),
        None,
    )
    .success();
    let pulled: Value = serde_json::from_str(&run.stdout).unwrap();
    let host = berth::platform::Platform::host();
    assert_eq!(pulled["platform"], host.to_string());
    assert_eq!(pulled["digest"], index.index_digest.to_string());
    assert_eq!(pulled["id"], index.host.config_digest.to_string());
    assert_eq!(
        pulled["reference"],
        format!("{reference}@{}", index.index_digest)
    );
    assert_eq!(
        pulled["layers"],
        serde_json::json!([index.host.layer_digest.to_string()])
    );
    // The tag names the index itself; only the host's image is fetched.
    let tag = tagged(store.path(), &reference.to_string()).unwrap();
    assert_eq!(tag["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(tag["digest"], index.index_digest.to_string());
    assert!(blob(&index.index_digest).is_file());
    assert!(blob(&index.host.manifest_digest).is_file());
    assert!(!blob(&index.arm64.manifest_digest).exists());
    assert!(!blob(&index.arm64.layer_digest).exists());
    assert_store_matches_registry(store.path(), &reference.to_string(), &[]);

    let run = Run::of(
        img_pull(store.path()).args([
            "--json",
            "--platform",
            "linux/arm64",
            &reference.to_string(),
        ]),
        None,
    )
    .success();
    let pulled: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(pulled["platform"], "linux/arm64/v8");
    assert_eq!(pulled["id"], index.arm64.config_digest.to_string());
    assert!(blob(&index.arm64.layer_digest).is_file());
    assert_eq!(
        tagged(store.path(), &reference.to_string()).unwrap()["digest"],
        index.index_digest.to_string()
    );
    assert_store_matches_registry(
        store.path(),
        &reference.to_string(),
        &["--override-arch", "arm64", "--override-variant", "v8"],
    );
    // The tag still resolves to the host's image.
    let ls = Run::of(&mut tool("img-ls", store.path()), None).success();
    assert!(
        ls.stdout.contains(index.host.config_digest.short()),
        "{ls:#?}"
    );
}

/// `--platform` picks that platform under a multi-platform tag, pulling it
/// when the store has only another: ctr-run's and img-build's FROM.
#[test]
fn a_platform_flag_pulls_and_uses_that_platform_of_a_tag() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let index = fixture.index("multi/plat:1", "plat");
    let reference = fixture
        .push_index(&index, &registry.host, "multi/plat:1")
        .to_string();
    let store = tempfile::tempdir().unwrap();
    Run::of(img_pull(store.path()).args(["-q", &reference]), None).success();
    let ctr_run = |args: &[&str]| {
        let mut command = tool("ctr-run", store.path());
        command.env("DOCKER_CONFIG", "/nonexistent/berth-test-docker-config");
        Run::of(command.arg("--rm").args(args), None).success()
    };
    let label = ["cat", "/etc/fixture"];
    assert_eq!(
        ctr_run(&[&[reference.as_str()], &label[..]].concat()).stdout,
        "plat host"
    );
    let out = ctr_run(&[&["--platform", "linux/arm64", &reference], &label[..]].concat());
    assert_eq!(out.stdout, "plat arm64");
    assert!(out.stderr.contains("Unable to find image"), "{out:?}");
    // Both are here now: no pull, and the tag's default is still the host's.
    let never = ["--pull", "never", "--platform", "linux/arm64", &reference];
    assert_eq!(
        ctr_run(&[&never[..], &label[..]].concat()).stdout,
        "plat arm64"
    );
    assert_eq!(
        ctr_run(&[&[reference.as_str()], &label[..]].concat()).stdout,
        "plat host"
    );
    // The arm64 image under the tag is no stray `<none>` row, and no prune
    // claims to delete it (it goes with its index).
    let listed = Run::of(&mut tool("img-ls", store.path()), None).success();
    assert_eq!(listed.stdout.lines().count(), 2, "{listed:?}");
    assert!(!listed.stdout.contains("<none>"), "{listed:?}");
    for _ in 0..2 {
        let pruned = Run::of(tool("img-prune", store.path()).arg("-f"), None).success();
        assert_eq!(pruned.stdout, "Total reclaimed space: 0B\n");
    }
    assert_eq!(
        ctr_run(&[&never[..], &label[..]].concat()).stdout,
        "plat arm64"
    );
    // An image of another platform is refused, not run, when pulling is off.
    let mut command = tool("ctr-run", store.path());
    Run::of(
        command.args([
            "--rm",
            "--pull",
            "never",
            "--platform",
            "linux/s390x",
            &reference,
            "true",
        ]),
        None,
    )
    .failure(125)
    .one_error_line(&["does not match the requested platform linux/s390x"]);

    let dockerfile = format!("FROM --platform=linux/arm64 {reference}\nLABEL built=yes\n");
    Run::of(
        tool("img-build", store.path()).args(["-q", "-t", "on-arm", "-"]),
        Some(&dockerfile),
    )
    .success();
    let config: Value = serde_json::from_str(
        &Run::of(tool("img-inspect", store.path()).arg("on-arm"), None)
            .success()
            .stdout,
    )
    .unwrap();
    assert_eq!(config[0]["Architecture"], "arm64");
    assert_eq!(
        config[0]["RootFS"]["Layers"][0],
        index.arm64.diff_id.to_string()
    );
}

#[test]
fn a_pull_by_digest_is_stored_under_the_digest() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let index = fixture.index("src/pinned:1", "pinned");
    let reference = fixture.push_index(&index, &registry.host, "pinned/app:1");
    let image = fixture.busybox("src/single:1", "single");
    let single = fixture.push(&image, &registry.host, "pinned/single:1", Format::Oci);
    let store = tempfile::tempdir().unwrap();

    for (name, digest) in [
        (reference.repository(), index.index_digest.clone()),
        (single.repository(), image.manifest_digest.clone()),
    ] {
        let by_digest = format!("{name}@{digest}");
        let run = Run::of(img_pull(store.path()).arg(&by_digest), None).success();
        assert_eq!(run.stdout, format!("{by_digest}\n"));
        assert!(
            run.stderr.contains(&format!("{digest}: Pulling from")),
            "{run:#?}"
        );
        assert!(
            tagged(store.path(), &by_digest).is_some(),
            "{:#}",
            index_json(store.path())
        );
        assert_store_matches_registry(store.path(), &by_digest, &[]);
        // What img-pull prints is what the next tool in a pipe resolves.
        Run::of(&mut tool("img-inspect", store.path()), Some(&run.stdout)).success();
    }
    assert!(tagged(store.path(), &format!("{reference}")).is_none());

    // A digest that does not exist is refused with the reference named.
    let missing = format!("{}@sha256:{}", single.repository(), "0".repeat(64));
    Run::of(img_pull(store.path()).arg(&missing), None)
        .failure(1)
        .one_error_line(&["not found", &missing]);
}

#[test]
fn all_tags_and_stdin_references_are_pulled() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let one = fixture.busybox("src/tags:1", "tags one");
    let two = fixture.busybox("src/tags:2", "tags two");
    let first = fixture.push(&one, &registry.host, "tags/app:1", Format::Oci);
    fixture.push(&two, &registry.host, "tags/app:2", Format::Oci);
    let store = tempfile::tempdir().unwrap();
    let run = Run::of(
        img_pull(store.path()).args(["-q", "--all-tags", &first.repository()]),
        None,
    )
    .success();
    assert_eq!(
        run.stdout,
        format!(
            "{r}:1@{}\n{r}:2@{}\n",
            one.manifest_digest,
            two.manifest_digest,
            r = first.repository()
        )
    );
    assert_eq!(run.stderr, "", "-q is silent");
    Run::of(
        img_pull(store.path()).args(["-a", &first.to_string()]),
        None,
    )
    .failure(2)
    .one_error_line(&["--all-tags"]);

    let other = tempfile::tempdir().unwrap();
    let piped = Run::of(img_pull(other.path()).arg("-q"), Some(&run.stdout)).success();
    assert_eq!(piped.stdout, run.stdout);

    // A missing image in the middle does not stop the ones after it.
    let third = tempfile::tempdir().unwrap();
    let missing = format!("{}:404", first.repository());
    let input = format!("{missing}\n{first}\n");
    let mixed = Run::of(img_pull(third.path()).arg("-q"), Some(&input))
        .failure(1)
        .one_error_line(&[&missing]);
    assert_eq!(
        mixed.stdout,
        format!("{}:1@{}\n", first.repository(), one.manifest_digest)
    );
}

#[test]
fn a_tls_registry_needs_its_credentials_and_its_ca() {
    let registry = Registry::start_tls_auth("berth", "s3cret");
    let fixture = Fixture::new();
    let image = fixture.busybox("src/private:1", "private");
    let source = format!(
        "oci:{}:{}",
        fixture.store.images_dir().display(),
        image.reference
    );
    let reference = format!("{}/private/app:1", registry.host);
    external(
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-creds",
            "berth:s3cret",
            "--dest-cert-dir",
            &format!("/etc/docker/certs.d/{}", registry.host),
            &source,
            &format!("docker://{reference}"),
        ],
    );
    let store = tempfile::tempdir().unwrap();
    berth::Store::open(store.path()).unwrap();
    let before = store_listing(store.path());
    Run::of(img_pull(store.path()).arg(&reference), None)
        .failure(1)
        .one_error_line(&[&registry.host, "401", "Unauthorized"]);
    assert_eq!(store_listing(store.path()), before);

    // Credentials from config.json's auths ("berth:s3cret" in base64).
    let config = tempfile::tempdir().unwrap();
    write_auths(config.path(), &registry.host);
    let run = Run::of(
        img_pull(store.path())
            .env("DOCKER_CONFIG", config.path())
            .arg(&reference),
        None,
    )
    .success();
    assert_eq!(
        run.stdout,
        format!("{reference}@{}\n", image.manifest_digest)
    );
    assert!(tagged(store.path(), &reference).is_some());

    // And from a credential helper named in credHelpers.
    let helper_dir = tempfile::tempdir().unwrap();
    let helper = helper_dir.path().join("docker-credential-berth-test");
    std::fs::write(
        &helper,
        "#!/bin/sh\nread server\necho \"{\\\"ServerURL\\\":\\\"$server\\\",\\\"Username\\\":\\\"berth\\\",\\\"Secret\\\":\\\"s3cret\\\"}\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        config.path().join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"berth-test"}}}}"#, registry.host),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        helper_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let fresh = tempfile::tempdir().unwrap();
    Run::of(
        img_pull(fresh.path())
            .env("DOCKER_CONFIG", config.path())
            .env("PATH", path)
            .arg(&reference),
        None,
    )
    .success();

    // Without the CA the certificate is refused, named as such.
    let ca = std::path::PathBuf::from("/etc/docker/certs.d")
        .join(&registry.host)
        .join("ca.crt");
    std::fs::remove_file(&ca).unwrap();
    write_auths(config.path(), &registry.host);
    let other = tempfile::tempdir().unwrap();
    Run::of(
        img_pull(other.path())
            .env("DOCKER_CONFIG", config.path())
            .arg(&reference),
        None,
    )
    .failure(1)
    .one_error_line(&[&registry.host, "UnknownIssuer"]);
}

#[test]
fn a_tampered_blob_is_refused_and_the_store_keeps_what_it_had() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let old = fixture.busybox("src/tamper:1", "tamper old");
    let reference = fixture.push(&old, &registry.host, "tamper/app:1", Format::Oci);
    let store = tempfile::tempdir().unwrap();
    Run::of(img_pull(store.path()).arg(reference.to_string()), None).success();

    let new = fixture.busybox("src/tamper:1", "tamper new");
    fixture.push(&new, &registry.host, "tamper/app:1", Format::Oci);
    let hex = new.layer_digest.hex();
    let data = registry
        .storage()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let mut bytes = std::fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();
    let actual = berth::Digest::of(&bytes);

    let before = store_listing(store.path());
    let run = Run::of(img_pull(store.path()).arg(reference.to_string()), None).failure(1);
    let last = run.stderr.lines().last().unwrap();
    assert!(last.starts_with("img-pull: "), "{run:#?}");
    for part in [new.layer_digest.to_string(), actual.to_string()] {
        assert!(last.contains(&part), "{part}: {run:#?}");
    }
    assert_eq!(
        store_listing(store.path()),
        before,
        "nothing stored, old tag kept"
    );
    assert_eq!(
        tagged(store.path(), &reference.to_string()).unwrap()["digest"],
        old.manifest_digest.to_string()
    );
}

#[test]
fn bad_names_fail_with_one_line_and_leave_the_store_alone() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let image = fixture.busybox("src/bad:1", "bad");
    let reference = fixture.push(&image, &registry.host, "bad/app:1", Format::Oci);
    let store = tempfile::tempdir().unwrap();
    Run::of(img_pull(store.path()).arg(reference.to_string()), None).success();
    let before = store_listing(store.path());
    let unknown_image = format!("{}/bad/nothere:1", registry.host);
    let unknown_tag = format!("{}/bad/app:nope", registry.host);
    let unreachable = format!("127.0.0.1:{}/bad/app:1", free_port());
    let cases: [(&str, i32, Vec<&str>); 5] = [
        (&unknown_image, 1, vec!["not found", &unknown_image]),
        (&unknown_tag, 1, vec!["not found", &unknown_tag]),
        (
            &unreachable,
            1,
            vec!["cannot reach registry", "Connection refused"],
        ),
        ("Bad/Name", 2, vec!["invalid reference format", "lowercase"]),
        ("app@sha256:xyz", 2, vec!["invalid reference format"]),
    ];
    for (name, code, parts) in cases {
        Run::of(img_pull(store.path()).arg(name), None)
            .failure(code)
            .one_error_line(&parts);
        assert_eq!(store_listing(store.path()), before, "{name}");
    }
    Run::of(img_pull(store.path()).args(["--platform", "linux"]), None).failure(2);
    // A malformed name among good ones stops everything before any pull.
    let fresh = tempfile::tempdir().unwrap();
    Run::of(
        img_pull(fresh.path()).args([&reference.to_string(), "NOPE"]),
        None,
    )
    .failure(2);
    assert!(!fresh.path().join("images").exists());
}

#[test]
fn a_killed_pull_leaves_nothing_half_done_and_a_rerun_completes() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let layers = fixture.random("src/big:1", 1, 256 << 20);
    let source = format!(
        "oci:{}:docker.io/src/big:1",
        fixture.store.images_dir().display()
    );
    let reference = format!("{}/big/app:1", registry.host);
    berth_harness::tools::skopeo_copy(&source, &format!("docker://{reference}"));
    let store = tempfile::tempdir().unwrap();
    // Let the store's directories exist before watching them.
    berth::Store::open(store.path()).unwrap();
    let tmp = store.path().join("tmp");
    let mut child = img_pull(store.path())
        .arg(&reference)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once a temp blob holds part of the layer.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let partial = std::fs::read_dir(&tmp)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.metadata().is_ok_and(|m| m.len() > (1 << 20)));
        if partial {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        assert!(Instant::now() < deadline, "no partial blob appeared");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let blob = store
        .path()
        .join("images/blobs/sha256")
        .join(layers[0].hex());
    assert!(!blob.exists(), "a partial layer is never a blob");
    assert!(tagged(store.path(), &reference).is_none());
    // Every blob that is there is whole.
    for entry in std::fs::read_dir(store.path().join("images/blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let digest = berth::Digest::of(&std::fs::read(&path).unwrap());
        assert_eq!(digest.hex(), path.file_name().unwrap().to_str().unwrap());
    }
    assert!(
        temp_blobs(store.path()) > 0,
        "the killed pull left its temp file"
    );
    Run::of(img_pull(store.path()).args(["-q", &reference]), None).success();
    assert!(blob.is_file());
    assert_store_matches_registry(store.path(), &reference, &[]);
    // "At most a file" until the next pull: that pull removed it.
    assert_eq!(
        temp_blobs(store.path()),
        0,
        "a killed pull's temp file stays"
    );
}

/// How many blob temp files are in the store's `tmp/`.
fn temp_blobs(root: &Path) -> usize {
    std::fs::read_dir(root.join("tmp"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".blob-")
        })
        .count()
}

/// A pull removes the temp files no live process owns and keeps the ones
/// a concurrent pull is writing (it holds an flock on them meanwhile).
#[test]
fn a_pull_sweeps_dead_temp_files_and_spares_live_ones() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let image = fixture.busybox("src/sweep:1", "sweep");
    let reference = fixture.push(&image, &registry.host, "sweep/app:1", Format::Oci);
    let store = tempfile::tempdir().unwrap();
    berth::Store::open(store.path()).unwrap();
    let tmp = store.path().join("tmp");
    std::fs::write(tmp.join(".blob-dead"), vec![1u8; 1 << 20]).unwrap();
    let live = std::fs::File::create(tmp.join(".blob-live")).unwrap();
    live.lock().unwrap();
    Run::of(
        img_pull(store.path()).args(["-q", &reference.to_string()]),
        None,
    )
    .success();
    assert!(
        !tmp.join(".blob-dead").exists(),
        "the dead pull's file stays"
    );
    assert!(
        tmp.join(".blob-live").exists(),
        "a live pull's file was removed"
    );
    drop(live);
}

/// A Docker `config.json` in `dir` with `auths` for `host`: "berth:s3cret"
/// in base64, as `docker login` writes it.
fn write_auths(dir: &std::path::Path, host: &str) {
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"YmVydGg6czNjcmV0"}}}}}}"#),
    )
    .unwrap();
}
