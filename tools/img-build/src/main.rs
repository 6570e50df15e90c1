//! img-build [-t REF]... [-f FILE] CONTEXT|-: Docker's `docker build`.
//! Prints the image ID on stdout; Docker's step lines go to stderr.

mod secret;

use berth::builder::layer::LayerCompression;
use berth::builder::remote::Remote;
use berth::builder::stdin::StdinInput;
use berth::builder::{self, BuildObserver, BuildOptions};
use berth::cli::StoreArgs;
use berth::network::BuildNetwork;
use berth::output::{self, Progress};
use berth::platform::Platform;
use berth::progress::{PullProgress, familiar};
use berth::registry::PullObserver;
use berth::{Digest, Exit, Failure, Reference, exit};
use clap::Parser;
use secret::SecretSpec;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// Build an image from a Dockerfile and a context directory.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Name of the Dockerfile [default: CONTEXT/Dockerfile] ("-": stdin)
    #[arg(short, long, value_name = "FILE")]
    file: Option<String>,
    /// Name and optionally a tag (name:tag); repeatable
    #[arg(short, long, value_name = "REF")]
    tag: Vec<String>,
    /// Set a build-time variable (KEY=VALUE, or KEY to pass ours)
    #[arg(long, value_name = "KEY=VALUE")]
    build_arg: Vec<String>,
    /// Build up to this stage of a multi-stage Dockerfile
    #[arg(long, value_name = "STAGE")]
    target: Option<String>,
    /// Ignore the build cache: run every step
    #[arg(long)]
    no_cache: bool,
    /// Pull every FROM image again, even if the store has it
    #[arg(long)]
    pull: bool,
    /// Target platform for FROM images and scratch, e.g. linux/amd64
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<Platform>,
    /// A secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR
    #[arg(long, value_name = "id=ID,src=FILE")]
    secret: Vec<String>,
    /// Set a label on the image (KEY=VALUE); repeatable
    #[arg(long, value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// Network for RUN steps: default (the host's), host or none
    #[arg(long, value_name = "MODE")]
    network: Option<BuildNetwork>,
    /// Print nothing but the image ID
    #[arg(short, long)]
    quiet: bool,
    /// Write the image ID to this file
    #[arg(long, value_name = "FILE")]
    iidfile: Option<PathBuf>,
    /// Layer compression: gzip or zstd
    #[arg(long, value_name = "ALGORITHM", default_value = "gzip")]
    compress: LayerCompression,
    /// Print a JSON object (id, tags, digest) instead of the bare ID
    #[arg(long)]
    json: bool,
    /// Take cache hits from a build cache in a registry (REF, or type=registry,ref=REF); repeatable
    #[arg(long, value_name = "REF")]
    cache_from: Vec<String>,
    /// Push this build's cache to a registry (REF, or type=registry,ref=REF)
    #[arg(long, value_name = "REF")]
    cache_to: Option<String>,
    /// Timestamps for history and layer files, for reproducible images
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    source_date_epoch: Option<u64>,
    /// The build context: a directory; "-" (stdin holds a Dockerfile, or a context as a tar, plain or compressed); a git URL (URL.git#REF:SUBDIR, git@…, file://…); an http(s) URL of a tarball or a Dockerfile
    context: String,
}

/// Docker's classic builder output, on stderr.
struct Lines {
    progress: Progress,
    pull: PullProgress,
}

impl BuildObserver for Lines {
    fn step(&mut self, number: usize, total: usize, text: &str) {
        self.progress
            .line(format_args!("Step {number}/{total} : {text}"));
    }
    fn cached(&mut self) {
        self.progress.line(" ---> Using cache");
    }
    fn step_done(&mut self, id: &Digest) {
        self.progress.line(format_args!(" ---> {}", id.short()));
    }
    fn triggers(&mut self, count: usize) {
        let s = if count == 1 { "" } else { "s" };
        self.progress
            .line(format_args!("# Executing {count} build trigger{s}"));
    }
    fn warning(&mut self, text: &str) {
        self.progress.line(text);
    }
    fn run_output(&mut self) -> Option<OwnedFd> {
        if self.progress.is_quiet() {
            return None;
        }
        // The container writes straight to our stderr.
        std::os::fd::AsFd::as_fd(&std::io::stderr())
            .try_clone_to_owned()
            .ok()
    }
    fn cache_imported(&mut self, from: &Reference, steps: usize) {
        let s = if steps == 1 { "" } else { "s" };
        self.progress
            .line(format_args!("Importing cache from {from}: {steps} step{s}"));
    }
    fn cache_exported(&mut self, to: &Reference) {
        self.progress.line(format_args!("Exported cache to {to}"));
    }
    fn puller(&mut self) -> &mut dyn PullObserver {
        &mut self.pull
    }
}

/// A cache flag's reference: `REF`, or buildx's `type=registry,ref=REF`
/// (other keys, such as `mode=max`, are accepted and change nothing: every
/// step is always shared).
fn cache_reference(text: &str) -> Result<Reference, String> {
    if !text.contains('=') {
        return Reference::parse(text).map_err(|e| e.to_string());
    }
    let mut reference = None;
    for part in text.split(',') {
        match part.split_once('=') {
            Some(("type", "registry")) => {}
            Some(("type", other)) => {
                return Err(format!("cache type {other} is not supported (registry is)"));
            }
            Some(("ref", value)) => reference = Some(value),
            Some(_) => {}
            None => return Err(format!("{part:?} is not KEY=VALUE")),
        }
    }
    let reference = reference.ok_or("no ref=")?;
    Reference::parse(reference).map_err(|e| e.to_string())
}

fn usage(message: impl Into<String>) -> Failure {
    Failure::new(Exit::Usage, message)
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = match Cli::try_parse() {
            Ok(cli) => cli,
            Err(e) if !e.use_stderr() => e.exit(),
            Err(e) => return Err(usage(berth::cli::arguments_error(&e))),
        };
        let stdin_text = || -> Result<String, Failure> {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Failure::new(Exit::Failed, format!("reading stdin: {e}")))?;
            Ok(text)
        };
        let store = cli.store.open()?;
        // Held for the build: a context from stdin or a URL lives in it.
        let mut _stdin_context = None;
        // stdin or a remote context: fetched first, then read alike.
        let fetched = if cli.context == "-" {
            Some(("stdin", StdinInput::read(&store, std::io::stdin().lock())?))
        } else if std::path::Path::new(&cli.context).is_dir() {
            None
        } else if let Some(remote) = Remote::parse(&cli.context) {
            Some(("the remote context", remote.fetch(&store)?))
        } else {
            return Err(Failure::new(
                Exit::Failed,
                format!(
                    "unable to prepare context: path {:?} not found",
                    cli.context
                ),
            ));
        };
        let (context, dockerfile_name, dockerfile) = match (fetched, &cli.file) {
            (Some((_, StdinInput::Dockerfile(_))), Some(_)) => {
                return Err(usage(format!(
                    "a Dockerfile as {:?} takes no --file: there is no context to find it in",
                    cli.context
                )));
            }
            (Some((_, StdinInput::Dockerfile(text))), None) => {
                (None, "Dockerfile".to_string(), text)
            }
            // A context: --file names the Dockerfile inside it ("-": stdin).
            (Some((from, StdinInput::Context { scratch, dir })), file) => {
                let (name, text) = match file.as_deref() {
                    Some("-") if from != "stdin" => ("Dockerfile".to_string(), stdin_text()?),
                    file => {
                        let name = file.unwrap_or("Dockerfile").to_string();
                        let path = dir.join(name.trim_start_matches('/'));
                        let text = std::fs::read_to_string(&path).map_err(|e| {
                            Failure::new(
                                Exit::Failed,
                                format!("failed to read Dockerfile {name} from {from}: {e}"),
                            )
                        })?;
                        (name, text)
                    }
                };
                _stdin_context = Some(scratch);
                (Some(dir), name, text)
            }
            (None, Some(file)) if file == "-" => (
                Some(PathBuf::from(&cli.context)),
                "Dockerfile".to_string(),
                stdin_text()?,
            ),
            (None, file) => {
                let dir = cli.context.as_str();
                let path = match file {
                    Some(f) => PathBuf::from(f),
                    None => PathBuf::from(dir).join("Dockerfile"),
                };
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    Failure::new(
                        Exit::Failed,
                        format!("failed to read Dockerfile {}: {e}", path.display()),
                    )
                })?;
                let name = file.clone().unwrap_or_else(|| "Dockerfile".to_string());
                (Some(PathBuf::from(dir)), name, text)
            }
        };
        let tags = cli
            .tag
            .iter()
            .map(|t| {
                let reference =
                    Reference::parse(t).map_err(|e| usage(format!("invalid tag {t:?}: {e}")))?;
                if reference.digest().is_some() {
                    return Err(usage(format!(
                        "invalid tag {t:?}: a tag cannot carry a digest"
                    )));
                }
                Ok(reference)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut epoch = cli.source_date_epoch;
        let build_args = cli
            .build_arg
            .iter()
            .map(|a| match a.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (a.clone(), std::env::var(a).ok()),
            })
            .collect::<Vec<_>>();
        if let Some((_, Some(v))) = build_args.iter().find(|(k, _)| k == "SOURCE_DATE_EPOCH") {
            epoch = Some(v.parse().map_err(|_| {
                usage(format!("invalid SOURCE_DATE_EPOCH {v:?}: expected seconds"))
            })?);
        }
        let labels = cli.label.iter().map(|l| berth::cli::key_value(l)).collect();
        let network = match cli.network.unwrap_or_default() {
            BuildNetwork::Default => None,
            BuildNetwork::Mode(mode) => Some(mode),
        };
        let secrets = cli
            .secret
            .iter()
            .map(|spec| {
                let spec: SecretSpec = spec.parse().map_err(usage)?;
                let bytes = spec.read().map_err(usage)?;
                Ok::<_, Failure>((spec.id, bytes))
            })
            .collect::<Result<_, _>>()?;
        let cache_ref = |flag: &str, text: &str| {
            cache_reference(text).map_err(|e| usage(format!("invalid {flag} {text:?}: {e}")))
        };
        let cache_from = cli
            .cache_from
            .iter()
            .map(|text| cache_ref("--cache-from", text))
            .collect::<Result<Vec<_>, _>>()?;
        let cache_to = cli
            .cache_to
            .as_deref()
            .map(|text| cache_ref("--cache-to", text))
            .transpose()?;
        let options = BuildOptions {
            dockerfile_name,
            dockerfile,
            context,
            tags,
            build_args,
            target: cli.target,
            no_cache: cli.no_cache,
            pull: cli.pull,
            platform: cli.platform,
            labels,
            network,
            compression: cli.compress,
            source_date_epoch: epoch,
            secrets,
            cache_from,
            cache_to,
        };
        let progress = Progress::new(cli.quiet);
        let mut lines = Lines {
            progress,
            pull: PullProgress::new(progress),
        };
        let built = builder::build(&store, &options, &mut lines)?;
        progress.line(format_args!("Successfully built {}", built.id.short()));
        for tag in &built.tags {
            progress.line(format_args!("Successfully tagged {}", familiar(tag)));
        }
        if let Some(path) = &cli.iidfile {
            std::fs::write(path, built.id.to_string())
                .map_err(|e| Failure::new(Exit::Failed, format!("{}: {e}", path.display())))?;
        }
        if cli.json {
            output::result(serde_json::json!({
                "id": built.id.to_string(),
                "tags": built.tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
                "digest": built.manifest_digest.to_string(),
            }));
        } else {
            output::result(built.id);
        }
        Ok(())
    })
}
