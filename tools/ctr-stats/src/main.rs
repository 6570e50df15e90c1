//! ctr-stats: Docker's `docker stats`. CPU, memory, network and block I/O
//! and PIDs of containers, read from their cgroups: once with
//! `--no-stream`, else redrawn every half second until interrupted.

use berth::cli::{self, StoreArgs};
use berth::container::Record;
use berth::container::stats::Sample;
use berth::format::{Format, Table};
use berth::store::Store;
use berth::{Exit, Failure, exit, lifecycle, pipe};
use clap::Parser;
use std::time::Duration;

/// Display a live stream of container(s) resource usage statistics.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Format the output: table, table TEMPLATE, json or TEMPLATE
    #[arg(long)]
    format: Option<String>,
    /// Containers: names, IDs or unique ID prefixes ("-": stdin); none: every running one
    containers: Vec<String>,
}

/// The `--format` fields and their table headers.
const HEADERS: &[(&str, &str)] = &[
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

/// What the CPU share is measured over, and how often a stream redraws
/// (Docker's CLI redraws every 500 ms too).
const TICK: Duration = Duration::from_millis(500);

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        let format = Format::parse(cli.format.as_deref())?;
        let store = cli.store.open()?;
        let named = if cli.containers.is_empty() {
            None
        } else {
            Some(pipe::targets_from_process(
                &cli.containers,
                pipe::CONTAINER_FIELDS,
            )?)
        };
        // Named containers are found once, and stay listed when they stop,
        // as Docker keeps them; each failure is one line.
        let mut failed = false;
        let named: Option<Vec<(String, String)>> = named.map(|targets| {
            targets
                .into_iter()
                .filter_map(|target| match lifecycle::find(&store, &target) {
                    Ok(record) => Some((target, record.id)),
                    Err(e) => {
                        failed = true;
                        eprintln!("ctr-stats: {}", Failure::from(e).line());
                        None
                    }
                })
                .collect()
        });
        if named.as_ref().is_some_and(Vec::is_empty) {
            return Err(Failure::reported(Exit::Failed));
        }
        let mut earlier = sample(&listed(&store, named.as_deref(), cli.all)?);
        loop {
            // Without a running container there is no share to measure.
            if !cli.no_stream || earlier.iter().any(|(_, record, _)| record.state.running) {
                std::thread::sleep(TICK);
            }
            let now = sample(&listed(&store, named.as_deref(), cli.all)?);
            let rows: Vec<serde_json::Value> = now
                .iter()
                .map(|(target, record, sample)| {
                    let before = earlier
                        .iter()
                        .find(|(_, r, _)| r.id == record.id)
                        .map_or(sample, |(_, _, s)| s);
                    sample.row(before, record, target, cli.no_trunc)
                })
                .collect();
            if !cli.no_stream {
                // Docker's redraw: clear the screen, cursor home.
                print!("\x1b[2J\x1b[H");
            }
            print!("{}", render(&format, &rows)?);
            if cli.no_stream {
                break;
            }
            earlier = now;
        }
        if failed {
            return Err(Failure::reported(Exit::Failed));
        }
        Ok(())
    })
}

/// The containers to show, each with how the user named it: the named
/// ones in the order given, or every running one (`-a`: every one) in
/// ctr-ps's order, by short ID.
fn listed(
    store: &Store,
    named: Option<&[(String, String)]>,
    all: bool,
) -> Result<Vec<(String, Record)>, Failure> {
    Ok(match named {
        Some(named) => named
            .iter()
            .filter_map(|(target, id)| {
                // One removed meanwhile drops out of the table.
                lifecycle::find(store, id)
                    .ok()
                    .map(|record| (target.clone(), record))
            })
            .collect(),
        None => lifecycle::list(store)?
            .into_iter()
            .filter(|r| all || r.state.running)
            .map(|r| (r.id[..12].to_string(), r))
            .collect(),
    })
}

/// Each listed container with its counters now.
fn sample(listed: &[(String, Record)]) -> Vec<(String, Record, Sample)> {
    listed
        .iter()
        .map(|(target, record)| (target.clone(), record.clone(), Sample::take(record)))
        .collect()
}

fn render(format: &Format, rows: &[serde_json::Value]) -> Result<String, Failure> {
    if let Some(text) = format.render(rows, HEADERS)? {
        return Ok(text);
    }
    let mut table = Table::new();
    let fields = [
        "ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs",
    ];
    table.row(&fields.map(|f| {
        HEADERS
            .iter()
            .find(|(k, _)| *k == f)
            .map_or(f, |(_, header)| header)
    }));
    for row in rows {
        table.row(&fields.map(|f| row[f].as_str().unwrap_or_default().to_string()));
    }
    Ok(table.render())
}
