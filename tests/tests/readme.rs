//! The README's pipelines, run by a real shell exactly as written there, so
//! the README cannot drift from what the tools do.

use berth_harness::Fixture;
use berth_harness::tools::binary;
use std::process::Command;

/// The fenced `sh` block under "Three pipelines that work today", as lines.
fn readme_pipelines() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = readme
        .split("Three pipelines that work today")
        .nth(1)
        .expect("section");
    let block = section
        .split("```sh")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    block
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn sh(fixture: &Fixture, line: &str) -> (bool, String, String) {
    let bin_dir = binary("img-ls").parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let out = Command::new("sh")
        .args(["-c", &format!("set -e; {line}")])
        .env("PATH", path)
        .env("BERTH_ROOT", fixture.root())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_readme_pipelines_do_what_they_say() {
    let fixture = Fixture::new();
    let old = fixture.busybox("web:latest", "old");
    let web = fixture.busybox("web:latest", "new");
    let pipelines = readme_pipelines();
    assert_eq!(pipelines.len(), 3, "{pipelines:?}");

    let (ok, out, err) = sh(&fixture, &pipelines[0]);
    assert!(ok, "{err}");
    assert_eq!(out, format!("Deleted: {}\n", old.config_digest));

    let (ok, out, err) = sh(&fixture, &pipelines[1]);
    assert!(ok, "{err}");
    assert!(out.starts_with(&format!("{} ", web.config_digest)), "{out}");

    let (ok, out, err) = sh(&fixture, &pipelines[2]);
    assert!(ok, "{err}");
    assert_eq!(out, "docker.io/mirror/app:latest\n");
    let mirrored = fixture.store.resolve_image("mirror/app").unwrap();
    assert_eq!(mirrored.id(), web.config_digest);
}
