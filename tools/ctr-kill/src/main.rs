//! ctr-kill: Docker's `docker kill`. Sends a signal (KILL by default) to
//! each running container's init; prints each container signalled.

use berth::cli::{ContainerTargets, StoreArgs};
use berth::exit;
use berth::lifecycle::{self, LifecycleError};
use clap::Parser;

/// Kill one or more running containers.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    targets: ContainerTargets,
    /// Signal to send: a name (KILL, SIGTERM) or a number
    #[arg(short, long, default_value = "KILL")]
    signal: String,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let signal = lifecycle::parse_signal(&cli.signal)?;
        let targets = cli.targets.read()?;
        let store = cli.store.open()?;
        exit::each(&targets, |target| -> Result<(), LifecycleError> {
            let record = lifecycle::find(&store, target)?;
            lifecycle::kill(&store, &record, signal)
        })
    })
}
