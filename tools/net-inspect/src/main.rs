//! net-inspect: Docker's `docker network inspect`. A JSON array, or one
//! rendered `--format` template per network.

use berth::cli::{self, StoreArgs};
use berth::container::network_view;
use berth::format::Template;
use berth::{Exit, Failure, exit};
use clap::Parser;

/// Display detailed information on one or more networks.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Format the output using a Go template, or "json"
    #[arg(short, long)]
    format: Option<String>,
    /// Networks: names, IDs or unique ID prefixes
    #[arg(required = true)]
    networks: Vec<String>,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        let template = match cli.format.as_deref() {
            None | Some("json") => None,
            Some(text) => Some(Template::parse(text)?),
        };
        let store = cli.store.open()?;
        let mut objects = Vec::new();
        let mut failed = false;
        for target in &cli.networks {
            match network_view::find(&store, target) {
                Ok(listed) => objects.push(network_view::inspect(&store, &listed)),
                Err(error) => {
                    failed = true;
                    eprintln!("net-inspect: {}", Failure::from(error).line());
                }
            }
        }
        berth::format::print_inspected(&objects, template.as_ref())?;
        match failed {
            false => Ok(()),
            true => Err(Failure::reported(Exit::Failed)),
        }
    })
}
