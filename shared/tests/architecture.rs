//! The container side's architecture as a test (go-containerregistry pins
//! its imports the same way): `container/` and `network/` sit below the
//! runtime and the lifecycle verbs and never reach up into them, none of the
//! four takes part in an import cycle, the runtime's files and the lifecycle's
//! verbs import nothing from their `mod.rs` but the error types and form no
//! cycle among themselves, and no file of theirs grows past 800 lines. Read
//! from the sources: every `crate::…` and `super::…` path, in `use` lines or
//! inline.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The container side, lowest first.
const CONTAINER_SIDE: &[&str] = &["network", "container", "volume", "runtime", "lifecycle"];
/// What each may not import: the modules above it.
const ABOVE: &[(&str, &[&str])] = &[
    ("network", &["container", "volume", "runtime", "lifecycle"]),
    ("container", &["volume", "runtime", "lifecycle"]),
    ("volume", &["runtime", "lifecycle"]),
    ("runtime", &["lifecycle"]),
];
/// The only items a file of `runtime/` may take from `runtime/mod.rs`.
const RUNTIME_ERRORS: &[&str] = &["RunError", "FlagError"];
/// The only item a file of `lifecycle/` may take from `lifecycle/mod.rs`.
const LIFECYCLE_ERRORS: &[&str] = &["LifecycleError"];
const MOST_LINES: usize = 800;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file below `dir`, with its path relative to `src/`.
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(src()).unwrap().display().to_string();
            out.push((relative, fs::read_to_string(&path).unwrap()));
        }
    }
    out
}

/// The code without its comment lines (doc comments name modules freely).
fn code(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The first name of every path after `prefix` (`crate::`, `super::`),
/// each item of a `prefix{a, b::c}` group counted.
fn names_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices(prefix) {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue; // `self::super::x`, `foo_crate::x`: not ours
        }
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        names.insert(ident(&group[i..]));
                    }
                    _ => {}
                }
            }
        } else {
            names.insert(ident(rest));
        }
    }
    names.remove("");
    names
}

/// Top-level module → the top-level modules its files name.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let lib = code(&fs::read_to_string(src().join("lib.rs")).unwrap());
    // `crate::Store` and the like are re-exports at the root.
    let mut root_names = BTreeMap::new();
    for line in lib.lines() {
        if let Some(rest) = line.trim().strip_prefix("pub use ") {
            let module = ident(rest);
            for name in names_after(&format!("x::{}", &rest[module.len() + 2..]), "x::") {
                root_names.insert(name, module.clone());
            }
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in sources(&src()) {
        if path == "lib.rs" {
            continue;
        }
        let module = path.split(['/', '.']).next().unwrap().to_string();
        let used = graph.entry(module.clone()).or_default();
        for name in names_after(&code(&text), "crate::") {
            let target = root_names.get(&name).cloned().unwrap_or(name);
            if target != module {
                used.insert(target);
            }
        }
    }
    graph
}

/// The modules `from` reaches through `graph`.
fn reach(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_string()];
    while let Some(next) = todo.pop() {
        for used in graph.get(&next).into_iter().flatten() {
            if seen.insert(used.clone()) {
                todo.push(used.clone());
            }
        }
    }
    seen
}

#[test]
fn the_container_side_takes_part_in_no_import_cycle() {
    let graph = module_graph();
    for module in CONTAINER_SIDE {
        assert!(graph.contains_key(*module), "no module {module}");
        let back: Vec<&String> = graph[*module]
            .iter()
            .filter(|used| reach(&graph, used).contains(*module))
            .collect();
        assert!(back.is_empty(), "{module} is in a cycle through {back:?}");
    }
}

#[test]
fn lower_modules_never_import_higher_ones() {
    let graph = module_graph();
    for (module, above) in ABOVE {
        let up: Vec<&&str> = above
            .iter()
            .filter(|higher| graph[*module].contains(**higher))
            .collect();
        assert!(up.is_empty(), "{module} imports {up:?}");
    }
}

/// The files of `module/` import nothing from its `mod.rs` but `allowed`
/// (its error types), and form no cycle among themselves.
fn files_take_only_errors_from_mod_rs(module: &str, allowed: &[&str]) {
    let dir = src().join(module);
    let prefix = format!("{module}/");
    let files: BTreeMap<String, String> = sources(&dir)
        .into_iter()
        .map(|(path, text)| (ident(path.trim_start_matches(&prefix)), code(&text)))
        .collect();
    let mut graph: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (name, code) in &files {
        if name == "mod" {
            continue;
        }
        let mut used = names_after(code, "super::");
        used.extend(names_after(code, &format!("crate::{module}::")));
        for item in &used {
            assert!(
                files.contains_key(item) || allowed.contains(&item.as_str()),
                "{module}/{name}.rs takes {item} from {module}/mod.rs"
            );
        }
        used.retain(|item| files.contains_key(item) && item != name);
        graph.insert(name, used);
    }
    let graph: BTreeMap<String, BTreeSet<String>> = graph
        .into_iter()
        .map(|(name, used)| (name.to_string(), used))
        .collect();
    for name in graph.keys() {
        assert!(
            !reach(&graph, name).contains(name),
            "{module}/{name}.rs is in a cycle"
        );
    }
}

#[test]
fn the_runtime_s_files_take_only_the_error_types_from_its_mod_rs() {
    files_take_only_errors_from_mod_rs("runtime", RUNTIME_ERRORS);
}

/// One file per verb: a verb may use another's (stop uses kill), never
/// `mod.rs`'s re-exports, so the verbs form no cycle.
#[test]
fn the_lifecycle_verbs_take_only_the_error_type_from_its_mod_rs() {
    files_take_only_errors_from_mod_rs("lifecycle", LIFECYCLE_ERRORS);
}

#[test]
fn no_file_of_the_container_side_is_over_800_lines() {
    for module in CONTAINER_SIDE {
        let dir = src().join(module);
        let files = if dir.is_dir() {
            sources(&dir)
        } else {
            let path = format!("{module}.rs");
            vec![(path.clone(), fs::read_to_string(src().join(&path)).unwrap())]
        };
        for (path, text) in files {
            let lines = text.lines().count();
            assert!(lines <= MOST_LINES, "{path}: {lines} lines");
        }
    }
}

#[test]
fn paths_are_read_as_rust_writes_them() {
    let code = "use crate::{a, b::{c, d}, e};\nlet x = crate::f::g(); other_crate::h; super::i";
    let names: Vec<String> = names_after(code, "crate::").into_iter().collect();
    assert_eq!(names, ["a", "b", "e", "f"]);
    let names: Vec<String> = names_after(code, "super::").into_iter().collect();
    assert_eq!(names, ["i"]);
}
