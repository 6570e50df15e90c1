//! img-save IMAGE...: Docker's `docker save`. Writes one tar (Docker's
//! save format over an OCI image layout) to stdout, or to `-o FILE`
//! (written beside it and renamed); refuses a terminal as Docker does.

use berth::cli::StoreArgs;
use berth::{Exit, Failure, exit, image, output, pipe};
use clap::Parser;
use std::io::Write;
use std::path::PathBuf;

/// Save one or more images to a tar archive (streamed to STDOUT by default).
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Write to a file, instead of STDOUT
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Images: references, IDs or unique ID prefixes ("-" or none: stdin)
    images: Vec<String>,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        if cli.output.is_none() && output::stdout_is_terminal() {
            return Err(Failure::new(
                Exit::Failed,
                "cowardly refusing to save to a terminal. Use the -o flag or redirect",
            ));
        }
        let targets = pipe::targets_from_process(&cli.images, pipe::IMAGE_FIELDS)
            .map_err(|e| Failure::new(Exit::Usage, e.to_string()))?;
        let store = cli.store.open()?;
        match &cli.output {
            Some(path) => image::save_to_file(&store, &targets, path)?,
            None => {
                let stdout = std::io::stdout().lock();
                let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout);
                image::save(&store, &targets, &mut out)?;
                out.flush()
                    .map_err(|e| Failure::new(Exit::Failed, e.to_string()))?;
            }
        }
        Ok(())
    })
}
