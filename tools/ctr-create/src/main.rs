//! ctr-create IMAGE [CMD...]: Docker's `docker create`. The container is
//! made with every `ctr-run` flag but `-d`, and left created: its ID on
//! stdout, for `ctr-start`. A bad flag is 125, any later failure 1.

use berth::run_flags::{self, RunFlags};
use berth::{Exit, Failure, exit, output, runtime};
use clap::Parser;

/// Create a new container.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!(), disable_help_flag = true)]
struct Cli {
    /// Print help (`-h` is --hostname, as in Docker)
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    #[command(flatten)]
    flags: RunFlags,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = run_flags::parse()?;
        // Past the command line, Docker's create fails with 1 where run
        // gives 125 (a name in use, a bad limit, a missing image).
        let failed = |f: Failure| Failure::new(Exit::Failed, f.message);
        let (store, options) = cli.flags.into_options(false).map_err(failed)?;
        let id = runtime::create(&store, &options).map_err(|e| failed(Failure::from(e)))?;
        output::result(id);
        Ok(())
    })
}
