//! net-ls: Docker's `docker network ls`. Every network by name: the
//! store's own and Docker's predefined `host` and `none`.

use berth::cli::{self, StoreArgs};
use berth::container::network_view;
use berth::exit;
use berth::format::{Format, Table};
use berth::output;
use clap::Parser;

/// List networks.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Only display network IDs
    #[arg(short, long)]
    quiet: bool,
    /// Do not truncate the output
    #[arg(long)]
    no_trunc: bool,
    /// Format the output: table, table TEMPLATE, json or TEMPLATE
    #[arg(long)]
    format: Option<String>,
    /// Filter output: name=, id=, driver=, type=custom|builtin, label=
    #[arg(short, long)]
    filter: Vec<String>,
}

/// The `--format` fields and their table headers.
const HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("CreatedAt", "CREATED AT"),
];

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        let format = Format::parse(cli.format.as_deref())?;
        let store = cli.store.open()?;
        let mut rows: Vec<serde_json::Value> = Vec::new();
        for listed in network_view::list(&store)? {
            if network_view::passes(&listed, &cli.filter)? {
                rows.push(network_view::row(&listed, cli.no_trunc));
            }
        }
        if cli.quiet {
            for row in &rows {
                output::result(row["ID"].as_str().unwrap_or_default());
            }
            return Ok(());
        }
        match format.render(&rows, HEADERS)? {
            Some(text) => print!("{text}"),
            None => {
                let mut table = Table::new();
                table.row(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"]);
                for row in &rows {
                    let cell = |key: &str| row[key].as_str().unwrap_or_default().to_string();
                    table.row(&[cell("ID"), cell("Name"), cell("Driver"), cell("Scope")]);
                }
                print!("{}", table.render());
            }
        }
        Ok(())
    })
}
