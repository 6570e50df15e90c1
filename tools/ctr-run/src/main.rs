//! ctr-run IMAGE [CMD...]: Docker's `docker run`, without a daemon.
//! Foreground: the container's output and exit code; `-d`: its ID.

use berth::cli::{DetachKeysArg, StoreArgs};
use berth::container::restart::RestartPolicy;
use berth::network::NetworkMode;
use berth::output::Progress;
use berth::platform::Platform;
use berth::progress::{PullProgress, familiar};
use berth::registry::{self, PullNeed, PullOptions, PullPolicy};
use berth::runtime::attach::AttachError;
use berth::runtime::{self, Cpus, FlagError, HealthFlags, Memory, RunError, RunOptions};
use berth::{Exit, Failure, Store, exit, lifecycle, output, pipe};
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// Run a command in a new container.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!(), disable_help_flag = true)]
struct Cli {
    /// Print help (`-h` is --hostname, as in Docker)
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    #[command(flatten)]
    store: StoreArgs,
    /// Run in the background and print the container ID
    #[arg(short, long)]
    detach: bool,
    /// Remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Keep stdin open and feed it to the container
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-terminal (Ctrl-P Ctrl-Q detaches)
    #[arg(short, long)]
    tty: bool,
    #[command(flatten)]
    keys: DetachKeysArg,
    /// Container name (default: a random adjective_name)
    #[arg(long)]
    name: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to pass ours)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Read environment variables from a file
    #[arg(long, value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// Set a label on the container (KEY=VALUE, or KEY)
    #[arg(short, long = "label", value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// User: name|uid[:group|gid]
    #[arg(short, long)]
    user: Option<String>,
    /// Container host name (default: the short ID)
    #[arg(long, short = 'h')]
    hostname: Option<String>,
    /// Bind mount a host path or mount a volume: [HOST-DIR|VOLUME:]CONTAINER-DIR[:ro]
    #[arg(
        short,
        long = "volume",
        value_name = "[HOST-DIR|VOLUME:]CONTAINER-DIR[:ro]"
    )]
    volume: Vec<String>,
    /// Attach a mount: type=volume|bind,source=…,target=…[,readonly]
    #[arg(long = "mount", value_name = "type=volume,source=NAME,target=PATH")]
    mount: Vec<String>,
    /// Mount the root filesystem read-only
    #[arg(long)]
    read_only: bool,
    /// Mount a tmpfs: PATH[:OPTIONS]
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Add a Linux capability
    #[arg(long)]
    cap_add: Vec<String>,
    /// Drop a Linux capability
    #[arg(long)]
    cap_drop: Vec<String>,
    /// Memory limit, e.g. 256m
    #[arg(short, long)]
    memory: Option<Memory>,
    /// Number of CPUs, e.g. 1.5
    #[arg(long)]
    cpus: Option<Cpus>,
    /// Maximum number of processes (-1: unlimited)
    #[arg(long, allow_negative_numbers = true)]
    pids_limit: Option<i64>,
    /// Network: bridge (a veth on the default bridge, NAT out), none, host, container:NAME|ID (another's), or a net-create network
    #[arg(long, visible_alias = "net", default_value = "bridge")]
    network: NetworkMode,
    /// Publish a container's port(s) to the host: [IP:][HOSTPORT:]CTRPORT[/PROTO]
    #[arg(short, long, value_name = "LIST")]
    publish: Vec<String>,
    /// Publish every exposed port to a random host port
    #[arg(short = 'P', long)]
    publish_all: bool,
    /// IPv4 address on the bridge, e.g. 172.17.0.10
    #[arg(long)]
    ip: Option<std::net::Ipv4Addr>,
    /// Add a line to /etc/hosts: HOST:IP (IP may be host-gateway)
    #[arg(long, value_name = "HOST:IP")]
    add_host: Vec<String>,
    /// Name server for /etc/resolv.conf (repeatable)
    #[arg(long)]
    dns: Vec<String>,
    /// Another name for the container on a user-defined network
    #[arg(long)]
    network_alias: Vec<String>,
    /// Override the image's ENTRYPOINT
    #[arg(long)]
    entrypoint: Option<String>,
    /// All capabilities, all devices, no /proc masks
    #[arg(long)]
    privileged: bool,
    /// no-new-privileges, seccomp=unconfined|PROFILE.json (default: Docker's blocked calls)
    #[arg(long)]
    security_opt: Vec<String>,
    /// Require the image to be for this platform, e.g. linux/amd64
    #[arg(long)]
    platform: Option<Platform>,
    /// Pull the image first: missing, always or never
    #[arg(long, value_name = "POLICY", default_value = "missing")]
    pull: PullPolicy,
    /// Print no pull progress
    #[arg(short, long)]
    quiet: bool,
    /// Restart policy: no, on-failure[:N], always, unless-stopped (honoured for as long as the container's monitor lives)
    #[arg(long, value_name = "POLICY", default_value = "no", value_parser = restart_policy)]
    restart: RestartPolicy,
    /// Command to run in the container to check its health
    #[arg(long, value_name = "COMMAND")]
    health_cmd: Option<String>,
    /// Time between health checks (ms|s|m|h), 30s by default
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = |v: &str| runtime::parse_duration("--health-interval", v))]
    health_interval: Option<Duration>,
    /// Longest a health check may run (ms|s|m|h), 30s by default
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = |v: &str| runtime::parse_duration("--health-timeout", v))]
    health_timeout: Option<Duration>,
    /// Time for the container to start before failed checks count (ms|s|m|h)
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = |v: &str| runtime::parse_duration("--health-start-period", v))]
    health_start_period: Option<Duration>,
    /// Time between health checks during the start period (ms|s|m|h)
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = |v: &str| runtime::parse_duration("--health-start-interval", v))]
    health_start_interval: Option<Duration>,
    /// Consecutive failures that make the container unhealthy, 3 by default
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    health_retries: Option<i64>,
    /// Disable the image's HEALTHCHECK
    #[arg(long)]
    no_healthcheck: bool,
    /// Image: reference, ID or unique ID prefix ("-": read it from stdin)
    image: String,
    /// Command and arguments (default: the image's)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = match Cli::try_parse() {
            Ok(cli) => cli,
            Err(e) if !e.use_stderr() => e.exit(),
            // Docker's code for a bad flag is 125, on one line.
            Err(e) => {
                return Err(Failure::new(
                    Exit::ToolFailed,
                    berth::cli::arguments_error(&e),
                ));
            }
        };
        let tool_failed = |e: &dyn std::fmt::Display| Failure::new(Exit::ToolFailed, e.to_string());
        let image = match cli.image.as_str() {
            "-" => {
                let mut targets = pipe::targets_from_process(
                    std::slice::from_ref(&cli.image),
                    pipe::IMAGE_FIELDS,
                )
                .map_err(|e| tool_failed(&e))?;
                if targets.len() != 1 {
                    return Err(Failure::new(
                        Exit::ToolFailed,
                        format!("expected one image on stdin, got {}", targets.len()),
                    ));
                }
                targets.remove(0)
            }
            _ => cli.image.clone(),
        };
        let store = cli
            .store
            .open()
            .map_err(|e| tool_failed(&Failure::from(e).message))?;
        ensure_image(&store, &image, cli.pull, cli.platform.as_ref(), cli.quiet)
            .map_err(|e| tool_failed(&e.message))?;
        let options = RunOptions {
            detach_keys: cli.keys.keys(),
            image,
            command: cli.command,
            name: cli.name,
            detach: cli.detach,
            remove: cli.rm,
            interactive: cli.interactive,
            tty: cli.tty,
            env: cli.env,
            env_files: cli.env_file,
            labels: cli.label,
            workdir: cli.workdir,
            user: cli.user,
            hostname: cli.hostname,
            volumes: cli.volume,
            mounts: cli.mount,
            read_only: cli.read_only,
            tmpfs: cli.tmpfs,
            cap_add: cli.cap_add,
            cap_drop: cli.cap_drop,
            memory: cli.memory,
            cpus: cli.cpus,
            pids_limit: cli.pids_limit,
            network: cli.network,
            publish: cli.publish,
            publish_all: cli.publish_all,
            ip: cli.ip,
            add_hosts: cli.add_host,
            dns: cli.dns,
            network_aliases: cli.network_alias,
            entrypoint: cli.entrypoint,
            privileged: cli.privileged,
            security_opt: cli.security_opt,
            platform: cli.platform,
            health: HealthFlags {
                cmd: cli.health_cmd,
                interval: cli.health_interval,
                timeout: cli.health_timeout,
                start_period: cli.health_start_period,
                start_interval: cli.health_start_interval,
                retries: cli.health_retries,
                none: cli.no_healthcheck,
            },
            restart: cli.restart,
        };
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

/// `--restart`, refused in Docker's words.
fn restart_policy(value: &str) -> Result<RestartPolicy, FlagError> {
    value
        .parse()
        .map_err(|e: berth::container::restart::BadRestartPolicy| {
            FlagError::new("--restart", value, e.0)
        })
}

/// Pulls the image when `policy` asks for it, saying so on stderr as
/// `docker run` does.
fn ensure_image(
    store: &Store,
    image: &str,
    policy: PullPolicy,
    platform: Option<&Platform>,
    quiet: bool,
) -> Result<(), Failure> {
    let reference = match policy.need_on(store, image, platform)? {
        PullNeed::Present => return Ok(()),
        PullNeed::Missing(reference) => {
            Progress::new(quiet).line(format_args!(
                "Unable to find image '{}' locally",
                familiar(&reference)
            ));
            reference
        }
        PullNeed::Refresh(reference) => reference,
    };
    let options = PullOptions {
        platform: platform.cloned(),
        ..PullOptions::default()
    };
    let mut observer = PullProgress::new(Progress::new(quiet));
    let pulled = registry::pull(store, &reference, &options, &mut observer)?;
    observer.finish(&pulled);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let cli = Cli::try_parse_from(["ctr-run", "busybox"]).unwrap();
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
        .unwrap();
        assert_eq!(cli.memory.map(Memory::bytes), Some(256 << 20));
        assert_eq!(cli.cpus.map(Cpus::nano), Some(1_500_000_000));
        assert_eq!(cli.network, NetworkMode::Host);
        assert_eq!(cli.platform.unwrap().to_string(), "linux/arm64");
        assert_eq!(cli.command, ["true"]);
    }
}
