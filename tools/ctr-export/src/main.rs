//! ctr-export CONTAINER: Docker's `docker export`. The container's whole
//! root as one tar, on stdout (refused on a terminal, as Docker does) or
//! into `-o FILE` (written beside it and renamed).

use berth::cli::{self, StoreArgs};
use berth::{Exit, Failure, exit, lifecycle, output, pipe};
use clap::Parser;
use std::io::Write;
use std::path::PathBuf;

/// Export a container's filesystem as a tar archive.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Write to a file, instead of STDOUT
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Container: name, ID or unique ID prefix ("-": stdin)
    container: String,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        if cli.output.is_none() && output::stdout_is_terminal() {
            return Err(Failure::new(
                Exit::Failed,
                "cowardly refusing to save to a terminal. Use the -o flag or redirect",
            ));
        }
        let target = pipe::single_target(&cli.container, pipe::CONTAINER_FIELDS)?;
        let store = cli.store.open()?;
        let record = lifecycle::find(&store, &target)?;
        match &cli.output {
            Some(path) => lifecycle::export_to_file(&store, &record, path)?,
            None => {
                let stdout = std::io::stdout().lock();
                let out = std::io::BufWriter::with_capacity(1 << 20, stdout);
                let mut out = lifecycle::export(&store, &record, out)?;
                out.flush()
                    .map_err(|e| Failure::new(Exit::Failed, e.to_string()))?;
            }
        }
        Ok(())
    })
}
