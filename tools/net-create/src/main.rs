//! net-create: Docker's `docker network create`. A bridge network of the
//! store's own, whose containers reach each other by name; prints its ID.

use berth::cli::{self, StoreArgs};
use berth::exit::{self, Exit, Failure};
use berth::network::ipam::Subnet;
use berth::network::networks::{Networks, NewNetwork};
use berth::output;
use clap::Parser;
use std::collections::BTreeMap;

/// Create a network.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Driver to manage the network (only bridge)
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format, e.g. 172.30.0.0/16 (default: a free one)
    #[arg(long)]
    subnet: Option<Subnet>,
    /// IPv4 gateway for the subnet (default: its first address)
    #[arg(long)]
    gateway: Option<std::net::Ipv4Addr>,
    /// Restrict external access to the network (no route out, no NAT)
    #[arg(long)]
    internal: bool,
    /// Set metadata on the network: KEY=VALUE
    #[arg(long)]
    label: Vec<String>,
    /// Network name
    name: String,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        if cli.driver != "bridge" {
            return Err(Failure::new(
                Exit::Failed,
                format!("plugin \"{}\" not found", cli.driver),
            ));
        }
        let labels: BTreeMap<String, String> =
            cli.label.iter().map(|l| cli::key_value(l)).collect();
        let store = cli.store.open()?;
        let network = Networks::of(&store).create(&NewNetwork {
            name: &cli.name,
            subnet: cli.subnet,
            gateway: cli.gateway,
            internal: cli.internal,
            labels,
        })?;
        output::result(network.id);
        Ok(())
    })
}
