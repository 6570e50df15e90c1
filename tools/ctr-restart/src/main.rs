//! ctr-restart: Docker's `docker restart`: stop (signal, then SIGKILL after
//! the timeout) and start again with the same config and files.

use berth::cli::{ContainerTargets, StopArgs, StoreArgs};
use berth::exit;
use berth::lifecycle::{self, LifecycleError};
use clap::Parser;

/// Restart one or more containers.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    targets: ContainerTargets,
    #[command(flatten)]
    stop: StopArgs,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let signal = cli.stop.signal()?;
        let targets = cli.targets.read()?;
        let store = cli.store.open()?;
        let timeout = cli.stop.timeout();
        exit::each(&targets, |target| -> Result<(), LifecycleError> {
            let record = lifecycle::find(&store, target)?;
            lifecycle::stop(&store, &record, timeout, signal)?;
            lifecycle::start(&store, &record, false)
        })
    })
}
