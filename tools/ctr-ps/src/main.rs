//! ctr-ps: Docker's `docker ps`. Running containers by default, `-a` all;
//! a table, `-q` IDs, or `--format json|table TEMPLATE|TEMPLATE`.

use berth::cli::StoreArgs;
use berth::container::view::{self, Filter};
use berth::format::{Format, Table};
use berth::{Exit, Failure, exit, lifecycle, output};
use clap::Parser;
use std::time::SystemTime;

/// List containers.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Filter: status=, name=, id=, ancestor=, label=KEY[=VALUE], exited=CODE, health=, before=, since=
    #[arg(short, long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// Format: json, table, table TEMPLATE, or a Go template
    #[arg(long)]
    format: Option<String>,
    /// Show the last N created containers (all states)
    #[arg(short = 'n', long)]
    last: Option<usize>,
    /// Show the latest created container (all states)
    #[arg(short, long)]
    latest: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only display container IDs
    #[arg(short, long)]
    quiet: bool,
    /// Display total file sizes
    #[arg(short, long)]
    size: bool,
}

/// Header labels for `table` templates, by field.
const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let format = Format::parse(cli.format.as_deref())?;
        let filters = cli
            .filters
            .iter()
            .map(|f| Filter::parse(f))
            .collect::<Result<Vec<_>, _>>()?;
        let store = cli.store.open()?;
        let last = if cli.latest { Some(1) } else { cli.last };
        // Docker: a status filter, -n or -l look past the running ones.
        let all =
            cli.all || last.is_some() || filters.iter().any(|f| matches!(f, Filter::Status(_)));
        let listed = lifecycle::list(&store)?;
        let filters = filters
            .into_iter()
            .map(|f| f.bind(&listed))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Failure::new(Exit::Failed, e.to_string()))?;
        let mut records: Vec<_> = listed
            .into_iter()
            .filter(|r| all || r.state.running)
            .filter(|r| filters.iter().all(|f| f.matches(&store, r)))
            .collect();
        if let Some(n) = last {
            records.truncate(n);
        }
        let now = SystemTime::now();
        if cli.quiet {
            for record in &records {
                output::result(if cli.no_trunc {
                    &record.id[..]
                } else {
                    &record.id[..12]
                });
            }
            return Ok(());
        }
        let rows: Vec<serde_json::Value> = records
            .iter()
            .map(|r| view::row(&store, r, now, cli.no_trunc, cli.size))
            .collect();
        if let Some(text) = format.render(&rows, HEADERS)? {
            print!("{text}");
            return Ok(());
        }
        let mut table = Table::new();
        let mut header = vec![
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ];
        if cli.size {
            header.push("SIZE");
        }
        table.row(&header);
        for row in &rows {
            let cell = |k: &str| row[k].as_str().unwrap_or_default().to_string();
            let mut cells: Vec<String> = [
                "ID",
                "Image",
                "Command",
                "RunningFor",
                "Status",
                "Ports",
                "Names",
            ]
            .iter()
            .map(|k| cell(k))
            .collect();
            if cli.size {
                cells.push(cell("Size"));
            }
            table.row(&cells);
        }
        print!("{}", table.render());
        Ok(())
    })
}
