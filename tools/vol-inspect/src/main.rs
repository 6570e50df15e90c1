//! vol-inspect: Docker's `docker volume inspect`. A JSON array, or one
//! rendered `--format` template per volume.

use berth::cli::{self, StoreArgs};
use berth::format::Template;
use berth::volume::Volumes;
use berth::{Exit, Failure, exit, pipe};
use clap::Parser;

/// Display detailed information on one or more volumes.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Format the output using a Go template, or "json"
    #[arg(short, long)]
    format: Option<String>,
    /// Volumes, by name ("-" or none: stdin)
    volumes: Vec<String>,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        let template = match cli.format.as_deref() {
            None | Some("json") => None,
            Some(text) => Some(Template::parse(text)?),
        };
        let targets = pipe::targets_from_process(&cli.volumes, pipe::VOLUME_FIELDS)?;
        let store = cli.store.open()?;
        let volumes = Volumes::of(&store);
        let mut objects = Vec::new();
        let mut failed = false;
        for name in &targets {
            match volumes.find(name) {
                Ok(volume) => objects.push(serde_json::to_value(&volume).expect("serialises")),
                Err(error) => {
                    failed = true;
                    eprintln!("vol-inspect: {}", Failure::from(error).line());
                }
            }
        }
        berth::format::print_inspected(&objects, template.as_ref())?;
        match failed {
            false => Ok(()),
            true => Err(Failure::reported(Exit::Failed)),
        }
    })
}
