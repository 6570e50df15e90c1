//! img-logout [SERVER]: Docker's `docker logout`. Removes the registry's
//! credentials from the credential helper and `config.json`.

use berth::registry::DockerConfig;
use berth::registry::login::{self, Server};
use berth::{Failure, exit};
use clap::Parser;

/// Log out from a registry (Docker Hub without SERVER).
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    /// The registry: HOST[:PORT] or a URL [default: Docker Hub]
    server: Option<String>,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli = Cli::parse();
        let server = Server::parse(cli.server.as_deref());
        let config = DockerConfig::load(None).map_err(berth::registry::RegistryError::from)?;
        let removed = login::remove(&config, &server).map_err(Failure::from)?;
        let key = server.key();
        match removed {
            true => berth::output::result(format!("Removing login credentials for {key}")),
            false => berth::output::result(format!("Not logged in to {key}")),
        }
        Ok(())
    })
}
