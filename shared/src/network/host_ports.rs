//! Host ports for published container ports. netavark only writes DNAT
//! rules: nothing listens on the host port, so nothing would stop two
//! containers (or a container and a host server) from taking one. Like
//! Docker's "port is already allocated", berth refuses that: a port is
//! taken when a host socket cannot bind it or when another container's
//! claim (a file under `/run/berth/ports`, host-wide, naming the claiming
//! container's directory) holds it. A claim whose container directory is
//! gone is stale.

use super::ports::{Protocol, Published};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

const CLAIMS: &str = "/run/berth/ports";

#[derive(Debug, thiserror::Error)]
pub enum HostPortError {
    /// Docker's words.
    #[error("Bind for {ip}:{port} failed: port is already allocated")]
    Allocated { ip: String, port: u16 },
    #[error("no free host port for {0}")]
    NoneFree(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The claim file of `port`.
fn claim_path(protocol: Protocol, port: u16) -> PathBuf {
    Path::new(CLAIMS).join(format!("{protocol}-{port}"))
}

/// Whether a host socket can bind `port` now (then it is let go at once).
fn bindable(ip: IpAddr, protocol: Protocol, port: u16) -> bool {
    let address = SocketAddr::new(ip, port);
    match protocol {
        Protocol::Tcp | Protocol::Sctp => TcpListener::bind(address).is_ok(),
        Protocol::Udp => UdpSocket::bind(address).is_ok(),
    }
}

/// A port the kernel hands out as free now (its ephemeral range, as
/// Docker's random ports come from).
fn kernel_pick(ip: IpAddr, protocol: Protocol) -> io::Result<u16> {
    let address = SocketAddr::new(ip, 0);
    match protocol {
        Protocol::Tcp | Protocol::Sctp => Ok(TcpListener::bind(address)?.local_addr()?.port()),
        Protocol::Udp => Ok(UdpSocket::bind(address)?.local_addr()?.port()),
    }
}

/// Claims `port` for `owner` (a container directory): false if a live
/// claim of another container holds it.
fn claim(protocol: Protocol, port: u16, owner: &Path) -> Result<bool, HostPortError> {
    let dir = Path::new(CLAIMS);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HostPortError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let path = claim_path(protocol, port);
    let ours = owner.display().to_string();
    for _ in 0..2 {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut file) => {
                file.write_all(ours.as_bytes()).map_err(io(&path))?;
                return Ok(true);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let holder = fs::read_to_string(&path).unwrap_or_default();
                if holder == ours {
                    return Ok(true);
                }
                // Empty: being written by its claimer this instant.
                if holder.is_empty() || Path::new(&holder).exists() {
                    return Ok(false);
                }
                // Stale: its container is gone. Removed, then raced for.
                let _ = fs::remove_file(&path);
            }
            Err(e) => return Err(io(&path)(e)),
        }
    }
    Ok(false)
}

/// Gives up `owner`'s claim of `port`.
pub fn release(protocol: Protocol, port: u16, owner: &Path) {
    let path = claim_path(protocol, port);
    if fs::read_to_string(&path).is_ok_and(|holder| holder == owner.display().to_string()) {
        let _ = fs::remove_file(&path);
    }
}

/// Chooses and claims a host port for every binding: the one asked for,
/// else (`preferred`, from an earlier start) the one it had, else one the
/// kernel finds free. On error nothing stays claimed.
pub fn allocate(
    bindings: &[Published],
    preferred: &[(Published, u16)],
    owner: &Path,
) -> Result<Vec<(Published, u16)>, HostPortError> {
    let mut chosen: Vec<(Published, u16)> = Vec::new();
    let undo = |chosen: &[(Published, u16)]| {
        for (binding, port) in chosen {
            release(binding.container.protocol, *port, owner);
        }
    };
    for binding in bindings {
        let protocol = binding.container.protocol;
        let ip = binding.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let taken = |port: u16| {
            chosen
                .iter()
                .any(|(b, p)| *p == port && b.container.protocol == protocol)
        };
        let port = match binding.host_port {
            Some(port) => {
                if taken(port) || !bindable(ip, protocol, port) || !claim(protocol, port, owner)? {
                    undo(&chosen);
                    return Err(HostPortError::Allocated {
                        ip: ip.to_string(),
                        port,
                    });
                }
                port
            }
            None => {
                let earlier = preferred
                    .iter()
                    .find(|(b, _)| b == binding)
                    .map(|(_, port)| *port)
                    .filter(|port| !taken(*port) && bindable(ip, protocol, *port));
                let mut found = None;
                if let Some(port) = earlier
                    && claim(protocol, port, owner)?
                {
                    found = Some(port);
                }
                for _ in 0..64 {
                    if found.is_some() {
                        break;
                    }
                    let port = kernel_pick(ip, protocol).map_err(|source| HostPortError::Io {
                        path: PathBuf::from(format!("{ip}:0")),
                        source,
                    })?;
                    if !taken(port) && claim(protocol, port, owner)? {
                        found = Some(port);
                    }
                }
                match found {
                    Some(port) => port,
                    None => {
                        undo(&chosen);
                        return Err(HostPortError::NoneFree(binding.container.to_string()));
                    }
                }
            }
        };
        chosen.push((*binding, port));
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::ports::parse_publish;

    #[test]
    fn a_claimed_or_listening_port_is_refused_in_docker_s_words() {
        let owner = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let random = parse_publish("127.0.0.1::80").unwrap();
        let first = allocate(&random, &[], owner.path()).unwrap();
        let port = first[0].1;
        // Asked for by another container: allocated already.
        let same = parse_publish(&format!("{port}:80")).unwrap();
        let refused = allocate(&same, &[], other.path()).unwrap_err();
        assert_eq!(
            refused.to_string(),
            format!("Bind for 0.0.0.0:{port} failed: port is already allocated")
        );
        // The earlier port is taken again on a new start of its owner.
        let again = allocate(&random, &first, owner.path()).unwrap();
        assert_eq!(again[0].1, port);
        release(Protocol::Tcp, port, owner.path());
        assert_eq!(allocate(&same, &[], other.path()).unwrap()[0].1, port);
        release(Protocol::Tcp, port, other.path());
        // A host server on the port: refused too, and nothing stays claimed.
        let listener = TcpListener::bind("0.0.0.0:0").unwrap();
        let busy = listener.local_addr().unwrap().port();
        let both = parse_publish(&format!("{busy}:81")).unwrap();
        let wanted = [random[0], both[0]];
        assert!(allocate(&wanted, &[], other.path()).is_err());
        assert!(fs::read_dir(CLAIMS).unwrap().flatten().all(|e| {
            fs::read_to_string(e.path()).unwrap_or_default() != other.path().display().to_string()
        }));
    }

    #[test]
    fn a_claim_whose_container_is_gone_is_stale() {
        let gone = tempfile::tempdir().unwrap().path().to_path_buf();
        let binding = parse_publish("127.0.0.1::80").unwrap();
        let port = allocate(&binding, &[], &gone).unwrap()[0].1;
        let live = tempfile::tempdir().unwrap();
        let fixed = parse_publish(&format!("127.0.0.1:{port}:80")).unwrap();
        assert_eq!(allocate(&fixed, &[], live.path()).unwrap()[0].1, port);
        release(Protocol::Tcp, port, live.path());
    }
}
