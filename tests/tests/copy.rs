//! ctr-cp end to end on real containers: both ways, with `-` streams,
//! Docker's path rules, owners with and without `-a`, links with and
//! without `-L`, a stopped container (nothing left mounted), and an
//! attacker container whose symlinks and tars must never reach the host.

use berth_harness::{Fixture, Run, tool};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const IMG: &str = "test/busybox:latest";

fn fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture.busybox(IMG, "copy");
    fixture
}

fn run(fixture: &Fixture, name: &str, args: &[&str]) -> Run {
    Run::of(tool(name, fixture.root()).args(args), None)
}

fn cp(fixture: &Fixture, args: &[&str]) -> Run {
    run(fixture, "ctr-cp", args)
}

fn sh(fixture: &Fixture, container: &str, script: &str) -> String {
    run(fixture, "ctr-exec", &[container, "sh", "-c", script])
        .success()
        .stdout
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Tar entry names of `bytes`.
fn names(bytes: &[u8]) -> Vec<String> {
    tar::Archive::new(bytes)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn copies_both_ways_with_docker_s_path_rules_on_a_running_container() {
    let fixture = fixture();
    run(
        &fixture,
        "ctr-run",
        &["-d", "--name", "box", IMG, "sleep", "1000"],
    )
    .success();
    sh(
        &fixture,
        "box",
        "mkdir -p /data/sub && echo one > /data/a && echo two > /data/sub/b && \
         ln -s a /data/link && chown 1234:5678 /data/a && chmod 640 /data/a",
    );
    let host = tempfile::tempdir().unwrap();
    let h = |name: &str| host.path().join(name);

    // A directory to a missing path becomes that path.
    cp(&fixture, &["box:/data", p(&h("out"))]).success();
    assert_eq!(std::fs::read_to_string(h("out/a")).unwrap(), "one\n");
    assert_eq!(std::fs::read_to_string(h("out/sub/b")).unwrap(), "two\n");
    assert_eq!(std::fs::read_link(h("out/link")).unwrap(), Path::new("a"));
    let meta = std::fs::metadata(h("out/a")).unwrap();
    // Without -a, the copy is the invoking user's; the mode is kept.
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o640));
    // Into an existing directory, under its own name; with /., its contents.
    std::fs::create_dir(h("into")).unwrap();
    cp(&fixture, &["box:data", p(&h("into"))]).success();
    assert!(h("into/data/sub/b").is_file());
    std::fs::create_dir(h("contents")).unwrap();
    cp(&fixture, &["box:/data/.", p(&h("contents"))]).success();
    assert!(h("contents/sub/b").is_file() && !h("contents/data").exists());
    // A file: to a new name, over a file, into a directory.
    cp(&fixture, &["box:/data/a", p(&h("file.txt"))]).success();
    assert_eq!(std::fs::read_to_string(h("file.txt")).unwrap(), "one\n");
    cp(&fixture, &["box:/data/sub/b", p(&h("file.txt"))]).success();
    assert_eq!(std::fs::read_to_string(h("file.txt")).unwrap(), "two\n");
    cp(
        &fixture,
        &["box:/data/sub/b", &format!("{}/", p(&h("into")))],
    )
    .success();
    assert!(h("into/b").is_file());
    // -a keeps the container's owners.
    cp(&fixture, &["-a", "box:/data/a", p(&h("owned"))]).success();
    let meta = std::fs::metadata(h("owned")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    // A link is copied as a link; -L copies what it points to.
    cp(&fixture, &["box:/data/link", p(&h("l"))]).success();
    assert_eq!(std::fs::read_link(h("l")).unwrap(), Path::new("a"));
    cp(&fixture, &["-L", "box:/data/link", p(&h("followed"))]).success();
    assert_eq!(std::fs::read_to_string(h("followed")).unwrap(), "one\n");

    // Into the container: a directory, then owners with and without -a.
    std::fs::create_dir_all(h("src/deep")).unwrap();
    std::fs::write(h("src/deep/x"), "from host\n").unwrap();
    std::os::unix::fs::chown(h("src/deep/x"), Some(4321), Some(8765)).unwrap();
    cp(&fixture, &[p(&h("src")), "box:/in"]).success();
    assert_eq!(
        sh(
            &fixture,
            "box",
            "cat /in/deep/x; stat -c '%u:%g' /in/deep/x"
        ),
        "from host\n0:0\n"
    );
    cp(&fixture, &["-a", p(&h("src/deep/x")), "box:/tmp/"]).success();
    assert_eq!(sh(&fixture, "box", "stat -c '%u:%g' /tmp/x"), "4321:8765\n");
    cp(&fixture, &[&format!("{}/.", p(&h("src"))), "box:/tmp"]).success();
    assert_eq!(sh(&fixture, "box", "cat /tmp/deep/x"), "from host\n");

    // `-`: a tar on stdout, and one from stdin.
    let out = std::process::Command::new(berth_harness::tools::binary("ctr-cp"))
        .args(["--root", p(fixture.root()), "box:/data", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let listed = names(&out.stdout);
    assert!(listed.contains(&"data/a".to_string()), "{listed:?}");
    assert!(listed.contains(&"data/sub/b".to_string()), "{listed:?}");
    // A directory's contents come under a `./` entry, as Docker's (whose
    // children read `./a`; the tar crate writes them `a`, the same path).
    let out = std::process::Command::new(berth_harness::tools::binary("ctr-cp"))
        .args(["--root", p(fixture.root()), "box:/data/.", "-"])
        .output()
        .unwrap();
    assert_eq!(names(&out.stdout)[..2], ["./", "a"], "{out:?}");
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(7);
    header.set_mode(0o600);
    tar.append_data(&mut header, "t/streamed", &b"stdin!\n"[..])
        .unwrap();
    let tar = tar.into_inner().unwrap();
    Run::of_bytes(
        tool("ctr-cp", fixture.root()).args(["-", "box:/tmp"]),
        Some(&tar),
    )
    .success();
    assert_eq!(sh(&fixture, "box", "cat /tmp/t/streamed"), "stdin!\n");

    // Docker's refusals, one line each.
    cp(&fixture, &["box:/nope", p(&h("x"))])
        .failure(1)
        .one_error_line(&["Could not find the file /nope in container box"]);
    cp(&fixture, &["box:/a", "box:/b"])
        .failure(1)
        .one_error_line(&["copying between containers is not supported"]);
    cp(&fixture, &["a", "b"])
        .failure(1)
        .one_error_line(&["must specify at least one container source"]);
    cp(&fixture, &["box:/data", p(&h("none/there"))])
        .failure(1)
        .one_error_line(&["invalid output path: directory ", "none\" does not exist"]);
    cp(&fixture, &["box:/data/a", &format!("{}/", p(&h("newdir")))])
        .failure(1)
        .one_error_line(&["no such directory"]);
    cp(&fixture, &["box:/data", p(&h("file.txt"))])
        .failure(1)
        .one_error_line(&["cannot copy directory"]);
    Run::of_bytes(
        tool("ctr-cp", fixture.root()).args(["-", "box:/data/a"]),
        Some(&tar),
    )
    .failure(1)
    .one_error_line(&["destination \"box:/data/a\" must be a directory"]);
    cp(&fixture, &[p(&h("src")), "box:/missing/parent/x"])
        .failure(1)
        .one_error_line(&["Could not find the file /missing/parent in container box"]);
    cp(&fixture, &[p(&h("absent")), "box:/tmp"])
        .failure(1)
        .one_error_line(&["lstat ", "absent: no such file or directory"]);
    run(&fixture, "ctr-rm", &["-f", "box"]).success();
}

/// Mount points of ours (the tests' mount namespace is the host's).
fn mounts_mentioning(text: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(text))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_stopped_container_is_copied_to_and_from_and_nothing_stays_mounted() {
    let fixture = fixture();
    let id = run(
        &fixture,
        "ctr-run",
        &["-d", "--name", "done", IMG, "sh", "-c", "echo hi > /f"],
    )
    .success()
    .stdout
    .trim()
    .to_string();
    run(&fixture, "ctr-wait", &["done"]).success();
    let host = tempfile::tempdir().unwrap();
    cp(&fixture, &["done:/f", p(&host.path().join("f"))]).success();
    assert_eq!(
        std::fs::read_to_string(host.path().join("f")).unwrap(),
        "hi\n"
    );
    std::fs::write(host.path().join("g"), "given\n").unwrap();
    cp(&fixture, &[p(&host.path().join("g")), "done:/g"]).success();
    // Written into the container's own upper dir, so it is there when it runs.
    let upper = fixture.root().join("containers").join(&id).join("upper");
    assert_eq!(std::fs::read_to_string(upper.join("g")).unwrap(), "given\n");
    cp(&fixture, &["done:/g", p(&host.path().join("back"))]).success();
    assert_eq!(
        std::fs::read_to_string(host.path().join("back")).unwrap(),
        "given\n"
    );
    // Nothing mounted behind us, no scratch directory left.
    assert_eq!(mounts_mentioning(&id), Vec::<String>::new());
    let leftovers: Vec<_> = std::fs::read_dir(fixture.root().join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Owned by someone else (being started, or another copy) with no root
    // mounted: refused, and nothing lands in the bare mount point.
    let dir = fixture.store.container_dir(&id);
    let held = berth::container::Owner::take(&dir).unwrap();
    cp(&fixture, &[p(&host.path().join("g")), "done:/busy"])
        .failure(1)
        .one_error_line(&["is being started"]);
    assert_eq!(std::fs::read_dir(dir.join("rootfs")).unwrap().count(), 0);
    drop(held);
    // And it still starts, over the same upper dir.
    run(&fixture, "ctr-start", &["done"]).success();
    run(&fixture, "ctr-wait", &["done"]).success();
    run(&fixture, "ctr-rm", &["done"]).success();
}

#[test]
fn an_attacker_container_s_symlinks_and_tars_never_reach_the_host() {
    let fixture = fixture();
    // A host directory the attacker names by its host path.
    let canary = tempfile::tempdir().unwrap();
    let secret = canary.path().join("secret");
    std::fs::write(&secret, "host secret\n").unwrap();
    let c = p(canary.path());
    run(
        &fixture,
        "ctr-run",
        &["-d", "--name", "evil", IMG, "sleep", "1000"],
    )
    .success();
    sh(
        &fixture,
        "evil",
        &format!(
            "ln -s {c} /esc && ln -s ../../../../../../../..{c} /up && ln -s / /rootlink && \
             ln -s /etc /etclink && mkdir /d && ln -s {c}/secret /d/pw"
        ),
    );
    let host = tempfile::tempdir().unwrap();
    let h = |name: &str| host.path().join(name);
    // Reading: every link resolves inside the container, where none of
    // the canary exists.
    for src in [
        "evil:/esc/secret",
        "evil:/up/secret",
        &format!("evil:/rootlink{c}/secret"),
    ] {
        cp(&fixture, &[src, p(&h("stolen"))])
            .failure(1)
            .one_error_line(&["Could not find the file"]);
        assert!(!h("stolen").exists());
    }
    cp(&fixture, &["-L", "evil:/d/pw", p(&h("stolen"))])
        .failure(1)
        .one_error_line(&["Could not find the file"]);
    // Without -L the link itself comes out, and a tree's links stay links.
    cp(&fixture, &["evil:/d", p(&h("d"))]).success();
    assert_eq!(
        std::fs::read_link(h("d/pw")).unwrap(),
        canary.path().join("secret")
    );
    // Writing: through /etclink lands in the container's /etc, not the host's.
    let name = format!("berth-cp-{}", std::process::id());
    std::fs::write(h(&name), "planted\n").unwrap();
    cp(&fixture, &[p(&h(&name)), "evil:/etclink/"]).success();
    assert!(!Path::new("/etc").join(&name).exists());
    assert_eq!(
        sh(&fixture, "evil", &format!("cat /etc/{name}")),
        "planted\n"
    );
    cp(&fixture, &[p(&h(&name)), &format!("evil:/esc/{name}")])
        .failure(1)
        .one_error_line(&["Could not find the file"]);
    cp(&fixture, &[p(&h(&name)), "evil:/rootlink/../../"]).success();
    assert!(!Path::new("/").join(&name).exists());

    // A hostile tar on stdin: a symlink to `/`, then a write through it
    // to the canary's host path; an absolute name; then a name that climbs
    // (refused).
    let mut tar = tar::Builder::new(Vec::new());
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    link.set_mode(0o777);
    tar.append_link(&mut link, "hop", "/").unwrap();
    let file = |tar: &mut tar::Builder<Vec<u8>>, name: &str| {
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        let bytes = name.as_bytes();
        header.as_gnu_mut().unwrap().name[..bytes.len()].copy_from_slice(bytes);
        header.set_cksum();
        tar.append(&header, &b"pwned"[..]).unwrap();
    };
    file(&mut tar, &format!("hop{c}/through-link"));
    file(&mut tar, &format!("{c}/absolute"));
    file(&mut tar, &format!("../../../../../../..{c}/climbed"));
    let tar = tar.into_inner().unwrap();
    Run::of_bytes(
        tool("ctr-cp", fixture.root()).args(["-", "evil:/tmp"]),
        Some(&tar),
    )
    .failure(1)
    .one_error_line(&["climbed", "refused"]);
    let planted: Vec<_> = std::fs::read_dir(canary.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(planted, ["secret"]);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "host secret\n");
    // What the tar wrote stayed in the container.
    assert_eq!(
        sh(
            &fixture,
            "evil",
            &format!("cat {c}/through-link /tmp{c}/absolute")
        ),
        "pwnedpwned"
    );
    run(&fixture, "ctr-rm", &["-f", "evil"]).success();
}
