//! Container networking: the mode a container's network takes (`--network`,
//! `RUN --network`), the files that name it inside (`etc`), the addresses
//! containers lease on a network (`ipam`), the ports they publish
//! (`ports`), the namespaces their network lives in (`netns`) and the
//! stack that wires them to a bridge (`netavark`).

mod etc;
pub mod ipam;
pub mod netavark;
pub mod netns;
pub mod ports;

pub use etc::write_etc_files;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;

/// A container's network, as `--network` names it. A bridge comes later.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// Its own network namespace with only a loopback interface (ctr-run's
    /// default until the bridge, Docker's default, comes).
    #[default]
    None,
    /// The host's network namespace.
    Host,
}

impl NetworkMode {
    /// Every mode berth supports, as `--network` lists them.
    pub const ALL: [NetworkMode; 2] = [NetworkMode::None, NetworkMode::Host];

    /// Its name on the command line and in `HostConfig.NetworkMode`.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NetworkMode {
    type Err = NetworkError;
    fn from_str(text: &str) -> Result<NetworkMode, NetworkError> {
        NetworkMode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == text)
            .ok_or_else(|| NetworkError::BadMode {
                value: text.to_string(),
            })
    }
}

/// A build's network (`img-build --network`, a Dockerfile's
/// `RUN --network`): a mode, or `default`, the builder's own choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
            other => other.parse().map(BuildNetwork::Mode),
        }
    }
}

/// The supported modes, as the error for another lists them.
fn supported() -> String {
    NetworkMode::ALL.map(NetworkMode::as_str).join(", ")
}

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("invalid --network value {value:?}: supported: {}", supported())]
    BadMode { value: String },
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
        assert_eq!(default.or(NetworkMode::Host), NetworkMode::Host);
        let none: BuildNetwork = "none".parse().unwrap();
        assert_eq!(none.or(NetworkMode::Host), NetworkMode::None);
        assert_eq!(none.to_string(), "none");
        assert!("bridge".parse::<BuildNetwork>().is_err());
    }

    #[test]
    fn other_modes_are_refused_with_the_supported_ones() {
        for (value, message) in [
            (
                "bridge",
                "invalid --network value \"bridge\": supported: none, host",
            ),
            ("", "invalid --network value \"\": supported: none, host"),
            (
                "Host",
                "invalid --network value \"Host\": supported: none, host",
            ),
            (
                "container:web",
                "invalid --network value \"container:web\": supported: none, host",
            ),
        ] {
            let error = value.parse::<NetworkMode>().unwrap_err();
            assert_eq!(error.to_string(), message);
        }
    }
}
