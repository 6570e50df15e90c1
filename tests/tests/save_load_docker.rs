//! img-save and img-load against Docker's own engine (Debian's docker.io,
//! a private dockerd as the parity suite starts it): what img-save writes,
//! `docker load` loads under the same image ID and runs; what `docker save`
//! writes, img-load loads under the same ID and runs. Loudly skipped only
//! where dockerd cannot start.

use berth_harness::dockerd::Dockerd;
use berth_harness::{Fixture, Registry, Run, tool};
use std::io::Write;
use std::process::Stdio;

#[test]
fn images_travel_both_ways_between_berth_and_docker_by_tar() {
    let registry = Registry::start();
    let engine = match Dockerd::start(&registry.host) {
        Ok(engine) => engine,
        Err(why) => {
            eprintln!(
                "\n{bar}\nDOCKER SAVE/LOAD CHECK SKIPPED: Docker's engine cannot start here: {why}\n{bar}\n",
                bar = "!".repeat(72)
            );
            return;
        }
    };
    let fixture = Fixture::new();
    fixture.busybox("interop/app:v1", "save to docker");
    let id = Run::of(
        tool("img-inspect", fixture.root()).args(["-f", "{{.Id}}", "interop/app:v1"]),
        None,
    )
    .success()
    .stdout
    .trim()
    .to_string();

    // berth → docker: img-save | docker load.
    let saved = tool("img-save", fixture.root())
        .arg("interop/app:v1")
        .output()
        .unwrap();
    assert!(saved.status.success(), "{saved:?}");
    let mut load = engine
        .docker()
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    load.stdin.take().unwrap().write_all(&saved.stdout).unwrap();
    let loaded = load.wait_with_output().unwrap();
    assert!(loaded.status.success(), "docker load: {loaded:?}");
    let said = String::from_utf8_lossy(&loaded.stdout);
    assert!(said.contains("Loaded image: interop/app:v1"), "{said}");
    let docker_id = engine.run(&["image", "inspect", "-f", "{{.Id}}", "interop/app:v1"]);
    assert_eq!(String::from_utf8_lossy(&docker_id.stdout).trim(), id);
    let ran = engine.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "interop/app:v1",
        "cat",
        "/etc/fixture",
    ]);
    assert!(
        ran.status.success(),
        "docker run of the loaded image: {ran:?}"
    );

    // docker → berth: docker save | img-load into an empty store.
    let exported = engine.run(&["save", "interop/app:v1"]);
    assert!(
        exported.status.success(),
        "docker save: {:?}",
        exported.status
    );
    let empty = Fixture::new();
    let back = Run::of_bytes(
        tool("img-load", empty.root()).arg("-q"),
        Some(&exported.stdout),
    )
    .success();
    assert!(
        back.stdout.starts_with("Loaded image: ") && back.stdout.contains("interop/app:v1"),
        "{back:?}"
    );
    let reloaded = Run::of(
        tool("img-inspect", empty.root()).args(["-f", "{{.Id}}", "interop/app:v1"]),
        None,
    )
    .success();
    assert_eq!(reloaded.stdout.trim(), id);
    let ran = Run::of(
        tool("ctr-run", empty.root()).args([
            "--rm",
            "--network",
            "none",
            "interop/app:v1",
            "cat",
            "/etc/fixture",
        ]),
        None,
    )
    .success();
    assert_eq!(
        ran.stdout,
        String::from_utf8_lossy(
            &engine
                .run(&[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "interop/app:v1",
                    "cat",
                    "/etc/fixture"
                ])
                .stdout
        )
    );
}
