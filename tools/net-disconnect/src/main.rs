//! net-disconnect: Docker's `docker network disconnect`. Takes a container
//! off a network: a running one at once (its interface, address and name
//! there go), a stopped one from its next start.

use berth::cli::{self, StoreArgs};
use berth::exit;
use berth::lifecycle;
use clap::Parser;

/// Disconnect a container from a network.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    force: bool,
    /// Network: name, ID or unique ID prefix
    network: String,
    /// Container: name, ID or unique ID prefix
    container: String,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        let store = cli.store.open()?;
        lifecycle::disconnect(&store, &cli.network, &cli.container, cli.force)?;
        Ok(())
    })
}
