//! The README's pipelines, run by a real shell exactly as written there, so
//! the README cannot drift from what the tools do.

use berth_harness::fixture::Format;
use berth_harness::tools::binary;
use berth_harness::{Fixture, Registry};
use std::process::Command;

/// The fenced `sh` block under "Three pipelines that work today", as lines.
fn readme_pipelines() -> Vec<String> {
    pipelines_after("Three pipelines that work today")
}

/// The command lines of the first fenced `sh` block after `heading`.
fn pipelines_after(heading: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = readme.split(heading).nth(1).expect("section");
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

#[test]
fn the_readme_pull_and_run_pipelines_do_what_they_say() {
    let registry = Registry::start();
    let source = Fixture::new();
    for tag in ["1", "2"] {
        let image = source.busybox(&format!("app:{tag}"), tag);
        source.push(&image, &registry.host, &format!("app:{tag}"), Format::Oci);
    }
    let pipelines: Vec<String> = pipelines_after("And with the pull and run tools:")
        .iter()
        .map(|l| l.replace("registry.local:5000", &registry.host))
        .collect();
    assert_eq!(pipelines.len(), 2, "{pipelines:?}");
    let fixture = Fixture::new();

    let (ok, out, err) = sh(&fixture, &pipelines[0]);
    assert!(ok, "{err}");
    let machine = Command::new("uname").arg("-m").output().unwrap().stdout;
    assert_eq!(out.as_bytes(), machine);

    let (ok, out, err) = sh(&fixture, &pipelines[1]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for tag in ["1", "2"] {
        let id = fixture
            .store
            .resolve_image(&format!("{}/app:{tag}", registry.host))
            .unwrap()
            .id();
        let tagged = format!("{id} [{}/app:{tag}]", registry.host);
        assert!(lines.contains(&tagged.as_str()), "{tagged} in {out}");
    }
}

#[test]
fn the_readme_save_load_pipeline_does_what_it_says() {
    let fixture = Fixture::new();
    let app = fixture.busybox("app:1", "app");
    let other = tempfile::tempdir().unwrap();
    let pipelines: Vec<String> = pipelines_after("And between stores, with no registry")
        .iter()
        .map(|l| l.replace("/other/store", other.path().to_str().unwrap()))
        .collect();
    assert_eq!(pipelines.len(), 1, "{pipelines:?}");
    let (ok, out, err) = sh(&fixture, &pipelines[0]);
    assert!(ok, "{err}");
    assert_eq!(out, "Loaded image: app:1\n");
    let copied = berth::Store::open(other.path())
        .unwrap()
        .resolve_image("app:1")
        .unwrap();
    assert_eq!(copied.id(), app.config_digest);
    assert_eq!(copied.manifest_digest, app.manifest_digest);
}

#[test]
fn the_readme_lifecycle_pipelines_do_what_they_say() {
    let fixture = Fixture::new();
    fixture.busybox("app:latest", "app");
    let pipelines = pipelines_after("And across the container lifecycle:");
    assert_eq!(pipelines.len(), 4, "{pipelines:?}");

    let (ok, out, err) = sh(&fixture, &pipelines[0]);
    assert!(ok && out.is_empty(), "{err}");
    let (ok, out, err) = sh(&fixture, &pipelines[1]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 3, "{out}");

    // `sleep` as PID 1 ignores SIGTERM: each was killed after the timeout.
    let (ok, out, err) = sh(&fixture, &pipelines[2]);
    assert!(ok, "{err}");
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines, ["worker1 (137)", "worker2 (137)", "worker3 (137)"]);

    let (ok, out, err) = sh(&fixture, &pipelines[3]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 3);
    let (_, left, _) = sh(&fixture, "ctr-ps -aq");
    assert!(left.is_empty(), "{left}");
}

#[test]
fn the_readme_build_pipeline_does_what_it_says() {
    let fixture = Fixture::new();
    fixture.busybox("app:latest", "app");
    let pipelines = pipelines_after("And from a Dockerfile:");
    assert_eq!(pipelines.len(), 1, "{pipelines:?}");
    let (ok, out, err) = sh(&fixture, &pipelines[0]);
    assert!(ok, "{err}");
    assert_eq!(out, "built\n");
    assert!(fixture.store.resolve_image("app:built").is_ok());
}

#[test]
fn the_readme_push_pipeline_does_what_it_says() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    fixture.busybox("app:latest", "app");
    let pipelines: Vec<String> = pipelines_after("And to a registry, as a CI job would:")
        .iter()
        .map(|l| l.replace("registry.local:5000", &registry.host))
        .collect();
    assert_eq!(pipelines.len(), 1, "{pipelines:?}");
    let (ok, out, err) = sh(&fixture, &pipelines[0]);
    assert!(ok, "{err}");
    let built = fixture
        .store
        .resolve_image(&format!("{}/app:ci", registry.host))
        .unwrap();
    assert_eq!(
        out,
        format!("{}/app@{}\n", registry.host, built.manifest_digest)
    );
    let tags = registry.get("/v2/app/tags/list").unwrap();
    assert!(tags.contains(r#"["ci"]"#), "{tags}");
}

#[test]
fn the_readme_commit_pipelines_do_what_they_say() {
    let fixture = Fixture::new();
    fixture.busybox("app:latest", "app");
    let pipelines = pipelines_after("And from a container to an image, with no Dockerfile:");
    assert_eq!(pipelines.len(), 4, "{pipelines:?}");

    let (ok, out, err) = sh(&fixture, &pipelines[0]);
    assert!(ok && out.is_empty(), "{err}");
    let (ok, out, err) = sh(&fixture, &pipelines[1]);
    assert!(ok, "{err}");
    assert_eq!(out, "C /etc\nD /etc/group\nA /version\n");
    let (ok, out, err) = sh(&fixture, &pipelines[2]);
    assert!(ok, "{err}");
    assert_eq!(out, "v2\n");
    assert!(fixture.store.resolve_image("app:v2").is_ok());
    let (ok, out, err) = sh(&fixture, &pipelines[3]);
    assert!(ok, "{err}");
    let flat = fixture.store.resolve_image("web:flat").unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[1].starts_with(flat.id().short()), "{out}");
    assert!(lines[1].ends_with("flattened"), "{out}");
    sh(&fixture, "ctr-rm -f web");
}

#[test]
fn the_readme_copy_pipelines_do_what_they_say() {
    let fixture = Fixture::new();
    fixture.busybox("app:latest", "cp");
    let work = tempfile::tempdir().unwrap();
    let cwd = work.path().to_str().unwrap();
    let pipelines = pipelines_after("And files in and out of containers");
    assert_eq!(pipelines.len(), 2, "{pipelines:?}");
    // Two stopped containers: one with data, one without.
    let made = [
        "ctr-run --name web app sh -c 'mkdir /data && echo kept > /data/f'",
        "ctr-run --name web2 app true",
    ];
    for line in made
        .iter()
        .copied()
        .chain(pipelines.iter().map(String::as_str))
    {
        let (ok, _, err) = sh(&fixture, &format!("cd {cwd} && {line}"));
        assert!(ok, "{line}: {err}");
    }
    assert!(work.path().join("data.tar.gz").is_file());
    let (ok, out, err) = sh(&fixture, "ctr-cp web2:/data/f - | tar -xOf -");
    assert!(ok, "{err}");
    assert_eq!(out, "kept\n");
}

#[test]
fn the_readme_remote_context_pipelines_do_what_they_say() {
    use berth_harness::remote::{FileServer, git_repository};
    let fixture = Fixture::new();
    fixture.busybox("app:latest", "ctx");
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    std::fs::create_dir_all(repo.join("docker")).unwrap();
    std::fs::write(
        repo.join("docker/Dockerfile"),
        "FROM app\nCOPY hello /hello\nCMD [\"cat\", \"/hello\"]\n",
    )
    .unwrap();
    std::fs::write(repo.join("docker/hello"), "from git\n").unwrap();
    let git_root = work.path().join("git");
    git_repository(&repo, "v1", &git_root.join("app.git"));
    let served = work.path().join("served");
    std::fs::create_dir(&served).unwrap();
    let status = Command::new("tar")
        .args(["-czf", served.join("context.tar.gz").to_str().unwrap()])
        .args(["-C", repo.join("docker").to_str().unwrap(), "."])
        .status()
        .unwrap();
    assert!(status.success());
    let server = FileServer::start(&served);
    let pipelines: Vec<String> = pipelines_after("And from contexts that are not a directory")
        .iter()
        .map(|l| {
            l.replace("/srv/git", git_root.to_str().unwrap())
                .replace("http://artifacts.local:8000/", &server.url(""))
        })
        .collect();
    assert_eq!(pipelines.len(), 2, "{pipelines:?}");
    let (ok, out, err) = sh(&fixture, &pipelines[0]);
    assert!(ok, "{err}");
    assert_eq!(out, "from git\n");
    let (ok, out, err) = sh(&fixture, &pipelines[1]);
    assert!(ok, "{err}");
    let built = fixture.store.resolve_image("app:ci").unwrap();
    assert_eq!(out.trim(), built.id().to_string());
}
