//! Running the real tool binaries from the shared target directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The path of a built berth binary. Tests and xtask live in the same target
/// directory as the tools, so we walk up from our own executable.
pub fn binary(name: &str) -> PathBuf {
    let me = std::env::current_exe().expect("current executable");
    for dir in me.ancestors().skip(1) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{name} is not built next to {me:?}: run `cargo build --workspace` first");
}

/// A command for tool `name` with `--root` set to `root`.
pub fn tool(name: &str, root: &Path) -> Command {
    let mut command = Command::new(binary(name));
    command.arg("--root").arg(root);
    command
}

/// What a finished tool run produced, with assertions that print all of it
/// when they fail.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Runs `command` with stdin from `input` (or nothing) and collects it.
    pub fn of(command: &mut Command, input: Option<&str>) -> Run {
        use std::io::Write;
        command
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn tool");
        if let Some(input) = input {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        Run::from(child.wait_with_output().expect("wait for tool"))
    }

    pub fn success(self) -> Run {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        self
    }

    pub fn failure(self, code: i32) -> Run {
        assert_eq!(self.code, Some(code), "expected exit {code}: {self:#?}");
        self
    }

    /// Asserts stderr is exactly one line containing every one of `parts`.
    pub fn one_error_line(self, parts: &[&str]) -> Run {
        assert_eq!(self.stderr.lines().count(), 1, "one stderr line: {self:#?}");
        for part in parts {
            assert!(
                self.stderr.contains(part),
                "stderr lacks {part:?}: {self:#?}"
            );
        }
        self
    }
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs an external program (skopeo, umoci) and returns its stdout, panicking
/// with everything it said if it fails.
pub fn external(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} could not start: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
