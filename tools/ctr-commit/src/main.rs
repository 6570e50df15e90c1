//! ctr-commit CONTAINER [REPOSITORY[:TAG]]: Docker's `docker commit`. The
//! container's changes become one new layer over its image; prints the new
//! image's ID (`sha256:…`).

use berth::cli::{self, StoreArgs};
use berth::lifecycle::{self, CommitOptions};
use berth::{Reference, exit, output, pipe};
use clap::{ArgAction, Parser};

/// Create a new image from a container's changes.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long, default_value = "")]
    author: String,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    changes: Vec<String>,
    /// Commit message
    #[arg(short, long, default_value = "")]
    message: String,
    /// Pause container during commit
    #[arg(short, long, action = ArgAction::Set, default_value_t = true,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pause: bool,
    /// Container: name, ID or unique ID prefix ("-": stdin)
    container: String,
    /// The new image's name, e.g. app:snapshot
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        let target = pipe::single_target(&cli.container, pipe::CONTAINER_FIELDS)?;
        let tag = cli.reference.as_deref().map(Reference::parse).transpose()?;
        let store = cli.store.open()?;
        let record = lifecycle::find(&store, &target)?;
        let options = CommitOptions {
            tag,
            author: cli.author,
            message: cli.message,
            changes: cli.changes,
            pause: cli.pause,
        };
        let id = lifecycle::commit(&store, &record, &options)?;
        output::result(id);
        Ok(())
    })
}
