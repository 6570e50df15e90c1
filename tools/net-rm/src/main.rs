//! net-rm: Docker's `docker network rm`. Removes networks no running
//! container is on, printing each as given.

use berth::cli::{self, StoreArgs};
use berth::exit;
use berth::network::networks::Networks;
use clap::Parser;

/// Remove one or more networks.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Networks: names, IDs or unique ID prefixes
    #[arg(required = true)]
    networks: Vec<String>,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        let store = cli.store.open()?;
        let networks = Networks::of(&store);
        exit::each(&cli.networks, |target| networks.remove(target).map(drop))
    })
}
