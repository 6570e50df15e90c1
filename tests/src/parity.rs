//! The parity suite's machinery: a scenario written once in Docker's syntax
//! is run through `docker` against a private engine and through the berth
//! tool that stands for it, both outputs normalised for what must differ
//! (container IDs, times, the store's path), and the parts named compared.

use crate::dockerd::Dockerd;
use crate::tools::{Run, binary};
use regex::Regex;
use std::path::Path;
use std::process::Command;
use std::sync::LazyLock;

/// What of a scenario's last command is compared.
pub const OUT: u8 = 1;
pub const ERR: u8 = 2;
pub const CODE: u8 = 4;
pub const ALL: u8 = OUT | ERR | CODE;

/// One row: `setup` commands run on both sides unchecked (but each must
/// succeed), then `cmd`, whose `compare` parts must agree. A command is
/// Docker's command line without `docker`; ` <<< TEXT` feeds TEXT on
/// stdin. `$B` and `$O` are the two test images, `$R` the registry, `$D`
/// the busybox image's manifest digest, `$N` a name of the scenario's own.
pub struct Scenario {
    pub name: &'static str,
    pub setup: &'static [&'static str],
    pub cmd: &'static str,
    pub compare: u8,
}

/// A difference berth means to have: on `scenarios`, the `differs` parts
/// are not compared but must differ (so a stale entry is noticed).
pub struct Intended {
    pub scenarios: &'static [&'static str],
    pub differs: u8,
    pub reason: &'static str,
}

/// What one side produced, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// The values a scenario's placeholders stand for.
pub struct Vars {
    pub registry: String,
    pub busybox: String,
    pub other: String,
    pub digest: String,
    /// Image IDs both sides must print alike: never normalised away.
    pub keep: Vec<String>,
}

impl Vars {
    pub fn expand(&self, text: &str, name: &str) -> String {
        text.replace("$B", &self.busybox)
            .replace("$O", &self.other)
            .replace("$R", &self.registry)
            .replace("$D", &self.digest)
            .replace("$N", name)
    }
}

/// Splits a command line as a POSIX shell would (quotes, backslashes),
/// without expanding anything.
pub fn split(line: &str) -> Vec<String> {
    let (mut words, mut word, mut any) = (Vec::new(), String::new(), false);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                any = true;
                word.extend(chars.by_ref().take_while(|c| *c != '\''));
            }
            '"' => {
                any = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                any = true;
                word.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                any = true;
                word.push(c);
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// The berth tool that stands for `docker <words…>`, and how many of the
/// words named it.
pub fn tool_for(words: &[String]) -> (&'static str, usize) {
    let first = words.first().map(String::as_str).unwrap_or("");
    let second = words.get(1).map(String::as_str).unwrap_or("");
    match (first, second) {
        ("container", "prune") => ("ctr-prune", 2),
        ("container", "inspect") => ("ctr-inspect", 2),
        ("container", "ls") => ("ctr-ps", 2),
        ("image", "prune") => ("img-prune", 2),
        ("image", "inspect") => ("img-inspect", 2),
        ("image", "ls") => ("img-ls", 2),
        ("image", "rm") => ("img-rm", 2),
        ("network", "create") => ("net-create", 2),
        ("network", "ls") => ("net-ls", 2),
        ("network", "inspect") => ("net-inspect", 2),
        ("network", "rm") => ("net-rm", 2),
        ("network", "connect") => ("net-connect", 2),
        ("network", "disconnect") => ("net-disconnect", 2),
        ("port", _) => ("ctr-port", 1),
        ("volume", "create") => ("vol-create", 2),
        ("volume", "ls") => ("vol-ls", 2),
        ("volume", "inspect") => ("vol-inspect", 2),
        ("volume", "rm") => ("vol-rm", 2),
        ("volume", "prune") => ("vol-prune", 2),
        ("inspect", _) => ("ctr-inspect", 1),
        ("images", _) => ("img-ls", 1),
        ("rmi", _) => ("img-rm", 1),
        ("pull", _) => ("img-pull", 1),
        ("tag", _) => ("img-tag", 1),
        ("build", _) => ("img-build", 1),
        ("history", _) => ("img-history", 1),
        ("run", _) => ("ctr-run", 1),
        ("create", _) => ("ctr-create", 1),
        ("start", _) => ("ctr-start", 1),
        ("stop", _) => ("ctr-stop", 1),
        ("restart", _) => ("ctr-restart", 1),
        ("kill", _) => ("ctr-kill", 1),
        ("rm", _) => ("ctr-rm", 1),
        ("exec", _) => ("ctr-exec", 1),
        ("logs", _) => ("ctr-logs", 1),
        ("wait", _) => ("ctr-wait", 1),
        ("rename", _) => ("ctr-rename", 1),
        ("pause", _) => ("ctr-pause", 1),
        ("unpause", _) => ("ctr-unpause", 1),
        ("top", _) => ("ctr-top", 1),
        ("stats", _) => ("ctr-stats", 1),
        ("update", _) => ("ctr-update", 1),
        ("ps", _) => ("ctr-ps", 1),
        _ => panic!("no berth tool stands for `docker {}`", words.join(" ")),
    }
}

/// A command line split from its ` <<< ` stdin.
fn parts(line: &str) -> (&str, Option<&str>) {
    match line.split_once(" <<< ") {
        Some((command, input)) => (command, Some(input)),
        None => (line, None),
    }
}

fn execute(command: &mut Command, input: Option<&str>) -> Outcome {
    let run = Run::of(command, input);
    Outcome {
        code: run.code,
        stdout: run.stdout,
        stderr: run.stderr,
    }
}

/// Runs one command line through docker.
pub fn run_docker(engine: &Dockerd, line: &str) -> Outcome {
    let (command, input) = parts(line);
    execute(engine.docker().args(split(command)), input)
}

/// Runs one command line through the berth tool standing for it, on the
/// store at `root`.
pub fn run_berth(root: &Path, line: &str) -> Outcome {
    let (command, input) = parts(line);
    let words = split(command);
    let (tool, skip) = tool_for(&words);
    let mut command = Command::new(binary(tool));
    command.arg("--root").arg(root).args(&words[skip..]);
    execute(&mut command, input)
}

static LONG_HEX: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b[0-9a-f]{64}\b").unwrap());
static SHORT_HEX: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b[0-9a-f]{12}\b").unwrap());
static AGO: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\d+|About an?|Less than a) (second|minute|hour)s?").unwrap());
static TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)").unwrap()
});
static COLUMN_GAP: LazyLock<Regex> = LazyLock::new(|| Regex::new(r" {3,}").unwrap());
/// Who is speaking at the start of an error line: docker's client and
/// engine, or the berth tool.
static SPEAKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?m)^(docker: |(ctr|img|net|vol)-[a-z]+: )?(Error response from daemon: |Error: )?",
    )
    .unwrap()
});

/// What must differ between two correct runs made the same: container
/// IDs (image IDs in `keep` stay), times and ages (and the padding of a
/// table's columns around them), the store's path, who speaks at the start
/// of an error line, and the Docker client's usage hint after an error.
pub fn normalise(text: &str, vars: &Vars, root: &str) -> String {
    let text = if root.is_empty() {
        text.to_string()
    } else {
        text.replace(root, "<root>")
    };
    let keep = |m: &regex::Captures| {
        let hex = &m[0];
        if vars.keep.iter().any(|k| k.starts_with(hex)) {
            hex.to_string()
        } else {
            "<id>".to_string()
        }
    };
    let text = LONG_HEX.replace_all(&text, keep);
    let text = SHORT_HEX.replace_all(&text, keep);
    let text = TIME.replace_all(&text, "<time>");
    let text = AGO.replace_all(&text, "<ago>");
    let text = SPEAKER.replace_all(&text, "");
    // A table with an age column: the ages' own widths differ with timing,
    // so its padding is compared collapsed (tables without one keep theirs).
    let text = if text.contains("<ago>") && text.contains("   ") {
        COLUMN_GAP.replace_all(&text, "   ").into_owned()
    } else {
        text.into_owned()
    };
    text.replace("\nRun 'docker run --help' for more information\n", "")
        .replace("See 'docker run --help'.\n", "")
        .trim_end_matches('\n')
        .to_string()
}

/// The parts of `compare` in which `a` and `b` differ.
pub fn differing(a: &Outcome, b: &Outcome, compare: u8) -> u8 {
    let mut parts = 0;
    if compare & OUT != 0 && a.stdout != b.stdout {
        parts |= OUT;
    }
    if compare & ERR != 0 && a.stderr != b.stderr {
        parts |= ERR;
    }
    if compare & CODE != 0 && a.code != b.code {
        parts |= CODE;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            registry: "127.0.0.1:5000".into(),
            busybox: "127.0.0.1:5000/parity/busybox:latest".into(),
            other: "127.0.0.1:5000/parity/other:v1".into(),
            digest: "sha256:00".into(),
            keep: vec!["a".repeat(64)],
        }
    }

    #[test]
    fn lines_split_as_a_shell_would_without_expanding() {
        assert_eq!(
            split(r#"run --rm $B sh -c 'echo $A; exit 3' "x \"y\"" a\ b"#),
            [
                "run",
                "--rm",
                "$B",
                "sh",
                "-c",
                "echo $A; exit 3",
                "x \"y\"",
                "a b"
            ]
        );
        assert_eq!(split("a '' b"), ["a", "", "b"]);
        // Unclosed quotes end the word; nothing panics on garbage.
        assert_eq!(split("'open"), ["open"]);
        assert_eq!(split("\\"), [""]);
        assert!(split("   ").is_empty());
    }

    #[test]
    fn every_docker_verb_used_has_a_berth_tool_and_others_are_refused() {
        let words = |line: &str| split(line);
        assert_eq!(tool_for(&words("image prune -f")), ("img-prune", 2));
        assert_eq!(tool_for(&words("ps -a")), ("ctr-ps", 1));
        assert_eq!(tool_for(&words("images")), ("img-ls", 1));
        assert_eq!(tool_for(&words("network connect n c")), ("net-connect", 2));
        assert_eq!(tool_for(&words("port web 80")), ("ctr-port", 1));
        assert!(std::panic::catch_unwind(|| tool_for(&words("swarm init"))).is_err());
    }

    #[test]
    fn what_must_differ_is_normalised_and_kept_ids_are_not() {
        let v = vars();
        let kept = "a".repeat(64);
        let text = format!(
            "{}\n{kept}\n{}\nUp 3 seconds   x\n2026-12-02T10:00:00.123Z\n/tmp/store/x",
            "b".repeat(64),
            "c".repeat(12)
        );
        assert_eq!(
            normalise(&text, &v, "/tmp/store"),
            format!("<id>\n{kept}\n<id>\nUp <ago>   x\n<time>\n<root>/x")
        );
        assert_eq!(
            normalise("ctr-stop: No such container: x\n", &v, ""),
            normalise("Error response from daemon: No such container: x\n", &v, "")
        );
        assert_eq!(
            normalise(
                "docker: Error: bad.\nRun 'docker run --help' for more information\n",
                &v,
                ""
            ),
            "bad."
        );
        assert_eq!(
            v.expand("run $B $N-a $R/x@$D", "px001"),
            "run 127.0.0.1:5000/parity/busybox:latest px001-a 127.0.0.1:5000/x@sha256:00"
        );
    }

    #[test]
    fn only_the_parts_compared_can_differ() {
        let a = Outcome {
            code: Some(0),
            stdout: "a".into(),
            stderr: "x".into(),
        };
        let b = Outcome {
            code: Some(1),
            stdout: "a".into(),
            stderr: "y".into(),
        };
        assert_eq!(differing(&a, &b, ALL), ERR | CODE);
        assert_eq!(differing(&a, &b, OUT), 0);
        assert_eq!(differing(&a, &a, ALL), 0);
    }
}
