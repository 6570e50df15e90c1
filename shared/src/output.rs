//! Output discipline: stdout carries results only (what the next tool in a
//! pipe reads); progress, warnings and errors go to stderr, as live lines on
//! a terminal and one plain line per event elsewhere.

use std::io::{IsTerminal, Write};

/// Where progress goes, and whether anyone wants it.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    quiet: bool,
    terminal: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            quiet,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// Whether stderr is a terminal (live bars) rather than a log (lines).
    pub fn is_terminal(&self) -> bool {
        self.terminal && !self.quiet
    }

    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// One progress line on stderr, unless quiet.
    pub fn line(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr().lock(), "{message}");
        }
    }
}

/// Writes one result line to stdout.
pub fn result(line: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

/// Whether stdout is a terminal (tables may then be truncated for humans).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Docker's prune report on stdout: `heading` (`Deleted Images:`) and one
/// line each, then a blank line, unless nothing went; then `Total
/// reclaimed space: SIZE` (a cancelled prune's `0B` too).
pub fn pruned(heading: &str, lines: &[String], reclaimed: u64) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if !lines.is_empty() {
        writeln!(out, "{heading}")?;
        for line in lines {
            writeln!(out, "{line}")?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "Total reclaimed space: {}",
        crate::format::human::size_precise(reclaimed)
    )
}
