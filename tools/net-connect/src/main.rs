//! net-connect: Docker's `docker network connect`. Puts a container on one
//! more network: a running one at once (its next interface, a name other
//! containers there resolve), a stopped one from its next start.

use berth::cli::{self, StoreArgs};
use berth::exit;
use berth::lifecycle::{self, ConnectOptions};
use clap::Parser;

/// Connect a container to a network.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Add network-scoped alias for the container
    #[arg(long)]
    alias: Vec<String>,
    /// IPv4 address (e.g. 172.30.100.104)
    #[arg(long)]
    ip: Option<std::net::Ipv4Addr>,
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
        let options = ConnectOptions {
            ip: cli.ip,
            aliases: cli.alias,
        };
        lifecycle::connect(&store, &cli.network, &cli.container, &options)?;
        Ok(())
    })
}
