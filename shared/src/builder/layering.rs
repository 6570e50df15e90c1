//! The builder's layering, as a test (as go-containerregistry's depcheck):
//! each file imports only from files below it, so nothing reaches back up
//! and there is no cycle. A new file fails this until it is given its place.

use std::collections::BTreeSet;
use std::path::Path;

/// Top first. A file may import from any later line, never from its own
/// line or an earlier one.
const LAYERS: &[&[&str]] = &[
    &["mod"],
    &["stage"],
    &["step_config", "step_copy", "step_run"],
    &["from"],
    &["step"],
    &["remote"],
    &["stdin", "shared_cache", "import"],
    &["commit"],
    &["changes"],
    &["error", "options", "state"],
    &["cache", "copy", "fetch", "layer", "rootfs"],
    &["archive", "context", "file_digests"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|line| line.contains(&module))
}

/// The builder modules a file's code (not its unit tests, nor comments)
/// names through `super::` or `crate::builder::`.
fn imports(source: &str) -> BTreeSet<String> {
    let code: String = source
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or("")
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    for prefix in ["super::", "crate::builder::"] {
        for (at, _) in code.match_indices(prefix) {
            let rest = &code[at + prefix.len()..];
            let names = match rest.strip_prefix('{') {
                // `super::{a, b::C}`: the first segment of each path.
                Some(group) => group[..group.find('}').unwrap_or(group.len())]
                    .split(',')
                    .map(str::trim)
                    .collect::<Vec<_>>(),
                None => vec![rest],
            };
            for name in names {
                let end = name
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(name.len());
                if !name[..end].is_empty() {
                    found.insert(name[..end].to_string());
                }
            }
        }
    }
    found
}

#[test]
fn each_file_imports_only_from_below_it() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/builder");
    let mut files = BTreeSet::new();
    let mut wrong = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "layering" {
            continue;
        }
        let Some(own) = rank(&name) else {
            wrong.push(format!("{name}.rs has no place in LAYERS"));
            continue;
        };
        files.insert(name.clone());
        if name == "mod" {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        for import in imports(&source) {
            match rank(&import) {
                Some(theirs) if theirs > own => {}
                Some(_) => wrong.push(format!("{name}.rs imports {import}, not below it")),
                None => wrong.push(format!("{name}.rs imports {import}, unknown")),
            }
        }
    }
    for line in LAYERS {
        for name in *line {
            if !files.contains(*name) {
                wrong.push(format!("LAYERS names {name}.rs, which is gone"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn imports_are_read_from_paths_and_groups() {
    let source = "use super::copy::{self, Item};\nuse super::{a, b::C};\n\
                  // super::comment\nfn f() { crate::builder::layer::is_empty(p); }\n\
                  #[cfg(test)]\nmod tests {\n    use super::*;\n}\n";
    let found: Vec<String> = imports(source).into_iter().collect();
    assert_eq!(found, ["a", "b", "copy", "layer"]);
}
