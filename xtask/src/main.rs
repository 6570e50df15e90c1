//! Developer tasks, in Rust so they run wherever cargo does:
//! `cargo xtask ci` (install prerequisites, fmt, clippy, tests),
//! `cargo xtask demo` (the main job end to end, offline),
//! `cargo xtask bench` (side-by-side timings against established tools),
//! `cargo xtask fuzz` (the cargo-fuzz targets in `fuzz/`, on nightly),
//! `cargo xtask install [--prefix DIR] [--uninstall]` (the tools, completions
//! and man pages), `cargo xtask deb` (the same as a Debian package).

mod bench;
mod ci;
mod deb;
mod demo;
mod fuzz;
mod install;
mod overview_page;
mod prerequisites;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let rest: Vec<String> = std::env::args().skip(2).collect();
    let result = match task.as_str() {
        "ci" => ci::run(),
        "demo" => demo::run(),
        "bench" => bench::run(),
        "fuzz" => fuzz::run(),
        "install" => install::run(&rest),
        "deb" => deb::run(&rest),
        _ => {
            eprintln!("usage: cargo xtask <ci|demo|bench|fuzz|install|deb>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask {task}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command in the workspace root, echoing it, failing on non-zero.
pub fn step(program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("{program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed: {status}", args.join(" ")))
    }
}

pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

/// Installs what `task` needs, then builds every tool so the harness finds
/// them beside this binary: no task builds before its prerequisites are in.
pub fn build_tools(task: prerequisites::Task, release: bool) -> Result<(), String> {
    prerequisites::install(task)?;
    let mut args = vec!["build", "--workspace", "--bins"];
    if release {
        args.push("--release");
    }
    step("cargo", &args)
}
