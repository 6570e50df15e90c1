//! `cargo xtask bench`: our tools timed side by side with the established
//! ones (skopeo, umoci, podman, runc) by hyperfine in one run, each figure
//! printed as a ratio. Informational: a bench never fails the build.

use berth_harness::{Fixture, Registry, tools::binary};
use std::process::Command;

/// One comparison: the same job done by berth and by an established tool.
struct Comparison {
    name: &'static str,
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
    let _pushed = fixture.push(
        &image,
        &registry.host,
        "busybox:bench",
        berth_harness::fixture::Format::Oci,
    );
    let root = fixture.root().display().to_string();
    let images = fixture.store.images_dir().display().to_string();

    let bundle = runc_bundle(&fixture)?;
    let comparisons = vec![
        Comparison {
            name: "tag an image in an OCI layout (img-tag vs umoci tag)",
            ours: format!(
                "{} --root {root} docker.io/bench/busybox:latest docker.io/bench/busybox:ours",
                binary("img-tag").display()
            ),
            theirs: format!("umoci tag --image {images}:docker.io/bench/busybox:latest theirs"),
            prepare: None,
        },
        Comparison {
            name: "run `true` in a container (ctr-run --rm vs runc run)",
            ours: format!(
                "{} --root {root} --rm docker.io/bench/busybox:latest true",
                binary("ctr-run").display()
            ),
            // $$ is a fresh shell per run, so every runc container ID is new.
            theirs: format!("runc run --bundle {} bench-$$", bundle.path().display()),
            prepare: None,
        },
    ];

    println!(
        "{:<60} {:>12} {:>12} {:>8}",
        "benchmark", "berth", "other", "ratio"
    );
    for comparison in &comparisons {
        let (ours, theirs) = time_pair(comparison)?;
        println!(
            "{:<60} {:>10.1}ms {:>10.1}ms {:>7.2}x",
            comparison.name,
            ours * 1e3,
            theirs * 1e3,
            ours / theirs
        );
    }
    println!("ratio = berth time / other tool's time (below 1 means berth is faster)");
    Ok(())
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
            "--export-json",
        ])
        .arg(export.path());
    if let Some(prepare) = &comparison.prepare {
        command.args(["--prepare", prepare]);
    }
    command.args([&comparison.ours, &comparison.theirs]);
    let status = command.status().map_err(|e| format!("hyperfine: {e}"))?;
    if !status.success() {
        return Err(format!("hyperfine failed on {}", comparison.name));
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.path()).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let mean = |i: usize| report["results"][i]["mean"].as_f64().unwrap_or(f64::NAN);
    Ok((mean(0), mean(1)))
}
