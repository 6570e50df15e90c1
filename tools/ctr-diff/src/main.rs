//! ctr-diff CONTAINER: Docker's `docker diff`. One line per changed path
//! of a running or stopped container: `A` added, `C` changed, `D` deleted.

use berth::cli::{self, StoreArgs};
use berth::{exit, lifecycle, output, pipe};
use clap::Parser;

/// Inspect changes to files or directories on a container's filesystem.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Container: name, ID or unique ID prefix ("-": stdin)
    container: String,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        let target = pipe::single_target(&cli.container, pipe::CONTAINER_FIELDS)?;
        let store = cli.store.open()?;
        let record = lifecycle::find(&store, &target)?;
        for change in lifecycle::diff(&store, &record)? {
            output::result(change);
        }
        Ok(())
    })
}
