//! `cargo xtask demo`: the main job end to end on this machine, offline:
//! a local registry, a busybox image pushed into it, then berth's tools.
//! It grows with the tools.

use crate::prerequisites::Task;
use berth_harness::fixture::Format;
use berth_harness::{Fixture, Registry, Run, tool};

pub fn run() -> Result<(), String> {
    // On a fresh machine: the registry, busybox-static and libseccomp
    // (to link the tools) are installed before anything is built.
    crate::build_tools(Task::Demo, false)?;
    let registry = Registry::start();
    println!(
        "# a registry on {} (Debian's docker-registry)",
        registry.host
    );
    let fixture = Fixture::new();
    let image = fixture.busybox("demo/busybox:latest", "demo");
    let pushed = fixture.push(&image, &registry.host, "busybox:latest", Format::Oci);
    println!("# pushed {pushed}, an image built from /bin/busybox");

    let store = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = store.path();
    println!("# store: {}", root.display());
    let pushed = pushed.to_string();
    let context = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM demo:v1\nRUN echo built by img-build > /built\nCMD [\"cat\", \"/built\"]\n",
    )
    .map_err(|e| e.to_string())?;
    let context = context.path().display().to_string();
    let steps: &[(&str, &[&str], Option<&str>)] = &[
        ("img-pull", &[&pushed], None),
        ("img-ls", &[], None),
        ("img-tag", &[&pushed, "demo:v1"], None),
        (
            "img-inspect",
            &[
                "--format",
                "{{.Id}} {{.Config.Cmd}} {{.Os}}/{{.Architecture}}",
                "demo:v1",
            ],
            None,
        ),
        (
            "ctr-run",
            &["--rm", "demo:v1", "cat", "/etc/os-release"],
            None,
        ),
        (
            "ctr-run",
            &["--rm", "-i", "demo:v1", "sh", "-c", "tr a-z A-Z; exit 0"],
            Some("piped through a container\n"),
        ),
        ("img-build", &["-t", "demo/app:built", &context], None),
        ("ctr-run", &["--rm", "demo/app:built"], None),
        (
            "ctr-run",
            &[
                "-d",
                "--name",
                "demo-web",
                "demo:v1",
                "sh",
                "-c",
                "echo serving; sleep 600",
            ],
            None,
        ),
        ("ctr-ps", &[], None),
        ("ctr-exec", &["demo-web", "hostname"], None),
        ("ctr-logs", &["demo-web"], None),
        (
            "ctr-inspect",
            &["--format", "{{.Name}} {{.State.Status}}", "demo-web"],
            None,
        ),
        ("ctr-stop", &["-t", "1", "demo-web"], None),
        ("ctr-ps", &["-a"], None),
        ("ctr-rm", &["demo-web"], None),
        (
            "img-ls",
            &["--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}"],
            None,
        ),
        ("img-rm", &["demo:v1", "demo/app:built"], None),
        ("img-prune", &["-a", "-f"], None),
        ("img-ls", &[], None),
    ];
    for (name, args, input) in steps {
        show(name, args, *input, root)?;
    }
    Ok(())
}

fn show(
    name: &str,
    args: &[&str],
    input: Option<&str>,
    root: &std::path::Path,
) -> Result<(), String> {
    let shown: Vec<String> = args
        .iter()
        .map(|a| {
            if a.contains([' ', '{', ';']) {
                format!("'{a}'")
            } else {
                a.to_string()
            }
        })
        .collect();
    match input {
        Some(input) => println!("$ printf {input:?} | {name} {}", shown.join(" ")),
        None => println!("$ {name} {}", shown.join(" ")),
    }
    let mut command = tool(name, root);
    command.args(args);
    let run = Run::of(&mut command, input);
    print!("{}", run.stdout);
    eprint!("{}", run.stderr);
    if run.code == Some(0) {
        Ok(())
    } else {
        Err(format!("{name} failed"))
    }
}
