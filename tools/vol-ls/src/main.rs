//! vol-ls: Docker's `docker volume ls`. Every volume of the store, by
//! name; `-q` names only; `-f dangling=|name=|label=|driver=`.

use berth::cli::{self, StoreArgs};
use berth::exit::{self, Exit, Failure};
use berth::format::{Format, Table};
use berth::output;
use berth::volume::Volumes;
use berth::volume::view::{self, Filter};
use clap::Parser;

/// List volumes.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Only display volume names
    #[arg(short, long)]
    quiet: bool,
    /// Filter: dangling=true|false, name=PART, label=KEY[=VALUE], driver=local
    #[arg(short, long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// Format the output: table, table TEMPLATE, json or TEMPLATE
    #[arg(long)]
    format: Option<String>,
}

/// The `--format` fields and their table headers.
const HEADERS: &[(&str, &str)] = &[
    ("Name", "VOLUME NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
];

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
        let format = Format::parse(cli.format.as_deref())?;
        let store = cli.store.open()?;
        let records = store.containers()?;
        let volumes: Vec<_> = Volumes::of(&store)
            .list()?
            .into_iter()
            .filter(|v| filters.iter().all(|f| f.keeps(v, &records)))
            .collect();
        if cli.quiet {
            for volume in &volumes {
                output::result(&volume.name);
            }
            return Ok(());
        }
        let rows: Vec<serde_json::Value> = volumes.iter().map(view::row).collect();
        match format.render(&rows, HEADERS)? {
            Some(text) => print!("{text}"),
            None => {
                let mut table = Table::new();
                table.row(&["DRIVER", "VOLUME NAME"]);
                for volume in &volumes {
                    table.row(&[volume.driver.as_str(), volume.name.as_str()]);
                }
                print!("{}", table.render());
            }
        }
        Ok(())
    })
}
