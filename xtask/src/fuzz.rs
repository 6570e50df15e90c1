//! `cargo xtask fuzz [TARGET...] [--seconds N]`: runs the cargo-fuzz targets
//! in `fuzz/` (nightly, libFuzzer), each for N seconds (60 by default), and
//! prints per target its run time, executions and crashes. Installs
//! cargo-fuzz when missing. Not part of `cargo xtask ci`.
//!
//! Built without a sanitizer (`-s none`): berth is safe Rust, where
//! AddressSanitizer finds little but halves the executions per second; the
//! targets look for panics, hangs and (the layer target) writes outside the
//! unpack directory. The same flags build and run, so nothing is rebuilt.

use crate::{step, workspace_root};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The targets in `fuzz/Cargo.toml`, in the order they run.
pub const TARGETS: &[&str] = &["reference", "dockerfile", "template", "layer", "manifest"];

const DEFAULT_SECONDS: u64 = 60;

struct Outcome {
    target: String,
    elapsed: Duration,
    executions: Option<u64>,
    crashes: Vec<String>,
}

pub fn run() -> Result<(), String> {
    let (targets, seconds) = arguments(std::env::args().skip(2))?;
    install_cargo_fuzz()?;
    let root = workspace_root();
    let fuzz_dir = root.join("fuzz");
    let target_dir = fuzz_dir.join("target");
    let target_dir = target_dir
        .to_str()
        .ok_or("the workspace path is not UTF-8")?;
    // One build for all targets first, so a target's time is fuzzing only.
    step_in(
        &[
            "+nightly",
            "fuzz",
            "build",
            "--fuzz-dir",
            "fuzz",
            "-s",
            "none",
        ],
        target_dir,
    )?;
    let mut outcomes = Vec::new();
    for target in &targets {
        outcomes.push(fuzz_one(target, seconds, &fuzz_dir, target_dir)?);
    }
    println!();
    println!(
        "{:<12} {:>9} {:>14} {:>8}",
        "TARGET", "TIME", "EXECUTIONS", "CRASHES"
    );
    for o in &outcomes {
        let executions = o.executions.map_or("?".to_string(), |n| n.to_string());
        println!(
            "{:<12} {:>8.0}s {:>14} {:>8}",
            o.target,
            o.elapsed.as_secs_f64(),
            executions,
            o.crashes.len()
        );
        for crash in &o.crashes {
            println!(
                "    {crash}  (minimise: cargo +nightly fuzz tmin {} {crash})",
                o.target
            );
        }
    }
    let crashes: usize = outcomes.iter().map(|o| o.crashes.len()).sum();
    if crashes == 0 {
        Ok(())
    } else {
        Err(format!("{crashes} crash(es) found"))
    }
}

fn arguments(args: impl Iterator<Item = String>) -> Result<(Vec<String>, u64), String> {
    let mut targets = Vec::new();
    let mut seconds = DEFAULT_SECONDS;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let value = if arg == "--seconds" {
            Some(args.next().ok_or("--seconds needs a number")?)
        } else {
            arg.strip_prefix("--seconds=").map(str::to_string)
        };
        if let Some(value) = value {
            seconds = value
                .parse()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("--seconds {value:?}: expected a number above 0"))?;
        } else if TARGETS.contains(&arg.as_str()) {
            targets.push(arg);
        } else {
            return Err(format!(
                "no fuzz target {arg:?}; targets: {}",
                TARGETS.join(", ")
            ));
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    Ok((targets, seconds))
}

fn install_cargo_fuzz() -> Result<(), String> {
    let present = Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    step("cargo", &["install", "cargo-fuzz", "--locked"])
}

/// `cargo <args>` in the workspace root with the fuzz crate's target dir,
/// without the package variables `cargo run` gave xtask: build scripts such
/// as ring's rerun when they change, so a manual `cargo fuzz` and this task
/// would rebuild half the dependencies each time they alternate.
fn fuzz_cargo(args: &[&str], target_dir: &str) -> Command {
    let mut command = Command::new("cargo");
    command
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(workspace_root());
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
            ]
            .contains(&&*name)
        {
            command.env_remove(&*name);
        }
    }
    command
}

/// `cargo <args>` in the workspace root with the fuzz crate's target dir.
fn step_in(args: &[&str], target_dir: &str) -> Result<(), String> {
    eprintln!("$ CARGO_TARGET_DIR={target_dir} cargo {}", args.join(" "));
    let status = fuzz_cargo(args, target_dir)
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed: {status}", args.join(" ")))
    }
}

/// Runs one target for `seconds`, echoing libFuzzer's output and reading
/// its final stats and the crash files it wrote.
fn fuzz_one(
    target: &str,
    seconds: u64,
    fuzz_dir: &Path,
    target_dir: &str,
) -> Result<Outcome, String> {
    let max_time = format!("-max_total_time={seconds}");
    let args = [
        "+nightly",
        "fuzz",
        "run",
        "--fuzz-dir",
        "fuzz",
        "-s",
        "none",
        target,
        "--",
        &max_time,
        "-print_final_stats=1",
        "-timeout=30",
    ];
    eprintln!("$ CARGO_TARGET_DIR={target_dir} cargo {}", args.join(" "));
    let artifacts = fuzz_dir.join("artifacts").join(target);
    let before = artifact_names(&artifacts);
    let started = Instant::now();
    let mut child = fuzz_cargo(&args, target_dir)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cargo fuzz run {target}: {e}"))?;
    let mut executions = None;
    let stderr = child.stderr.take().expect("stderr is piped");
    for line in BufReader::new(stderr).lines() {
        let line = line.map_err(|e| format!("reading cargo fuzz's output: {e}"))?;
        eprintln!("{line}");
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            executions = n.trim().parse().ok();
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("cargo fuzz run {target}: {e}"))?;
    let elapsed = started.elapsed();
    let crashes: Vec<String> = artifact_names(&artifacts)
        .into_iter()
        .filter(|name| !before.contains(name))
        .map(|name| format!("fuzz/artifacts/{target}/{name}"))
        .collect();
    if !status.success() && crashes.is_empty() {
        return Err(format!(
            "cargo fuzz run {target} failed ({status}) without writing a crash file"
        ));
    }
    Ok(Outcome {
        target: target.to_string(),
        elapsed,
        executions,
        crashes,
    })
}

/// The crash, timeout, leak and out-of-memory inputs libFuzzer has written.
fn artifact_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            ["crash-", "timeout-", "leak-", "oom-", "slow-unit-"]
                .iter()
                .any(|p| name.starts_with(p))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<(Vec<String>, u64), String> {
        arguments(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn every_target_runs_for_a_minute_by_default() {
        let (targets, seconds) = parse(&[]).unwrap();
        assert_eq!(targets, TARGETS);
        assert_eq!(seconds, 60);
    }

    #[test]
    fn targets_and_seconds_are_chosen() {
        let (targets, seconds) = parse(&["layer", "--seconds", "5", "reference"]).unwrap();
        assert_eq!(targets, ["layer", "reference"]);
        assert_eq!(seconds, 5);
        assert_eq!(parse(&["--seconds=7"]).unwrap().1, 7);
    }

    #[test]
    fn unknown_targets_and_bad_seconds_are_refused() {
        assert!(parse(&["nope"]).unwrap_err().contains("reference"));
        assert!(parse(&["--seconds", "0"]).is_err());
        assert!(parse(&["--seconds"]).is_err());
    }
}
