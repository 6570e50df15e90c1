//! vol-prune: Docker's `docker volume prune` (23.0 and later): removes the
//! anonymous volumes no container uses, `-a` every unused one. Asks for
//! confirmation unless `-f`, as the other prune tools do.

use berth::cli::{self, StoreArgs};
use berth::volume::Volumes;
use berth::volume::view::Filter;
use berth::{Exit, Failure, exit, output};
use clap::Parser;

/// Remove unused local volumes.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    all: bool,
    /// Filter: label=KEY[=VALUE], name=PART
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
        let filters = cli
            .filters
            .iter()
            .map(|f| f.parse::<Filter>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Failure::new(Exit::Failed, e))?;
        if !cli.force && !cli::confirm(warning(cli.all)) {
            return output::pruned("", &[], 0).map_err(io);
        }
        let store = cli.store.open()?;
        let pruned = Volumes::of(&store).prune(cli.all, |volume| {
            !filters.iter().all(|f| f.keeps(volume, &[]))
        })?;
        output::pruned("Deleted Volumes:", &pruned.names, pruned.bytes).map_err(io)
    })
}

fn warning(all: bool) -> &'static str {
    if all {
        "This will remove all local volumes not used by at least one container."
    } else {
        "This will remove anonymous local volumes not used by at least one container."
    }
}
