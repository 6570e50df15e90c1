//! Exit codes and the one place a tool's failure becomes a line on stderr.
//! 0 success · 1 the operation failed · 2 usage · 125/126/127 and 128+N for
//! `ctr-run`/`ctr-exec`, as Docker.

use std::process::ExitCode;

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Success = 0,
    Failed = 1,
    Usage = 2,
    /// The tool itself failed before the container's command ran.
    ToolFailed = 125,
    /// The command exists but cannot be invoked.
    CannotInvoke = 126,
    /// The command was not found.
    CommandNotFound = 127,
}

/// A failure on its way out: one human line and an exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: Exit, message: impl Into<String>) -> Failure {
        Failure {
            code: code as u8,
            message: message.into(),
        }
    }

    /// The message as the one line it is printed as ([`one_line`]).
    pub fn line(&self) -> String {
        one_line(&self.message)
    }

    /// A failure whose lines are already on stderr (one per failed target of
    /// a multi-target tool): only the exit code is left to give.
    pub fn reported(code: Exit) -> Failure {
        Failure::new(code, "")
    }
}

/// Any library error is an operation failure (exit 1) whose message is the
/// error and each cause not already spelled out in it.
impl<E: std::error::Error> From<E> for Failure {
    fn from(error: E) -> Failure {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message = format!("{message}: {text}");
            }
            source = cause.source();
        }
        Failure::new(Exit::Failed, message)
    }
}

/// Docker's way with several targets: act on each, print each one acted on
/// (as given) on stdout, give each failure its own stderr line, go on, and
/// exit 1 at the end if any failed.
pub fn each<E: std::error::Error>(
    targets: &[String],
    mut act: impl FnMut(&str) -> Result<(), E>,
) -> Result<(), Failure> {
    each_printing(targets, |target| act(target).map(|()| target.to_string()))
}

/// [`each`], printing for each target what `act` returns for it instead
/// of the target itself (ctr-wait prints exit codes).
pub fn each_printing<T: std::fmt::Display, E: std::error::Error>(
    targets: &[String],
    mut act: impl FnMut(&str) -> Result<T, E>,
) -> Result<(), Failure> {
    let tool = tool_name();
    let mut failed = false;
    for target in targets {
        match act(target) {
            Ok(line) => crate::output::result(line),
            Err(error) => {
                failed = true;
                eprintln!("{tool}: {}", Failure::from(error).line());
            }
        }
    }
    if failed {
        Err(Failure::reported(Exit::Failed))
    } else {
        Ok(())
    }
}

/// A message as one line that is safe on a terminal: it may quote what a
/// registry, an archive or a container chose (a tar header's name, a
/// server's reason), so a line break becomes a space and any other control
/// character (an escape sequence that would recolour, move or retitle the
/// operator's terminal) is printed escaped.
pub fn one_line(message: &str) -> String {
    let mut line = String::with_capacity(message.len());
    for c in message.chars() {
        match c {
            '\n' => line.push(' '),
            c if c.is_control() => line.extend(c.escape_default()),
            c => line.push(c),
        }
    }
    line
}

fn tool_name() -> String {
    std::env::args()
        .next()
        .and_then(|a| a.rsplit('/').next().map(str::to_string))
        .unwrap_or_else(|| "berth".to_string())
}

/// Runs a tool's body and turns its outcome into an exit status, printing a
/// failure as `<tool>: <message>` on one stderr line.
pub fn run(body: impl FnOnce() -> Result<(), Failure>) -> ExitCode {
    // A closed pipe (`img-ls | head -1`) ends us quietly, as it ends
    // coreutils, instead of a panic on the next write.
    // SAFETY: resetting a signal disposition to its default is always sound.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Docker's daemon fixes its umask at 022, so what it makes (a build's
    // COPY parents and WORKDIR, a container's process, its workdir and
    // mount points) is the same whoever started it. Each tool here is the
    // daemon's half too: the caller's 077 or 002 must not reach an image.
    // Files the user names (`-o`) are written 0600 through a temp file.
    // SAFETY: umask only swaps this process's file-creation mask.
    unsafe {
        libc::umask(0o022);
    }
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let tool = tool_name();
            if !failure.message.is_empty() {
                eprintln!("{tool}: {}", failure.line());
            }
            ExitCode::from(failure.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn a_message_is_one_line_with_its_control_characters_escaped() {
        assert_eq!(one_line("plain text: ok"), "plain text: ok");
        assert_eq!(one_line("two\nlines"), "two lines");
        assert_eq!(
            one_line("name \u{1b}]0;owned\u{7}\u{1b}[2J\r"),
            "name \\u{1b}]0;owned\\u{7}\\u{1b}[2J\\r"
        );
        assert_eq!(one_line("ünïcode stays"), "ünïcode stays");
    }
}
