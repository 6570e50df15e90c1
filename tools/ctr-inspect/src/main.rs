//! ctr-inspect: Docker's `docker inspect` for containers. A JSON array, or
//! one rendered `--format` template per container.

use berth::cli::{ContainerTargets, StoreArgs};
use berth::container::view;
use berth::format::Template;
use berth::{Exit, Failure, exit, lifecycle};
use clap::Parser;

/// Display detailed information on one or more containers.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    targets: ContainerTargets,
    /// Format the output using a Go template, or "json"
    #[arg(short, long)]
    format: Option<String>,
    /// Display total file sizes (SizeRw, SizeRootFs)
    #[arg(short, long)]
    size: bool,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let template = match cli.format.as_deref() {
            None | Some("json") => None,
            Some(text) => Some(Template::parse(text)?),
        };
        let targets = cli.targets.read()?;
        let store = cli.store.open()?;
        let mut objects = Vec::new();
        let mut failed = 0;
        for target in &targets {
            match lifecycle::find(&store, target) {
                Ok(record) => objects.push(view::inspect(&store, &record, cli.size)),
                Err(error) => {
                    failed += 1;
                    eprintln!("ctr-inspect: {}", Failure::from(error).line());
                }
            }
        }
        // Like Docker: print what was found, then fail for what was not.
        berth::format::print_inspected(&objects, template.as_ref())?;
        match failed {
            0 => Ok(()),
            _ => Err(Failure::reported(Exit::Failed)),
        }
    })
}
