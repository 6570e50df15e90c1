//! `img-build URL`: a build context that is not a local directory, told
//! apart as Docker's CLI tells them (a directory first, then a git URL,
//! then any other http(s) URL). A git repository is cloned shallow with
//! the `git` CLI (`#ref:subdir` picks the ref and the context inside it);
//! an http(s) URL is downloaded and is a context if it is a tar (plain,
//! gzip, bzip2, xz or zstd), else a Dockerfile with no context. Either way
//! it lands in a scratch directory of the store, removed when the build
//! ends and swept if the builder is killed.
//!
//! The `git` CLI rather than a Rust git crate: gitoxide or libgit2 would
//! add a large dependency tree (libgit2 a C library and OpenSSL) for one
//! clone, while `git` speaks every transport (smart and dumb http, ssh
//! with the user's keys and config, `file://`) exactly as the user's own
//! clone would, as Docker's builder does too.

use super::archive::{archive, extract_archive};
use super::error::BuildError;
use super::fetch::download;
use super::stdin::StdinInput;
use crate::store::{SCRATCH_BUILD, Scratch, Store};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A context argument that names something remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// A git repository: where, which ref (`None`: the remote's HEAD), and
    /// the directory inside it that is the context.
    Git {
        url: String,
        reference: Option<String>,
        subdir: Option<String>,
    },
    /// An http(s) URL: a tarball context, or a plain Dockerfile.
    Url(String),
}

impl Remote {
    /// What `context` names, by Docker's rules (an existing local
    /// directory is checked first, by the caller): `git://`, `git@`,
    /// `github.com/`, `file://` and http(s) URLs whose path ends in `.git`
    /// are git repositories; any other http(s) URL is downloaded. `None`:
    /// a local path.
    pub fn parse(context: &str) -> Option<Remote> {
        let http = context.starts_with("http://") || context.starts_with("https://");
        let (body, fragment) = match context.split_once('#') {
            Some((body, fragment)) => (body, Some(fragment)),
            None => (context, None),
        };
        let git = ["git://", "git@", "github.com/", "file://", "ssh://"]
            .iter()
            .any(|p| context.starts_with(p))
            || (http && body.ends_with(".git"));
        if git {
            let (reference, subdir) = match fragment {
                None => (None, None),
                Some(fragment) => {
                    let (reference, subdir) = match fragment.split_once(':') {
                        Some((r, s)) => (r, Some(s)),
                        None => (fragment, None),
                    };
                    (
                        Some(reference.to_string()).filter(|r| !r.is_empty()),
                        subdir.map(str::to_string).filter(|s| !s.is_empty()),
                    )
                }
            };
            let url = match body.strip_prefix("github.com/") {
                Some(rest) => format!("https://github.com/{rest}"),
                None => body.to_string(),
            };
            return Some(Remote::Git {
                url,
                reference,
                subdir,
            });
        }
        http.then(|| Remote::Url(context.to_string()))
    }

    /// Fetches the context into the store's scratch space.
    pub fn fetch(&self, store: &Store) -> Result<StdinInput, BuildError> {
        let scratch = Scratch::new(store, SCRATCH_BUILD)
            .map_err(|e| prepare(format!("creating a scratch directory: {e}")))?;
        match self {
            Remote::Git {
                url,
                reference,
                subdir,
            } => {
                let clone = scratch.path().join("git");
                git_clone(url, reference.as_deref(), &clone)?;
                let dir = match subdir {
                    None => clone,
                    Some(subdir) => inside(&clone, subdir)?,
                };
                Ok(StdinInput::Context { scratch, dir })
            }
            Remote::Url(url) => {
                let downloaded = download(url, None, store)
                    .map_err(|e| prepare(format!("downloading the build context: {e}")))?;
                let Some(plain) = archive(&downloaded.path)? else {
                    let text = std::fs::read_to_string(&downloaded.path).map_err(|_| {
                        prepare(format!(
                            "{url} is neither a Dockerfile (UTF-8 text) nor a tar build context"
                        ))
                    })?;
                    return Ok(StdinInput::Dockerfile(text));
                };
                let dir = scratch.path().join("context");
                std::fs::create_dir(&dir)
                    .map_err(|e| prepare(format!("{}: {e}", dir.display())))?;
                let dest = std::fs::File::open(&dir)
                    .map_err(|e| prepare(format!("{}: {e}", dir.display())))?;
                extract_archive(Path::new(url), plain, &dest.into())?;
                Ok(StdinInput::Context { scratch, dir })
            }
        }
    }
}

/// Docker's prefix for every failure to get a context.
fn prepare(message: String) -> BuildError {
    BuildError::Invalid(format!("unable to prepare context: {message}"))
}

/// `git` with a fixed, non-interactive environment: no password prompt
/// (a private repository fails at once), no pager, no hooks templates of
/// the user's.
fn git(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_PAGER", "cat")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    command
}

/// Runs `git args` in `dir`; a failure is git's first error line.
fn run_git(dir: &Path, args: &[&str], what: &str) -> Result<(), String> {
    let output = git(dir).args(args).output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "git was not found in PATH".to_string(),
        _ => format!("running git: {e}"),
    })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    // git's first `fatal:`/`error:` line names the cause (what follows
    // is advice: "Please make sure you have the correct access rights"),
    // else its last line.
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let last = lines
        .iter()
        .find(|l| l.starts_with("fatal:") || l.starts_with("error:"))
        .or(lines.last())
        .copied()
        .unwrap_or("no message");
    Err(format!("{what}: {last}"))
}

/// Clones `url` at `reference` into `dest`, shallow where the transport
/// allows it (git's dumb http does not: there the whole history comes).
fn git_clone(url: &str, reference: Option<&str>, dest: &Path) -> Result<(), BuildError> {
    if url.starts_with('-') || reference.is_some_and(|r| r.starts_with('-')) {
        return Err(prepare(format!("invalid git URL {url:?}")));
    }
    let failed = |e: String| {
        prepare(format!(
            "unable to 'git clone' to temporary context directory: {e}"
        ))
    };
    std::fs::create_dir(dest).map_err(|e| failed(format!("{}: {e}", dest.display())))?;
    run_git(dest, &["init", "-q"], "git init").map_err(failed)?;
    run_git(dest, &["remote", "add", "origin", url], "git remote").map_err(failed)?;
    let reference = reference.unwrap_or("HEAD");
    let shallow = run_git(
        dest,
        &["fetch", "-q", "--depth", "1", "origin", "--", reference],
        "error fetching",
    );
    if let Err(e) = shallow {
        if !e.contains("shallow") {
            return Err(failed(e));
        }
        run_git(
            dest,
            &["fetch", "-q", "origin", "--", reference],
            "error fetching",
        )
        .map_err(failed)?;
    }
    run_git(
        dest,
        &["checkout", "-q", "FETCH_HEAD"],
        "error checking out",
    )
    .map_err(failed)?;
    if dest.join(".gitmodules").exists() {
        run_git(
            dest,
            &[
                "submodule",
                "update",
                "-q",
                "--init",
                "--recursive",
                "--depth",
                "1",
            ],
            "error initializing submodules",
        )
        .map_err(failed)?;
    }
    Ok(())
}

/// `subdir` of the clone at `root`, resolved without leaving it (a
/// symlink in a hostile repository does not reach the host).
fn inside(root: &Path, subdir: &str) -> Result<PathBuf, BuildError> {
    let missing = || {
        prepare(format!(
            "subdirectory {subdir:?} not found in the git repository"
        ))
    };
    let root = root.canonicalize().map_err(|_| missing())?;
    let path = root
        .join(subdir.trim_start_matches('/'))
        .canonicalize()
        .map_err(|_| missing())?;
    if !path.starts_with(&root) {
        return Err(prepare(format!(
            "subdirectory {subdir:?} leaves the git repository"
        )));
    }
    if !path.is_dir() {
        return Err(missing());
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(url: &str, reference: Option<&str>, subdir: Option<&str>) -> Option<Remote> {
        Some(Remote::Git {
            url: url.to_string(),
            reference: reference.map(str::to_string),
            subdir: subdir.map(str::to_string),
        })
    }

    #[test]
    fn contexts_are_told_apart_as_docker_does() {
        assert_eq!(
            Remote::parse("https://example.com/repo.git#v1:sub/dir"),
            git("https://example.com/repo.git", Some("v1"), Some("sub/dir"))
        );
        assert_eq!(
            Remote::parse("git@github.com:o/r.git#main"),
            git("git@github.com:o/r.git", Some("main"), None)
        );
        assert_eq!(
            Remote::parse("file:///srv/repo#:docs"),
            git("file:///srv/repo", None, Some("docs"))
        );
        assert_eq!(
            Remote::parse("github.com/o/r"),
            git("https://github.com/o/r", None, None)
        );
        assert_eq!(
            Remote::parse("http://127.0.0.1:8000/ctx.tar.gz"),
            Some(Remote::Url("http://127.0.0.1:8000/ctx.tar.gz".to_string()))
        );
        assert_eq!(Remote::parse("./dir"), None);
        assert_eq!(Remote::parse("ftp://host/x"), None);
    }

    #[test]
    fn a_subdirectory_never_leaves_the_clone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("out")).unwrap();
        assert!(inside(dir.path(), "sub").is_ok());
        assert!(inside(dir.path(), "out").is_err());
        assert!(inside(dir.path(), "../..").is_err());
        assert!(inside(dir.path(), "nope").is_err());
    }
}
