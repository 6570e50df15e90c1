//! img-import FILE|-|URL [REPOSITORY[:TAG]]: Docker's `docker import`. A
//! root filesystem tarball (plain, gzip, bzip2, xz or zstd) from a file,
//! stdin or an http(s) URL becomes a one-layer image; prints its ID.

use berth::builder::import::{ImportOptions, ImportSource, import};
use berth::cli::{self, StoreArgs};
use berth::platform::Platform;
use berth::{Reference, exit, output};
use clap::Parser;

/// Import the contents from a tarball to create a filesystem image.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    changes: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<Platform>,
    /// The tarball: a file, "-" for stdin, or an http(s) URL
    #[arg(value_name = "file|URL|-")]
    source: String,
    /// The new image's name, e.g. app:flat
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        let tag = cli.reference.as_deref().map(Reference::parse).transpose()?;
        let source = ImportSource::parse(&cli.source);
        let options = ImportOptions {
            changes: &cli.changes,
            message: cli.message.as_deref(),
            platform: cli.platform.unwrap_or_else(Platform::host),
        };
        let store = cli.store.open()?;
        let id = import(
            &store,
            &source,
            std::io::stdin().lock(),
            &options,
            tag.as_ref(),
        )?;
        output::result(id);
        Ok(())
    })
}
