//! Flags every tool shares, so `--root` means the same thing everywhere.

use crate::store::{Store, StoreError};
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Store root [default: $BERTH_ROOT, else /var/lib/berth as root, else $XDG_DATA_HOME/berth]
    #[arg(long, value_name = "DIR", global = true)]
    pub root: Option<PathBuf>,
}

impl StoreArgs {
    /// Opens (creating if needed) the selected store.
    pub fn open(&self) -> Result<Store, StoreError> {
        Store::open(crate::root::select(self.root.clone()))
    }
}

/// The containers a lifecycle tool acts on, from its arguments or stdin.
#[derive(Debug, Clone, clap::Args)]
pub struct ContainerTargets {
    /// Containers: names, IDs or unique ID prefixes ("-" or none: stdin)
    pub containers: Vec<String>,
}

impl ContainerTargets {
    /// The targets per the pipe contract.
    pub fn read(&self) -> Result<Vec<String>, crate::pipe::PipeError> {
        crate::pipe::targets_from_process(&self.containers, crate::pipe::CONTAINER_FIELDS)
    }
}

/// Docker's `--detach-keys`, for the tools that attach a terminal.
#[derive(Debug, Clone, clap::Args)]
pub struct DetachKeysArg {
    /// Keys that detach and leave the container running (default: ctrl-p,ctrl-q)
    #[arg(long = "detach-keys", value_name = "KEYS", value_parser = crate::runtime::tty::DetachKeys::parse)]
    pub detach_keys: Option<crate::runtime::tty::DetachKeys>,
}

impl DetachKeysArg {
    pub fn keys(&self) -> crate::runtime::tty::DetachKeys {
        self.detach_keys.clone().unwrap_or_default()
    }
}

/// How ctr-stop and ctr-restart stop a container.
#[derive(Debug, Clone, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "timeout", default_value_t = 10)]
    pub timeout: u64,
    /// Signal to send instead of the image's stop signal
    #[arg(short, long)]
    pub signal: Option<String>,
}

impl StopArgs {
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout)
    }

    /// The chosen signal, if one was given.
    pub fn signal(&self) -> Result<Option<i32>, crate::lifecycle::LifecycleError> {
        self.signal
            .as_deref()
            .map(crate::lifecycle::parse_signal)
            .transpose()
    }
}

/// Bad arguments on one line, as every berth error is: a typed flag's own
/// words (`invalid --memory value "lots": …`, `invalid --network value …`,
/// `invalid platform …`), else clap's first line.
pub fn arguments_error(error: &clap::Error) -> String {
    let ours = std::error::Error::source(error).filter(|why| {
        why.is::<crate::runtime::FlagError>()
            || why.is::<crate::network::NetworkError>()
            || why.is::<crate::platform::PlatformError>()
    });
    match ours {
        Some(why) => why.to_string(),
        None => {
            let text = error.to_string();
            let line = text.lines().next().unwrap_or("bad arguments");
            line.trim_start_matches("error: ").to_string()
        }
    }
}

/// Parses the command line, a bad one refused on one line with the usage
/// code (2); `--help` and `--version` print and exit as clap's do.
pub fn parse<P: clap::Parser>() -> Result<P, crate::Failure> {
    P::try_parse().or_else(|e| {
        if e.use_stderr() {
            Err(crate::Failure::new(crate::Exit::Usage, arguments_error(&e)))
        } else {
            e.exit()
        }
    })
}

/// The variable that asks a tool for its completions or man page instead of
/// running: `BERTH_GENERATE=bash|zsh|fish|man TOOL` prints it on stdout and
/// exits. `cargo xtask install` and `cargo xtask deb` generate every tool's
/// files this way, from the tool's own clap definition, so they never drift.
pub const GENERATE: &str = "BERTH_GENERATE";

/// A tool's first line: answers [`GENERATE`] (and exits) when it is set,
/// else returns at once. Checked before any parsing, so a tool's required
/// arguments never stand in the way.
pub fn generate_on_request<P: clap::CommandFactory>() {
    let Some(kind) = std::env::var_os(GENERATE) else {
        return;
    };
    let mut command = P::command();
    let name = command.get_name().to_string();
    let mut out = Vec::new();
    // Each generator named, not through clap_complete::Shell, so the other
    // shells' generators are not linked into every tool.
    use clap_complete::{generate, shells};
    let written = match kind.to_str().unwrap_or_default() {
        "man" => man_page(command, &mut out),
        "bash" => {
            generate(shells::Bash, &mut command, name.clone(), &mut out);
            Ok(())
        }
        "zsh" => {
            generate(shells::Zsh, &mut command, name.clone(), &mut out);
            Ok(())
        }
        "fish" => {
            generate(shells::Fish, &mut command, name.clone(), &mut out);
            Ok(())
        }
        _ => {
            eprintln!("{name}: {GENERATE} must be bash, zsh, fish or man");
            std::process::exit(crate::Exit::Usage as i32);
        }
    };
    let written = written.and_then(|()| std::io::Write::write_all(&mut std::io::stdout(), &out));
    match written {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("{name}: writing the generated text: {e}");
            std::process::exit(crate::Exit::Failed as i32);
        }
    }
}

/// clap_mangen's page, its after-help footer replaced by a SEE ALSO section
/// naming the siblings' pages and berth(7).
fn man_page(command: clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    let name = command.get_name().to_string();
    let man = clap_mangen::Man::new(command).manual("berth");
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    let mut pages: Vec<String> = crate::tools::find(&name)
        .map(|tool| tool.see_also)
        .unwrap_or_default()
        .iter()
        .map(|sibling| format!("{sibling}(1)"))
        .collect();
    pages.push("berth(7)".to_string());
    let mut see_also = clap_mangen::roff::Roff::new();
    see_also
        .control("SH", ["SEE ALSO"])
        .text([clap_mangen::roff::roman(pages.join(", "))]);
    out.extend_from_slice(see_also.to_roff().as_bytes());
    man.render_version_section(out)
}

/// A `KEY=VALUE` flag as Docker reads `--label`: a bare `KEY` has an
/// empty value, and only the first `=` splits.
pub fn key_value(flag: &str) -> (String, String) {
    let (key, value) = flag.split_once('=').unwrap_or((flag, ""));
    (key.to_string(), value.to_string())
}

/// Docker's confirmation before a prune: the warning and `[y/N]` (on
/// stderr, which carries everything that is not a result), then one line
/// read from stdin, terminal or not. Only `y` or `Y` goes on; anything
/// else, an empty line or no stdin at all cancels, as with Docker.
pub fn confirm(warning: &str) -> bool {
    use std::io::BufRead;
    eprint!("WARNING! {warning}\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    is_yes(&answer)
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim_end_matches(['\n', '\r']), "y" | "Y")
}

#[cfg(test)]
mod confirm_tests {
    #[test]
    fn only_y_confirms() {
        for yes in ["y\n", "Y\n", "y"] {
            assert!(super::is_yes(yes), "{yes:?}");
        }
        for no in ["", "\n", "n\n", "yes\n", " y\n", "N\n", "\u{0}"] {
            assert!(!super::is_yes(no), "{no:?}");
        }
    }
}
