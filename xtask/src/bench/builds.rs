//! The build rows of the bench: one Dockerfile built cold (every step run)
//! and again (every step a cache hit), by img-build against `buildah bud
//! --layers` and against Docker's classic builder.

use super::{Comparison, binary, compare, podman_image_ids, run_quietly};
use std::path::Path;

/// The same Dockerfile (busybox from scratch, 200 copied files, three RUN
/// steps) built by img-build and by `buildah bud --layers`: cold, with
/// every step run, and a rebuild that the cache answers entirely.
pub(super) fn builds() -> Result<(), String> {
    let ctx = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = ctx.path();
    std::fs::create_dir(dir.join("src")).map_err(|e| e.to_string())?;
    std::fs::copy("/bin/busybox", dir.join("busybox")).map_err(|e| e.to_string())?;
    for n in 0..200 {
        std::fs::write(dir.join(format!("src/f{n}.txt")), format!("file {n}\n"))
            .map_err(|e| e.to_string())?;
    }
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\n\
         COPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"mkdir\", \"-p\", \"/usr/bin\", \"/tmp\"]\n\
         RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
         ENV APP=/srv/app\n\
         WORKDIR /srv/app\n\
         COPY src/ ./src/\n\
         RUN echo built > built && ls src | wc -l > count\n\
         CMD [\"cat\", \"/srv/app/count\"]\n",
    )
    .map_err(|e| e.to_string())?;
    let store = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ours = format!(
        "{} --root {} -q -t bench/build {}",
        binary("img-build").display(),
        store.path().display(),
        dir.display()
    );
    let theirs = format!(
        "buildah bud --layers --runtime runc --cgroup-manager cgroupfs -q -t localhost/berth-bench/build {}",
        dir.display()
    );
    // buildah leaves an image per step of every timed build: they go at the
    // end, and only they (podman's storage may hold the user's images).
    let before = podman_image_ids();
    let comparisons = cold_and_cached(&ours, &theirs);
    let result = compare(
        ["img-build vs buildah bud --layers", "img-build", "buildah"],
        &comparisons,
    );
    let made: Vec<String> = podman_image_ids().difference(&before).cloned().collect();
    if !made.is_empty() {
        run_quietly(&format!("podman rmi -f {} >/dev/null 2>&1", made.join(" ")));
    }
    result?;
    println!("goals: cold ≤ 0.7x buildah; cached ≤ 100 ms and ≤ 0.2x buildah\n");
    docker_builds(&ours, dir)
}

/// The same builds against Docker's classic builder (`DOCKER_BUILDKIT=0`,
/// the anchor) on a private engine; both sides with `--network
/// none`, since that engine has no bridge (the RUN steps need none).
fn docker_builds(ours: &str, context: &Path) -> Result<(), String> {
    // No registry is involved (FROM scratch): the engine is told to trust
    // a port nothing listens on.
    let engine = match berth_harness::dockerd::Dockerd::start("127.0.0.1:1") {
        Ok(engine) => engine,
        Err(why) => {
            println!("img-build vs docker build: not measured: {why}\n");
            return Ok(());
        }
    };
    let ours = ours.replacen(" -q ", " -q --network none ", 1);
    let theirs = format!(
        "env DOCKER_BUILDKIT=0 {} build -q --network none -t berth-bench/build {}",
        engine.shell_command(),
        context.display()
    );
    compare(
        [
            "img-build vs docker build (classic builder, 20.10)",
            "img-build",
            "docker",
        ],
        &cold_and_cached(&ours, &theirs),
    )?;
    println!("goals: cold ≤ 0.1x docker build; cached ≤ 5 ms\n");
    Ok(())
}

/// The pair every build comparison makes: `--no-cache`, then the cache.
fn cold_and_cached(ours: &str, theirs: &str) -> Vec<Comparison> {
    vec![
        Comparison {
            name: "cold build, every step run (--no-cache)".into(),
            ours: ours.replacen(" -q ", " -q --no-cache ", 1),
            theirs: theirs.replacen(" -q ", " -q --no-cache ", 1),
            prepare: None,
        },
        Comparison {
            name: "rebuild answered by the cache".into(),
            ours: ours.to_string(),
            theirs: theirs.to_string(),
            prepare: None,
        },
    ]
}
