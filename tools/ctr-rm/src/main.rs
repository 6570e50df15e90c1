//! ctr-rm: Docker's `docker rm`. Removes stopped containers (`-f` kills a
//! running one first) with their mounts, cgroups and upper dirs.

use berth::cli::{ContainerTargets, StoreArgs};
use berth::lifecycle::{self, LifecycleError};
use berth::{Exit, Failure, exit, output};
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
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    volumes: bool,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let targets = cli.targets.read()?;
        let store = cli.store.open()?;
        let mut failed = false;
        for target in &targets {
            let removed = lifecycle::find(&store, target)
                .and_then(|record| lifecycle::remove(&store, &record, cli.force, cli.volumes));
            match removed {
                Ok(()) => output::result(target),
                // Docker: with -f a container that is not there is said
                // so, but is no failure (it is gone, as asked).
                Err(e @ LifecycleError::NoSuchContainer(_)) if cli.force => {
                    eprintln!("ctr-rm: {e}");
                }
                Err(e) => {
                    failed = true;
                    eprintln!("ctr-rm: {}", Failure::from(e).line());
                }
            }
        }
        if failed {
            return Err(Failure::reported(Exit::Failed));
        }
        Ok(())
    })
}
