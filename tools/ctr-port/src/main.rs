//! ctr-port: Docker's `docker port`. Each published port of a container
//! as `80/tcp -> 0.0.0.0:8080`, or the host addresses of one port.

use berth::cli::{self, StoreArgs};
use berth::exit::{self, Exit, Failure};
use berth::network::ports::Port;
use berth::{lifecycle, pipe};
use clap::Parser;

/// List port mappings or a specific mapping for the container.
#[derive(Parser)]
#[command(version, after_help = berth::see_also!())]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Container: name, ID or unique ID prefix ("-": stdin)
    container: String,
    /// Only this port: PORT[/PROTO] (default protocol tcp)
    port: Option<Port>,
}

fn main() -> std::process::ExitCode {
    berth::cli::generate_on_request::<Cli>();
    exit::run(|| {
        let cli: Cli = cli::parse()?;
        let target = pipe::single_target(&cli.container, pipe::CONTAINER_FIELDS)?;
        let store = cli.store.open()?;
        let record = lifecycle::find(&store, &target)?;
        let shown = record.network_settings.shown(record.state.running);
        let lines = shown.port_lines(cli.port);
        if let (Some(port), true) = (cli.port, lines.is_empty()) {
            return Err(Failure::new(
                Exit::Failed,
                format!(
                    "Error: No public port '{port}' published for {}",
                    cli.container
                ),
            ));
        }
        for line in lines {
            println!("{line}");
        }
        Ok(())
    })
}
