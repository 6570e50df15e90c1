//! Running the real tool binaries from the shared target directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The path of a built berth binary. Tests and xtask live in the same target
/// directory as the tools, so we walk up from our own executable.
pub fn binary(name: &str) -> PathBuf {
    build_tools_once();
    let me = std::env::current_exe().expect("current executable");
    for dir in me.ancestors().skip(1) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{name} is not built next to {me:?}: run `cargo build --workspace` first");
}

/// `cargo test -p berth-harness` builds the harness, not the tools it runs:
/// under cargo, bring the tool binaries up to date once per test process so
/// no test ever runs a stale binary.
fn build_tools_once() {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let Some(cargo) = std::env::var_os("CARGO") else {
            return; // not under cargo (xtask builds first)
        };
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let mut build = Command::new(cargo);
        // Cargo gives a test the variables of its own crate; build scripts
        // that watch them (ring watches CARGO_MANIFEST_DIR) would otherwise
        // rebuild on every alternation between `cargo test` and this build.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            let crate_variable = key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_BIN_")
                || key.starts_with("CARGO_MANIFEST_")
                || matches!(
                    &*key,
                    "CARGO_CRATE_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "OUT_DIR"
                );
            if crate_variable {
                build.env_remove(&*key);
            }
        }
        let status = build
            .args([
                "build",
                "--quiet",
                "--workspace",
                "--bins",
                "--manifest-path",
            ])
            .arg(manifest)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the tools failed");
    });
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
        Run::of_bytes(command, input.map(str::as_bytes))
    }

    /// Runs `command` with stdin from raw `input` bytes.
    pub fn of_bytes(command: &mut Command, input: Option<&[u8]>) -> Run {
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
        // Fed from a thread while the output is read: a tool that echoes
        // more than a pipe holds would otherwise block us both.
        let feeder = input.map(|input| {
            let mut stdin = child.stdin.take().unwrap();
            let input = input.to_vec();
            std::thread::spawn(move || {
                // A tool may refuse before reading its stdin; that is its answer.
                match stdin.write_all(&input) {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                    other => other.unwrap(),
                }
            })
        });
        let output = child.wait_with_output().expect("wait for tool");
        if let Some(feeder) = feeder {
            feeder.join().expect("feeding the tool's stdin");
        }
        Run::from(output)
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

/// `skopeo copy` from a loopback registry (plain HTTP) or layout to `to`.
pub fn skopeo_copy(from: &str, to: &str) {
    external(
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            from,
            to,
        ],
    );
}
