//! img-load: Docker's `docker load`. Reads a save tar (Docker's, an OCI
//! layout's, or the 1.x-era one; plain, gzip or zstd) from stdin or `-i`,
//! and prints `Loaded image: REF` per tag, `Loaded image ID: sha256:…` per
//! untagged image, as Docker does (with `-q` too).

use berth::cli::StoreArgs;
use berth::{Exit, Failure, exit, image, output};
use clap::Parser;
use std::io::IsTerminal;
use std::path::PathBuf;

/// Load images from a tar archive or STDIN.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Suppress the load output (notices on stderr; the result lines stay)
    #[arg(short, long)]
    quiet: bool,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let input: Box<dyn std::io::Read> = match &cli.input {
            Some(path) => Box::new(
                std::fs::File::open(path)
                    .map_err(|e| Failure::new(Exit::Failed, format!("{}: {e}", path.display())))?,
            ),
            None if std::io::stdin().is_terminal() => {
                return Err(Failure::new(
                    Exit::Failed,
                    "requested load from stdin, but stdin is empty",
                ));
            }
            None => Box::new(std::io::stdin().lock()),
        };
        let store = cli.store.open()?;
        let loaded = image::load(&store, input)?;
        let notices = output::Progress::new(cli.quiet);
        for image in loaded {
            for (tag, old) in &image.replaced {
                notices.line(format!(
                    "The image {} already exists, renaming the old one with ID {old} to empty string",
                    tag.familiar()
                ));
            }
            if image.tags.is_empty() {
                output::result(format!("Loaded image ID: {}", image.id));
            }
            for tag in &image.tags {
                output::result(format!("Loaded image: {}", tag.familiar()));
            }
        }
        Ok(())
    })
}
