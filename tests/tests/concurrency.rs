//! The concurrency suite: pulls, builds, runs, tags, removals and prunes
//! on one store at once, as `make -j` runs them, repeated. No tag is lost,
//! no image a container uses is deleted, and img-fsck finds the store sound.

use berth_harness::fixture::Format;
use berth_harness::{Fixture, Registry, Run, tool, wait_for};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const ROUNDS: usize = 3;

fn spawn(root: &Path, name: &str, args: &[&str]) -> (String, Child) {
    let mut command: Command = tool(name, root);
    command
        .env("DOCKER_CONFIG", "/nonexistent/berth-test-docker-config")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    (
        format!("{name} {}", args.join(" ")),
        command.spawn().expect("spawn tool"),
    )
}

fn run(root: &Path, name: &str, args: &[&str]) -> Run {
    Run::of(tool(name, root).args(args), None)
}

/// Force-removes every container of a store when the test ends, passed or
/// not, so no `sleep` outlives it.
struct Containers<'a>(&'a Path);

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        let ids = run(self.0, "ctr-ps", &["-aq"]).stdout;
        let ids: Vec<&str> = ids.lines().collect();
        if !ids.is_empty() {
            let mut args = vec!["-f"];
            args.extend(ids);
            run(self.0, "ctr-rm", &args);
        }
    }
}

#[test]
fn mixed_parallel_writers_lose_no_tag_and_no_image_in_use() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let a = fixture.busybox("src/a:1", "concurrency-a");
    let b = fixture.busybox("src/b:1", "concurrency-b");
    let a = fixture
        .push(&a, &registry.host, "par/a:1", Format::Oci)
        .to_string();
    let b = fixture
        .push(&b, &registry.host, "par/b:1", Format::DockerV2s2)
        .to_string();
    let store = tempfile::tempdir().unwrap();
    let root = store.path();
    let _containers = Containers(root);
    run(root, "img-pull", &["-q", &a]).success();
    let context = tempfile::tempdir().unwrap();
    std::fs::write(context.path().join("file"), "copied").unwrap();
    let context_dir = context.path().to_str().unwrap();

    for round in 0..ROUNDS {
        std::fs::write(
            context.path().join("Dockerfile"),
            format!("FROM {a}\nCOPY file /file\nRUN echo round {round} > /round\n"),
        )
        .unwrap();
        let victim = format!("victim:{round}");
        run(root, "img-tag", &[&a, &victim]).success();
        let built = format!("built:{round}");
        let alias = format!("alias:{round}");
        let keeper = format!("keep-{round}");
        let jobs = vec![
            spawn(root, "img-pull", &["-q", &a]),
            spawn(root, "img-pull", &["-q", &b]),
            spawn(root, "img-build", &["-q", "-t", &built, context_dir]),
            spawn(root, "img-tag", &[&a, &alias]),
            spawn(root, "ctr-run", &["--rm", &a, "true"]),
            spawn(
                root,
                "ctr-run",
                &["-d", "--name", &keeper, &b, "sleep", "1000"],
            ),
            spawn(root, "img-rm", &[&victim]),
            spawn(root, "img-prune", &["-f"]),
            spawn(root, "ctr-ps", &["-a"]),
        ];
        for (what, child) in jobs {
            let output = child.wait_with_output().unwrap();
            // A pull of b may lose its race against ctr-run's own pull of
            // it, never fail; everything else succeeds outright.
            assert!(
                output.status.success(),
                "round {round}: {what}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let tags = run(root, "img-ls", &["--format", "{{.Repository}}:{{.Tag}}"]).success();
        for wanted in [&built, &alias, &a, &b] {
            let familiar = wanted.trim_start_matches(&format!("{}/", registry.host));
            assert!(
                tags.stdout.lines().any(|l| l.ends_with(familiar)),
                "round {round}: {wanted} lost: {tags:#?}"
            );
        }
        assert!(!tags.stdout.contains(&victim), "{tags:#?}");
        // The detached container's image survived the prune beside it.
        let status = run(
            root,
            "ctr-inspect",
            &["-f", "{{.State.Status}} {{.Image}}", &keeper],
        )
        .success()
        .stdout;
        let (state, image) = status.trim().split_once(' ').unwrap();
        assert_eq!(state, "running", "round {round}");
        run(root, "img-inspect", &[image]).success();
        let check = run(
            root,
            "ctr-run",
            &["--rm", &built, "sh", "-c", "cat /file /round"],
        )
        .success();
        assert_eq!(check.stdout, format!("copiedround {round}\n"));
        let fsck = run(root, "img-fsck", &[]);
        assert_eq!(fsck.code, Some(0), "round {round}: {fsck:#?}");
        assert_eq!(fsck.stdout, "", "round {round}");
    }
}

/// A build lets go of the writers' lock while a RUN step's process runs,
/// pinning what it still needs instead: img-prune and img-rm beside it
/// finish without waiting for the build (they once waited for all of it),
/// and the build still has every layer it started from and made.
#[test]
fn prune_and_rm_beside_a_running_build_neither_wait_nor_take_what_it_needs() {
    let fixture = Fixture::new();
    let root = fixture.root();
    fixture.busybox("base:1", "concurrency build lease");
    let context = tempfile::tempdir().unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM base:1\n\
         RUN echo one > /one\n\
         RUN --mount=type=cache,id=gate,target=/gate \
         sh -c 'touch /gate/started; until [ -e /gate/go ]; do sleep 0.05; done'\n\
         RUN cp /one /two\n",
    )
    .unwrap();
    // The step waits for a file only this test makes, in its cache mount.
    let gate = root
        .join("cache/mounts")
        .join(berth::digest::Digest::of(b"gate").hex());
    let (_, mut build) = spawn(
        root,
        "img-build",
        &["-q", "-t", "built:1", context.path().to_str().unwrap()],
    );
    assert!(
        wait_for(60, || gate.join("started").exists()),
        "the gate step never ran"
    );
    for (name, args) in [("img-rm", &["base:1"][..]), ("img-prune", &["-a", "-f"])] {
        let (what, mut child) = spawn(root, name, args);
        let finished = wait_for(30, || child.try_wait().unwrap().is_some());
        if !finished {
            std::fs::write(gate.join("go"), "").unwrap();
        }
        assert!(finished, "{what} waited for the build");
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{what}: {output:?}");
    }
    assert!(build.try_wait().unwrap().is_none(), "the build ended early");
    assert_eq!(
        run(root, "img-ls", &["-q"]).success().stdout,
        "",
        "the prune left an image"
    );
    std::fs::write(gate.join("go"), "").unwrap();
    let output = build.wait_with_output().unwrap();
    assert!(output.status.success(), "img-build: {output:?}");
    let check = run(root, "ctr-run", &["--rm", "built:1", "cat", "/one", "/two"]).success();
    assert_eq!(check.stdout, "one\none\n");
    // The pruned base's manifest and config were kept for the build only:
    // garbage now, which the next prune takes, and nothing else.
    run(root, "img-prune", &["-f"]).success();
    let fsck = run(root, "img-fsck", &[]);
    assert_eq!(
        (fsck.code, fsck.stdout.as_str()),
        (Some(0), ""),
        "{fsck:#?}"
    );
    run(root, "ctr-run", &["--rm", "built:1", "cat", "/two"]).success();
}
