//! vol-prune: Docker's `docker volume prune` (23.0 and later): removes the
//! anonymous volumes no container uses, `-a` every unused one. Asks for
//! confirmation unless `-f`, as the other prune tools do.

use berth::cli::{self, StoreArgs};
use berth::format::human;
use berth::volume::Volumes;
use berth::volume::view::Filter;
use berth::{Exit, Failure, exit};
use clap::Parser;
use std::io::Write;

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
        let cli: Cli = cli::parse()?;
        let filters = cli
            .filters
            .iter()
            .map(|f| f.parse::<Filter>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Failure::new(Exit::Failed, e))?;
        if !cli.force && !cli::confirm(warning(cli.all)) {
            println!("Total reclaimed space: 0B");
            return Ok(());
        }
        let store = cli.store.open()?;
        let pruned = Volumes::of(&store).prune(cli.all, |volume| {
            !filters.iter().all(|f| f.keeps(volume, &[]))
        })?;
        let mut out = std::io::stdout().lock();
        let io = |e: std::io::Error| Failure::new(Exit::Failed, e.to_string());
        if !pruned.names.is_empty() {
            writeln!(out, "Deleted Volumes:").map_err(io)?;
            for name in &pruned.names {
                writeln!(out, "{name}").map_err(io)?;
            }
            writeln!(out).map_err(io)?;
        }
        writeln!(
            out,
            "Total reclaimed space: {}",
            human::size_precise(pruned.bytes)
        )
        .map_err(io)?;
        Ok(())
    })
}

fn warning(all: bool) -> &'static str {
    if all {
        "This will remove all local volumes not used by at least one container."
    } else {
        "This will remove anonymous local volumes not used by at least one container."
    }
}
