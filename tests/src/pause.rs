//! Holding a tool still at one of `berth::testhook`'s pause points: the
//! tool waits on a FIFO this side opens, and goes on once it is closed.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A FIFO for one pause point, in a temp dir removed on drop.
pub struct PausePoint {
    variable: &'static str,
    fifo: PathBuf,
    _dir: tempfile::TempDir,
}

/// A tool held at its pause point; dropping this lets it go on.
pub struct Held {
    pub child: Child,
    writer: Option<File>,
}

impl PausePoint {
    pub fn new(variable: &'static str) -> PausePoint {
        let dir = tempfile::tempdir().expect("pause dir");
        let fifo = dir.path().join("pause");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .expect("mkfifo");
        PausePoint {
            variable,
            fifo,
            _dir: dir,
        }
    }

    pub fn path(&self) -> &Path {
        &self.fifo
    }

    /// Spawns `command` with the pause point set and returns once it waits
    /// there (our open of the FIFO completes only when it has opened it).
    /// Panics with its output if it exits first, or after `seconds`.
    pub fn hold(&self, command: &mut Command, seconds: u64) -> Held {
        let mut child = command
            .env(self.variable, &self.fifo)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn the held tool");
        let (opened, arrived) = mpsc::channel();
        let fifo = self.fifo.clone();
        std::thread::spawn(move || {
            let _ = opened.send(std::fs::OpenOptions::new().write(true).open(fifo));
        });
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            if let Ok(writer) = arrived.recv_timeout(Duration::from_millis(50)) {
                return Held {
                    child,
                    writer: Some(writer.expect("open the FIFO")),
                };
            }
            if let Some(status) = child.try_wait().expect("poll the held tool") {
                // Unblock our opener so its thread ends too.
                let _ = File::open(&self.fifo);
                let output = child.wait_with_output().expect("its output");
                panic!(
                    "the tool exited ({status}) before its pause point: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            assert!(Instant::now() < deadline, "the tool never paused");
        }
    }
}

impl Held {
    /// Lets the tool go on and waits for it.
    pub fn release(mut self) -> crate::Run {
        drop(self.writer.take());
        crate::Run::from(self.child.wait_with_output().expect("wait for the tool"))
    }
}
