//! ctr-stop: Docker's `docker stop`. The image's stop signal (SIGTERM by
//! default), then SIGKILL after the timeout; prints each container stopped.

use berth::cli::{ContainerTargets, StopArgs, StoreArgs};
use berth::exit;
use berth::lifecycle::{self, LifecycleError};
use clap::Parser;

/// Stop one or more running containers.
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
            lifecycle::stop(&store, &record, timeout, signal)
        })
    })
}
