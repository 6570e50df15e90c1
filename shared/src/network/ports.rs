//! Published and exposed ports as Docker spells them: `-p
//! [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]` (ranges too), `EXPOSE 80/tcp`,
//! and the `0.0.0.0:8080->80/tcp` text of ctr-ps's PORTS column.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A transport protocol a port is published for.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = PortError;
    fn from_str(text: &str) -> Result<Protocol, PortError> {
        match text.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "sctp" => Ok(Protocol::Sctp),
            _ => Err(PortError(format!("invalid proto: {text}"))),
        }
    }
}

/// Why a port could not be read, in Docker's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PortError(String);

/// A container port and its protocol: `EXPOSE 80/tcp`, Docker's
/// `ExposedPorts` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port {
    pub number: u16,
    pub protocol: Protocol,
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.number, self.protocol)
    }
}

impl FromStr for Port {
    type Err = PortError;
    fn from_str(text: &str) -> Result<Port, PortError> {
        let (number, protocol) = match text.split_once('/') {
            Some((number, protocol)) => (number, protocol.parse()?),
            None => (text, Protocol::Tcp),
        };
        Ok(Port {
            number: port_number(number, "containerPort")?,
            protocol,
        })
    }
}

/// One container port published on the host: Docker's `PortBinding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Published {
    pub container: Port,
    /// `None`: every address (Docker's `0.0.0.0`).
    pub host_ip: Option<IpAddr>,
    /// `None`: a free port chosen when the container starts.
    pub host_port: Option<u16>,
}

impl Published {
    /// The PORTS column's text, once the host port is known:
    /// `0.0.0.0:8080->80/tcp`.
    pub fn describe(&self, host_port: u16) -> String {
        let ip = match self.host_ip {
            None => "0.0.0.0".to_string(),
            Some(IpAddr::V6(ip)) => format!("[{ip}]"),
            Some(IpAddr::V4(ip)) => ip.to_string(),
        };
        format!("{ip}:{host_port}->{}", self.container)
    }
}

/// Reads one `-p` value; a range gives one binding per port.
pub fn parse_publish(text: &str) -> Result<Vec<Published>, PortError> {
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((spec, protocol)) => (spec, protocol.parse()?),
        None => (text, Protocol::Tcp),
    };
    // An IPv6 address comes in brackets: `[::1]:8080:80`.
    let (host_ip, rest) = match spec.strip_prefix('[') {
        Some(after) => {
            let (ip, rest) = after
                .split_once("]:")
                .ok_or_else(|| PortError(format!("invalid IP address in {text}")))?;
            (Some(ip), rest)
        }
        None => {
            let parts: Vec<&str> = spec.split(':').collect();
            match parts.len() {
                1 | 2 => (None, spec),
                3 => (Some(parts[0]), &spec[parts[0].len() + 1..]),
                _ => return Err(PortError(format!("invalid port specification: \"{text}\""))),
            }
        }
    };
    let host_ip = match host_ip {
        None | Some("") => None,
        Some(ip) => Some(
            ip.parse::<IpAddr>()
                .map_err(|_| PortError(format!("invalid IP address: {ip}")))?,
        ),
    };
    let (host, container) = match rest.split_once(':') {
        Some((host, container)) => (Some(host).filter(|h| !h.is_empty()), container),
        None => (None, rest),
    };
    let (first, last) = port_range(container, "containerPort")?;
    let hosts = match host {
        None => None,
        Some(host) => {
            let (low, high) = port_range(host, "hostPort")?;
            // A host range for one container port: Docker picks one of
            // them; we take the first.
            if first == last {
                Some((low, low))
            } else if high - low != last - first {
                return Err(PortError(format!(
                    "Invalid ranges specified for container and host Ports: {container} and {host}"
                )));
            } else {
                Some((low, high))
            }
        }
    };
    Ok((first..=last)
        .enumerate()
        .map(|(i, number)| Published {
            container: Port { number, protocol },
            host_ip,
            host_port: hosts.map(|(low, _)| low + i as u16),
        })
        .collect())
}

fn port_range(text: &str, what: &str) -> Result<(u16, u16), PortError> {
    match text.split_once('-') {
        Some((low, high)) => {
            let (low, high) = (port_number(low, what)?, port_number(high, what)?);
            if high < low {
                return Err(PortError(format!("invalid {what}: {text}")));
            }
            Ok((low, high))
        }
        None => {
            let port = port_number(text, what)?;
            Ok((port, port))
        }
    }
}

fn port_number(text: &str, what: &str) -> Result<u16, PortError> {
    text.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| PortError(format!("invalid {what}: {text}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Published {
        let mut all = parse_publish(text).unwrap();
        assert_eq!(all.len(), 1, "{text}");
        all.remove(0)
    }

    #[test]
    fn publish_forms_read_as_docker_reads_them() {
        let p = one("8080:80");
        assert_eq!(
            (p.host_ip, p.host_port, p.container.number),
            (None, Some(8080), 80)
        );
        assert_eq!(p.describe(8080), "0.0.0.0:8080->80/tcp");
        let p = one("80");
        assert_eq!((p.host_port, p.container.number), (None, 80));
        let p = one("127.0.0.1:8080:80/udp");
        assert_eq!(p.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(p.describe(8080), "127.0.0.1:8080->80/udp");
        let p = one("127.0.0.1::80");
        assert_eq!((p.host_port, p.container.number), (None, 80));
        let p = one("[::1]:8080:80");
        assert_eq!(p.describe(8080), "[::1]:8080->80/tcp");
        let range = parse_publish("8000-8002:80-82").unwrap();
        let pairs: Vec<(Option<u16>, u16)> = range
            .iter()
            .map(|p| (p.host_port, p.container.number))
            .collect();
        assert_eq!(
            pairs,
            [(Some(8000), 80), (Some(8001), 81), (Some(8002), 82)]
        );
    }

    #[test]
    fn bad_publish_values_are_named() {
        for (text, message) in [
            ("abc", "invalid containerPort: abc"),
            ("0", "invalid containerPort: 0"),
            ("70000", "invalid containerPort: 70000"),
            ("x:80", "invalid hostPort: x"),
            ("80/icmp", "invalid proto: icmp"),
            ("999.1.1.1:80:80", "invalid IP address: 999.1.1.1"),
            (
                "8000-8001:80-82",
                "Invalid ranges specified for container and host Ports: 80-82 and 8000-8001",
            ),
            ("1:2:3:4", "invalid port specification: \"1:2:3:4\""),
        ] {
            assert_eq!(
                parse_publish(text).unwrap_err().to_string(),
                message,
                "{text}"
            );
        }
    }

    #[test]
    fn exposed_ports_read_and_print_as_keys() {
        let port: Port = "5432".parse().unwrap();
        assert_eq!(port.to_string(), "5432/tcp");
        assert_eq!("53/UDP".parse::<Port>().unwrap().to_string(), "53/udp");
        assert!("x/tcp".parse::<Port>().is_err());
    }
}
