//! ctr-exec: Docker's `docker exec`. A new process in a running container,
//! its exit code ours; 126/127 when the command cannot run or is missing.

use berth::cli::StoreArgs;
use berth::runtime::RunError;
use berth::runtime::exec::{ExecOptions, exec};
use berth::{Exit, Failure, exit, lifecycle, pipe};
use clap::Parser;

/// Execute a command in a running container.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Keep stdin open
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    tty: bool,
    /// Run the command in the background
    #[arg(short, long)]
    detach: bool,
    /// Set environment variables (KEY=VALUE)
    #[arg(short, long)]
    env: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// User: name|uid[:group|gid]
    #[arg(short, long)]
    user: Option<String>,
    /// Container: name, ID or unique ID prefix
    container: String,
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let target = pipe::single_target(&cli.container, pipe::CONTAINER_FIELDS)?;
        let store = cli.store.open()?;
        let record = lifecycle::find(&store, &target)?;
        let options = ExecOptions {
            command: cli.command,
            env: cli.env,
            workdir: cli.workdir,
            user: cli.user,
            interactive: cli.interactive,
            tty: cli.tty,
            detach: cli.detach,
        };
        match exec(&store, &record, &options) {
            Ok(0) => Ok(()),
            // The command's own code: no message of ours.
            Ok(code) => std::process::exit(code),
            // Docker: a working directory the container lacks cannot be
            // entered, so the command cannot be invoked (126).
            Err(e @ RunError::NoWorkdir(_)) => Err(Failure::new(Exit::CannotInvoke, e.to_string())),
            Err(e) => Err(Failure::new(Exit::Failed, Failure::from(e).message)),
        }
    })
}
