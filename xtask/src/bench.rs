//! `cargo xtask bench`: our tools timed side by side with the established
//! ones (skopeo, umoci, podman, runc) by hyperfine in one run, each figure
//! printed as a ratio. Informational: a bench never fails the build.

use berth_harness::fixture::Format;
use berth_harness::{Fixture, Registry};
use std::path::PathBuf;
use std::process::Command;

/// One comparison: the same job done by berth and by an established tool.
struct Comparison {
    name: String,
    ours: String,
    theirs: String,
    /// Run before every timed run of either command (hyperfine --prepare).
    prepare: Option<String>,
}

pub fn run() -> Result<(), String> {
    crate::build_tools(true)?;
    let registry = Registry::start();
    let fixture = Fixture::new();
    let image = fixture.busybox("bench/busybox:latest", "bench");
    fixture.push(&image, &registry.host, "busybox:bench", Format::Oci);
    let root = fixture.root().display().to_string();
    let images = fixture.store.images_dir().display().to_string();
    let tool = |name: &str| binary(name).display().to_string();
    // 4 layers of 64 MiB of incompressible data, pulled into an empty
    // destination each run.
    fixture.random("bench/big:latest", 4, 64 << 20);
    let big = format!("{}/big:bench", registry.host);
    berth_harness::tools::skopeo_copy(
        &format!("oci:{images}:docker.io/bench/big:latest"),
        &format!("docker://{big}"),
    );
    let pulls = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (ours_dest, theirs_dest) = (pulls.path().join("ours"), pulls.path().join("theirs"));

    let bundle = runc_bundle(&fixture)?;
    let comparisons = vec![
        Comparison {
            name: "pull 256 MiB in 4 layers (img-pull vs skopeo copy docker:// oci:)".into(),
            ours: format!(
                "{} -q --root {} {big}",
                tool("img-pull"),
                ours_dest.display()
            ),
            theirs: format!(
                "skopeo --insecure-policy copy --quiet --src-tls-verify=false docker://{big} oci:{}:big",
                theirs_dest.display()
            ),
            prepare: Some(format!(
                "rm -rf {} {}",
                ours_dest.display(),
                theirs_dest.display()
            )),
        },
        Comparison {
            name: "tag an image in an OCI layout (img-tag vs umoci tag)".into(),
            ours: format!(
                "{} --root {root} docker.io/bench/busybox:latest docker.io/bench/busybox:ours",
                tool("img-tag")
            ),
            theirs: format!("umoci tag --image {images}:docker.io/bench/busybox:latest theirs"),
            prepare: None,
        },
        Comparison {
            name: "run `true` in a container (ctr-run --rm vs runc run)".into(),
            ours: format!(
                "{} --root {root} --rm docker.io/bench/busybox:latest true",
                tool("ctr-run")
            ),
            // $$ is a fresh shell per run, so every runc container ID is new.
            theirs: format!("runc run --bundle {} bench-$$", bundle.path().display()),
            prepare: None,
        },
    ];

    println!(
        "{:<64} {:>10} {:>10} {:>7}",
        "comparison", "berth", "other", "ratio"
    );
    for comparison in &comparisons {
        let (ours, theirs) = time_pair(comparison)?;
        println!(
            "{:<64} {:>8.1}ms {:>8.1}ms {:>6.2}x",
            comparison.name,
            ours * 1e3,
            theirs * 1e3,
            ours / theirs
        );
    }
    println!("ratio = berth's time / the other tool's time (below 1: berth is faster)\n");

    listing_scales()?;
    Ok(())
}

/// img-ls and img-inspect on stores of 200 and 2,000 tagged images: the
/// absolute times, and how time grows with ten times the images.
fn listing_scales() -> Result<(), String> {
    let small = Fixture::new();
    small.many(200);
    let large = Fixture::new();
    large.many(2000);
    let ls = |f: &Fixture| {
        format!(
            "{} --root {} --no-trunc",
            binary("img-ls").display(),
            f.root().display()
        )
    };
    let inspect = |f: &Fixture| {
        format!(
            "{} --root {} many/app-7:latest",
            binary("img-inspect").display(),
            f.root().display()
        )
    };
    println!(
        "{:<64} {:>10} {:>10} {:>7}",
        "scaling (200 → 2,000 images)", "200", "2,000", "growth"
    );
    for (name, small_cmd, large_cmd) in [
        ("img-ls", ls(&small), ls(&large)),
        ("img-inspect of one image", inspect(&small), inspect(&large)),
    ] {
        // Warm the layer-size cache so we time the steady state.
        for command in [&small_cmd, &large_cmd] {
            Command::new("sh")
                .args(["-c", &format!("{command} >/dev/null")])
                .status()
                .map_err(|e| e.to_string())?;
        }
        let (a, b) = time_pair(&Comparison {
            name: name.to_string(),
            ours: small_cmd,
            theirs: large_cmd,
            prepare: None,
        })?;
        println!(
            "{:<64} {:>8.1}ms {:>8.1}ms {:>6.2}x",
            name,
            a * 1e3,
            b * 1e3,
            b / a
        );
    }
    println!("growth = time at 2,000 / time at 200 (10 would be linear)");
    Ok(())
}

/// A release-built tool: benches never time debug builds.
fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    target.join("release").join(name)
}

/// A runc bundle whose rootfs is the busybox image's unpacked layer (made
/// by one ctr-run, so both sides start from the same files), running `true`.
fn runc_bundle(fixture: &Fixture) -> Result<tempfile::TempDir, String> {
    let status = Command::new(binary("ctr-run"))
        .args(["--root"])
        .arg(fixture.root())
        .args(["--rm", "docker.io/bench/busybox:latest", "true"])
        .status()
        .map_err(|e| format!("ctr-run: {e}"))?;
    if !status.success() {
        return Err(format!("ctr-run failed: {status}"));
    }
    let layer = std::fs::read_dir(fixture.root().join("layers"))
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .next()
        .ok_or("no unpacked layer")?;
    let bundle = tempfile::tempdir().map_err(|e| e.to_string())?;
    let copy = Command::new("cp")
        .arg("-a")
        .arg(&layer)
        .arg(bundle.path().join("rootfs"))
        .status()
        .map_err(|e| format!("cp: {e}"))?;
    if !copy.success() {
        return Err("copying the rootfs failed".to_string());
    }
    let spec = Command::new("runc")
        .args(["spec", "--bundle"])
        .arg(bundle.path())
        .status()
        .map_err(|e| format!("runc spec: {e}"))?;
    if !spec.success() {
        return Err("runc spec failed".to_string());
    }
    let path = bundle.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["true"]);
    std::fs::write(&path, config.to_string()).map_err(|e| e.to_string())?;
    Ok(bundle)
}

/// Times both commands in one hyperfine run; returns mean seconds.
fn time_pair(comparison: &Comparison) -> Result<(f64, f64), String> {
    let export = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let mut command = Command::new("hyperfine");
    command
        .args([
            "--warmup",
            "3",
            "--min-runs",
            "20",
            "--style",
            "none",
            "--output",
            "null",
            "--export-json",
        ])
        .arg(export.path());
    if let Some(prepare) = &comparison.prepare {
        command.args(["--prepare", prepare]);
    }
    command.args([&comparison.ours, &comparison.theirs]);
    let output = command.output().map_err(|e| format!("hyperfine: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "hyperfine failed on {}: {}",
            comparison.name,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.path()).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let mean = |i: usize| report["results"][i]["mean"].as_f64().unwrap_or(f64::NAN);
    Ok((mean(0), mean(1)))
}
