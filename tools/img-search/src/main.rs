//! img-search TERM: Docker's `docker search`. Docker's table, or
//! `--format json|TEMPLATE` rows, on stdout.

use berth::format::{Format, Table};
use berth::registry::RegistryOptions;
use berth::registry::search::{self, Found, Query};
use berth::{Exit, Failure, exit};
use clap::Parser;

/// Search Docker Hub, or any registry, for repositories.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    /// Search this registry (HOST[:PORT]) instead of the one TERM names
    #[arg(long, value_name = "HOST")]
    registry: Option<String>,
    /// The most results to show (1-100)
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u16).range(1..=100))]
    limit: u16,
    /// Keep only results matching: stars=N, is-official=true|false, is-automated=true|false
    #[arg(short, long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// Do not cut descriptions short
    #[arg(long)]
    no_trunc: bool,
    /// json, or a Go template (fields: .Name .Description .StarCount .IsOfficial .IsAutomated)
    #[arg(long)]
    format: Option<String>,
    /// Registry (HOST[:PORT]) that may be reached over plain HTTP or unverified HTTPS; repeatable
    #[arg(long, value_name = "HOST")]
    insecure: Vec<String>,
    /// What to look for: a name or part of one, `HOST[:PORT]/TERM` for another registry
    term: String,
}

const HEADERS: &[(&str, &str)] = &[
    ("Name", "NAME"),
    ("Description", "DESCRIPTION"),
    ("StarCount", "STARS"),
    ("IsOfficial", "OFFICIAL"),
    ("IsAutomated", "AUTOMATED"),
];

/// The filters Docker's search knows.
#[derive(Default)]
struct Filters {
    stars: u64,
    official: Option<bool>,
    automated: Option<bool>,
}

impl Filters {
    fn parse(filters: &[String]) -> Result<Filters, Failure> {
        let mut parsed = Filters::default();
        for filter in filters {
            let bad = || Failure::new(Exit::Usage, format!("Invalid filter '{filter}'"));
            let (key, value) = filter.split_once('=').ok_or_else(bad)?;
            let truth = || match value {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(bad()),
            };
            match key {
                "stars" => parsed.stars = value.parse().map_err(|_| bad())?,
                "is-official" => parsed.official = Some(truth()?),
                "is-automated" => parsed.automated = Some(truth()?),
                _ => return Err(bad()),
            }
        }
        Ok(parsed)
    }

    fn keeps(&self, found: &Found) -> bool {
        found.star_count >= self.stars
            && self.official.is_none_or(|o| o == found.is_official)
            && self.automated.is_none_or(|a| a == found.is_automated)
    }
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let format = Format::parse(cli.format.as_deref())?;
        let filters = Filters::parse(&cli.filters)?;
        let options = RegistryOptions {
            insecure: cli.insecure,
            ..RegistryOptions::default()
        };
        let query = Query::parse(&cli.term, cli.registry.as_deref());
        let found: Vec<Found> = search::search(&query, cli.limit.into(), &options)?
            .into_iter()
            .filter(|f| filters.keeps(f))
            .collect();
        let rows: Vec<serde_json::Value> = found
            .iter()
            .map(|f| serde_json::to_value(f).expect("results serialise"))
            .collect();
        match format.render(&rows, HEADERS)? {
            Some(text) => print!("{text}"),
            None => print!("{}", table(&found, cli.no_trunc)),
        }
        Ok(())
    })
}

/// Docker's table: descriptions on one line, cut at 45 characters.
fn table(found: &[Found], no_trunc: bool) -> String {
    let mut table = Table::new();
    table.row(&["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]);
    let ok = |yes: bool| if yes { "[OK]" } else { "" }.to_string();
    for f in found {
        let mut description = f.description.replace(['\n', '\r'], " ");
        if !no_trunc && description.chars().count() > 45 {
            description = description.chars().take(44).collect::<String>() + "…";
        }
        table.row(&[
            f.name.clone(),
            description,
            f.star_count.to_string(),
            ok(f.is_official),
            ok(f.is_automated),
        ]);
    }
    table.render()
}
