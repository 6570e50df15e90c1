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

    let comparisons = vec![Comparison {
        name: "tag an image in an OCI layout (img-tag vs umoci tag)",
        ours: format!(
            "{} --root {root} docker.io/bench/busybox:latest docker.io/bench/busybox:ours",
            binary("img-tag").display()
        ),
        theirs: format!("umoci tag --image {images}:docker.io/bench/busybox:latest theirs"),
        prepare: None,
    }];

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
