//! img-build's contexts beyond a directory: a git repository over
//! `file://` and over git's dumb http (a python http.server on 127.0.0.1),
//! a tarball and a plain Dockerfile at an http URL, a Dockerfile on stdin.
//! Each context yields the same image ID as the same files in a directory.

use berth_harness::remote::{FileServer, git};
use berth_harness::{Fixture, Run, tool};
use std::path::Path;

const BASE: &str = "test/busybox:latest";
const DOCKERFILE: &str = "FROM test/busybox:latest\nCOPY hello /hello\nCMD [\"cat\", \"/hello\"]\n";

fn img_build(fixture: &Fixture, args: &[&str]) -> Run {
    let mut command = tool("img-build", fixture.root());
    command.env("SOURCE_DATE_EPOCH", "1700000000");
    Run::of(command.args(args), None)
}

fn images(fixture: &Fixture) -> usize {
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixture.store.images_dir().join("index.json")).unwrap(),
    )
    .unwrap();
    index["manifests"].as_array().unwrap().len()
}

/// What the store holds of a failed build: no new image, no scratch left.
fn nothing_left(fixture: &Fixture, images_before: usize) {
    assert_eq!(images(fixture), images_before);
    let leftovers: Vec<_> = std::fs::read_dir(fixture.root().join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn tar_of(dir: &Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_dir_all(".", dir).unwrap();
    builder.into_inner().unwrap()
}

#[test]
fn git_and_http_contexts_build_the_same_image_as_a_directory() {
    let fixture = Fixture::new();
    fixture.busybox(BASE, "contexts");
    let work = tempfile::tempdir().unwrap();
    let (repo, served) = (work.path().join("repo"), work.path().join("srv"));
    let app = repo.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::create_dir_all(&served).unwrap();
    std::fs::write(app.join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(app.join("hello"), "v1\n").unwrap();
    std::fs::write(repo.join("Dockerfile"), "FROM scratch\n").unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "v1"]);
    git(&repo, &["tag", "v1"]);
    // The branch moves on: only the tag has v1.
    std::fs::write(app.join("hello"), "v2\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "v2"]);
    let bare = served.join("repo.git");
    git(
        work.path(),
        &["clone", "-q", "--bare", "repo", bare.to_str().unwrap()],
    );
    git(&bare, &["update-server-info"]);

    // The same files as a directory.
    let dir = work.path().join("dir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(dir.join("hello"), "v1\n").unwrap();
    let expected = img_build(&fixture, &["-q", "-t", "from-dir", dir.to_str().unwrap()])
        .success()
        .stdout;
    assert!(expected.starts_with("sha256:"), "{expected}");

    // --no-cache: each is built afresh, not found in the cache by content.
    let file_url = format!("file://{}#v1:app", bare.display());
    let from_file = img_build(&fixture, &["-q", "--no-cache", "-t", "from-git", &file_url]);
    assert_eq!(from_file.success().stdout, expected);
    let ran = Run::of(
        tool("ctr-run", fixture.root()).args(["--rm", "from-git"]),
        None,
    );
    assert_eq!(ran.success().stdout, "v1\n");

    let server = FileServer::start(&served);
    // Dumb http: git cannot fetch shallow there, so the whole history comes.
    let http_url = server.url("repo.git#v1:app");
    let from_http = img_build(&fixture, &["-q", "--no-cache", &http_url]);
    assert_eq!(from_http.success().stdout, expected);
    // No ref: the remote's HEAD (main, at v2).
    let head = img_build(
        &fixture,
        &["-q", "-t", "head", &server.url("repo.git#:app")],
    )
    .success();
    assert_ne!(head.stdout, expected);
    let ran = Run::of(tool("ctr-run", fixture.root()).args(["--rm", "head"]), None);
    assert_eq!(ran.success().stdout, "v2\n");

    // Tarballs at a URL, compressed or not.
    let plain = tar_of(&dir);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &plain).unwrap();
    std::fs::write(served.join("ctx.tar.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(
        served.join("ctx.tar.zst"),
        zstd::encode_all(&plain[..], 3).unwrap(),
    )
    .unwrap();
    for name in ["ctx.tar.gz", "ctx.tar.zst"] {
        let built = img_build(&fixture, &["-q", "--no-cache", &server.url(name)]);
        assert_eq!(built.success().stdout, expected, "{name}");
    }
    // -f names the Dockerfile inside a remote context.
    std::fs::write(
        dir.join("Other"),
        DOCKERFILE.replace("/hello\n", "/other\n"),
    )
    .unwrap();
    std::fs::write(served.join("other.tar"), tar_of(&dir)).unwrap();
    let other = img_build(&fixture, &["-q", "-f", "Other", &server.url("other.tar")]).success();
    assert_ne!(other.stdout, expected);

    // A plain Dockerfile at a URL, and on stdin: built with no context.
    std::fs::write(
        served.join("Dockerfile.plain"),
        "FROM test/busybox:latest\nRUN echo plain > /p\n",
    )
    .unwrap();
    let plain_url = img_build(&fixture, &["-q", &server.url("Dockerfile.plain")]).success();
    let on_stdin = Run::of(
        tool("img-build", fixture.root())
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["-q", "-"]),
        Some("FROM test/busybox:latest\nRUN echo plain > /p\n"),
    )
    .success();
    assert_eq!(plain_url.stdout, on_stdin.stdout);
    // Without a context there is nothing to COPY from.
    Run::of(
        tool("img-build", fixture.root()).args(["-q", "-"]),
        Some(DOCKERFILE),
    )
    .failure(1)
    .one_error_line(&["hello", "no build context"]);
}

#[test]
fn bad_remote_contexts_fail_with_one_line_and_store_nothing() {
    let fixture = Fixture::new();
    fixture.busybox(BASE, "contexts");
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    std::fs::write(repo.join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(repo.join("hello"), "hi\n").unwrap();
    // A symlink planted in the repository to leave it.
    std::os::unix::fs::symlink("/etc", repo.join("out")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    let before = images(&fixture);
    let url = |fragment: &str| format!("file://{}{fragment}", repo.display());

    let missing = format!("file://{}/nope.git", work.path().display());
    img_build(&fixture, &[&missing])
        .failure(1)
        .one_error_line(&["unable to prepare context", "error fetching", "nope.git"]);
    img_build(&fixture, &[&url("#no-such-ref")])
        .failure(1)
        .one_error_line(&["error fetching", "no-such-ref"]);
    img_build(&fixture, &[&url("#main:nowhere")])
        .failure(1)
        .one_error_line(&["subdirectory \"nowhere\" not found"]);
    img_build(&fixture, &[&url("#main:out")])
        .failure(1)
        .one_error_line(&["leaves the git repository"]);
    img_build(&fixture, &[&url("#main:../..")])
        .failure(1)
        .one_error_line(&["leaves the git repository"]);
    nothing_left(&fixture, before);

    let served = work.path().join("srv");
    std::fs::create_dir(&served).unwrap();
    let server = FileServer::start(&served);
    img_build(&fixture, &[&server.url("missing.tar.gz")])
        .failure(1)
        .one_error_line(&["unable to prepare context", "404"]);
    // Binary garbage at a URL is neither a tar nor a Dockerfile.
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 0x80) as u8).collect();
    std::fs::write(served.join("garbage"), garbage).unwrap();
    img_build(&fixture, &[&server.url("garbage")])
        .failure(1)
        .one_error_line(&["neither a Dockerfile", "nor a tar"]);
    // A tar with `../` entries does not write outside its context.
    let mut hostile = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o644);
    let name = format!("../{}-escaped", std::process::id());
    header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_cksum();
    hostile.append(&header, &b"bad"[..]).unwrap();
    std::fs::write(served.join("hostile.tar"), hostile.into_inner().unwrap()).unwrap();
    let _ = img_build(&fixture, &[&server.url("hostile.tar")]);
    let scratch_parent = fixture.root().join("tmp");
    assert!(!scratch_parent.join(&name[3..]).exists());
    assert!(!fixture.root().join(&name[3..]).exists());
    nothing_left(&fixture, before);
    img_build(&fixture, &["/no/such/dir"])
        .failure(1)
        .one_error_line(&["unable to prepare context: path \"/no/such/dir\" not found"]);
}
