//! vol-rm: Docker's `docker volume rm`. Removes volumes no container uses
//! (running or not), printing each as given; `-f` says nothing of one that
//! is not there.

use berth::cli::{self, StoreArgs};
use berth::volume::{VolumeError, Volumes};
use berth::{exit, pipe};
use clap::Parser;

/// Remove one or more volumes.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Do not fail on a volume that is not there
    #[arg(short, long)]
    force: bool,
    /// Volumes, by name ("-" or none: stdin)
    volumes: Vec<String>,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        let targets = pipe::targets_from_process(&cli.volumes, pipe::VOLUME_FIELDS)?;
        let store = cli.store.open()?;
        let volumes = Volumes::of(&store);
        exit::each(&targets, |name| match volumes.remove(name) {
            Err(VolumeError::NotFound(_)) if cli.force => Ok(()),
            other => other.map(drop),
        })
    })
}
