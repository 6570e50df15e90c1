//! ctr-prune: Docker's `docker container prune`. Removes every stopped
//! container; asks for confirmation unless `-f`, from stdin terminal or
//! not, as Docker does (as img-prune).

use berth::cli::{self, StoreArgs};
use berth::format::human;
use berth::image::PruneFilter;
use berth::{Exit, Failure, exit, lifecycle};
use clap::Parser;
use std::io::Write;
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
        let cli: Cli = cli::parse()?;
        let now = SystemTime::now();
        let filters = cli
            .filters
            .iter()
            .map(|f| PruneFilter::parse(f, now))
            .collect::<Result<Vec<_>, _>>()?;
        if !cli.force && !cli::confirm("This will remove all stopped containers.") {
            println!("Total reclaimed space: 0B");
            return Ok(());
        }
        let store = cli.store.open()?;
        let pruned = lifecycle::prune(&store, &filters)?;
        let mut out = std::io::stdout().lock();
        let io = |e: std::io::Error| Failure::new(Exit::Failed, e.to_string());
        if !pruned.ids.is_empty() {
            writeln!(out, "Deleted Containers:").map_err(io)?;
            for id in &pruned.ids {
                writeln!(out, "{id}").map_err(io)?;
            }
            writeln!(out).map_err(io)?;
        }
        writeln!(
            out,
            "Total reclaimed space: {}",
            human::size_precise(pruned.reclaimed)
        )
        .map_err(io)?;
        Ok(())
    })
}
