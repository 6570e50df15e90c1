//! ctr-cp: Docker's `docker cp`. `CONTAINER:SRC DEST|-` copies out of a
//! container (running or stopped), `SRC|- CONTAINER:DEST` into one; `-` is
//! a tar on stdout or stdin.

use berth::cli::{self, StoreArgs};
use berth::container::copy::{self, CopyOptions, Local};
use berth::format::human;
use berth::{Exit, Failure, exit, lifecycle};
use clap::Parser;
use std::io::IsTerminal;
use std::path::PathBuf;

/// Copy files/folders between a container and the local filesystem.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short, long)]
    quiet: bool,
    /// CONTAINER:SRC_PATH, or a local SRC_PATH, or "-" (a tar on stdin)
    #[arg(allow_hyphen_values = true)]
    source: String,
    /// A local DEST_PATH, or "-" (a tar on stdout), or CONTAINER:DEST_PATH
    #[arg(allow_hyphen_values = true)]
    destination: String,
}

/// Docker's split of `CONTAINER:PATH`: an absolute path, or one whose
/// part before the colon starts with `.`, is local (`./file:name.txt`).
fn split(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((container, path)) if !container.starts_with('.') => (Some(container), path),
        _ => (None, arg),
    }
}

fn local(path: &str) -> Local {
    if path == "-" {
        Local::Stream
    } else {
        Local::Path(PathBuf::from(path))
    }
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        let options = CopyOptions {
            archive: cli.archive,
            follow_link: cli.follow_link,
        };
        let store = cli.store.open()?;
        let (copied, to) = match (split(&cli.source), split(&cli.destination)) {
            ((Some(_), _), (Some(_), _)) => {
                return Err(Failure::new(
                    Exit::Failed,
                    "copying between containers is not supported",
                ));
            }
            ((None, _), (None, _)) => {
                return Err(Failure::new(
                    Exit::Failed,
                    "must specify at least one container source",
                ));
            }
            ((Some(name), src), (None, dest)) => {
                let record = lifecycle::find(&store, name)?;
                let stdout = std::io::stdout().lock();
                let bytes = copy::from_container(
                    &store,
                    &record,
                    name,
                    src,
                    &local(dest),
                    options,
                    stdout,
                )?;
                (bytes, dest.to_string())
            }
            ((None, src), (Some(name), dest)) => {
                let record = lifecycle::find(&store, name)?;
                let stdin = std::io::stdin().lock();
                let bytes =
                    copy::into_container(&store, &record, name, &local(src), dest, options, stdin)?;
                (bytes, format!("{name}:{dest}"))
            }
        };
        // Docker's closing line, only where someone watches.
        if !cli.quiet && to != "-" && std::io::stderr().is_terminal() {
            eprintln!("Successfully copied {} to {to}", human::size(copied));
        }
        Ok(())
    })
}
