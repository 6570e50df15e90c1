//! ctr-wait: Docker's `docker wait`. Blocks until each container stops and
//! prints its exit code, one line per container, in the order given.

use berth::cli::{self, ContainerTargets, StoreArgs};
use berth::exit;
use berth::lifecycle::{self, LifecycleError};
use clap::Parser;

/// Block until one or more containers stop, then print their exit codes.
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
        exit::each_printing(&targets, |target| -> Result<i32, LifecycleError> {
            let record = lifecycle::find(&store, target)?;
            lifecycle::wait(&store, &record)
        })
    })
}
