//! `cargo xtask demo`: the main job end to end on this machine, offline:
//! a local registry, a busybox image pushed into it, then berth's tools.
//! It grows with the tools.

use berth_harness::fixture::Format;
use berth_harness::{Fixture, Registry, Run, tool};

pub fn run() -> Result<(), String> {
    crate::build_tools(false)?;
    let registry = Registry::start();
    println!("# a registry on {}", registry.host);
    let fixture = Fixture::new();
    let image = fixture.busybox("demo/busybox:latest", "demo");
    let pushed = fixture.push(&image, &registry.host, "busybox:latest", Format::Oci);
    println!("# pushed {pushed} (built from /bin/busybox)");

    let store = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = store.path();
    // Until img-pull exists, skopeo fills our store; berth then works on it.
    berth_harness::tools::external(
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &format!("docker://{pushed}"),
            &format!("oci:{}/images:{pushed}", root.display()),
        ],
    );
    show(
        "img-tag",
        tool("img-tag", root).args([&pushed.to_string(), "demo:v1"]),
    )?;
    Ok(())
}

fn show(name: &str, command: &mut std::process::Command) -> Result<(), String> {
    println!("$ {name} ...");
    let run = Run::of(command, None);
    print!("{}", run.stdout);
    eprint!("{}", run.stderr);
    if run.code == Some(0) {
        Ok(())
    } else {
        Err(format!("{name} failed"))
    }
}
