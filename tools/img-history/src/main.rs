//! img-history IMAGE: Docker's `docker history`. A table of the image's
//! history newest first; `-q` IDs; `--format json|table TEMPLATE|TEMPLATE`.

use berth::cli::{self, StoreArgs};
use berth::format::{Format, Table};
use berth::image::{HistoryStyle, history};
use berth::{exit, output, pipe};
use clap::{ArgAction, Parser};
use std::time::SystemTime;

/// Show the history of an image.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Format: json, table, table TEMPLATE, or a Go template
    #[arg(long)]
    format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, action = ArgAction::Set, default_value_t = true,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    human: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Image: reference, ID or unique ID prefix ("-": stdin)
    image: String,
}

/// Header labels for `table` templates, by field.
const HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        let format = Format::parse(cli.format.as_deref())?;
        let target = pipe::single_target(&cli.image, pipe::IMAGE_FIELDS)?;
        let rows = history(&cli.store.open()?, &target)?;
        let style = HistoryStyle {
            trunc: !cli.no_trunc,
            human: cli.human,
        };
        if cli.quiet {
            for row in &rows {
                output::result(row.id_text(style));
            }
            return Ok(());
        }
        let now = SystemTime::now();
        let objects: Vec<serde_json::Value> =
            rows.iter().map(|row| row.to_json(style, now)).collect();
        match format.render(&objects, HEADERS)? {
            Some(text) => print!("{text}"),
            None => {
                let mut table = Table::new();
                table.row(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]);
                for o in &objects {
                    let cell = |k: &str| o[k].as_str().unwrap_or("").to_string();
                    table.row(&[
                        cell("ID"),
                        cell("CreatedSince"),
                        cell("CreatedBy"),
                        cell("Size"),
                        cell("Comment"),
                    ]);
                }
                print!("{}", table.render());
            }
        }
        Ok(())
    })
}
