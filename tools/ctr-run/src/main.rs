//! ctr-run IMAGE [CMD...]: Docker's `docker run`, without a daemon.
//! Foreground: the container's output and exit code; `-d`: its ID.

use berth::run_flags::{self, RunFlags};
use berth::runtime::attach::AttachError;
use berth::runtime::{self, RunError};
use berth::{Exit, Failure, exit, lifecycle, output};
use clap::Parser;

/// Run a command in a new container.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!(), disable_help_flag = true)]
struct Cli {
    /// Print help (`-h` is --hostname, as in Docker)
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Run in the background and print the container ID
    #[arg(short, long)]
    detach: bool,
    #[command(flatten)]
    flags: RunFlags,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = run_flags::parse()?;
        let tool_failed = |e: &dyn std::fmt::Display| Failure::new(Exit::ToolFailed, e.to_string());
        let (store, options) = cli.flags.into_options(cli.detach)?;
        if options.detach {
            let id = runtime::run_detached(&store, &options)
                .map_err(|e| tool_failed(&Failure::from(e).message))?;
            output::result(id);
            return Ok(());
        }
        let code = if options.tty {
            runtime::run_attached(&store, &options)
                .map_err(|e| match e {
                    // Docker's client refuses this with 1, before creating anything.
                    RunError::Attach(AttachError::NotATerminal) => {
                        Failure::new(Exit::Failed, e.to_string())
                    }
                    e => tool_failed(&Failure::from(e).message),
                })?
                .exit_code()
        } else if !options.restart.is_none() {
            // The monitor owns a container it may restart; we follow its
            // first run, as Docker's client does.
            let id = runtime::run_detached(&store, &options)
                .map_err(|e| tool_failed(&Failure::from(e).message))?;
            let record = lifecycle::find(&store, &id).map_err(|e| tool_failed(&e))?;
            lifecycle::follow_first_run(&store, &record, options.interactive)
                .map_err(|e| tool_failed(&e))?
        } else {
            runtime::run_foreground(&store, &options)
                .map_err(|e| tool_failed(&Failure::from(e).message))?
        };
        match code {
            0 => Ok(()),
            // The container's own code: no message of ours.
            code => std::process::exit(code),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth::network::NetworkMode;
    use berth::runtime::{Cpus, Memory};

    /// The line `ctr-run` gives (exit 125) for these flags before an image.
    fn refused(flags: &[&str]) -> String {
        let args = [&["ctr-run"], flags, &["busybox"]].concat();
        match Cli::try_parse_from(args) {
            Ok(_) => panic!("{flags:?} were taken"),
            Err(e) => berth::cli::arguments_error(&e),
        }
    }

    #[test]
    fn bad_typed_flags_are_refused_in_the_words_they_always_had() {
        for (flags, line) in [
            (
                &["--memory", "lots"][..],
                "invalid --memory value \"lots\": expected a size such as 256m or 1g",
            ),
            (
                &["-m", "1m"],
                "invalid --memory value \"1m\": Minimum memory limit allowed is 6MB",
            ),
            (
                &["--memory=-5"],
                "invalid --memory value \"-5\": must be positive",
            ),
            (
                &["--cpus", "many"],
                "invalid --cpus value \"many\": expected a number such as 1.5",
            ),
            (
                &["--cpus", "0"],
                "invalid --cpus value \"0\": must be positive",
            ),
            (
                &["--network", "a/b"],
                "invalid --network value \"a/b\": supported: bridge, none, host, container:NAME|ID, or a network's name",
            ),
            (
                &["--network="],
                "invalid --network value \"\": supported: bridge, none, host, container:NAME|ID, or a network's name",
            ),
            (
                &["--platform", "linux"],
                "invalid platform \"linux\": expected os/arch[/variant], e.g. linux/arm64",
            ),
            (
                &["--platform", "linux/amd64/v1/x"],
                "invalid platform \"linux/amd64/v1/x\": expected os/arch[/variant], e.g. linux/arm64",
            ),
            (
                &["--restart", "sometimes"],
                "invalid --restart value \"sometimes\": invalid restart policy 'sometimes'",
            ),
            (
                &["--health-interval", "soon"],
                "invalid --health-interval value \"soon\": time: invalid duration \"soon\"",
            ),
            (
                &["--health-start-period", "-5s"],
                "invalid --health-start-period value \"-5s\": cannot be negative",
            ),
            (
                &["--health-timeout", "1us"],
                "invalid --health-timeout value \"1us\": cannot be less than 1ms",
            ),
        ] {
            assert_eq!(refused(flags), line, "{flags:?}");
        }
        // Flags clap types itself keep clap's words.
        assert_eq!(
            refused(&["--pids-limit", "x"]),
            "invalid value 'x' for '--pids-limit <PIDS_LIMIT>': invalid digit found in string"
        );
        assert_eq!(refused(&["--bogus"]), "unexpected argument '--bogus' found");
    }

    #[test]
    fn typed_flags_arrive_typed_once() {
        let cli = Cli::try_parse_from(["ctr-run", "busybox"]).unwrap().flags;
        assert_eq!(cli.network, NetworkMode::Bridge, "Docker's default");
        assert!(cli.memory.is_none() && cli.cpus.is_none() && cli.platform.is_none());
        let cli = Cli::try_parse_from([
            "ctr-run",
            "-m",
            "256m",
            "--cpus",
            "1.5",
            "--network",
            "host",
            "--platform",
            "linux/aarch64",
            "busybox",
            "true",
        ])
        .unwrap()
        .flags;
        assert_eq!(cli.memory.map(Memory::bytes), Some(256 << 20));
        assert_eq!(cli.cpus.map(Cpus::nano), Some(1_500_000_000));
        assert_eq!(cli.network, NetworkMode::Host);
        assert_eq!(cli.platform.unwrap().to_string(), "linux/arm64");
        assert_eq!(cli.command, ["true"]);
    }
}
