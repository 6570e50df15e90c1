//! img-push REF...: Docker's `docker push`. Prints each pushed reference
//! pinned by digest (or a JSON object with --json); progress goes to stderr.

use berth::cli::StoreArgs;
use berth::output::{self, Progress};
use berth::platform::Platform;
use berth::progress::PushProgress;
use berth::registry::{PushOptions, Pusher, RegistryOptions};
use berth::{Exit, Failure, Reference, exit, pipe};
use clap::Parser;

/// Push images (NAME[:TAG|@DIGEST]) from the store to their registries.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Push every tag the store holds of each repository
    #[arg(short = 'a', long)]
    all_tags: bool,
    /// With a multi-platform image: push only this platform's image, under the tag
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<Platform>,
    /// Print no progress, only the results
    #[arg(short, long)]
    quiet: bool,
    /// Print one JSON object per image (reference, digest, size, layers, pushed, mounted, existing)
    #[arg(long)]
    json: bool,
    /// Registry (HOST[:PORT]) that may be reached over plain HTTP or unverified HTTPS; repeatable
    #[arg(long, value_name = "HOST")]
    insecure: Vec<String>,
    /// Images to push ("-", or none with a piped stdin: read them from stdin)
    references: Vec<String>,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let targets = pipe::targets_from_process(&cli.references, pipe::IMAGE_FIELDS)
            .map_err(|e| Failure::new(Exit::Usage, e.to_string()))?;
        let store = cli.store.open()?;
        let options = PushOptions {
            platform: cli.platform,
            registry: RegistryOptions {
                insecure: cli.insecure,
                ..RegistryOptions::default()
            },
            ..PushOptions::default()
        };
        let mut pusher = Pusher::new(&store, options)?;
        // Every name is checked before anything is sent. An image ID (what
        // `img-build -q` prints) stands for every tag of that image.
        let mut names = Vec::new();
        for target in &targets {
            if is_image_id(target) {
                names.extend(pusher.tags_of_image(target)?);
                continue;
            }
            names.push(
                Reference::parse_unnormalised(target)
                    .map_err(|e| Failure::new(Exit::Usage, e.to_string()))?,
            );
        }
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
        let progress = Progress::new(cli.quiet);
        // A failed image does not stop the others; each failure gets its
        // line and the exit code says some failed.
        let mut failed = false;
        for name in names {
            let bare = name.tag().is_none() && name.digest().is_none();
            let references = match (cli.all_tags, bare) {
                (true, _) => match pusher.tags(&name) {
                    Ok(references) if references.is_empty() => {
                        failed = true;
                        report(format!(
                            "An image does not exist locally with the tag: {}",
                            name.familiar_repository()
                        ));
                        continue;
                    }
                    Ok(references) => references,
                    Err(error) => {
                        failed = true;
                        report(Failure::from(error).message);
                        continue;
                    }
                },
                (false, true) => {
                    progress.line("Using default tag: latest");
                    vec![name.with_tag("latest")]
                }
                (false, false) => vec![name],
            };
            for reference in references {
                let mut observer = PushProgress::new(progress);
                match pusher.push(&reference, &mut observer) {
                    Ok(pushed) => {
                        observer.finish(&pushed);
                        match cli.json {
                            true => output::result(pushed.to_json()),
                            false => output::result(&pushed.pinned),
                        }
                    }
                    Err(error) => {
                        failed = true;
                        report(Failure::from(error).message);
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

/// `sha256:<hex>` or 64 hex digits: an image ID, never a repository name
/// (Docker refuses such names for that reason).
fn is_image_id(target: &str) -> bool {
    let hex = target.strip_prefix("sha256:").unwrap_or(target);
    (target.starts_with("sha256:") || hex.len() == 64)
        && !hex.is_empty()
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// One failed image's line, `img-push: <message>`.
fn report(message: String) {
    eprintln!("img-push: {}", berth::exit::one_line(&message));
}
