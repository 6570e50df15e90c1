//! img-tag SRC DST: Docker's `docker tag`. Prints the new reference.

use berth::cli::StoreArgs;
use berth::{Failure, Reference, exit, output, pipe};
use clap::Parser;

/// Create a tag DST that refers to the image SRC (a reference or ID prefix).
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Source image: reference, image ID or unique ID prefix ("-": stdin)
    source: String,
    /// The new reference, e.g. registry:5000/app:v2
    target: String,
}

fn main() -> std::process::ExitCode {
    exit::run(|| {
        let cli = Cli::parse();
        let source = match cli.source.as_str() {
            "-" => single(pipe::targets_from_process(
                std::slice::from_ref(&cli.source),
                pipe::IMAGE_FIELDS,
            )?)?,
            _ => cli.source,
        };
        let target = Reference::parse(&cli.target)?;
        cli.store.open()?.tag_image(&source, &target)?;
        output::result(target);
        Ok(())
    })
}

fn single(mut targets: Vec<String>) -> Result<String, Failure> {
    match targets.len() {
        1 => Ok(targets.remove(0)),
        n => Err(Failure::new(
            berth::Exit::Usage,
            format!("expected one source image on stdin, got {n}"),
        )),
    }
}
