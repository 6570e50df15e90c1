//! A container's network as its record keeps it, in Docker's shape:
//! `NetworkSettings` (address, gateway, MAC, published ports, one entry
//! per network) and the `PortBindings` map that `HostConfig` keeps of what
//! `-p` asked for. Both convert to and from the network module's types.

use crate::network::ports::{Port, Published};
use crate::network::{Attached, NetworkMode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

/// Docker's `PortBinding`: `{"HostIp": "", "HostPort": "8080"}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// Docker's port map: `"80/tcp"` → its bindings (`null`: exposed only).
pub type PortMap = BTreeMap<String, Option<Vec<PortBinding>>>;

/// `--ip` as Docker keeps it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct IpamConfig {
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
}

/// One network's entry in `NetworkSettings.Networks`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSettings {
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<IpamConfig>,
    pub aliases: Option<Vec<String>>,
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    pub mac_address: String,
}

impl EndpointSettings {
    /// An entry with what was asked for (`--ip`, aliases) and nothing got.
    pub fn asked(wanted_ip: Option<Ipv4Addr>, aliases: &[String]) -> EndpointSettings {
        EndpointSettings {
            ipam_config: wanted_ip.map(|ip| IpamConfig {
                ipv4_address: ip.to_string(),
            }),
            aliases: (!aliases.is_empty()).then(|| aliases.to_vec()),
            ..EndpointSettings::default()
        }
    }

    /// The address asked for, if any.
    pub fn wanted_ip(&self) -> Option<Ipv4Addr> {
        self.ipam_config
            .as_ref()
            .and_then(|c| c.ipv4_address.parse().ok())
    }
}

/// Docker's `NetworkSettings`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSettings {
    pub bridge: String,
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    pub sandbox_key: String,
    pub ports: PortMap,
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    pub mac_address: String,
    pub networks: BTreeMap<String, EndpointSettings>,
}

impl NetworkSettings {
    /// What a container on `mode` has before it starts (or after it
    /// stopped): its network named, with the address and aliases asked
    /// for, and no address yet. One joining another container's namespace
    /// has no network of its own (Docker's `{}`).
    pub fn unattached(
        mode: NetworkMode,
        wanted_ip: Option<Ipv4Addr>,
        aliases: &[String],
    ) -> NetworkSettings {
        let Some(name) = mode.endpoint_name() else {
            return NetworkSettings::default();
        };
        NetworkSettings {
            networks: BTreeMap::from([(
                name.to_string(),
                EndpointSettings::asked(wanted_ip, aliases),
            )]),
            ..NetworkSettings::default()
        }
    }

    /// Fills in what attaching gave on the network the record names `key`:
    /// its entry (address, gateway, MAC); for the container's first
    /// network (`primary`) also the top-level fields and the host ports.
    pub fn attached(
        &mut self,
        container_id: &str,
        key: &str,
        attached: &Attached,
        primary: Option<&[Port]>,
    ) {
        let subnet = attached.network.subnet().ok();
        let gateway = subnet.map(|s| s.gateway().to_string()).unwrap_or_default();
        let prefix = subnet.map(|s| s.prefix).unwrap_or_default();
        self.sandbox_id = container_id.to_string();
        self.sandbox_key = attached.netns.display().to_string();
        if let Some(exposed) = primary {
            self.ip_address = attached.ip.to_string();
            self.ip_prefix_len = prefix;
            self.gateway = gateway.clone();
            self.mac_address = attached.mac_address.clone();
            self.ports = port_map(&attached.ports, exposed);
        }
        let endpoint = self.networks.entry(key.to_string()).or_default();
        endpoint.network_id = attached.network.id.clone();
        endpoint.endpoint_id = container_id.to_string();
        endpoint.ip_address = attached.ip.to_string();
        endpoint.ip_prefix_len = prefix;
        endpoint.gateway = gateway;
        endpoint.mac_address = attached.mac_address.clone();
    }

    /// The host ports of the last start, for the next to take again.
    pub fn host_ports(&self) -> Vec<(Published, u16)> {
        let mut out = Vec::new();
        for (container, bindings) in entries(&self.ports) {
            for binding in bindings {
                let Ok(port) = binding.host_port.parse::<u16>() else {
                    continue;
                };
                let host_ip = match binding.host_ip.as_str() {
                    "" | "0.0.0.0" => None,
                    ip => ip.parse::<IpAddr>().ok(),
                };
                out.push((
                    Published {
                        container,
                        host_ip,
                        host_port: None,
                    },
                    port,
                ));
            }
        }
        out
    }

    /// The settings as Docker shows them: a stopped container has no
    /// address and no ports; its networks stay named (`--ip` with them).
    pub fn shown(&self, running: bool) -> NetworkSettings {
        if running {
            return self.clone();
        }
        let networks = self
            .networks
            .iter()
            .map(|(name, endpoint)| {
                let kept = EndpointSettings {
                    ipam_config: endpoint.ipam_config.clone(),
                    aliases: endpoint.aliases.clone(),
                    network_id: endpoint.network_id.clone(),
                    ..EndpointSettings::default()
                };
                (name.clone(), kept)
            })
            .collect();
        NetworkSettings {
            networks,
            ..NetworkSettings::default()
        }
    }

    /// `docker port`'s lines in natural order: `80/tcp -> 0.0.0.0:8080`
    /// for every published port, or only the host addresses of `only`.
    pub fn port_lines(&self, only: Option<Port>) -> Vec<String> {
        let mut lines: Vec<(Port, String)> = Vec::new();
        for (port, bindings) in entries(&self.ports) {
            if only.is_some_and(|wanted| wanted != port) {
                continue;
            }
            for binding in bindings {
                let host = match binding.host_ip.parse::<IpAddr>() {
                    Ok(IpAddr::V6(ip)) => format!("[{ip}]:{}", binding.host_port),
                    _ => format!("{}:{}", binding.host_ip, binding.host_port),
                };
                let line = match only {
                    Some(_) => host,
                    None => format!("{port} -> {host}"),
                };
                lines.push((port, line));
            }
        }
        lines.sort_by_key(|(port, _)| *port);
        lines.into_iter().map(|(_, line)| line).collect()
    }

    /// Docker's PORTS column: `0.0.0.0:8080->80/tcp, 5432/tcp`.
    pub fn ports_text(&self) -> String {
        let mut parts: Vec<(Port, String)> = Vec::new();
        for (port, bindings) in entries(&self.ports) {
            if bindings.is_empty() {
                parts.push((port, port.to_string()));
            }
            for b in bindings {
                parts.push((port, format!("{}:{}->{port}", b.host_ip, b.host_port)));
            }
        }
        parts.sort_by_key(|part| part.0);
        parts
            .into_iter()
            .map(|(_, text)| text)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A port map's entries with their keys read (unreadable ones skipped) and
/// `null` (exposed only) as no bindings.
fn entries(map: &PortMap) -> impl Iterator<Item = (Port, &[PortBinding])> {
    map.iter().filter_map(|(key, bindings)| {
        let port = key.parse::<Port>().ok()?;
        Some((port, bindings.as_deref().unwrap_or_default()))
    })
}

/// Adds `binding` to `port`'s list in `map` (made if `null` or missing).
fn add_binding(map: &mut PortMap, port: Port, binding: PortBinding) {
    map.entry(port.to_string())
        .or_insert(None)
        .get_or_insert_with(Vec::new)
        .push(binding);
}

/// `NetworkSettings.Ports`: each published port with its host address and
/// port; each port only exposed with `null`.
fn port_map(published: &[(Published, u16)], exposed: &[Port]) -> PortMap {
    let mut map = PortMap::new();
    for port in exposed {
        map.insert(port.to_string(), None);
    }
    for (binding, host_port) in published {
        let host_ip = binding
            .host_ip
            .map_or("0.0.0.0".to_string(), |ip| ip.to_string());
        let entry = PortBinding {
            host_ip,
            host_port: host_port.to_string(),
        };
        add_binding(&mut map, binding.container, entry);
    }
    map
}

/// `HostConfig.PortBindings` of what `-p` asked for (`HostPort` empty: a
/// random one).
pub fn port_bindings(published: &[Published]) -> PortMap {
    let mut map = PortMap::new();
    for binding in published {
        let entry = PortBinding {
            host_ip: binding.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            host_port: binding.host_port.map(|p| p.to_string()).unwrap_or_default(),
        };
        add_binding(&mut map, binding.container, entry);
    }
    map
}

/// What `HostConfig.PortBindings` asks for, read back for a new start.
pub fn published(bindings: &PortMap) -> Vec<Published> {
    entries(bindings)
        .flat_map(|(container, list)| {
            list.iter().map(move |binding| Published {
                container,
                host_ip: binding.host_ip.parse().ok(),
                host_port: binding.host_port.parse().ok(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::ports::parse_publish;

    #[test]
    fn port_bindings_round_trip_and_print_as_docker_s_ports_column() {
        let mut asked = parse_publish("127.0.0.1:8080:80").unwrap();
        asked.extend(parse_publish("53/udp").unwrap());
        let map = port_bindings(&asked);
        assert_eq!(
            serde_json::to_value(&map).unwrap(),
            serde_json::json!({
                "53/udp": [{"HostIp": "", "HostPort": ""}],
                "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
            })
        );
        assert_eq!(published(&map), [asked[1], asked[0]]);
        let chosen = [(asked[0], 8080), (asked[1], 40001)];
        let settings = NetworkSettings {
            ports: port_map(&chosen, &["5432/tcp".parse().unwrap()]),
            ..NetworkSettings::default()
        };
        assert_eq!(
            settings.ports_text(),
            "0.0.0.0:40001->53/udp, 127.0.0.1:8080->80/tcp, 5432/tcp"
        );
        let again = settings.host_ports();
        assert!(again.contains(&(asked[1], 40001)), "{again:?}");
    }
}
