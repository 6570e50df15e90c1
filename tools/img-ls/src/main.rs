//! img-ls: Docker's `docker images`. A table by default; `-q` IDs;
//! `--format json|table TEMPLATE|TEMPLATE`.

use berth::cli::StoreArgs;
use berth::format::{Format, Table, human};
use berth::image::{ListOptions, Row, list};
use berth::{exit, output};
use clap::Parser;
use std::time::SystemTime;

/// List images.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Only images whose repository (and tag) match, e.g. busybox or busybox:1.36
    repository: Option<String>,
    /// Show all images (berth keeps no intermediate images, so the same as the default)
    #[arg(short, long)]
    all: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Filter: dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE, label=KEY[=VALUE]
    #[arg(short, long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// Format: json, table, table TEMPLATE, or a Go template
    #[arg(long)]
    format: Option<String>,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
}

/// Header labels for `table` templates, by field.
const HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("ID", "IMAGE ID"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("Containers", "CONTAINERS"),
];

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let format = Format::parse(cli.format.as_deref())?;
        let _ = cli.all;
        let options = ListOptions {
            filters: cli.filters.clone(),
            repository: cli.repository.clone(),
        };
        let rows = list(&cli.store.open()?, &options)?;
        let now = SystemTime::now();
        if cli.quiet {
            let mut seen = std::collections::HashSet::new();
            for row in &rows {
                let id = if cli.no_trunc {
                    row.id.to_string()
                } else {
                    row.id.short().to_string()
                };
                if seen.insert(id.clone()) {
                    output::result(&id);
                }
            }
            return Ok(());
        }
        if matches!(format, Format::Default) {
            print!("{}", default_table(&rows, now, &cli));
            return Ok(());
        }
        let objects: Vec<serde_json::Value> = rows
            .iter()
            .map(|row| row.to_json(now, cli.no_trunc))
            .collect();
        if let Some(text) = format.render(&objects, HEADERS)? {
            print!("{text}");
        }
        Ok(())
    })
}

fn default_table(rows: &[Row], now: SystemTime, cli: &Cli) -> String {
    let mut table = Table::new();
    let mut header = vec!["REPOSITORY", "TAG"];
    if cli.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    table.row(&header);
    for row in rows {
        let none = || "<none>".to_string();
        let mut cells = vec![
            row.repository.clone().unwrap_or_else(none),
            row.tag.clone().unwrap_or_else(none),
        ];
        if cli.digests {
            cells.push(
                row.digest
                    .as_ref()
                    .map(|d| d.to_string())
                    .unwrap_or_else(none),
            );
        }
        cells.push(if cli.no_trunc {
            row.id.to_string()
        } else {
            row.id.short().to_string()
        });
        cells.push(
            row.created
                .map(|c| human::ago(c, now))
                .unwrap_or_else(|| "N/A".into()),
        );
        cells.push(human::size(row.size));
        table.row(&cells);
    }
    table.render()
}
