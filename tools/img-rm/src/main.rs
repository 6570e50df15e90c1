//! img-rm: Docker's `docker rmi`. Prints `Untagged: …` / `Deleted: …` per
//! change, continues past a failing target, and exits 1 if any failed.

use berth::cli::StoreArgs;
use berth::{Exit, Failure, container, exit, image, output, pipe};
use clap::Parser;

/// Remove one or more images.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Images: references, IDs or unique ID prefixes ("-" or none: stdin)
    images: Vec<String>,
    /// Force removal of the image (untag every name; allowed while a stopped container uses it)
    #[arg(short, long)]
    force: bool,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let targets = pipe::targets_from_process(&cli.images, pipe::IMAGE_FIELDS)?;
        let store = cli.store.open()?;
        // What a killed build left goes first: its processes hold leases.
        container::owner::sweep_orphans(&store);
        let (outcomes, _reclaimed) = image::remove(&store, &targets, cli.force)?;
        let mut failed = 0;
        for (target, outcome) in targets.iter().zip(outcomes) {
            match outcome {
                Ok(changes) => changes.iter().for_each(output::result),
                Err(error) => {
                    failed += 1;
                    // Docker's messages name the image already.
                    let message = Failure::from(error).message;
                    if message.contains(target.as_str()) {
                        eprintln!("img-rm: {message}");
                    } else {
                        eprintln!("img-rm: {target}: {message}");
                    }
                }
            }
        }
        // Each failure has had its line; Docker adds no summary.
        match failed {
            0 => Ok(()),
            _ => Err(Failure::reported(Exit::Failed)),
        }
    })
}
