//! `cargo xtask ci`: what `.ci/run` calls on a fresh machine. Installs what
//! the tests need, then fmt, clippy and the whole test suite.

use crate::prerequisites::{self, Task};
use crate::step;

pub fn run() -> Result<(), String> {
    // Before clippy, which compiles the tools (and links libseccomp).
    prerequisites::install(Task::Ci)?;
    step("cargo", &["fmt", "--all", "--check"])?;
    step(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    crate::build_tools(Task::Ci, false)?;
    step("cargo", &["test", "--workspace"])
}
