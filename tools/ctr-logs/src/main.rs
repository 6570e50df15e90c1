//! ctr-logs: Docker's `docker logs`. The container's stdout and stderr from
//! its json-file log, on our stdout and stderr; `-f` follows to its end.

use berth::cli::StoreArgs;
use berth::container::logs::{self, Entry, Selection};
use berth::container::owner;
use berth::{exit, lifecycle, pipe};
use clap::Parser;
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

/// Fetch the logs of a container.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Container: name, ID or unique ID prefix ("-": stdin)
    container: String,
    /// Follow log output until the container stops
    #[arg(short, long)]
    follow: bool,
    /// Number of lines to show from the end ("all" for every line)
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show logs since a timestamp (2013-01-02T13:23:37Z), Unix seconds or a duration (42m)
    #[arg(long)]
    since: Option<String>,
    /// Show timestamps
    #[arg(short, long)]
    timestamps: bool,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let tail = match cli.tail.as_str() {
            "all" => None,
            n => Some(n.parse::<usize>().map_err(|_| {
                berth::Failure::new(
                    berth::Exit::Usage,
                    format!("invalid --tail value {n:?}: a number or \"all\""),
                )
            })?),
        };
        let since = cli
            .since
            .as_deref()
            .map(|s| logs::parse_since(s, SystemTime::now()))
            .transpose()?;
        let target = pipe::single_target(&cli.container, pipe::CONTAINER_FIELDS)?;
        let store = cli.store.open()?;
        let record = lifecycle::find(&store, &target)?;
        let path = Path::new(&record.log_path);
        let (entries, end) = logs::read(path, &Selection { tail, since })?;
        let mut show = |entry: &Entry| {
            let line = if cli.timestamps {
                format!("{} {}", entry.time, entry.log)
            } else {
                entry.log.clone()
            };
            let _ = if entry.stream == "stderr" {
                std::io::stderr().write_all(line.as_bytes())
            } else {
                std::io::stdout().write_all(line.as_bytes())
            };
        };
        entries.iter().for_each(&mut show);
        if cli.follow {
            let mut stopped = || owner::has_stopped(&store, &record.id);
            logs::follow(path, end, &mut stopped, &mut show, &mut || {})?;
        }
        Ok(())
    })
}
