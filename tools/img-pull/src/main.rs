//! img-pull REF...: Docker's `docker pull`. Prints each image's reference
//! pinned by digest (or a JSON object with --json); progress goes to stderr.

use berth::cli::StoreArgs;
use berth::output::{self, Progress};
use berth::platform::Platform;
use berth::progress::PullProgress;
use berth::registry::{PullOptions, Puller, RegistryOptions};
use berth::{Exit, Failure, Reference, exit, pipe};
use clap::Parser;

/// Pull images (NAME[:TAG|@DIGEST]) from their registries into the store.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Platform to pick from a multi-platform image [default: the host's]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<Platform>,
    /// Pull every tagged image of each repository
    #[arg(short = 'a', long)]
    all_tags: bool,
    /// Print no progress, only the results
    #[arg(short, long)]
    quiet: bool,
    /// Print one JSON object per image (reference, digest, id, size, platform, layers)
    #[arg(long)]
    json: bool,
    /// Registry (HOST[:PORT]) that may be reached over plain HTTP or unverified HTTPS; repeatable
    #[arg(long, value_name = "HOST")]
    insecure: Vec<String>,
    /// Images to pull ("-", or none with a piped stdin: read them from stdin)
    references: Vec<String>,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let targets = pipe::targets_from_process(&cli.references, pipe::IMAGE_FIELDS)
            .map_err(|e| Failure::new(Exit::Usage, e.to_string()))?;
        // Every name is checked before anything is fetched.
        let names = targets
            .iter()
            .map(|t| {
                Reference::parse_unnormalised(t)
                    .map_err(|e| Failure::new(Exit::Usage, e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if cli.all_tags
            && let Some(named) = names
                .iter()
                .find(|n| n.tag().is_some() || n.digest().is_some())
        {
            return Err(Failure::new(
                Exit::Usage,
                format!("tag can't be used with --all-tags/-a: {named}"),
            ));
        }
        let store = cli.store.open()?;
        let options = PullOptions {
            platform: cli.platform,
            registry: RegistryOptions {
                insecure: cli.insecure,
                ..RegistryOptions::default()
            },
            ..PullOptions::default()
        };
        let mut puller = Puller::new(&store, options)?;
        let progress = Progress::new(cli.quiet);
        // A failed image does not stop the others; each failure gets its
        // line and the exit code says some failed.
        let mut failed = false;
        for name in names {
            let bare = name.tag().is_none() && name.digest().is_none();
            let references = match (cli.all_tags, bare) {
                (true, _) => match puller.tags(&name) {
                    Ok(references) => references,
                    Err(error) => {
                        failed = true;
                        report(error);
                        continue;
                    }
                },
                (false, true) => vec![name.with_tag("latest")],
                (false, false) => vec![name],
            };
            for reference in references {
                let mut observer =
                    PullProgress::new(progress).note_default_tag(bare && !cli.all_tags);
                match puller.pull(&reference, &mut observer) {
                    Ok(pulled) => {
                        observer.finish(&pulled);
                        match cli.json {
                            true => output::result(pulled.to_json()),
                            false => output::result(&pulled.pinned),
                        }
                    }
                    Err(error) => {
                        failed = true;
                        report(error);
                    }
                }
            }
        }
        if failed {
            return Err(Failure::reported(Exit::Failed));
        }
        Ok(())
    })
}

/// One failed image's line, `img-pull: <message>`, as exit::run would
/// print it (the messages name the image).
fn report(error: impl std::error::Error) {
    let message = Failure::from(error).message;
    eprintln!("img-pull: {}", berth::exit::one_line(&message));
}
