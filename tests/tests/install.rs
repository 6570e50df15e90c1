//! `cargo xtask install` and `cargo xtask deb` as a user meets them: the
//! tools installed under a prefix run by path and by name, their man pages
//! read with man(1), their bash completion sourced into a real bash, the
//! uninstall leaves nothing behind, and the .deb unpacks into working tools.
//! Both install the binaries this test run already built (`--bin-dir`), so
//! CI builds nothing in release for them.

use berth_harness::tools::binary;
use berth_harness::{Fixture, Run};
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin_dir() -> PathBuf {
    binary("img-ls").parent().unwrap().to_path_buf()
}

fn xtask(args: &[&str]) -> Run {
    let mut command = Command::new(binary("xtask"));
    command.args(args).arg("--bin-dir").arg(bin_dir());
    Run::of(&mut command, None)
}

fn bash(script: &str) -> Run {
    Run::of(Command::new("bash").args(["--norc", "-c", script]), None)
}

fn files_under(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            found.push(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn install_runs_tools_by_name_with_man_pages_and_completions_then_uninstall_empties_the_prefix() {
    let prefix = tempfile::tempdir().unwrap();
    let prefix_arg = prefix.path().to_str().unwrap();
    xtask(&["install", "--prefix", prefix_arg]).success();
    // Idempotent: a second install over the first changes nothing.
    let first = files_under(prefix.path());
    xtask(&["install", "--prefix", prefix_arg]).success();
    assert_eq!(files_under(prefix.path()), first);

    let bin = prefix.path().join("bin");
    for tool in berth::tools::all() {
        assert!(bin.join(tool.name).is_file(), "{} not installed", tool.name);
        for page in [
            format!("share/man/man1/{}.1", tool.name),
            format!("share/bash-completion/completions/{}", tool.name),
            format!("share/zsh/site-functions/_{}", tool.name),
            format!("share/fish/vendor_completions.d/{}.fish", tool.name),
        ] {
            assert!(first.contains(&page), "{page} not installed: {first:?}");
        }
    }

    // The installed img-ls reads a real store.
    let fixture = Fixture::new();
    fixture.busybox("127.0.0.1:5000/installed/app:v1", "install");
    let listed = Run::of(
        Command::new(bin.join("img-ls"))
            .arg("--root")
            .arg(fixture.root()),
        None,
    )
    .success();
    assert!(
        listed.stdout.contains("127.0.0.1:5000/installed/app") && listed.stdout.contains("v1"),
        "{listed:#?}"
    );

    // By name, through PATH, and through `berth`, which finds its siblings.
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let by_name = Run::of(
        Command::new("sh")
            .args([
                "-c",
                "img-ls --root \"$1\" -q && berth images --root \"$1\" -q",
                "sh",
            ])
            .arg(fixture.root())
            .env("PATH", &path),
        None,
    )
    .success();
    let ids: Vec<&str> = by_name.stdout.lines().collect();
    assert_eq!(ids.len(), 2, "{by_name:#?}");
    assert_eq!(ids[0], ids[1]);

    // man reads the generated page: its sections, the flag, the footer.
    let man = Run::of(
        Command::new("man")
            .args(["-l", "-P", "cat"])
            .arg(prefix.path().join("share/man/man1/ctr-run.1"))
            .env("MANWIDTH", "200"),
        None,
    )
    .success();
    for part in [
        "NAME",
        "SYNOPSIS",
        "OPTIONS",
        "--network",
        "SEE ALSO",
        "ctr-ps(1)",
        "berth(7)",
    ] {
        assert!(
            man.stdout.contains(part),
            "ctr-run(1) lacks {part:?}: {}",
            man.stdout
        );
    }
    let overview = Run::of(
        Command::new("man")
            .args(["-l", "-P", "cat"])
            .arg(prefix.path().join("share/man/man7/berth.7"))
            .env("MANWIDTH", "200"),
        None,
    )
    .success();
    for part in [
        "TOOLS",
        "STORE",
        "PIPE CONTRACT",
        "EXIT STATUS",
        "docker image inspect",
    ] {
        assert!(overview.stdout.contains(part), "berth(7) lacks {part:?}");
    }

    // The bash completion, sourced into bash, offers --network for `ctr-run --net`.
    let completion = prefix
        .path()
        .join("share/bash-completion/completions/ctr-run");
    let completed = bash(&format!(
        r#"source '{}'
           complete_fn=$(complete -p ctr-run | sed -E 's/.*-F ([^ ]+).*/\1/')
           COMP_WORDS=(ctr-run --net); COMP_CWORD=1
           COMP_LINE='ctr-run --net'; COMP_POINT=${{#COMP_LINE}}
           "$complete_fn" ctr-run --net ctr-run
           printf '%s\n' "${{COMPREPLY[@]}}""#,
        completion.display()
    ))
    .success();
    assert!(
        completed.stdout.lines().any(|line| line == "--network"),
        "{completed:#?}"
    );
    assert!(
        completed
            .stdout
            .lines()
            .all(|line| line.starts_with("--net")),
        "{completed:#?}"
    );

    // Everything the installs wrote goes, and the directories they made.
    xtask(&["install", "--uninstall", "--prefix", prefix_arg]).success();
    assert_eq!(files_under(prefix.path()), Vec::<String>::new());
    // Nothing installed: said on one line, exit 1.
    let again = xtask(&["install", "--uninstall", "--prefix", prefix_arg]).failure(1);
    assert!(again.stderr.contains("nothing to uninstall"), "{again:#?}");
}

#[test]
fn uninstall_keeps_what_others_put_beside_the_installed_files() {
    let prefix = tempfile::tempdir().unwrap();
    let prefix_arg = prefix.path().to_str().unwrap();
    xtask(&["install", "--prefix", prefix_arg]).success();
    std::fs::write(prefix.path().join("bin/theirs"), "#!/bin/sh\n").unwrap();
    xtask(&["install", "--uninstall", "--prefix", prefix_arg]).success();
    assert_eq!(files_under(prefix.path()), ["bin", "bin/theirs"]);
}

#[test]
fn the_deb_unpacks_into_working_tools_and_declares_the_runtime_dependencies() {
    let out = tempfile::tempdir().unwrap();
    let built = xtask(&["deb", "--out", out.path().to_str().unwrap()]).success();
    let deb = PathBuf::from(built.stdout.trim());
    assert!(deb.is_file(), "{built:#?}");
    assert_eq!(deb.parent(), Some(out.path()));
    // Only the package is left: the staging directory went.
    assert_eq!(
        files_under(out.path()).len(),
        1,
        "{:?}",
        files_under(out.path())
    );

    let field = |name: &str| {
        let output = Command::new("dpkg-deb")
            .arg("-f")
            .arg(&deb)
            .arg(name)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    assert_eq!(field("Package"), "berth");
    let depends = field("Depends");
    for package in ["libseccomp2", "netavark", "aardvark-dns", "iptables"] {
        assert!(depends.contains(package), "Depends: {depends}");
    }

    let scratch = tempfile::tempdir().unwrap();
    let unpacked = Command::new("dpkg")
        .arg("-x")
        .arg(&deb)
        .arg(scratch.path())
        .status()
        .unwrap();
    assert!(unpacked.success());
    let version = Run::of(
        Command::new(scratch.path().join("usr/bin/img-pull")).arg("--version"),
        None,
    )
    .success();
    assert_eq!(
        version.stdout.trim(),
        format!("img-pull {}", env!("CARGO_PKG_VERSION"))
    );
    let files = files_under(scratch.path());
    for path in [
        "usr/bin/berth",
        "usr/bin/ctr-run",
        "usr/share/man/man1/ctr-run.1",
        "usr/share/man/man7/berth.7",
        "usr/share/bash-completion/completions/ctr-run",
        "usr/share/zsh/vendor-completions/_ctr-run",
        "usr/share/fish/vendor_completions.d/ctr-run.fish",
    ] {
        assert!(
            files.contains(&path.to_string()),
            "{path} not in the package"
        );
    }
    assert!(
        !files.iter().any(|file| file.contains("install-manifest")),
        "dpkg keeps its own list"
    );
}

#[test]
fn berth_lists_every_tool_by_group_and_runs_one_passing_its_exit_code_through() {
    let berth = || Command::new(binary("berth"));
    let overview = Run::of(&mut berth(), None).success();
    let groups: Vec<&str> = overview
        .stdout
        .lines()
        .filter(|line| line.ends_with(':') && !line.starts_with(' '))
        .collect();
    assert_eq!(
        groups,
        [
            "Images:",
            "Containers:",
            "Networks:",
            "Volumes:",
            "Registry:"
        ],
        "{overview:#?}"
    );
    for tool in berth::tools::all() {
        let row = overview
            .stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(tool.name))
            .unwrap_or_else(|| panic!("{} not listed: {overview:#?}", tool.name));
        assert!(
            row.contains(tool.docker) && row.contains(tool.summary),
            "{row}"
        );
    }
    assert_eq!(
        Run::of(berth().arg("--help"), None).success().stdout,
        overview.stdout
    );

    // ctr-run's own code for a bad flag (Docker's 125) comes through, by
    // the tool's name and by Docker's word for it.
    for words in [["ctr-run", "--no-such-flag"], ["run", "--no-such-flag"]] {
        Run::of(berth().args(words).arg("busybox"), None)
            .failure(125)
            .one_error_line(&["ctr-run:", "--no-such-flag"]);
    }
    let store = tempfile::tempdir().unwrap();
    let listed = Run::of(
        berth()
            .args(["image", "inspect", "--root"])
            .arg(store.path())
            .arg("nothing-here"),
        None,
    )
    .failure(1);
    assert!(listed.stderr.starts_with("img-inspect: "), "{listed:#?}");

    // Only the listed tools run: no paths, no other programs.
    for hostile in ["../../../bin/sh", "/bin/sh", "sh", "", "img-ls/../ctr-run"] {
        Run::of(berth().arg(hostile), None)
            .failure(2)
            .one_error_line(&["berth: unknown command: berth"]);
    }
}

#[test]
fn every_tool_s_help_ends_with_its_siblings() {
    for tool in berth::tools::all() {
        let help = Run::of(Command::new(binary(tool.name)).arg("--help"), None).success();
        let last = help
            .stdout
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty());
        assert_eq!(
            last,
            Some(
                format!(
                    "See also: {}; berth lists every tool.",
                    tool.see_also.join(", ")
                )
                .as_str()
            ),
            "{}",
            tool.name
        );
    }
}
