//! img-inspect: Docker's `docker image inspect`. A JSON array, or one
//! rendered `--format` template per image.

use berth::cli::StoreArgs;
use berth::format::Template;
use berth::image::{ImageView, inspect};
use berth::{exit, pipe};
use clap::Parser;

/// Display detailed information on one or more images.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Images: references, IDs or unique ID prefixes ("-" or none: stdin)
    images: Vec<String>,
    /// Format the output using a Go template, or "json"
    #[arg(short, long)]
    format: Option<String>,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let template = match cli.format.as_deref() {
            None | Some("json") => None,
            Some(text) => Some(Template::parse(text)?),
        };
        let targets = pipe::targets_from_process(&cli.images, pipe::IMAGE_FIELDS)?;
        let store = cli.store.open()?;
        let mut objects = Vec::new();
        let mut failures = Vec::new();
        for target in &targets {
            match store
                .resolve_image(target)
                .and_then(|image| ImageView::load(&store, image))
            {
                Ok(view) => objects.push(inspect(&view)),
                Err(error) => failures.push(berth::Failure::from(error)),
            }
        }
        // Like Docker: print what was found, then fail for what was not.
        berth::format::print_inspected(&objects, template.as_ref())?;
        match failures.len() {
            0 => Ok(()),
            1 => Err(failures.remove(0)),
            _ => {
                for failure in &failures[..failures.len() - 1] {
                    eprintln!("img-inspect: {}", failure.line());
                }
                Err(failures.pop().expect("at least two"))
            }
        }
    })
}
