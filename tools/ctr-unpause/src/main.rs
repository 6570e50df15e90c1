//! ctr-unpause: Docker's `docker unpause`. Thaws every process of each paused container, as
//! Docker's does; prints each container acted on.

use berth::cli::{self, ContainerTargets, StoreArgs};
use berth::exit;
use berth::lifecycle::{self, LifecycleError};
use clap::Parser;

/// Unpause all processes within one or more containers.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    targets: ContainerTargets,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        let targets = cli.targets.read()?;
        let store = cli.store.open()?;
        exit::each(&targets, |target| -> Result<(), LifecycleError> {
            let record = lifecycle::find(&store, target)?;
            lifecycle::unpause(&store, &record)
        })
    })
}
