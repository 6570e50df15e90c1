//! ctr-rename: Docker's `docker rename`. Running or not, the container
//! takes a name no other container has; like Docker's, it prints nothing.

use berth::cli::{self, StoreArgs};
use berth::{exit, lifecycle, pipe};
use clap::Parser;

/// Rename a container.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Container: name, ID or unique ID prefix ("-": stdin)
    container: String,
    /// Its new name
    new_name: String,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        let target = pipe::single_target(&cli.container, pipe::CONTAINER_FIELDS)?;
        let store = cli.store.open()?;
        let record = lifecycle::find(&store, &target)?;
        lifecycle::rename(&store, &record, &cli.new_name)?;
        Ok(())
    })
}
