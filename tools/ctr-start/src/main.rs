//! ctr-start: Docker's `docker start`. Starts stopped containers again with
//! the same config and upper dir; `-a` follows one to its end (passing our
//! signals on to it) and exits with its code; `-i` also sends it our input.

use berth::cli::{ContainerTargets, DetachKeysArg, StoreArgs};
use berth::lifecycle::{self, LifecycleError};
use berth::runtime::attach;
use berth::{Exit, Failure, exit};
use clap::Parser;

/// Start one or more stopped containers.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    targets: ContainerTargets,
    /// Attach stdout/stderr and exit with the container's code
    #[arg(short, long)]
    attach: bool,
    /// Attach stdin too (containers made with -i), and stdout/stderr
    #[arg(short, long)]
    interactive: bool,
    #[command(flatten)]
    keys: DetachKeysArg,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let targets = cli.targets.read()?;
        let store = cli.store.open()?;
        if !(cli.attach || cli.interactive) {
            return exit::each(&targets, |target| -> Result<(), LifecycleError> {
                let record = lifecycle::find(&store, target)?;
                lifecycle::start(&store, &record, false)
            });
        }
        let [target] = targets.as_slice() else {
            return Err(Failure::new(
                Exit::Usage,
                "you cannot attach to more than one container",
            ));
        };
        let record = lifecycle::find(&store, target)?;
        let code = if record.config.tty {
            lifecycle::start(&store, &record, true)?;
            let dir = store.container_dir(&record.id);
            attach::attach(&dir, &record.id, cli.interactive, cli.keys.keys())?.exit_code()
        } else {
            // Without a terminal the output is in the log: follow it from
            // here, where this start begins.
            let from = lifecycle::log_length(&record);
            lifecycle::start(&store, &record, false)?;
            lifecycle::attach_without_terminal(&store, &record, from, cli.interactive, true)?
        };
        match code {
            0 => Ok(()),
            code => std::process::exit(code),
        }
    })
}
