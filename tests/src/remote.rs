//! Remote sources for img-build's contexts, all on this machine: a static
//! file server (python's http.server on 127.0.0.1, which also serves a
//! bare git repository over git's dumb http once `git update-server-info`
//! has run) and git commands with a fixed author.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Runs `git args` in `dir`, panicking if it fails.
pub fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .stdout(Stdio::null())
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?} in {}", dir.display());
}

/// `dir` made a git repository of what it holds, one commit tagged `tag`
/// on branch main; then cloned bare to `bare`, ready for dumb http.
pub fn git_repository(dir: &Path, tag: &str, bare: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", tag]);
    git(dir, &["tag", tag]);
    let parent = bare.parent().expect("bare has a parent");
    std::fs::create_dir_all(parent).unwrap();
    git(
        parent,
        &[
            "clone",
            "-q",
            "--bare",
            dir.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    git(bare, &["update-server-info"]);
}

/// A python http.server serving `dir` on 127.0.0.1, killed on drop.
pub struct FileServer {
    child: Child,
    pub port: u16,
}

impl FileServer {
    /// Starts the server and returns once it listens (it prints its port).
    pub fn start(dir: &Path) -> FileServer {
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        // "Serving HTTP on 127.0.0.1 port N (…) ...": printed once it listens.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split(" port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("http.server said {line:?}"));
        FileServer { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
