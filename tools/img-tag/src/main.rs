//! img-tag SRC DST: Docker's `docker tag`. Prints the new reference.

use berth::cli::StoreArgs;
use berth::store::StoreError;
use berth::{Reference, exit, output, pipe};
use clap::Parser;

/// Create a tag DST that refers to the image SRC (a reference or ID prefix).
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Source image: reference, image ID or unique ID prefix ("-": stdin)
    source: String,
    /// The new reference, e.g. registry:5000/app:v2
    target: String,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let source = pipe::single_target(&cli.source, pipe::IMAGE_FIELDS)?;
        let target = Reference::parse(&cli.target)?;
        cli.store
            .open()?
            .tag_image(&source, &target)
            .map_err(|e| match e {
                // Docker names a missing source with its default tag.
                StoreError::NoSuchImage(name) if !has_tag_or_digest(&name) => {
                    StoreError::NoSuchImage(format!("{name}:latest"))
                }
                e => e,
            })?;
        output::result(target);
        Ok(())
    })
}

fn has_tag_or_digest(name: &str) -> bool {
    let last = name.rsplit('/').next().unwrap_or(name);
    last.contains(':') || name.contains('@')
}
