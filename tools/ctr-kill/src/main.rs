//! ctr-kill: Docker's `docker kill`. Sends a signal (KILL by default) to
//! each running container's init; prints each container signalled.

use berth::cli::StoreArgs;
use berth::lifecycle::{self, LifecycleError};
use berth::{exit, pipe};
use clap::Parser;

/// Kill one or more running containers.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Containers: names, IDs or unique ID prefixes ("-" or none: stdin)
    containers: Vec<String>,
    /// Signal to send: a name (KILL, SIGTERM) or a number
    #[arg(short, long, default_value = "KILL")]
    signal: String,
}

fn main() -> std::process::ExitCode {
    exit::run(|| {
        let cli = Cli::parse();
        let signal = lifecycle::parse_signal(&cli.signal)?;
        let targets = pipe::targets_from_process(&cli.containers, pipe::CONTAINER_FIELDS)?;
        let store = cli.store.open()?;
        exit::each(&targets, |target| -> Result<(), LifecycleError> {
            let record = lifecycle::find(&store, target)?;
            lifecycle::kill(&store, &record, signal)
        })
    })
}
