//! vol-create: Docker's `docker volume create`. Makes a volume in the
//! store (a random 64-hex name if none is given) and prints its name; a
//! volume that is there already is left as it is, as Docker's.

use berth::cli::{self, StoreArgs};
use berth::exit::{self, Exit, Failure};
use berth::output;
use berth::volume::Volumes;
use clap::Parser;
use std::collections::BTreeMap;

/// Create a volume.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Volume driver name (only local)
    #[arg(short, long, default_value = "local")]
    driver: String,
    /// Set metadata for a volume: KEY=VALUE
    #[arg(long)]
    label: Vec<String>,
    /// Specify volume name (as the argument)
    #[arg(long = "name", value_name = "NAME")]
    name_flag: Option<String>,
    /// Volume name (default: a random one)
    name: Option<String>,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        if cli.driver != "local" {
            return Err(Failure::new(
                Exit::Failed,
                format!("plugin \"{}\" not found", cli.driver),
            ));
        }
        let name = match (cli.name, cli.name_flag) {
            (Some(a), Some(b)) if a != b => {
                return Err(Failure::new(
                    Exit::Usage,
                    format!(
                        "conflicting options: either specify --name or provide positional arg, not both ({a}, {b})"
                    ),
                ));
            }
            (a, b) => a.or(b),
        };
        let labels: BTreeMap<String, String> =
            cli.label.iter().map(|l| cli::key_value(l)).collect();
        let store = cli.store.open()?;
        let volume = Volumes::of(&store).create(name.as_deref(), labels)?;
        output::result(volume.name);
        Ok(())
    })
}
