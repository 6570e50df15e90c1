//! ctr-rm: Docker's `docker rm`. Removes stopped containers (`-f` kills a
//! running one first) with their mounts, cgroups and upper dirs.

use berth::cli::{ContainerTargets, StoreArgs};
use berth::exit;
use berth::lifecycle::{self, LifecycleError};
use clap::Parser;

/// Remove one or more containers.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    targets: ContainerTargets,
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    force: bool,
    /// Remove anonymous volumes (they live in the container's directory and always go with it)
    #[arg(short, long)]
    volumes: bool,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let _ = cli.volumes;
        let targets = cli.targets.read()?;
        let store = cli.store.open()?;
        exit::each(&targets, |target| -> Result<(), LifecycleError> {
            let record = lifecycle::find(&store, target)?;
            lifecycle::remove(&store, &record, cli.force)
        })
    })
}
