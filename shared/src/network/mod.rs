//! Container networking: the mode a container's network takes (`--network`,
//! `RUN --network`), the files that name it inside (`etc`), the networks a
//! store knows (`networks`), the addresses containers lease on one
//! (`ipam`), the ports they publish (`ports`, `host_ports`), the
//! namespaces their network lives in (`netns`), the stack that wires them
//! to a bridge (`netavark`) and one container's place on its network from
//! set-up to teardown (`attach`).

pub mod attach;
mod etc;
pub mod host_ports;
pub mod ipam;
pub mod netavark;
pub mod netns;
pub mod networks;
pub mod ports;
pub mod standing;

pub use attach::{Attached, Endpoint, NetworkRequest};
pub use etc::{EtcFiles, write_etc_files, write_resolv_conf};

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;

/// A container's network, as `--network` names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// A veth on the store's default bridge, an address of its own, NAT
    /// out and published ports in: Docker's default, and ctr-run's.
    #[default]
    Bridge,
    /// Its own network namespace with only a loopback interface.
    None,
    /// The host's network namespace.
    Host,
    /// A network made with net-create, by name or ID prefix: a bridge of
    /// its own whose containers find each other by name.
    Named(String),
    /// Another container's network namespace (`container:NAME|ID`): the
    /// container as given on the command line, its full ID once resolved.
    Container(String),
}

/// How `--network` names another container's namespace.
const CONTAINER_PREFIX: &str = "container:";

impl NetworkMode {
    /// Every mode berth supports, as `--network` lists them.
    pub const ALL: [NetworkMode; 3] = [NetworkMode::Bridge, NetworkMode::None, NetworkMode::Host];

    /// Its name on the command line and in `HostConfig.NetworkMode`; for
    /// another container's namespace, the container alone (`Display` puts
    /// `container:` before it).
    pub fn as_str(&self) -> &str {
        match self {
            NetworkMode::Bridge => "bridge",
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
            NetworkMode::Named(name) | NetworkMode::Container(name) => name,
        }
    }

    /// The bridge network it puts a container on, if any.
    pub fn network(&self) -> Option<&str> {
        match self {
            NetworkMode::Bridge => Some(networks::DEFAULT),
            NetworkMode::Named(name) => Some(name),
            NetworkMode::None | NetworkMode::Host | NetworkMode::Container(_) => None,
        }
    }

    /// The network's name in `NetworkSettings.Networks` (Docker's `none`
    /// and `host` too); none for another container's namespace, whose
    /// networks are that container's.
    pub fn endpoint_name(&self) -> Option<&str> {
        match self {
            NetworkMode::Container(_) => None,
            other => Some(other.as_str()),
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let NetworkMode::Container(_) = self {
            f.write_str(CONTAINER_PREFIX)?;
        }
        f.write_str(self.as_str())
    }
}

impl FromStr for NetworkMode {
    type Err = NetworkError;
    fn from_str(text: &str) -> Result<NetworkMode, NetworkError> {
        if let Some(mode) = NetworkMode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == text)
        {
            return Ok(mode);
        }
        if let Some(target) = text.strip_prefix(CONTAINER_PREFIX) {
            return match target.is_empty() {
                // Docker's word for `container:` alone.
                false => Ok(NetworkMode::Container(target.to_string())),
                true => Err(NetworkError::BadMode {
                    value: text.to_string(),
                }),
            };
        }
        match networks::valid_name(text) {
            true => Ok(NetworkMode::Named(text.to_string())),
            false => Err(NetworkError::BadMode {
                value: text.to_string(),
            }),
        }
    }
}

/// A build's network (`img-build --network`, a Dockerfile's
/// `RUN --network`): a mode, or `default`, the builder's own choice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BuildNetwork {
    #[default]
    Default,
    Mode(NetworkMode),
}

impl BuildNetwork {
    /// The mode this asks for, `default` being `fallback`.
    pub fn or(self, fallback: NetworkMode) -> NetworkMode {
        match self {
            BuildNetwork::Default => fallback,
            BuildNetwork::Mode(mode) => mode,
        }
    }
}

impl fmt::Display for BuildNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildNetwork::Default => f.write_str("default"),
            BuildNetwork::Mode(mode) => mode.fmt(f),
        }
    }
}

impl FromStr for BuildNetwork {
    type Err = NetworkError;
    fn from_str(text: &str) -> Result<BuildNetwork, NetworkError> {
        match text {
            "default" => Ok(BuildNetwork::Default),
            // A build step joins no other container's namespace.
            other if other.starts_with(CONTAINER_PREFIX) => {
                Err(NetworkError::BuildContainer(other.to_string()))
            }
            other => other.parse().map(BuildNetwork::Mode),
        }
    }
}

/// The supported modes, as the error for another lists them.
fn supported() -> String {
    let modes: Vec<&str> = NetworkMode::ALL.iter().map(NetworkMode::as_str).collect();
    format!(
        "{}, container:NAME|ID, or a network's name",
        modes.join(", ")
    )
}

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("invalid --network value {value:?}: supported: {}", supported())]
    BadMode { value: String },
    #[error("invalid --network value {0:?}: a build step joins no other container's namespace")]
    BuildContainer(String),
    #[error(transparent)]
    Ipam(#[from] ipam::IpamError),
    #[error(transparent)]
    Netavark(#[from] netavark::NetavarkError),
    #[error(transparent)]
    Port(#[from] host_ports::HostPortError),
    #[error("network {name}: {message}")]
    Definition { name: String, message: String },
    /// Docker's words for each.
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network with name {0} already exists")]
    Exists(String),
    #[error("invalid network name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName(String),
    #[error("Pool overlaps with other one on this address space")]
    Overlaps(String),
    #[error("{0} is a pre-defined network and cannot be removed")]
    Predefined(String),
    #[error("Invalid filter '{0}'")]
    BadFilter(String),
    #[error("endpoint with name {container} already exists in network {network}")]
    EndpointExists { container: String, network: String },
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    InUse { name: String, id: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print_as_flags_spell_them() {
        for mode in NetworkMode::ALL {
            assert_eq!(mode.to_string().parse::<NetworkMode>().unwrap(), mode);
        }
        assert_eq!("none".parse::<NetworkMode>().unwrap(), NetworkMode::None);
        assert_eq!("host".parse::<NetworkMode>().unwrap(), NetworkMode::Host);
    }

    #[test]
    fn a_build_network_is_a_mode_or_the_builders_default() {
        let default: BuildNetwork = "default".parse().unwrap();
        assert_eq!(default, BuildNetwork::Default);
        assert_eq!(default.clone().or(NetworkMode::Host), NetworkMode::Host);
        let none: BuildNetwork = "none".parse().unwrap();
        assert_eq!(none.clone().or(NetworkMode::Host), NetworkMode::None);
        assert_eq!(none.to_string(), "none");
        assert!("a/b".parse::<BuildNetwork>().is_err());
        assert_eq!(
            "container:web"
                .parse::<BuildNetwork>()
                .unwrap_err()
                .to_string(),
            "invalid --network value \"container:web\": a build step joins no other container's namespace"
        );
    }

    #[test]
    fn other_names_are_networks_and_what_cannot_be_one_is_refused() {
        assert_eq!(
            "app-net".parse::<NetworkMode>().unwrap(),
            NetworkMode::Named("app-net".into())
        );
        assert_eq!(
            NetworkMode::Named("app-net".into()).network(),
            Some("app-net")
        );
        assert_eq!(NetworkMode::Bridge.network(), Some("bridge"));
        assert_eq!(NetworkMode::Host.network(), None);
        assert_eq!(
            "container:web".parse::<NetworkMode>().unwrap(),
            NetworkMode::Container("web".into())
        );
        assert_eq!(
            NetworkMode::Container("web".into()).to_string(),
            "container:web"
        );
        assert_eq!(NetworkMode::Container("web".into()).network(), None);
        for value in ["", "container:", "none ", "a/b", "-x"] {
            let error = value.parse::<NetworkMode>().unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "invalid --network value {value:?}: supported: bridge, none, host, container:NAME|ID, or a network's name"
                )
            );
        }
    }
}
