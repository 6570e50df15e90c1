//! ctr-restart: Docker's `docker restart`: stop (signal, then SIGKILL after
//! the timeout) and start again with the same config and files.

use berth::cli::StoreArgs;
use berth::lifecycle::{self, LifecycleError};
use berth::{exit, pipe};
use clap::Parser;
use std::time::Duration;

/// Restart one or more containers.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Containers: names, IDs or unique ID prefixes ("-" or none: stdin)
    containers: Vec<String>,
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "timeout", default_value_t = 10)]
    timeout: u64,
    /// Signal to send instead of the image's stop signal
    #[arg(short, long)]
    signal: Option<String>,
}

fn main() -> std::process::ExitCode {
    exit::run(|| {
        let cli = Cli::parse();
        let signal = cli
            .signal
            .as_deref()
            .map(lifecycle::parse_signal)
            .transpose()?;
        let targets = pipe::targets_from_process(&cli.containers, pipe::CONTAINER_FIELDS)?;
        let store = cli.store.open()?;
        let timeout = Duration::from_secs(cli.timeout);
        exit::each(&targets, |target| -> Result<(), LifecycleError> {
            let record = lifecycle::find(&store, target)?;
            lifecycle::stop(&store, &record, timeout, signal)?;
            lifecycle::start(&store, &record, false)
        })
    })
}
