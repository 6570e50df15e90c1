//! img-login [SERVER]: Docker's `docker login`. Checks the credentials
//! against the registry, keeps them where Docker does, prints
//! "Login Succeeded".

use berth::registry::DockerConfig;
use berth::registry::RegistryOptions;
use berth::registry::login::{self, SavedIn, Server};
use berth::{Exit, Failure, exit};
use clap::Parser;
use std::io::{BufRead, IsTerminal, Read, Write};

/// Log in to a registry (Docker Hub without SERVER).
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    /// Username
    #[arg(short, long)]
    username: Option<String>,
    /// Password (shows in `ps` and shell history: prefer --password-stdin)
    #[arg(short, long)]
    password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    password_stdin: bool,
    /// Registry (HOST[:PORT]) that may be reached over plain HTTP or unverified HTTPS; repeatable
    #[arg(long, value_name = "HOST")]
    insecure: Vec<String>,
    /// The registry: HOST[:PORT] or a URL [default: Docker Hub]
    server: Option<String>,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let usage = |message: &str| Failure::new(Exit::Usage, message.to_string());
        if cli.password.is_some() && cli.password_stdin {
            return Err(usage(
                "--password and --password-stdin are mutually exclusive",
            ));
        }
        if cli.password_stdin && cli.username.is_none() {
            return Err(usage("Must provide --username with --password-stdin"));
        }
        if cli.password.is_some() {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        }
        let server = Server::parse(cli.server.as_deref());
        let username = match cli.username {
            Some(username) => username,
            None => prompt("Username: ", true)?,
        };
        let password = match (cli.password, cli.password_stdin) {
            (Some(password), _) => password,
            (None, true) => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| Failure::new(Exit::Failed, format!("reading stdin: {e}")))?;
                text.trim_end_matches(['\n', '\r']).to_string()
            }
            (None, false) => prompt("Password: ", false)?,
        };
        if username.is_empty() || password.is_empty() {
            return Err(usage("Error: Username and password are both required"));
        }
        let options = RegistryOptions {
            insecure: cli.insecure,
            ..RegistryOptions::default()
        };
        login::verify(&server, &username, &password, &options)?;
        let config = DockerConfig::load(None).map_err(berth::registry::RegistryError::from)?;
        if let SavedIn::File(path) = login::save(&config, &server, &username, &password)? {
            eprintln!(
                "WARNING! Your password will be stored unencrypted in {}.\n\
                 Configure a credential helper to remove this warning. See\n\
                 https://docs.docker.com/engine/reference/commandline/login/#credentials-store\n",
                path.display()
            );
        }
        berth::output::result("Login Succeeded");
        Ok(())
    })
}

/// Asks on the terminal, with echo off for secrets. Docker refuses an
/// interactive login without one.
fn prompt(label: &str, echo: bool) -> Result<String, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::new(
            Exit::Usage,
            "Error: Cannot perform an interactive login from a non TTY device",
        ));
    }
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let stdin = std::io::stdin();
    let saved = rustix::termios::tcgetattr(&stdin).ok();
    if let (false, Some(saved)) = (echo, &saved) {
        let mut quiet = saved.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let (false, Some(saved)) = (echo, &saved) {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, saved);
        eprintln!();
    }
    read.map_err(|e| Failure::new(Exit::Failed, format!("reading the terminal: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
