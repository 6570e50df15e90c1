//! img-build end to end: Dockerfiles built on busybox fixtures, each image
//! checked by running it with ctr-run and by reading its config.

use berth_harness::{Fixture, Run, tool};
use serde_json::{Value, json};
use std::path::Path;

const BASE: &str = "test/busybox:latest";

fn fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture.busybox(BASE, "build");
    fixture
}

/// A context directory holding `files` (path, contents).
fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, contents) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    dir
}

fn img_build(fixture: &Fixture, args: &[&str], stdin: Option<&str>) -> Run {
    let mut command = tool("img-build", fixture.root());
    command.env_remove("SOURCE_DATE_EPOCH");
    Run::of(command.args(args), stdin)
}

/// Builds `ctx` (its Dockerfile included) tagged `tag`; returns the ID.
fn build(fixture: &Fixture, ctx: &Path, tag: &str) -> (String, Run) {
    let run = img_build(fixture, &["-t", tag, ctx.to_str().unwrap()], None).success();
    let id = run.stdout.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{run:#?}");
    (id, run)
}

fn ctr_run(fixture: &Fixture, args: &[&str]) -> Run {
    Run::of(tool("ctr-run", fixture.root()).arg("--rm").args(args), None)
}

/// The image config JSON of `target`.
fn config(fixture: &Fixture, target: &str) -> Value {
    let image = fixture.store.resolve_image(target).unwrap();
    serde_json::from_slice(&fixture.store.read_blob(&image.id()).unwrap()).unwrap()
}

/// The entry names of layer `n` (0 is the base's) of image `target`.
fn layer_entries(fixture: &Fixture, target: &str, n: usize) -> Vec<String> {
    let image = fixture.store.resolve_image(target).unwrap();
    let layer = &image.manifest.layers()[n];
    let digest: berth::Digest = layer.digest().to_string().parse().unwrap();
    let blob = fixture.store.read_blob(&digest).unwrap();
    let mut plain = Vec::new();
    std::io::Read::read_to_end(
        &mut berth::compression::decompressed(&blob[..]).unwrap(),
        &mut plain,
    )
    .unwrap();
    tar::Archive::new(&plain[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn index(fixture: &Fixture) -> Value {
    serde_json::from_slice(&std::fs::read(fixture.store.images_dir().join("index.json")).unwrap())
        .unwrap()
}

fn blobs(fixture: &Fixture) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture.store.blobs_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn config_instructions_set_the_config_and_dockers_history() {
    let fixture = fixture();
    let ctx = context(&[(
        "Dockerfile",
        r#"FROM test/busybox
MAINTAINER someone <me@example.com>
ENV GREETING=hello NAME="big world"
ENV MESSAGE="$GREETING ${NAME}"
LABEL org.example.name="demo app" version=1
WORKDIR /srv
WORKDIR app
USER nobody
EXPOSE 8080 53/udp 9000-9001
VOLUME ["/data", "/cache"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --retries=3 CMD wget -q localhost || exit 1
ONBUILD RUN echo triggered
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["sh", "-c"]
CMD ["echo $MESSAGE; pwd; id -u"]
"#,
    )]);
    let (id, run) = build(&fixture, ctx.path(), "demo:1");
    assert!(
        run.stderr.contains("Step 1/16 : FROM test/busybox"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("Step 16/16 : CMD [\"echo $MESSAGE; pwd; id -u\"]")
    );
    assert!(
        run.stderr
            .contains(&format!("Successfully built {}", &id[7..19]))
    );
    assert!(run.stderr.contains("Successfully tagged demo:1"));
    let c = config(&fixture, "demo:1");
    let cc = &c["config"];
    assert_eq!(c["author"], "someone <me@example.com>");
    assert_eq!(
        cc["Env"],
        json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "GREETING=hello",
            "NAME=big world",
            "MESSAGE=hello big world"
        ])
    );
    assert_eq!(cc["Labels"]["org.example.name"], "demo app");
    assert_eq!(cc["Labels"]["version"], "1");
    assert_eq!(
        cc["Labels"]["berth.fixture"], "build",
        "base labels are inherited"
    );
    assert_eq!(cc["WorkingDir"], "/srv/app");
    assert_eq!(cc["User"], "nobody");
    assert_eq!(
        cc["ExposedPorts"],
        json!({"8080/tcp": {}, "53/udp": {}, "9000/tcp": {}, "9001/tcp": {}})
    );
    assert_eq!(cc["Volumes"], json!({"/data": {}, "/cache": {}}));
    assert_eq!(cc["StopSignal"], "SIGTERM");
    assert_eq!(
        cc["Healthcheck"],
        json!({"Test": ["CMD-SHELL", "wget -q localhost || exit 1"], "Interval": 30_000_000_000u64, "Retries": 3})
    );
    assert_eq!(cc["OnBuild"], json!(["RUN echo triggered"]));
    assert_eq!(cc["Shell"], json!(["/bin/sh", "-ec"]));
    assert_eq!(cc["Entrypoint"], json!(["sh", "-c"]));
    assert_eq!(cc["Cmd"], json!(["echo $MESSAGE; pwd; id -u"]));
    // History: the base's entry, then one per instruction; only the
    // WORKDIRs that made a directory carry a layer.
    let history = c["history"].as_array().unwrap();
    assert_eq!(history.len(), 1 + 15, "{history:#?}");
    assert_eq!(
        history[2]["created_by"],
        "ENV GREETING=hello NAME=big world"
    );
    assert_eq!(history[2]["empty_layer"], true);
    let layered: Vec<&str> = history
        .iter()
        .filter(|h| h["empty_layer"] != true)
        .map(|h| h["created_by"].as_str().unwrap())
        .collect();
    assert_eq!(
        layered,
        ["berth test fixture", "WORKDIR /srv", "WORKDIR /srv/app"]
    );
    assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);
    assert_eq!(c["os"], "linux");
    assert!(c["created"].as_str().unwrap().ends_with('Z'));
    // And a container sees all of it.
    let out = ctr_run(&fixture, &["demo:1"]).success();
    assert_eq!(out.stdout, "hello big world\n/srv/app\n65534\n");
}

#[test]
fn run_steps_make_layers_with_whiteouts_and_see_env_args_and_user() {
    let fixture = fixture();
    let ctx = context(&[(
        "Dockerfile",
        "FROM test/busybox
ARG WHO=builder
ENV STAGE=one
RUN mkdir -p /opt/app && echo \"$STAGE by $WHO\" > /opt/app/made && rm /etc/fixture
RUN [\"sh\", \"-c\", \"echo exec form >> /opt/app/made\"]
USER nobody
RUN id -u > /tmp/uid
RUN true
",
    )]);
    let (_, run) = build(&fixture, ctx.path(), "runs");
    let c = config(&fixture, "runs");
    let history = c["history"].as_array().unwrap();
    let created: Vec<&str> = history
        .iter()
        .map(|h| h["created_by"].as_str().unwrap())
        .collect();
    assert!(
        created.contains(
            &"RUN |1 WHO=builder /bin/sh -c mkdir -p /opt/app && echo \"$STAGE by $WHO\" > /opt/app/made && rm /etc/fixture # buildkit"
        ),
        "{created:#?}"
    );
    // `RUN true` changes nothing: an empty layer, as BuildKit records it.
    assert_eq!(history.last().unwrap()["empty_layer"], true);
    assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 4);
    // ARG values never reach the image's config.
    assert!(!c["config"]["Env"].to_string().contains("WHO"));
    assert!(
        run.stderr.contains("Step 4/8 : RUN mkdir"),
        "{}",
        run.stderr
    );
    let out = ctr_run(
        &fixture,
        &[
            "runs",
            "sh",
            "-c",
            "cat /opt/app/made /tmp/uid; test -e /etc/fixture || echo gone",
        ],
    )
    .success();
    assert_eq!(out.stdout, "one by builder\nexec form\n65534\ngone\n");
    // The first RUN's layer: its files and the whiteout, but none of the
    // mount points the step's container needed.
    let entries = layer_entries(&fixture, "runs", 1);
    assert_eq!(
        entries,
        [
            "etc/",
            "etc/.wh.fixture",
            "opt/",
            "opt/app/",
            "opt/app/made"
        ]
    );
}

#[test]
fn copy_follows_dockers_directory_rules_and_flags() {
    let fixture = fixture();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM test/busybox
COPY src /app/
COPY src/*.txt /texts/
COPY one.txt /renamed.txt
COPY one.txt two.txt /both/
COPY --chown=nobody:nogroup --chmod=640 one.txt /owned/
COPY --chown=1234 src/nested /nested
WORKDIR /work
COPY one.txt .
ADD archive.tar /unpacked/
ADD one.txt /added/
",
        ),
        ("src/a.txt", "A"),
        ("src/b.txt", "B"),
        ("src/nested/deep/c.md", "C"),
        ("one.txt", "1"),
        ("two.txt", "2"),
    ]);
    // A tar for ADD to unpack.
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(3);
    h.set_mode(0o600);
    h.set_uid(42);
    h.set_gid(43);
    h.set_mtime(1_600_000_000);
    tar.append_data(&mut h, "inside/file", &b"tar"[..]).unwrap();
    std::fs::write(ctx.path().join("archive.tar"), tar.into_inner().unwrap()).unwrap();
    build(&fixture, ctx.path(), "copies");
    let script = "ls /app; ls /texts; cat /renamed.txt /both/one.txt /both/two.txt; echo; \
        ls -ln /owned/one.txt | sed 's/ \\+/ /g' | cut -d' ' -f1,3,4; \
        ls -lnd /nested /nested/deep | sed 's/ \\+/ /g' | cut -d' ' -f3,4; \
        cat /nested/deep/c.md /work/one.txt /unpacked/inside/file; echo; \
        ls -ln /unpacked/inside/file | sed 's/ \\+/ /g' | cut -d' ' -f1,3,4; cat /added/one.txt";
    let out = ctr_run(&fixture, &["copies", "sh", "-c", script]).success();
    assert_eq!(
        out.stdout,
        "a.txt\nb.txt\nnested\na.txt\nb.txt\n112\n-rw-r----- 65534 65534\n1234 1234\n1234 1234\nC1tar\n-rw------- 42 43\n1"
    );
}

/// BuildKit's `COPY --exclude` (dockerignore-style patterns relative to
/// each source, also filtering a wildcard's matches) and `--parents` (the
/// source's directories kept below the destination, from a `/./` pivot on).
#[test]
fn copy_exclude_and_parents_follow_buildkit() {
    let fixture = fixture();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM test/busybox
COPY --exclude=*.log --exclude=**/.venv --exclude=!keep.log . /all/
COPY --exclude=*.txt hom* /home-files/
COPY --parents x/a.txt y/b.txt /tree/
COPY --parents ./x/./deep/*.md /pivot/
COPY --parents x/deep /dirs/
",
        ),
        ("app.py", "print"),
        ("debug.log", "noise"),
        ("keep.log", "kept"),
        ("a/b/.venv/bin/python", "venv"),
        ("a/b/code.py", "code"),
        ("home.txt", "t"),
        ("homer.md", "m"),
        ("x/a.txt", "xa"),
        ("y/b.txt", "yb"),
        ("x/deep/c.md", "c"),
    ]);
    build(&fixture, ctx.path(), "filtered");
    let script = "cd /all && find . -type f | sort; ls /home-files;         cd /tree && find . -type f | sort; cd /pivot && find . -type f; cd /dirs && find . -type f";
    let out = ctr_run(&fixture, &["filtered", "sh", "-c", script]).success();
    assert_eq!(
        out.stdout,
        "./Dockerfile\n./a/b/code.py\n./app.py\n./home.txt\n./homer.md\n./keep.log\n\
         ./x/a.txt\n./x/deep/c.md\n./y/b.txt\n\
         homer.md\n\
         ./x/a.txt\n./y/b.txt\n\
         ./deep/c.md\n\
         ./x/deep/c.md\n"
    );
    // The patterns are part of the step's cache key.
    let history = config(&fixture, "filtered")["history"].to_string();
    assert!(history.contains("--exclude=*.log"), "{history}");
    assert!(history.contains("--parents"), "{history}");
}

/// RUN --mount=type=bind (context or stage, read-only unless rw, writes
/// thrown away, content in the cache key) and type=secret (seen by the
/// step only: not in a layer, the history or the key).
#[test]
fn run_bind_and_secret_mounts() {
    let fixture = fixture();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM test/busybox AS first
RUN echo staged > /made
FROM test/busybox
RUN --mount=type=bind,source=src,target=/mnt/src cat /mnt/src/a.txt > /seen && \\
    (touch /mnt/src/x 2>/dev/null && echo writable || echo read-only) >> /seen
RUN --mount=type=bind,target=/ctx,rw touch /ctx/new && ls /ctx > /listing
RUN --mount=type=bind,from=first,source=/made,target=/from-stage.txt cat /from-stage.txt > /staged
RUN --mount=type=secret,id=token,required=true tr a-z A-Z < /run/secrets/token | cut -c1-3 > /secret-ok
",
        ),
        (".dockerignore", "ignored.txt\n"),
        ("ignored.txt", "hidden"),
        ("src/a.txt", "A\n"),
    ]);
    let secret = ctx.path().join("../token-for-bind-test");
    std::fs::write(&secret, "s3cret").unwrap();
    let secret_arg = format!("id=token,src={}", secret.display());
    let build_with_secret = |tag: &str| {
        img_build(
            &fixture,
            &[
                "-t",
                tag,
                "--secret",
                &secret_arg,
                ctx.path().to_str().unwrap(),
            ],
            None,
        )
        .success()
        .stdout
        .trim()
        .to_string()
    };
    let first = build_with_secret("mounts");
    let script = "cat /seen /listing /staged /secret-ok; test -e /run/secrets/token && echo leaked || echo clean";
    let out = ctr_run(&fixture, &["mounts", "sh", "-c", script]).success();
    assert_eq!(
        out.stdout,
        "A\nread-only\nDockerfile\nnew\nsrc\nstaged\nS3C\nclean\n"
    );
    assert!(
        !ctx.path().join("new").exists(),
        "an rw bind wrote to the context"
    );
    let secret_layer = layer_entries(&fixture, "mounts", 4);
    assert!(
        secret_layer.iter().all(|e| !e.contains("secrets")),
        "{secret_layer:?}"
    );
    let history = config(&fixture, "mounts")["history"].to_string();
    assert!(!history.contains("s3cret"), "{history}");
    assert!(
        history.contains("--mount=type=secret,id=token"),
        "{history}"
    );

    // Nothing changed: all cached, same ID. A changed bind source reruns.
    assert_eq!(build_with_secret("mounts"), first);
    std::fs::write(ctx.path().join("src/a.txt"), "B\n").unwrap();
    let second = build_with_secret("mounts");
    assert_ne!(second, first);
    let out = ctr_run(&fixture, &["mounts", "head", "-1", "/seen"]).success();
    assert_eq!(out.stdout, "B\n");

    // A required secret that was not given: one line naming it, no tag.
    img_build(
        &fixture,
        &["-q", "-t", "nosecret", ctx.path().to_str().unwrap()],
        None,
    )
    .failure(1)
    .one_error_line(&["secret token not found"]);
    assert!(fixture.store.resolve_image("nosecret").is_err());
    let _ = std::fs::remove_file(&secret);
}

/// Every step mounts all the layers below it: a Dockerfile of 60
/// layer-making steps builds (a path-named overlay stopped near 40).
#[test]
fn a_dockerfile_of_60_layers_builds_and_runs() {
    let fixture = fixture();
    let mut dockerfile = String::from("FROM test/busybox\n");
    for n in 0..60 {
        dockerfile.push_str(&format!("RUN echo {n} > /step-{n:02}\n"));
    }
    let id = img_build(&fixture, &["-q", "-t", "tall", "-"], Some(&dockerfile))
        .success()
        .stdout;
    assert!(id.starts_with("sha256:"));
    assert_eq!(
        config(&fixture, "tall")["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .len(),
        61
    );
    let out = ctr_run(
        &fixture,
        &["tall", "sh", "-c", "ls / | grep -c step-; cat /step-59"],
    )
    .success();
    assert_eq!(out.stdout, "60\n59\n");
}

#[test]
fn a_rebuild_runs_nothing_and_one_changed_file_reruns_only_later_steps() {
    let fixture = fixture();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM test/busybox
RUN echo FIRST-RUN
COPY stable.txt /stable.txt
RUN echo SECOND-RUN
COPY changing.txt /changing.txt
RUN echo THIRD-RUN && cat /changing.txt
",
        ),
        ("stable.txt", "stable"),
        ("changing.txt", "v1"),
    ]);
    let (first, run) = build(&fixture, ctx.path(), "cached");
    for marker in ["FIRST-RUN", "SECOND-RUN", "THIRD-RUN"] {
        assert!(run.stderr.contains(marker), "{}", run.stderr);
    }
    assert!(!run.stderr.contains("Using cache"));

    let (again, run) = build(&fixture, ctx.path(), "cached");
    assert_eq!(again, first);
    assert_eq!(
        run.stderr.matches(" ---> Using cache").count(),
        5,
        "{}",
        run.stderr
    );
    let ran = |run: &Run, marker: &str| run.stderr.lines().any(|l| l == marker);
    for marker in ["FIRST-RUN", "SECOND-RUN", "THIRD-RUN"] {
        assert!(!ran(&run, marker), "no RUN ran: {}", run.stderr);
    }

    // The same steps from another Dockerfile name and context share the cache.
    let twin = context(&[
        (
            "Dockerfile.alt",
            &std::fs::read_to_string(ctx.path().join("Dockerfile")).unwrap(),
        ),
        ("stable.txt", "stable"),
        ("changing.txt", "v1"),
    ]);
    let alt = twin.path().join("Dockerfile.alt");
    let run = img_build(
        &fixture,
        &["-f", alt.to_str().unwrap(), twin.path().to_str().unwrap()],
        None,
    )
    .success();
    assert_eq!(run.stdout.trim(), first);

    std::fs::write(ctx.path().join("changing.txt"), "v2").unwrap();
    let (changed, run) = build(&fixture, ctx.path(), "cached");
    assert_ne!(changed, first);
    assert_eq!(
        run.stderr.matches(" ---> Using cache").count(),
        3,
        "{}",
        run.stderr
    );
    assert!(!ran(&run, "FIRST-RUN") && !ran(&run, "SECOND-RUN"));
    assert!(run.stderr.contains("THIRD-RUN\nv2"), "{}", run.stderr);

    let run = img_build(
        &fixture,
        &["--no-cache", "-t", "cached", ctx.path().to_str().unwrap()],
        None,
    )
    .success();
    assert!(!run.stderr.contains("Using cache"));
    for marker in ["FIRST-RUN", "SECOND-RUN", "THIRD-RUN"] {
        assert!(run.stderr.contains(marker), "{}", run.stderr);
    }
    let out = ctr_run(&fixture, &["cached", "cat", "/changing.txt"]).success();
    assert_eq!(out.stdout, "v2");
}

/// Waits until every file under `dir` last changed over a second ago: the
/// age at which img-build starts remembering what a file hashed to.
fn wait_until_settled(dir: &Path) {
    use std::os::unix::fs::MetadataExt;
    let newest = || {
        walk_files(dir)
            .iter()
            .map(|p| {
                let m = std::fs::metadata(p).unwrap();
                (m.ctime(), m.ctime_nsec()).max((m.mtime(), m.mtime_nsec()))
            })
            .max()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let (secs, nanos) = newest();
        let age = now.as_nanos() as i128 - (secs as i128 * 1_000_000_000 + nanos as i128);
        if age > 1_100_000_000 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "files never settled");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk_files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_rebuild_trusts_remembered_digests_only_for_files_left_as_they_were() {
    let fixture = fixture();
    let ctx = context(&[
        ("Dockerfile", "FROM test/busybox\nCOPY a.txt b.txt /\n"),
        ("a.txt", "one"),
        ("b.txt", "bee"),
    ]);
    let memory = fixture.root().join("cache/context-files");
    let remembered = || std::fs::read_dir(&memory).map(|d| d.count()).unwrap_or(0);

    // Files written a moment ago are hashed but not remembered (a write in
    // the same clock tick would not show in their times; the unit tests
    // hold that rule): once they settle, a build remembers them.
    let (fresh, _) = build(&fixture, ctx.path(), "memo");
    wait_until_settled(ctx.path());
    let (first, _) = build(&fixture, ctx.path(), "memo");
    assert_eq!(first, fresh);
    assert_eq!(remembered(), 1, "one memory per context directory");

    // Same size, and the old mtime put back by hand: the ctime, which no
    // one can set, still shows the change, so the step is not a cache hit.
    let a = ctx.path().join("a.txt");
    let mtime = std::fs::metadata(&a).unwrap().modified().unwrap();
    std::fs::write(&a, "two").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&a)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let (changed, run) = build(&fixture, ctx.path(), "memo");
    assert_ne!(changed, first);
    assert!(!run.stderr.contains("Using cache"), "{}", run.stderr);
    let out = ctr_run(&fixture, &["memo", "cat", "/a.txt", "/b.txt"]).success();
    assert_eq!(out.stdout, "twobee");

    // A memory file of garbage is no memory: the build reads every file.
    for entry in std::fs::read_dir(&memory).unwrap() {
        std::fs::write(entry.unwrap().path(), "{garbage").unwrap();
    }
    let (again, _) = build(&fixture, ctx.path(), "memo");
    assert_eq!(again, changed);
}

#[test]
fn source_date_epoch_gives_identical_ids_across_stores() {
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM test/busybox\nCOPY f /f\nRUN echo made > /made && mkdir /d\nENV X=1\n",
        ),
        ("f", "content"),
    ]);
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let fixture = fixture();
            let mut command = tool("img-build", fixture.root());
            command.env("SOURCE_DATE_EPOCH", "1700000000");
            let run = Run::of(command.args(["-q", ctx.path().to_str().unwrap()]), None).success();
            assert_eq!(run.stderr, "");
            let id = run.stdout.trim().to_string();
            let c = config(&fixture, &id);
            assert_eq!(c["created"], "2023-11-14T22:13:20Z");
            id
        })
        .collect();
    assert_eq!(ids[0], ids[1]);
}

#[test]
fn multi_stage_copy_from_target_and_build_args() {
    let fixture = fixture();
    let ctx = context(&[(
        "Dockerfile",
        "ARG BASE=test/busybox
ARG VERSION=0.1
FROM ${BASE} AS builder
ARG VERSION
RUN mkdir /out && echo \"built $VERSION\" > /out/artifact
FROM builder AS tester
RUN cat /out/artifact > /out/tested
FROM scratch
COPY --from=builder /out/artifact /artifact
COPY --from=0 /bin/busybox /bin/busybox
CMD [\"/bin/busybox\", \"cat\", \"/artifact\"]
",
    )]);
    let c = ctx.path().to_str().unwrap();
    let run = img_build(
        &fixture,
        &["-t", "final", "--build-arg", "VERSION=2.0", c],
        None,
    )
    .success();
    assert!(
        run.stderr.contains("Step 1/9 : FROM ${BASE} AS builder"),
        "{}",
        run.stderr
    );
    let out = ctr_run(&fixture, &["final"]).success();
    assert_eq!(out.stdout, "built 2.0\n");
    let cfg = config(&fixture, "final");
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    // --target stops at a stage, and its default ARG applies.
    let run = img_build(&fixture, &["-t", "tester", "--target", "tester", c], None).success();
    assert!(run.stderr.contains("Step 3/5"), "{}", run.stderr);
    let out = ctr_run(&fixture, &["tester", "cat", "/out/tested"]).success();
    assert_eq!(out.stdout, "built 0.1\n");
    img_build(&fixture, &["--target", "nope", c], None)
        .failure(1)
        .one_error_line(&["nope"]);
    // An unused build arg is a warning, not a failure.
    let run = img_build(
        &fixture,
        &["--build-arg", "UNUSED=1", "--target", "builder", c],
        None,
    )
    .success();
    assert!(
        run.stderr
            .contains("[Warning] One or more build-args [UNUSED] were not consumed")
    );
}

#[test]
fn dockerignore_excludes_with_exceptions() {
    let fixture = fixture();
    let ctx = context(&[
        ("Dockerfile", "FROM test/busybox\nCOPY . /ctx/\n"),
        (
            ".dockerignore",
            "# build junk\n*.log\n**/tmp\nsecrets\ndocs/*.md\n!docs/README.md\nDockerfile\n",
        ),
        ("app.log", "x"),
        ("keep.txt", "k"),
        ("src/tmp/x", "x"),
        ("src/main.c", "m"),
        ("secrets/key", "s"),
        ("docs/README.md", "r"),
        ("docs/other.md", "o"),
    ]);
    build(&fixture, ctx.path(), "ignored");
    let out = ctr_run(
        &fixture,
        &["ignored", "sh", "-c", "cd /ctx && find . | sort"],
    );
    // find is not in the fixture: list with ls -R instead.
    let out = if out.code == Some(0) {
        out
    } else {
        ctr_run(&fixture, &["ignored", "ls", "-aR", "/ctx"]).success()
    };
    for kept in [".dockerignore", "keep.txt", "main.c", "README.md"] {
        assert!(out.stdout.contains(kept), "{kept}: {}", out.stdout);
    }
    for gone in ["app.log", "tmp", "secrets", "other.md", "Dockerfile\n"] {
        assert!(!out.stdout.contains(gone), "{gone}: {}", out.stdout);
    }
}

#[test]
fn heredocs_for_run_and_copy() {
    let fixture = fixture();
    let dockerfile = "FROM test/busybox
ENV WHO=heredoc
RUN <<EOF
echo first > /one
echo \"second $WHO\" >> /one
EOF
COPY <<CONF /etc/app.conf
name=$WHO
CONF
COPY <<'RAW' <<OTHER /files/
kept $WHO
RAW
other
OTHER
RUN cat <<EOF > /two
from cat $WHO
EOF
";
    let run = img_build(&fixture, &["-t", "docs", "-"], Some(dockerfile)).success();
    let id = run.stdout.trim();
    assert!(id.starts_with("sha256:"), "{run:#?}");
    let out = ctr_run(
        &fixture,
        &[
            "docs",
            "cat",
            "/one",
            "/etc/app.conf",
            "/files/RAW",
            "/files/OTHER",
            "/two",
        ],
    )
    .success();
    assert_eq!(
        out.stdout,
        "first\nsecond heredoc\nname=heredoc\nkept $WHO\nother\nfrom cat heredoc\n"
    );
}

#[test]
fn a_failing_run_names_the_step_command_and_code_and_tags_nothing() {
    let fixture = fixture();
    let before = index(&fixture);
    let dockerfile =
        "FROM test/busybox\nRUN echo fine\nRUN echo about to fail && exit 3\nRUN echo never\n";
    let run = img_build(&fixture, &["-t", "broken", "-"], Some(dockerfile)).failure(1);
    assert!(
        run.stderr
            .contains("Step 3/4 : RUN echo about to fail && exit 3"),
        "{run:#?}"
    );
    assert!(run.stderr.contains("about to fail\n"));
    assert!(!run.stderr.contains("never\n"));
    let last = run.stderr.lines().last().unwrap();
    assert_eq!(
        last,
        "img-build: Dockerfile:3:1: The command '/bin/sh -c echo about to fail && exit 3' returned a non-zero code: 3"
    );
    assert_eq!(index(&fixture), before);
    // No container is left behind.
    assert!(
        std::fs::read_dir(fixture.root().join("containers"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn ctrl_c_during_a_run_cancels_the_step_and_leaves_nothing_behind() {
    use std::io::Read;
    let fixture = fixture();
    let before = index(&fixture);
    let mut child = tool("img-build", fixture.root())
        .args(["-t", "cancelled", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"FROM test/busybox\nRUN echo step-$((1+1)) runs; sleep 600\n")
            .unwrap();
    }
    // Wait until the step's command runs (its output, not the step's
    // header, says step-2), then interrupt as Ctrl-C would.
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("step-2 runs") {
        let n = stderr.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "img-build ended early: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    assert_eq!(index(&fixture), before, "nothing is tagged");
    assert!(
        fixture.container_ids().is_empty(),
        "the step's container is gone"
    );
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let root = fixture.root().display().to_string();
    assert!(
        !mounts.contains(&root),
        "a mount under the store was left: {mounts}"
    );
}

#[test]
fn bad_input_is_one_line_naming_file_and_line_and_changes_nothing() {
    let fixture = fixture();
    let ctx = context(&[("present.txt", "p")]);
    let before_index = index(&fixture);
    let before_blobs = blobs(&fixture);
    let cases: &[(&str, &[&str])] = &[
        (
            "FROM test/busybox\nRUN echo ok\nCOPY --bogus=1 a b\n",
            &["Dockerfile:3:1", "unknown flag: bogus"],
        ),
        (
            "FROM test/busybox\nFROB something\n",
            &["Dockerfile:2:1", "unknown instruction: FROB"],
        ),
        (
            "FROM test/busybox\nRUN echo ok\nCOPY missing.txt /x\n",
            &["Dockerfile:3:1", "missing.txt"],
        ),
        (
            "FROM test/busybox\nRUN echo ok\nCOPY ../outside /x\n",
            &["Dockerfile:3:1", "outside the build context"],
        ),
        (
            "FROM test/busybox\nENV A=\"unterminated\n",
            &["Dockerfile:2:", "unexpected end of statement"],
        ),
    ];
    for (dockerfile, parts) in cases {
        std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
        img_build(
            &fixture,
            &["-q", "-t", "bad", ctx.path().to_str().unwrap()],
            None,
        )
        .failure(1)
        .one_error_line(parts);
        assert_eq!(index(&fixture), before_index, "{dockerfile}");
        assert_eq!(blobs(&fixture), before_blobs, "{dockerfile}");
    }
    // A symlink out of the context is refused too.
    std::os::unix::fs::symlink("/etc", ctx.path().join("escape")).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM test/busybox\nCOPY escape/passwd /x\n",
    )
    .unwrap();
    img_build(&fixture, &["-q", ctx.path().to_str().unwrap()], None)
        .failure(1)
        .one_error_line(&["Dockerfile:2:1", "outside the build context"]);
}

#[test]
fn stdin_dockerfiles_iidfile_quiet_labels_and_zstd() {
    let fixture = fixture();
    let ctx = context(&[("f.txt", "from context")]);
    let iid = ctx.path().join("iid");
    let c = ctx.path().to_str().unwrap();
    let run = img_build(
        &fixture,
        &[
            "-q",
            "-f",
            "-",
            "--iidfile",
            iid.to_str().unwrap(),
            "--label",
            "a=b",
            "--compress",
            "zstd",
            "-t",
            "one",
            "-t",
            "two:x",
            c,
        ],
        Some("FROM test/busybox\nCOPY f.txt /\n"),
    )
    .success();
    assert_eq!(run.stderr, "");
    let id = run.stdout.trim();
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), id);
    assert_eq!(config(&fixture, "two:x")["config"]["Labels"]["a"], "b");
    assert_eq!(
        fixture.store.resolve_image("one").unwrap().id().to_string(),
        id
    );
    let manifest = fixture.store.resolve_image("one").unwrap().manifest;
    assert_eq!(
        manifest.layers().last().unwrap().media_type().to_string(),
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let out = ctr_run(&fixture, &["two:x", "cat", "/f.txt"]).success();
    assert_eq!(out.stdout, "from context");
    // With `-` there is no context to copy from.
    img_build(
        &fixture,
        &["-q", "-"],
        Some("FROM test/busybox\nCOPY f.txt /\n"),
    )
    .failure(1)
    .one_error_line(&["Dockerfile:2:1", "no build context"]);
}

#[test]
fn onbuild_triggers_run_in_the_child_build() {
    let fixture = fixture();
    img_build(
        &fixture,
        &["-q", "-t", "parent", "-"],
        Some("FROM test/busybox\nONBUILD RUN echo triggered > /trigger\n"),
    )
    .success();
    let run = img_build(
        &fixture,
        &["-t", "child", "-"],
        Some("FROM parent\nCMD [\"cat\", \"/trigger\"]\n"),
    )
    .success();
    assert!(
        run.stderr.contains("# Executing 1 build trigger"),
        "{}",
        run.stderr
    );
    assert_eq!(
        ctr_run(&fixture, &["child"]).success().stdout,
        "triggered\n"
    );
    assert!(config(&fixture, "child")["config"]["OnBuild"].is_null());
}

#[test]
fn from_scratch_and_a_missing_base_image_is_pulled() {
    use berth_harness::Registry;
    use berth_harness::fixture::Format;
    let registry = Registry::start();
    let source = fixture();
    let image = source.fixture_image();
    let pushed = source
        .push(&image, &registry.host, "base:1", Format::Oci)
        .to_string();
    let empty = Fixture::new();
    let mut command = tool("img-build", empty.root());
    command.env("DOCKER_CONFIG", "/nonexistent/berth-test-docker-config");
    let run = Run::of(
        command.args(["-t", "pulled", "-"]),
        Some(&format!("FROM {pushed}\nRUN cat /etc/fixture > /copy\n")),
    )
    .success();
    assert!(
        run.stderr.contains("Pull complete") || run.stderr.contains("Status:"),
        "{}",
        run.stderr
    );
    let out = ctr_run(&empty, &["pulled", "cat", "/copy"]).success();
    assert_eq!(out.stdout, "build");
}

trait FixtureImageOf {
    fn fixture_image(&self) -> berth_harness::fixture::FixtureImage;
}

impl FixtureImageOf for Fixture {
    /// The base image again (same content: same digests).
    fn fixture_image(&self) -> berth_harness::fixture::FixtureImage {
        self.busybox(BASE, "build")
    }
}

#[test]
fn the_built_image_runs_the_same_under_podman() {
    // podman is a CI prerequisite (xtask/src/ci.rs): no skipping.
    let fixture = fixture();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM test/busybox\nENV WHO=podman\nWORKDIR /srv\nCOPY hello.txt .\nRUN echo made >> hello.txt && rm /etc/fixture\nCMD [\"sh\", \"-c\", \"cat hello.txt; echo $WHO; pwd; id -u; test -e /etc/fixture || echo gone\"]\n",
        ),
        ("hello.txt", "hello\n"),
    ]);
    build(&fixture, ctx.path(), "interop:1");
    let ours = ctr_run(&fixture, &["interop:1"]).success().stdout;
    assert_eq!(ours, "hello\nmade\npodman\n/srv\n0\ngone\n");
    let storage = tempfile::tempdir().unwrap();
    let name = format!("localhost/berth-build-interop:{}", std::process::id());
    let store_opt = format!(
        "containers-storage:[vfs@{}/root+{}/run]{name}",
        storage.path().display(),
        storage.path().display()
    );
    berth_harness::tools::external(
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "--quiet",
            &format!(
                "oci:{}:docker.io/library/interop:1",
                fixture.store.images_dir().display()
            ),
            &store_opt,
        ],
    );
    let podman = std::process::Command::new("podman")
        .args([
            "--root",
            &format!("{}/root", storage.path().display()),
            "--runroot",
            &format!("{}/run", storage.path().display()),
            "--storage-driver",
            "vfs",
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
            "run",
            "--rm",
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            &name,
        ])
        .output()
        .unwrap();
    assert!(
        podman.status.success(),
        "podman failed: {}",
        String::from_utf8_lossy(&podman.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&podman.stdout), ours);
}

/// Serves `body` over HTTP/1.0 on a loopback port to every request, with a
/// Last-Modified date; returns the port.
fn serve(body: &'static [u8]) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    port
}

#[test]
fn add_fetches_urls_checks_their_checksum_and_keeps_them_whole() {
    let fixture = fixture();
    let body: &[u8] = b"remote content\n";
    let port = serve(body);
    let sum = berth::Digest::of(body);
    let dockerfile = format!(
        "FROM test/busybox\n\
         ADD --checksum={sum} http://127.0.0.1:{port}/files/data.txt /remote/\n\
         ADD http://127.0.0.1:{port}/files/data.txt?v=1 /renamed.txt\n"
    );
    img_build(&fixture, &["-q", "-t", "remote", "-"], Some(&dockerfile)).success();
    let out = ctr_run(
        &fixture,
        &[
            "remote",
            "sh",
            "-c",
            "cat /remote/data.txt /renamed.txt; ls -l --full-time /remote/data.txt 2>/dev/null || ls -le /remote/data.txt",
        ],
    )
    .success();
    assert!(
        out.stdout
            .starts_with("remote content\nremote content\n-rw-------"),
        "{out:#?}"
    );
    assert!(
        out.stdout.contains("1994"),
        "Last-Modified dates the file: {out:#?}"
    );
    let wrong = format!(
        "FROM test/busybox\nADD --checksum=sha256:{} http://127.0.0.1:{port}/files/data.txt /x\n",
        "0".repeat(64)
    );
    img_build(&fixture, &["-q", "-"], Some(&wrong))
        .failure(1)
        .one_error_line(&["Dockerfile:2:1", "checksum mismatch"]);
    img_build(
        &fixture,
        &["-q", "-"],
        Some(&format!(
            "FROM test/busybox\nCOPY http://127.0.0.1:{port}/x /x\n"
        )),
    )
    .failure(1)
    .one_error_line(&["Dockerfile:2:1", "source can't be a URL for COPY"]);
}

#[test]
fn proxy_args_reach_run_unrecorded_and_network_none_isolates_a_step() {
    let fixture = fixture();
    let dockerfile = "FROM test/busybox
RUN echo \"$http_proxy\" > /proxy
RUN --network=none ls /sys/class/net > /isolated
RUN ls /sys/class/net > /shared
RUN --network=host readlink /proc/self/ns/net > /hostns
";
    let run = img_build(
        &fixture,
        &[
            "--build-arg",
            "http_proxy=http://proxy.example:3128",
            "-t",
            "net",
            "-",
        ],
        Some(dockerfile),
    )
    .success();
    assert!(!run.stderr.contains("Warning"), "{}", run.stderr);
    let c = config(&fixture, "net");
    assert!(!c.to_string().contains("proxy.example"), "{c}");
    let out = ctr_run(&fixture, &["net", "cat", "/proxy", "/isolated"]).success();
    assert_eq!(out.stdout, "http://proxy.example:3128\nlo\n");
    // The default for RUN is the default bridge, as Docker's builder's.
    let shared = ctr_run(&fixture, &["net", "cat", "/shared"])
        .success()
        .stdout;
    assert_eq!(shared, "eth0\nlo\n");
    // RUN --network=host shares the host's namespace.
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let step_ns = ctr_run(&fixture, &["net", "cat", "/hostns"])
        .success()
        .stdout;
    assert_eq!(step_ns.trim(), host_ns.display().to_string());
    // --network none applies to every RUN.
    let out = img_build(
        &fixture,
        &["-q", "--network", "none", "--no-cache", "-t", "net2", "-"],
        Some(
            "FROM test/busybox\nRUN ls /sys/class/net > /nets\n\
             RUN --network=default ls /sys/class/net > /default\n",
        ),
    )
    .success();
    assert!(out.stdout.starts_with("sha256:"));
    // RUN --network=default is the build's own choice, here none.
    assert_eq!(
        ctr_run(&fixture, &["net2", "cat", "/nets", "/default"])
            .success()
            .stdout,
        "lo\nlo\n"
    );
    img_build(
        &fixture,
        &["--network", "a/b", "-"],
        Some("FROM test/busybox\n"),
    )
    .failure(2)
    .one_error_line(&["invalid --network value \"a/b\""]);
}

#[test]
fn cache_mounts_outlive_a_step_and_stay_out_of_its_layer() {
    let fixture = fixture();
    let first = "FROM test/busybox
RUN --mount=type=cache,target=/var/cache/app echo warm > /var/cache/app/state && echo done > /done
";
    img_build(&fixture, &["-q", "-t", "warm", "-"], Some(first)).success();
    assert_eq!(layer_entries(&fixture, "warm", 1), ["done"]);
    let second = "FROM test/busybox
RUN --mount=type=cache,target=/var/cache/app cat /var/cache/app/state > /seen
RUN --mount=type=tmpfs,target=/scratch echo gone > /scratch/x && ls /scratch > /listed
";
    img_build(&fixture, &["-q", "-t", "reads", "-"], Some(second)).success();
    let out = ctr_run(
        &fixture,
        &[
            "reads",
            "sh",
            "-c",
            "cat /seen /listed; test -e /var/cache/app/state || echo absent",
        ],
    )
    .success();
    assert_eq!(out.stdout, "warm\nx\nabsent\n");
    img_build(
        &fixture,
        &["-q", "-"],
        Some("FROM test/busybox\nRUN --mount=type=ssh true\n"),
    )
    .failure(1)
    .one_error_line(&["Dockerfile:2:1", "type=ssh is not supported"]);
}

#[test]
fn directives_continuations_shell_and_expansion_forms() {
    let fixture = fixture();
    let ctx = context(&[("data/x.txt", "x")]);
    let dockerfile = "# syntax=docker/dockerfile:1
# escape=`
FROM test/busybox
ENV DIR=data EMPTY=
# a comment inside is skipped
RUN echo one `
    two `
# comment between continuation lines
    three > /joined
COPY ${DIR}/x.txt /copied/${MISSING:-fallback}${DIR:+-set}${EMPTY:+-never}.txt
WORKDIR /w/${DIR}
SHELL [\"/bin/sh\", \"-c\", \"echo via-shell > /shell; eval \\\"$1\\\"\", \"sh\"]
RUN echo from-run > /run
";
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    build(&fixture, ctx.path(), "syntax");
    let out = ctr_run(
        &fixture,
        &[
            "syntax",
            "sh",
            "-c",
            "cat /joined /copied/fallback-set.txt; echo; pwd; cat /shell /run",
        ],
    )
    .success();
    assert_eq!(
        out.stdout,
        "one two three\nx\n/w/data\nvia-shell\nfrom-run\n"
    );
}

#[test]
fn a_context_tar_on_stdin_is_unpacked_plain_or_compressed_with_file_naming_the_dockerfile_in_it() {
    let fixture = fixture();
    let ctx = context(&[
        ("Dockerfile", &format!("FROM {BASE}\nCOPY hello /hello\n")),
        (
            "sub/Other.dockerfile",
            &format!("FROM {BASE}\nCOPY hello /other\n"),
        ),
        ("hello", "from the tar\n"),
    ]);
    let mut plain = tar::Builder::new(Vec::new());
    plain.append_dir_all(".", ctx.path()).unwrap();
    let plain = plain.into_inner().unwrap();
    let run = Run::of_bytes(
        tool("img-build", fixture.root()).args(["-q", "-t", "from-tar", "-"]),
        Some(&plain),
    )
    .success();
    assert!(run.stdout.starts_with("sha256:"), "{run:#?}");
    assert_eq!(
        ctr_run(&fixture, &["from-tar", "cat", "/hello"])
            .success()
            .stdout,
        "from the tar\n"
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &plain).unwrap();
    let gz = gz.finish().unwrap();
    Run::of_bytes(
        tool("img-build", fixture.root()).args([
            "-q",
            "-t",
            "from-gz",
            "-f",
            "sub/Other.dockerfile",
            "-",
        ]),
        Some(&gz),
    )
    .success();
    assert_eq!(
        ctr_run(&fixture, &["from-gz", "cat", "/other"])
            .success()
            .stdout,
        "from the tar\n"
    );
    // Neither a Dockerfile nor a tar: one clear line, nothing left behind.
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 0x80) as u8).collect();
    Run::of_bytes(tool("img-build", fixture.root()).arg("-"), Some(&garbage))
        .failure(1)
        .one_error_line(&["stdin", "tar"]);
    let leftovers: Vec<_> = std::fs::read_dir(fixture.root().join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
