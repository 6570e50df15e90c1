//! ctr-attach: Docker's `docker attach`. A container made with -t gets our
//! terminal (keys, output, window size; the detach keys leave it running);
//! one without gets its output followed and, if it was made with -i, our
//! input. Either way we exit with the container's code when it stops.

use berth::cli::{DetachKeysArg, StoreArgs};
use berth::container::owner;
use berth::runtime::attach;
use berth::{Exit, Failure, exit, lifecycle};
use clap::Parser;

/// Attach to a running container.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Do not send our input
    #[arg(long)]
    no_stdin: bool,
    #[command(flatten)]
    keys: DetachKeysArg,
    /// Pass the signals we get on to the container (without a terminal)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    sig_proxy: bool,
    /// Container: name, ID or unique ID prefix
    container: String,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let store = cli.store.open()?;
        let record = lifecycle::find(&store, &cli.container)?;
        let record = owner::refresh(&store, record);
        if !record.state.running {
            return Err(Failure::new(
                Exit::Failed,
                "you cannot attach to a stopped container, start it first",
            ));
        }
        let code = if record.config.tty {
            let dir = store.container_dir(&record.id);
            attach::attach(&dir, &record.id, !cli.no_stdin, cli.keys.keys())?.exit_code()
        } else {
            let from = lifecycle::log_length(&record);
            lifecycle::attach_without_terminal(&store, &record, from, !cli.no_stdin, cli.sig_proxy)?
        };
        match code {
            0 => Ok(()),
            code => std::process::exit(code),
        }
    })
}
