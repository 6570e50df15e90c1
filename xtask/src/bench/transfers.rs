//! The registry rows of the bench: img-pull and img-push against skopeo,
//! podman and the machine's own limits (a loopback transfer, hashing).

use super::{Comparison, DEBIAN, Debian, binary, compare, podman_forget, podman_id, run_quietly};
use berth_harness::{Fixture, Registry};
use std::process::{Command, Stdio};

/// img-push of ~400 MiB in 7 incompressible layers to an empty registry,
/// against skopeo copying the same image from our store (an OCI layout);
/// then the same push again, every layer already there.
pub(super) fn pushes(registry: &Registry, fixture: &Fixture) -> Result<(), String> {
    let images = fixture.store.images_dir();
    fixture.random("bench/push:latest", 7, 57 << 20);
    let target = format!("{}/pushed:bench", registry.host);
    let tag = Command::new(binary("img-tag"))
        .args(["--root", &fixture.root().display().to_string()])
        .args(["bench/push:latest", &target])
        // It prints the name it made, which is not a figure of the table.
        .stdout(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    if !tag.success() {
        return Err("img-tag for the push bench failed".into());
    }
    let img_push = format!(
        "{} -q --root {} {target}",
        binary("img-push").display(),
        fixture.root().display()
    );
    let skopeo = format!(
        "skopeo --insecure-policy copy --quiet --dest-tls-verify=false oci:{}:docker.io/bench/push:latest docker://{target}",
        images.display()
    );
    // The registry keeps no cache of what it holds: emptying its storage
    // empties it.
    let empty = format!(
        "rm -rf {}/docker/registry/v2/repositories/pushed {}/docker/registry/v2/blobs",
        registry.storage().display(),
        registry.storage().display()
    );
    let comparisons = [
        Comparison {
            name: "to an empty registry (vs skopeo copy oci: docker://)".into(),
            ours: img_push.clone(),
            theirs: skopeo.clone(),
            prepare: Some(empty),
        },
        Comparison {
            name: "again, every layer there (vs skopeo copy)".into(),
            ours: img_push,
            theirs: skopeo,
            prepare: None,
        },
    ];
    compare(
        [
            "push ~400 MiB in 7 incompressible layers",
            "img-push",
            "skopeo",
        ],
        &comparisons,
    )
}

/// img-pull of 384 MiB of incompressible data in 6 layers against skopeo
/// and podman, and against the machine's own limit: the slower of fetching
/// the same blobs over loopback and hashing them. (skopeo gzips the plain
/// layers on their way into the registry, so what is pulled is gzip, as
/// most images are.) Then peak memory for a small and a large layer, which
/// must not differ much.
pub(super) fn pulls(
    registry: &Registry,
    fixture: &Fixture,
    debian: Option<&Debian>,
) -> Result<(), String> {
    let images = fixture.store.images_dir();
    let layers = fixture.random("bench/big:latest", 6, 64 << 20);
    let big = format!("{}/big:bench", registry.host);
    berth_harness::tools::skopeo_copy(
        &format!("oci:{}:docker.io/bench/big:latest", images.display()),
        &format!("docker://{big}"),
    );
    let pulls = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ours = pulls.path().join("ours");
    let skopeo = pulls.path().join("skopeo");
    let img_pull = format!(
        "{} -q --root {} {big}",
        binary("img-pull").display(),
        ours.display()
    );
    let big_id = podman_id(fixture, "bench/big:latest");
    let fresh = format!(
        "rm -rf {} {}; {}",
        ours.display(),
        skopeo.display(),
        podman_forget(&big_id)
    );
    let blob_urls: Vec<String> = layers
        .iter()
        .map(|d| format!("http://{}/v2/big/blobs/{d}", registry.host))
        .collect();
    let fetched: Vec<String> = (0..layers.len())
        .map(|n| pulls.path().join(format!("curl-{n}")).display().to_string())
        .collect();
    let blob_files: Vec<String> = layers
        .iter()
        .map(|d| {
            images
                .join("blobs/sha256")
                .join(d.hex())
                .display()
                .to_string()
        })
        .collect();
    let comparisons = [
        Comparison {
            name: "vs skopeo copy docker:// oci:".into(),
            ours: img_pull.clone(),
            theirs: format!(
                "skopeo --insecure-policy copy --quiet --src-tls-verify=false docker://{big} oci:{}:big",
                skopeo.display()
            ),
            prepare: Some(fresh.clone()),
        },
        Comparison {
            name: "vs podman pull".into(),
            ours: img_pull.clone(),
            theirs: format!("podman pull -q --tls-verify=false {big}"),
            prepare: Some(fresh.clone()),
        },
        Comparison {
            name: "vs loopback transfer (curl of the 6 blobs)".into(),
            ours: img_pull.clone(),
            theirs: format!(
                "curl -sf {} -o /dev/null -o /dev/null -o /dev/null -o /dev/null -o /dev/null -o /dev/null",
                blob_urls.join(" ")
            ),
            prepare: Some(fresh.clone()),
        },
        // What the goal's curl row leaves out and a pull cannot: putting
        // 384 MiB on this disk, durably.
        Comparison {
            name: "vs curl of the 6 blobs into files, then fsynced".into(),
            ours: img_pull.clone(),
            theirs: format!(
                "curl -sf {} && sync {}",
                blob_urls
                    .iter()
                    .zip(&fetched)
                    .map(|(url, file)| format!("{url} -o {file}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                fetched.join(" ")
            ),
            prepare: Some(format!("{fresh}; rm -f {}", fetched.join(" "))),
        },
        Comparison {
            name: "vs sha256sum of the same bytes".into(),
            ours: img_pull.clone(),
            theirs: format!("sha256sum {} >/dev/null", blob_files.join(" ")),
            prepare: Some(fresh.clone()),
        },
        Comparison {
            name: "vs openssl dgst -sha256 of the same bytes (SHA-NI)".into(),
            ours: img_pull.clone(),
            theirs: format!("openssl dgst -sha256 {} >/dev/null", blob_files.join(" ")),
            prepare: Some(fresh),
        },
    ];
    compare(
        [
            "pull 384 MiB in 6 incompressible layers",
            "img-pull",
            "other",
        ],
        &comparisons,
    )?;
    println!("the machine's limit is the slower of the curl and hashing rows; goal: ≤ 1.5x curl");
    println!("one core hashes at {}\n", sha256_speed());

    if let Some(debian) = debian {
        let reference = format!("{}/debian:bench", registry.host);
        berth_harness::tools::skopeo_copy(
            &format!("oci:{}:docker.io/{DEBIAN}", images.display()),
            &format!("docker://{reference}"),
        );
        let img_pull = img_pull.replace(&big, &reference);
        let debian_id = podman_id(fixture, DEBIAN);
        let fresh = format!(
            "rm -rf {} {}; {}",
            ours.display(),
            skopeo.display(),
            podman_forget(&debian_id)
        );
        let comparisons = [
            Comparison {
                name: "vs skopeo copy docker:// oci:".into(),
                ours: img_pull.clone(),
                theirs: format!(
                    "skopeo --insecure-policy copy --quiet --src-tls-verify=false docker://{reference} oci:{}:debian",
                    skopeo.display()
                ),
                prepare: Some(fresh.clone()),
            },
            Comparison {
                name: "vs podman pull".into(),
                ours: img_pull,
                theirs: format!("podman pull -q --tls-verify=false {reference}"),
                prepare: Some(fresh),
            },
        ];
        let title = format!(
            "pull a Debian rootfs ({} MiB gzipped, {} MiB unpacked)",
            debian.compressed >> 20,
            debian.unpacked >> 20
        );
        compare([&title, "img-pull", "other"], &comparisons)?;
        println!();
        run_quietly(&podman_forget(&debian_id));
    }
    run_quietly(&podman_forget(&big_id));

    // Peak memory for one layer of 8, 64 and 256 MiB: bounded by the chunks
    // in flight between socket and writer, so it levels off.
    println!("{:<64} {:>10}", "img-pull peak memory (max RSS)", "KiB");
    for (name, mib) in [("small", 8), ("medium", 64), ("large", 256)] {
        fixture.random(&format!("bench/{name}:latest"), 1, mib << 20);
        let reference = format!("{}/{name}:bench", registry.host);
        berth_harness::tools::skopeo_copy(
            &format!("oci:{}:docker.io/bench/{name}:latest", images.display()),
            &format!("docker://{reference}"),
        );
        let destination = pulls.path().join(name);
        let output = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .arg(binary("img-pull"))
            .arg("-q")
            .arg("--root")
            .arg(&destination)
            .arg(&reference)
            .output()
            .map_err(|e| format!("/usr/bin/time: {e}"))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let kib = stderr.lines().last().unwrap_or("?").trim().to_string();
        println!("{:<64} {:>10}", format!("one {mib} MiB layer"), kib);
    }
    println!();
    Ok(())
}

/// `openssl speed`'s SHA-256 rate on 16 KiB blocks, one core: how fast a
/// pull could hash at best.
fn sha256_speed() -> String {
    let output = Command::new("openssl")
        .args([
            "speed", "-seconds", "1", "-bytes", "16384", "-evp", "sha256",
        ])
        .output();
    let Ok(output) = output else {
        return "? (openssl speed did not run)".to_string();
    };
    // The last line: `sha256  <rate>k` in thousands of bytes per second.
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .and_then(|line| line.split_whitespace().last())
        .and_then(|rate| rate.trim_end_matches('k').parse::<f64>().ok())
        .map(|kb| format!("{:.2} GB/s (openssl speed sha256)", kb * 1e3 / 1e9))
        .unwrap_or_else(|| "? (openssl speed gave no rate)".to_string())
}
