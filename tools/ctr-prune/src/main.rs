//! ctr-prune: Docker's `docker container prune`. Removes every stopped
//! container; asks for confirmation unless `-f`, from stdin terminal or
//! not, as Docker does (as img-prune).

use berth::cli::{self, StoreArgs};
use berth::image::PruneFilter;
use berth::{Exit, Failure, exit, lifecycle, output};
use clap::Parser;
use std::time::SystemTime;

/// Remove all stopped containers.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
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
        let cli: Cli = cli::parse()?;
        let now = SystemTime::now();
        let filters = cli
            .filters
            .iter()
            .map(|f| PruneFilter::parse(f, now))
            .collect::<Result<Vec<_>, _>>()?;
        if !cli.force && !cli::confirm("This will remove all stopped containers.") {
            return output::pruned("", &[], 0).map_err(io);
        }
        let store = cli.store.open()?;
        let pruned = lifecycle::prune(&store, &filters)?;
        output::pruned("Deleted Containers:", &pruned.ids, pruned.reclaimed).map_err(io)
    })
}
