//! Reading a container's json-file log (the format the monitor writes):
//! `--tail`, `--since`, timestamps, and following until the container
//! stops. Reading only: whether it stopped is the caller's to say.

use crate::format::human;
use serde::Deserialize;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// One json-file entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}:{line}: malformed log entry: {source}")]
    Malformed {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid --since value {0:?}: use a timestamp, Unix seconds or a duration like 10m")]
    BadSince(String),
}

/// Which entries to show.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only the last N (Docker's `--tail`; `None` is "all").
    pub tail: Option<usize>,
    /// Only entries at or after this time.
    pub since: Option<SystemTime>,
}

/// Docker's `--since`: RFC 3339, Unix seconds (with fraction), or a Go
/// duration back from `now`.
pub fn parse_since(text: &str, now: SystemTime) -> Result<SystemTime, LogError> {
    if let Some(time) = human::parse_rfc3339(text) {
        return Ok(time);
    }
    if let Ok(seconds) = text.parse::<f64>()
        && seconds >= 0.0
    {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds));
    }
    human::parse_go_duration(text)
        .and_then(|d| now.checked_sub(d))
        .ok_or_else(|| LogError::BadSince(text.to_string()))
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> LogError + use<> {
    let path = path.to_path_buf();
    move |source| LogError::Io { path, source }
}

/// The entries of the log at `path` chosen by `selection`, and the offset
/// where the file ended (where following goes on from). A missing log is
/// an empty one: the container has written nothing yet.
pub fn read(path: &Path, selection: &Selection) -> Result<(Vec<Entry>, u64), LogError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(io_error(path)(e)),
    };
    let mut entries = Vec::new();
    let offset = complete_lines(path, file, 0, &mut |number, line| {
        let entry: Entry = serde_json::from_str(line).map_err(|source| LogError::Malformed {
            path: path.to_path_buf(),
            line: number,
            source,
        })?;
        if selection
            .since
            .is_none_or(|since| human::parse_rfc3339(&entry.time).is_some_and(|t| t >= since))
        {
            entries.push(entry);
        }
        Ok(())
    })?;
    if let Some(tail) = selection.tail {
        let skip = entries.len().saturating_sub(tail);
        entries.drain(..skip);
    }
    Ok((entries, offset))
}

/// Calls `each` with the number and text of every complete line from
/// `offset` on; returns the offset after the last one. A last line without
/// its newline is still being written and is left for the next read.
fn complete_lines(
    path: &Path,
    mut file: File,
    mut offset: u64,
    each: &mut dyn FnMut(usize, &str) -> Result<(), LogError>,
) -> Result<u64, LogError> {
    file.seek(SeekFrom::Start(offset)).map_err(io_error(path))?;
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    let mut number = 0;
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(io_error(path))?;
        if n == 0 || !line.ends_with('\n') {
            return Ok(offset);
        }
        offset += n as u64;
        number += 1;
        each(number, &line)?;
    }
}

/// Calls `emit` for each entry appended to the log after `offset`, until
/// `stopped` says the container has stopped and everything it wrote has
/// been read; `between` runs before each pause.
pub fn follow(
    path: &Path,
    mut offset: u64,
    stopped: &mut dyn FnMut() -> bool,
    emit: &mut dyn FnMut(&Entry),
    between: &mut dyn FnMut(),
) -> Result<(), LogError> {
    loop {
        // Asked before reading, so the last lines are read after the stop.
        let stopped = stopped();
        if let Ok(file) = File::open(path) {
            offset = complete_lines(path, file, offset, &mut |_, line| {
                if let Ok(entry) = serde_json::from_str::<Entry>(line) {
                    emit(&entry);
                }
                Ok(())
            })?;
        }
        if stopped {
            return Ok(());
        }
        between();
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_log(lines: &[(&str, &str, &str)]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        for (log, stream, time) in lines {
            let entry = serde_json::json!({"log": log, "stream": stream, "time": time});
            std::io::Write::write_all(&mut file, format!("{entry}\n").as_bytes()).unwrap();
        }
        file
    }

    #[test]
    fn tail_and_since_choose_entries() {
        let file = write_log(&[
            ("one\n", "stdout", "2024-01-01T00:00:01Z"),
            ("two\n", "stderr", "2024-01-01T00:00:02Z"),
            ("three\n", "stdout", "2024-01-01T00:00:03Z"),
        ]);
        let all = read(file.path(), &Selection::default()).unwrap().0;
        assert_eq!(all.len(), 3);
        let tail = Selection {
            tail: Some(1),
            ..Selection::default()
        };
        assert_eq!(read(file.path(), &tail).unwrap().0[0].log, "three\n");
        let now = SystemTime::now();
        let since = Selection {
            since: Some(parse_since("2024-01-01T00:00:02Z", now).unwrap()),
            ..Selection::default()
        };
        let chosen = read(file.path(), &since).unwrap().0;
        assert_eq!(chosen.len(), 2);
        assert_eq!(chosen[0].stream, "stderr");
        assert!(parse_since("10m", now).unwrap() < now);
        assert!(parse_since("soon", now).is_err());
    }

    #[test]
    fn following_reads_to_the_end_once_stopped() {
        let file = write_log(&[("one\n", "stdout", "2024-01-01T00:00:01Z")]);
        let mut asked = 0;
        let mut shown = Vec::new();
        let mut pauses = 0;
        follow(
            file.path(),
            0,
            &mut || {
                asked += 1;
                asked == 2
            },
            &mut |entry| shown.push(entry.log.clone()),
            &mut || pauses += 1,
        )
        .unwrap();
        assert_eq!(shown, ["one\n"]);
        assert_eq!((asked, pauses), (2, 1));
    }
}
