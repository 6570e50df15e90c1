//! ctr-update: Docker's `docker update`. Changes the memory, CPU and PIDs
//! limits of containers: at once in a running one's cgroups, and for
//! every later start.

use berth::cli::{self, ContainerTargets, StoreArgs};
use berth::runtime::spec::Limits;
use berth::runtime::{Cpus, Memory};
use berth::{Exit, Failure, exit, lifecycle, output};
use clap::Parser;

/// Update configuration of one or more containers.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Memory limit, e.g. 256m
    #[arg(short, long)]
    memory: Option<Memory>,
    /// Number of CPUs, e.g. 1.5
    #[arg(long)]
    cpus: Option<Cpus>,
    /// Tune container pids limit (-1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    #[command(flatten)]
    targets: ContainerTargets,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        let limits = Limits {
            memory: cli.memory.map(|m| m.bytes()),
            nano_cpus: cli.cpus.map(|c| c.nano()),
            pids: cli.pids_limit,
        };
        if limits == Limits::default() {
            return Err(Failure::new(
                Exit::Failed,
                "you must provide one or more flags when using this command",
            ));
        }
        let targets = cli.targets.read()?;
        let store = cli.store.open()?;
        let mut failed = false;
        for target in &targets {
            let updated = lifecycle::find(&store, target)
                .and_then(|record| lifecycle::update(&store, &record, &limits));
            match updated {
                Ok(()) => output::result(target),
                Err(e) => {
                    failed = true;
                    eprintln!("ctr-update: {}", Failure::from(e).line());
                }
            }
        }
        if failed {
            return Err(Failure::reported(Exit::Failed));
        }
        Ok(())
    })
}
