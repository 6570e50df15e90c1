//! ctr-top: Docker's `docker top`. The container's processes with their
//! host PIDs, as `ps -ef` (or `ps` with the options given) shows them.

use berth::cli::{self, StoreArgs};
use berth::format::Table;
use berth::{exit, lifecycle, pipe};
use clap::Parser;

/// Display the running processes of a container.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Container: name, ID or unique ID prefix ("-": stdin)
    container: String,
    /// Options for ps (default: -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_options: Vec<String>,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        let target = pipe::single_target(&cli.container, pipe::CONTAINER_FIELDS)?;
        let store = cli.store.open()?;
        let record = lifecycle::find(&store, &target)?;
        let top = lifecycle::top(&store, &record, &cli.ps_options)?;
        // Docker's columns: at least 20 wide, 3 spaces apart.
        let mut table = Table::with_min_width(20);
        table.row(&top.titles);
        for process in &top.processes {
            table.row(process);
        }
        print!("{}", table.render());
        Ok(())
    })
}
