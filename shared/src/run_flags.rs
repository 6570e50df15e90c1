//! The flags `ctr-run` and `ctr-create` share (Docker's `run` and
//! `create` take the same), read by clap, and what they become: the image
//! (pulled first if the `--pull` policy asks) and the [`RunOptions`] a
//! container is made with.

use crate::cli::{DetachKeysArg, StoreArgs};
use crate::container::restart::RestartPolicy;
use crate::network::NetworkMode;
use crate::output::Progress;
use crate::platform::Platform;
use crate::progress::{PullProgress, familiar};
use crate::registry::{self, PullNeed, PullOptions, PullPolicy};
use crate::runtime::{self, Cpus, FlagError, HealthFlags, Memory, RunOptions};
use crate::{Exit, Failure, Store, pipe};
use std::path::PathBuf;
use std::time::Duration;

/// Every flag of `docker create`, and of `docker run` but `-d`.
#[derive(Debug, clap::Args)]
pub struct RunFlags {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Keep stdin open and feed it to the container
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal (Ctrl-P Ctrl-Q detaches)
    #[arg(short, long)]
    pub tty: bool,
    #[command(flatten)]
    pub keys: DetachKeysArg,
    /// Container name (default: a random adjective_name)
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to pass ours)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Set a label on the container (KEY=VALUE, or KEY)
    #[arg(short, long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// User: name|uid[:group|gid]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Container host name (default: the short ID)
    #[arg(long, short = 'h')]
    pub hostname: Option<String>,
    /// Bind mount a host path or mount a volume: [HOST-DIR|VOLUME:]CONTAINER-DIR[:ro]
    #[arg(
        short,
        long = "volume",
        value_name = "[HOST-DIR|VOLUME:]CONTAINER-DIR[:ro]"
    )]
    pub volume: Vec<String>,
    /// Attach a mount: type=volume|bind,source=…,target=…[,readonly]
    #[arg(long = "mount", value_name = "type=volume,source=NAME,target=PATH")]
    pub mount: Vec<String>,
    /// Mount the root filesystem read-only
    #[arg(long)]
    pub read_only: bool,
    /// Mount a tmpfs: PATH[:OPTIONS]
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Add a Linux capability
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop a Linux capability
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Memory limit, e.g. 256m
    #[arg(short, long)]
    pub memory: Option<Memory>,
    /// Number of CPUs, e.g. 1.5
    #[arg(long)]
    pub cpus: Option<Cpus>,
    /// Maximum number of processes (-1: unlimited)
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Network: bridge (a veth on the default bridge, NAT out), none, host, container:NAME|ID (another's), or a net-create network
    #[arg(long, visible_alias = "net", default_value = "bridge")]
    pub network: NetworkMode,
    /// Publish a container's port(s) to the host: [IP:][HOSTPORT:]CTRPORT[/PROTO]
    #[arg(short, long, value_name = "LIST")]
    pub publish: Vec<String>,
    /// Publish every exposed port to a random host port
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// IPv4 address on the bridge, e.g. 172.17.0.10
    #[arg(long)]
    pub ip: Option<std::net::Ipv4Addr>,
    /// Add a line to /etc/hosts: HOST:IP (IP may be host-gateway)
    #[arg(long, value_name = "HOST:IP")]
    pub add_host: Vec<String>,
    /// Name server for /etc/resolv.conf (repeatable)
    #[arg(long)]
    pub dns: Vec<String>,
    /// Another name for the container on a user-defined network
    #[arg(long)]
    pub network_alias: Vec<String>,
    /// Override the image's ENTRYPOINT
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// All capabilities, all devices, no /proc masks
    #[arg(long)]
    pub privileged: bool,
    /// no-new-privileges, seccomp=unconfined|PROFILE.json (default: Docker's blocked calls)
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Require the image to be for this platform, e.g. linux/amd64
    #[arg(long)]
    pub platform: Option<Platform>,
    /// Pull the image first: missing, always or never
    #[arg(long, value_name = "POLICY", default_value = "missing")]
    pub pull: PullPolicy,
    /// Print no pull progress
    #[arg(short, long)]
    pub quiet: bool,
    /// Restart policy: no, on-failure[:N], always, unless-stopped (honoured for as long as the container's monitor lives)
    #[arg(long, value_name = "POLICY", default_value = "no", value_parser = restart_policy)]
    pub restart: RestartPolicy,
    /// Command to run in the container to check its health
    #[arg(long, value_name = "COMMAND")]
    pub health_cmd: Option<String>,
    /// Time between health checks (ms|s|m|h), 30s by default
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = |v: &str| runtime::parse_duration("--health-interval", v))]
    pub health_interval: Option<Duration>,
    /// Longest a health check may run (ms|s|m|h), 30s by default
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = |v: &str| runtime::parse_duration("--health-timeout", v))]
    pub health_timeout: Option<Duration>,
    /// Time for the container to start before failed checks count (ms|s|m|h)
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = |v: &str| runtime::parse_duration("--health-start-period", v))]
    pub health_start_period: Option<Duration>,
    /// Time between health checks during the start period (ms|s|m|h)
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = |v: &str| runtime::parse_duration("--health-start-interval", v))]
    pub health_start_interval: Option<Duration>,
    /// Consecutive failures that make the container unhealthy, 3 by default
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub health_retries: Option<i64>,
    /// Disable the image's HEALTHCHECK
    #[arg(long)]
    pub no_healthcheck: bool,
    /// Image: reference, ID or unique ID prefix ("-": read it from stdin)
    pub image: String,
    /// Command and arguments (default: the image's)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Parses a `run`-like command line: a bad flag is Docker's 125, on one
/// line; `--help` and `--version` print and exit as clap's do.
pub fn parse<P: clap::Parser>() -> Result<P, Failure> {
    match P::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => Err(Failure::new(
            Exit::ToolFailed,
            crate::cli::arguments_error(&e),
        )),
    }
}

impl RunFlags {
    /// The store opened, the image there (pulled when the policy asks),
    /// and the options a container is made with; every failure is the
    /// tool's own (125).
    pub fn into_options(self, detach: bool) -> Result<(Store, RunOptions), Failure> {
        let tool_failed = |e: &dyn std::fmt::Display| Failure::new(Exit::ToolFailed, e.to_string());
        let image = match self.image.as_str() {
            "-" => {
                let mut targets = pipe::targets_from_process(
                    std::slice::from_ref(&self.image),
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
            _ => self.image.clone(),
        };
        let store = self
            .store
            .open()
            .map_err(|e| tool_failed(&Failure::from(e).message))?;
        ensure_image(
            &store,
            &image,
            self.pull,
            self.platform.as_ref(),
            self.quiet,
        )
        .map_err(|e| tool_failed(&e.message))?;
        let options = RunOptions {
            detach_keys: self.keys.keys(),
            image,
            command: self.command,
            name: self.name,
            detach,
            remove: self.rm,
            interactive: self.interactive,
            tty: self.tty,
            env: self.env,
            env_files: self.env_file,
            labels: self.label,
            workdir: self.workdir,
            user: self.user,
            hostname: self.hostname,
            volumes: self.volume,
            mounts: self.mount,
            read_only: self.read_only,
            tmpfs: self.tmpfs,
            cap_add: self.cap_add,
            cap_drop: self.cap_drop,
            memory: self.memory,
            cpus: self.cpus,
            pids_limit: self.pids_limit,
            network: self.network,
            publish: self.publish,
            publish_all: self.publish_all,
            ip: self.ip,
            add_hosts: self.add_host,
            dns: self.dns,
            network_aliases: self.network_alias,
            entrypoint: self.entrypoint,
            privileged: self.privileged,
            security_opt: self.security_opt,
            platform: self.platform,
            health: HealthFlags {
                cmd: self.health_cmd,
                interval: self.health_interval,
                timeout: self.health_timeout,
                start_period: self.health_start_period,
                start_interval: self.health_start_interval,
                retries: self.health_retries,
                none: self.no_healthcheck,
            },
            restart: self.restart,
        };
        Ok((store, options))
    }
}

/// `--restart`, refused in Docker's words.
fn restart_policy(value: &str) -> Result<RestartPolicy, FlagError> {
    value
        .parse()
        .map_err(|e: crate::container::restart::BadRestartPolicy| {
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
