//! Writing a container's output as Docker's json-file log, one JSON object
//! per line (`container::logs` reads it): from the stdout and stderr pipes
//! of a foreground or detached run, or a terminal's bytes.

use super::relay::Sink;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;

/// Copies both streams into Docker's json-file format, one JSON object per
/// line, until both are closed (the container and all its children exited).
/// With `tee` each also goes to our own stdout or stderr, as an attached
/// `docker run` shows it; when ours is closed (`ctr-run … | head -1`) the
/// container's end is closed too, so it gets EPIPE as it would writing to
/// ours directly. `interrupted` runs whenever a signal woke us. Returns
/// the first failure to write the log (the copy goes on regardless).
pub(super) fn copy_to_log(
    out: OwnedFd,
    err: OwnedFd,
    mut log: Option<&mut File>,
    tee: bool,
    interrupted: &dyn Fn(),
) -> Option<io::Error> {
    let mut streams = [
        (Some(out), LogStream::new("stdout"), 1),
        (Some(err), LogStream::new("stderr"), 2),
    ];
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut fds: Vec<rustix::event::PollFd> = Vec::new();
        let mut which = Vec::new();
        for (i, (fd, _, _)) in streams.iter().enumerate() {
            if let Some(fd) = fd {
                fds.push(rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN));
                which.push(i);
            }
        }
        if fds.is_empty() {
            let [(_, out, _), (_, err, _)] = &mut streams;
            return out.lost.take().or(err.lost.take());
        }
        if rustix::event::poll(&mut fds, None).is_err() {
            interrupted();
            continue;
        }
        let ready: Vec<usize> = fds
            .iter()
            .zip(&which)
            .filter(|(p, _)| !p.revents().is_empty())
            .map(|(_, i)| *i)
            .collect();
        drop(fds);
        for i in ready {
            let (fd, stream, ours) = &mut streams[i];
            match fd.as_ref().map(|f| rustix::io::read(f, &mut buf)) {
                Some(Ok(n)) if n > 0 => {
                    if let Some(log) = log.as_deref_mut() {
                        stream.push(log, &buf[..n]);
                    }
                    if tee && Sink::Ours(*ours).write_all(&buf[..n]).is_err() {
                        *fd = None;
                    }
                }
                Some(Err(rustix::io::Errno::INTR)) => interrupted(),
                _ => {
                    if let Some(log) = log.as_deref_mut() {
                        stream.flush(log);
                    }
                    *fd = None;
                }
            }
        }
    }
}

/// One stream's bytes on their way into json-file entries: whole lines,
/// and lines past 16 KiB split into partial entries as Docker does.
pub(super) struct LogStream {
    name: &'static str,
    pending: Vec<u8>,
    /// The first failure to write an entry (a full disk): kept to report.
    pub(super) lost: Option<io::Error>,
}

impl LogStream {
    pub(super) fn new(name: &'static str) -> LogStream {
        LogStream {
            name,
            pending: Vec::new(),
            lost: None,
        }
    }

    pub(super) fn push(&mut self, log: &mut File, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        while let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            self.write_entry(log, &line);
        }
        while self.pending.len() >= 16 * 1024 {
            let chunk: Vec<u8> = self.pending.drain(..16 * 1024).collect();
            self.write_entry(log, &chunk);
        }
    }

    pub(super) fn flush(&mut self, log: &mut File) {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.write_entry(log, &pending);
        }
    }

    fn write_entry(&mut self, log: &mut File, bytes: &[u8]) {
        let entry = serde_json::json!({
            "log": String::from_utf8_lossy(bytes),
            "stream": self.name,
            "time": crate::container::now(),
        });
        // One write per entry, so a full disk cuts no entry in two.
        let line = format!("{entry}\n");
        if let Err(e) = log.write_all(line.as_bytes()) {
            self.lost.get_or_insert(e);
        }
    }
}
