//! img-fsck: checks the store, one line per problem on stdout; exit 1 if
//! any. `--repair` removes what is garbage, then checks again.

use berth::cli::StoreArgs;
use berth::fsck::{self, Problem};
use berth::{Exit, Failure, exit, output};
use clap::Parser;

/// Check a store: blobs re-hashed, images whole, layers, container records,
/// mounts, cgroups and temp files owned by something alive.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Remove what is unreferenced or left by dead processes, then check again
    #[arg(long)]
    repair: bool,
    /// One JSON object per problem
    #[arg(long)]
    json: bool,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let store = cli.store.open()?;
        let left = if cli.repair {
            let repaired = fsck::repair(&store).map_err(Failure::from)?;
            for fixed in repaired.found.iter().filter(|p| !repaired.left.contains(p)) {
                eprintln!("repaired: {fixed}");
            }
            repaired.left
        } else {
            fsck::check(&store).map_err(Failure::from)?
        };
        for problem in &left {
            print(problem, cli.json);
        }
        if left.is_empty() {
            Ok(())
        } else {
            Err(Failure::reported(Exit::Failed))
        }
    })
}

fn print(problem: &Problem, json: bool) {
    if json {
        output::result(problem.to_json());
    } else {
        output::result(problem);
    }
}
