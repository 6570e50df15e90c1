//! img-push against the real docker-registry: the round trip keeps every
//! digest, a second push sends nothing, another repository mounts, an index
//! keeps every platform, a TLS registry with auth, and bad input. skopeo
//! reads back what was pushed.

use berth_harness::faulty::FaultyProxy;
use berth_harness::tools::external;
use berth_harness::{Fixture, Registry, Run, tool};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// A berth tool with no credentials from the machine's own docker config.
fn berth(name: &str, root: &Path) -> Command {
    let mut command = tool(name, root);
    command.env("DOCKER_CONFIG", "/nonexistent/berth-test-docker-config");
    command
}

fn run(name: &str, root: &Path, args: &[&str]) -> Run {
    Run::of(berth(name, root).args(args), None)
}

fn skopeo_inspect(reference: &str, raw: bool) -> String {
    let mut args = vec!["inspect", "--tls-verify=false"];
    if raw {
        args.push("--raw");
    }
    let target = format!("docker://{reference}");
    args.push(&target);
    external("skopeo", &args)
}

/// Requests of `method` for blob uploads the registry logged.
fn uploads(registry: &Registry, method: &str) -> usize {
    registry
        .log()
        .lines()
        .filter(|l| l.contains(&format!("\"{method} /v2/")) && l.contains("/blobs/uploads/"))
        .count()
}

#[test]
fn a_pushed_image_pulls_back_with_the_same_digests_and_a_second_push_sends_nothing() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let root = fixture.root();
    let image = fixture.busybox("src/app:1", "push round trip");
    let target = format!("{}/team/app:1", registry.host);
    run("img-tag", root, &["src/app:1", &target]).success();

    let first = run("img-push", root, &[&target]).success();
    assert_eq!(
        first.stdout,
        format!("{}/team/app@{}\n", registry.host, image.manifest_digest)
    );
    let lines: Vec<&str> = first.stderr.lines().collect();
    let short = &image.diff_id.hex()[..12];
    assert_eq!(
        lines,
        [
            format!("The push refers to repository [{}/team/app]", registry.host),
            format!("{short}: Preparing"),
            format!("{short}: Pushing"),
            format!("{short}: Pushed"),
            format!(
                "1: digest: {} size: {}",
                image.manifest_digest, image.manifest_size
            ),
        ],
        "{first:#?}"
    );
    // The registry serves the stored bytes: same digest, same config.
    let raw = skopeo_inspect(&target, true);
    assert_eq!(
        berth::Digest::of(raw.trim_end().as_bytes()),
        image.manifest_digest
    );
    let inspected: Value = serde_json::from_str(&skopeo_inspect(&target, false)).unwrap();
    assert_eq!(inspected["Digest"], image.manifest_digest.to_string());

    // Into an empty store: the same manifest and image ID.
    let other = tempfile::tempdir().unwrap();
    let pulled = run("img-pull", other.path(), &["--json", &target]).success();
    let pulled: Value = serde_json::from_str(&pulled.stdout).unwrap();
    assert_eq!(pulled["digest"], image.manifest_digest.to_string());
    assert_eq!(pulled["id"], image.config_digest.to_string());

    // Again: everything is there, nothing is uploaded.
    let (posts, puts) = (uploads(&registry, "POST"), uploads(&registry, "PUT"));
    let again = run("img-push", root, &["--json", &target]).success();
    let again_json: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(again_json["pushed"], 0, "{again:#?}");
    assert_eq!(again_json["existing"], 1, "{again:#?}");
    assert!(
        again
            .stderr
            .contains(&format!("{short}: Layer already exists")),
        "{again:#?}"
    );
    assert_eq!(uploads(&registry, "POST"), posts, "{}", registry.log());
    assert_eq!(uploads(&registry, "PUT"), puts, "{}", registry.log());

    // Another repository of the same registry: the layer is mounted.
    let elsewhere = format!("{}/other/app:2", registry.host);
    run("img-tag", root, &[&target, &elsewhere]).success();
    let mounted = run("img-push", root, &[&elsewhere]).success();
    assert!(
        mounted
            .stderr
            .contains(&format!("{short}: Mounted from team/app")),
        "{mounted:#?}"
    );
    assert_eq!(uploads(&registry, "PATCH"), 0, "{}", registry.log());
    let inspected: Value = serde_json::from_str(&skopeo_inspect(&elsewhere, false)).unwrap();
    assert_eq!(inspected["Digest"], image.manifest_digest.to_string());
}

#[test]
fn an_index_is_pushed_with_every_platform_and_the_same_digest() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let root = fixture.root();
    let target = format!("{}/multi/app:1", registry.host);
    let index = fixture.index(&target, "push index");
    let pushed = run("img-push", root, &["-q", &target]).success();
    assert_eq!(
        pushed.stdout,
        format!("{}/multi/app@{}\n", registry.host, index.index_digest)
    );
    assert_eq!(pushed.stderr, "");
    let raw = skopeo_inspect(&target, true);
    assert_eq!(
        berth::Digest::of(raw.trim_end().as_bytes()),
        index.index_digest
    );
    for child in [&index.host, &index.arm64] {
        let by_digest = format!("{}/multi/app@{}", registry.host, child.manifest_digest);
        let inspected: Value = serde_json::from_str(&skopeo_inspect(&by_digest, false)).unwrap();
        assert_eq!(inspected["Digest"], child.manifest_digest.to_string());
    }

    // One platform only, under the tag: that image's own manifest.
    let single = format!("{}/multi/arm:1", registry.host);
    let index = fixture.index(&single, "push index arm");
    let arm = run(
        "img-push",
        root,
        &["-q", "--platform", "linux/arm64/v8", &single],
    )
    .success();
    assert_eq!(
        arm.stdout,
        format!(
            "{}/multi/arm@{}\n",
            registry.host, index.arm64.manifest_digest
        )
    );

    // A store without one platform's image says which one it lacks.
    let partial = tempfile::tempdir().unwrap();
    run("img-pull", partial.path(), &["-q", &target]).success();
    run("img-push", partial.path(), &["-q", &target])
        .failure(1)
        .one_error_line(&["linux/arm64/v8", "--platform"]);
}

#[test]
fn pipes_all_tags_and_push_by_digest() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let root = fixture.root();
    let image = fixture.busybox("src/app:1", "push pipes");
    let repository = format!("{}/piped/app", registry.host);
    // img-tag prints the new reference; img-push reads it from stdin.
    let tagged = run("img-tag", root, &["src/app:1", &format!("{repository}:a")]).success();
    let piped = Run::of(berth("img-push", root).arg("-q"), Some(&tagged.stdout)).success();
    assert_eq!(
        piped.stdout,
        format!("{repository}@{}\n", image.manifest_digest)
    );
    run("img-tag", root, &["src/app:1", &format!("{repository}:b")]).success();
    let all = run("img-push", root, &["-q", "-a", &repository]).success();
    assert_eq!(
        all.stdout,
        format!(
            "{repository}@{0}\n{repository}@{0}\n",
            image.manifest_digest
        )
    );
    let tags = registry.get("/v2/piped/app/tags/list").unwrap();
    assert!(
        tags.contains(r#"["a","b"]"#) || tags.contains(r#"["b","a"]"#),
        "{tags}"
    );
    let by_digest = format!("{repository}@{}", image.manifest_digest);
    run("img-push", root, &["-q", &by_digest]).success();
}

#[test]
fn bad_pushes_fail_with_one_line_and_change_nothing() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let root = fixture.root();
    fixture.busybox("src/app:1", "push bad");
    let missing = format!("{}/none/app:1", registry.host);
    run("img-push", root, &[&missing])
        .failure(1)
        .one_error_line(&["An image does not exist locally with the tag", "none/app:1"]);
    run("img-push", root, &["Not A Reference!"]).failure(2);
    // Docker Hub without a login: refused before anything is sent.
    run("img-push", root, &["src/app:1"])
        .failure(1)
        .one_error_line(&["denied: requested access to the resource is denied"]);
    // A registry nobody listens on.
    let port = berth_harness::registry::free_port();
    let nowhere = format!("127.0.0.1:{port}/x/app:1");
    run("img-tag", root, &["src/app:1", &nowhere]).success();
    run("img-push", root, &[&nowhere])
        .failure(1)
        .one_error_line(&[&format!("127.0.0.1:{port}")]);
    assert!(
        registry
            .get("/v2/_catalog")
            .unwrap()
            .contains(r#"{"repositories":[]}"#)
    );
}

#[test]
fn a_tls_registry_takes_a_push_with_its_credentials_only() {
    let registry = Registry::start_tls_auth("berth", "s3cret");
    let fixture = Fixture::new();
    let root = fixture.root();
    let image = fixture.busybox("src/app:1", "push tls");
    let target = format!("{}/private/app:1", registry.host);
    run("img-tag", root, &["src/app:1", &target]).success();
    run("img-push", root, &["-q", &target])
        .failure(1)
        .one_error_line(&[&registry.host, "401"]);
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"YmVydGg6czNjcmV0"}}}}}}"#,
            registry.host
        ),
    )
    .unwrap();
    let pushed = Run::of(
        berth("img-push", root)
            .env("DOCKER_CONFIG", config.path())
            .args(["-q", &target]),
        None,
    )
    .success();
    assert_eq!(
        pushed.stdout,
        format!("{}/private/app@{}\n", registry.host, image.manifest_digest)
    );
}

/// The peak resident memory (VmHWM, in KiB) of a running process, read
/// until it exits: the last reading holds the peak of its whole run.
fn peak_rss_kib(child: &mut std::process::Child) -> u64 {
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
            let hwm = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
            peak = peak.max(hwm.unwrap_or(0));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    peak
}

#[test]
fn a_large_layer_streams_in_chunks_with_flat_memory_and_survives_a_failed_chunk() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let root = fixture.root();
    // 200 MiB that gzip cannot shrink: seven chunks of 32 MiB.
    let layers = fixture.random("src/big:1", 1, 200 << 20);
    // The third PATCH fails once; the upload resumes where the registry is.
    let proxy = FaultyProxy::start(&registry.host, "PATCH", |n| n == 3);
    let target = format!("{}/big/app:1", proxy.host);
    run("img-tag", root, &["src/big:1", &target]).success();
    let mut push = berth("img-push", root)
        .args(["-q", &target])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let peak = peak_rss_kib(&mut push);
    let pushed = Run::from(push.wait_with_output().unwrap()).success();
    assert!(peak < 64 << 10, "img-push peaked at {peak} KiB");
    assert_eq!(proxy.failed(), 1);
    let patches = proxy
        .requests()
        .iter()
        .filter(|r| r.starts_with("PATCH "))
        .count();
    assert_eq!(patches, 8, "seven chunks and the one that failed once");
    // The registry checked the digest when the upload closed; skopeo and a
    // pull agree on what it holds.
    let direct = format!("{}/big/app:1", registry.host);
    let inspected: Value = serde_json::from_str(&skopeo_inspect(&direct, false)).unwrap();
    assert_eq!(inspected["Layers"][0], layers[0].to_string());
    let digest = pushed.stdout.trim().rsplit_once('@').unwrap().1.to_string();
    assert_eq!(inspected["Digest"], digest);
}

#[test]
fn a_registry_that_fails_every_chunk_leaves_no_tag() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let root = fixture.root();
    fixture.random("src/big:1", 1, 80 << 20);
    let proxy = FaultyProxy::start(&registry.host, "PATCH", |_| true);
    let target = format!("{}/broken/app:1", proxy.host);
    run("img-tag", root, &["src/big:1", &target]).success();
    run("img-push", root, &["-q", &target])
        .failure(1)
        .one_error_line(&[&proxy.host, "500"]);
    let tags = registry.get("/v2/broken/app/tags/list").unwrap();
    assert!(!tags.contains("\"1\""), "{tags}");
}

#[test]
fn a_build_cache_pushed_from_one_store_gives_another_every_step() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let base = fixture.busybox("src/base:1", "shared cache base");
    let base_ref = fixture.push(
        &base,
        &registry.host,
        "base:1",
        berth_harness::fixture::Format::Oci,
    );
    let context = tempfile::tempdir().unwrap();
    std::fs::write(context.path().join("file"), "copied\n").unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        format!(
            "FROM {base_ref}\nRUN echo built > /a\nCOPY file /file\nENV X=1\nRUN cat /a /file > /b\n"
        ),
    )
    .unwrap();
    let cache = format!("{}/cache/app:buildcache", registry.host);
    let dir = context.path().to_str().unwrap();

    let first = tempfile::tempdir().unwrap();
    let built = run(
        "img-build",
        first.path(),
        &["-t", "app:1", "--cache-to", &cache, dir],
    )
    .success();
    assert!(
        built
            .stderr
            .contains(&format!("Exported cache to {cache}@sha256:")),
        "{built:#?}"
    );
    let id = built.stdout.trim().to_string();

    // Another machine: an empty store, the same Dockerfile.
    let second = tempfile::tempdir().unwrap();
    let from = format!("type=registry,ref={cache}");
    let rebuilt = run(
        "img-build",
        second.path(),
        &["-t", "app:1", "--cache-from", &from, dir],
    )
    .success();
    assert_eq!(rebuilt.stdout.trim(), id, "{rebuilt:#?}");
    assert!(
        rebuilt.stderr.contains("Importing cache from"),
        "{rebuilt:#?}"
    );
    assert_eq!(
        rebuilt.stderr.matches(" ---> Using cache").count(),
        4,
        "{rebuilt:#?}"
    );
    // The cache's images are not images of the store's own.
    let listed = run(
        "img-ls",
        second.path(),
        &["--format", "{{.Repository}}:{{.Tag}}"],
    )
    .success();
    let mut names: Vec<&str> = listed.stdout.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [format!("{}/base:1", registry.host).as_str(), "app:1"]
    );
    let check = run("ctr-run", second.path(), &["--rm", "app:1", "cat", "/b"]).success();
    assert_eq!(check.stdout, "built\ncopied\n");
    let fsck = run("img-fsck", second.path(), &[]);
    assert_eq!(
        (fsck.code, fsck.stdout.as_str()),
        (Some(0), ""),
        "{fsck:#?}"
    );
}

/// The largest layers are uploaded first, whatever their place in the
/// manifest, so the longest upload does not start last and run alone.
/// Every blob PUT fails, so no upload ends and lets another start: the
/// three that start are exactly the three chosen first.
#[test]
fn the_largest_layers_are_pushed_first() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let root = fixture.root();
    let context = tempfile::tempdir().unwrap();
    // Bytes gzip cannot shrink, so the layers keep the files' size order.
    let sizes = [
        ("a", 1 << 10),
        ("b", 300 << 10),
        ("c", 2 << 10),
        ("d", 600 << 10),
        ("e", 3 << 10),
    ];
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut dockerfile = String::from("FROM scratch\n");
    for (name, size) in sizes {
        let bytes = berth_harness::incompressible(size, &mut seed);
        std::fs::write(context.path().join(name), bytes).unwrap();
        dockerfile.push_str(&format!("COPY {name} /{name}\n"));
    }
    std::fs::write(context.path().join("Dockerfile"), dockerfile).unwrap();
    let proxy = FaultyProxy::start(&registry.host, "PUT", |_| true);
    let target = format!("{}/sized/app:1", proxy.host);
    let context_path = context.path().to_str().unwrap();
    run("img-build", root, &["-q", "-t", &target, context_path]).success();
    run("img-push", root, &["-q", &target])
        .failure(1)
        .one_error_line(&[&proxy.host, "500"]);
    let image = fixture.store.resolve_image(&target).unwrap();
    let layers: Vec<String> = image
        .manifest
        .layers()
        .iter()
        .map(|l| l.digest().to_string())
        .collect();
    assert_eq!(layers.len(), sizes.len());
    let mut started: Vec<usize> = Vec::new();
    for request in proxy.requests() {
        if let Some(n) = layers.iter().position(|d| request.contains(d.as_str()))
            && !started.contains(&n)
        {
            started.push(n);
        }
    }
    // d, b and e: the three largest.
    started.truncate(3);
    started.sort();
    assert_eq!(started, [1, 3, 4], "the three largest start first");
}
