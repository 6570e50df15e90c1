//! img-prune: Docker's `docker image prune`. Asks for confirmation unless
//! `-f`, from stdin terminal or not, as Docker does (scripts pass `-f`).

use berth::cli::{self, StoreArgs};
use berth::image::{PruneOptions, Removal, prune};
use berth::{Exit, Failure, container, exit, output};
use clap::Parser;

/// Remove unused images.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Remove all images no container uses, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Filter: until=TIMESTAMP|DURATION, label=KEY[=VALUE], label!=KEY[=VALUE]
    #[arg(long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let io = |e: std::io::Error| Failure::new(Exit::Failed, e.to_string());
        let cli = Cli::parse();
        if !cli.force && !cli::confirm(warning(cli.all)) {
            return output::pruned("", &[], 0).map_err(io);
        }
        let store = cli.store.open()?;
        let options = PruneOptions {
            all: cli.all,
            filters: cli.filters,
        };
        // What a killed build left goes first: its processes hold leases.
        container::owner::sweep_orphans(&store);
        let (removed, reclaimed) = prune(&store, &options).map_err(Failure::from)?;
        let lines: Vec<String> = removed
            .iter()
            .map(|removal| match removal {
                Removal::Untagged(r) => format!("untagged: {r}"),
                Removal::Deleted(id) => format!("deleted: {id}"),
            })
            .collect();
        output::pruned("Deleted Images:", &lines, reclaimed.bytes).map_err(io)
    })
}

fn warning(all: bool) -> &'static str {
    if all {
        "This will remove all images without at least one container associated to them."
    } else {
        "This will remove all dangling images."
    }
}
