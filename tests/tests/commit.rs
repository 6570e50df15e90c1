//! Containers become images and images travel as plain tarballs, end to
//! end on real containers: ctr-commit (a running container's writes and
//! deletions, `-c` changes, the history's top row), ctr-diff (Docker's
//! A/C/D lines, running and stopped), ctr-export piped into img-import (a
//! one-layer image that runs), and hostile input: bad changes, a tar that
//! climbs out with `..` or through an absolute symlink, a container that is
//! not there.

use berth_harness::{Fixture, Run, store_listing, tool, wait_for};
use serde_json::Value;
use std::io::{Read, Write};

const IMG: &str = "test/busybox:latest";

fn fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture.busybox(IMG, "commit");
    fixture
}

fn run(fixture: &Fixture, name: &str, args: &[&str]) -> Run {
    Run::of(tool(name, fixture.root()).args(args), None)
}

fn run_bytes(fixture: &Fixture, name: &str, args: &[&str], input: &[u8]) -> Run {
    Run::of_bytes(tool(name, fixture.root()).args(args), Some(input))
}

/// A detached container that sleeps, named `name`, with `script` run in it
/// by ctr-exec (so its writes happen while it runs).
fn running_with(fixture: &Fixture, name: &str, script: &str) -> String {
    let id = run(
        fixture,
        "ctr-run",
        &["-d", "--name", name, IMG, "sleep", "1000"],
    )
    .success()
    .stdout
    .trim()
    .to_string();
    run(fixture, "ctr-exec", &[name, "sh", "-c", script]).success();
    id
}

fn inspect(fixture: &Fixture, name: &str, target: &str) -> Value {
    let out = run(fixture, name, &[target]).success().stdout;
    let list: Value = serde_json::from_str(&out).unwrap();
    list[0].clone()
}

#[test]
fn diff_shows_added_changed_and_deleted_for_running_and_stopped_containers() {
    let fixture = fixture();
    running_with(
        &fixture,
        "differ",
        "echo new > /added && echo changed >> /etc/os-release && rm /etc/group",
    );
    // Docker walks the upper dir in name order.
    let expected = "A /added\nC /etc\nD /etc/group\nC /etc/os-release\n";
    let diff = run(&fixture, "ctr-diff", &["differ"]).success();
    assert_eq!(diff.stdout, expected, "{diff:#?}");
    run(&fixture, "ctr-stop", &["-t", "1", "differ"]).success();
    let diff = run(&fixture, "ctr-diff", &["differ"]).success();
    assert_eq!(diff.stdout, expected, "{diff:#?}");
}
