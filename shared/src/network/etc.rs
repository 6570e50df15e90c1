//! The files a container's network is named in: its `/etc/hostname`,
//! `/etc/hosts` and `/etc/resolv.conf`, written in its directory for the
//! spec to bind in (Docker's `HostnamePath`, `HostsPath`, `ResolvConfPath`).

use super::{NetworkError, NetworkMode};
use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;

/// What the three files say.
#[derive(Debug, Clone, Default)]
pub struct EtcFiles<'a> {
    pub hostname: &'a str,
    pub network: NetworkMode,
    /// The container's own address on its bridge.
    pub address: Option<Ipv4Addr>,
    /// `--add-host NAME:IP`, as given.
    pub extra_hosts: &'a [(String, String)],
    /// `--dns`: these replace the host's name servers.
    pub dns: &'a [String],
}

/// Docker's fallback when the host names only loopback resolvers, which
/// a container on a bridge cannot reach.
const FALLBACK_DNS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// Writes `hostname`, `hosts` and `resolv.conf` in the container directory
/// `dir`: with the host's network, the host's files; with its own, a hosts
/// file naming it at its address (loopback without one).
pub fn write_etc_files(dir: &Path, files: &EtcFiles<'_>) -> Result<(), NetworkError> {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        fs::write(&path, text).map_err(|source| NetworkError::Io { path, source })
    };
    write("hostname", &format!("{}\n", files.hostname))?;
    let mut hosts = match files.network {
        NetworkMode::Host => fs::read_to_string("/etc/hosts").unwrap_or_default(),
        NetworkMode::None | NetworkMode::Bridge | NetworkMode::Named(_) | NetworkMode::Container(_) => "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n".to_string(),
    };
    for (name, ip) in files.extra_hosts {
        hosts.push_str(&format!("{ip}\t{name}\n"));
    }
    if files.network != NetworkMode::Host {
        let own = files
            .address
            .map_or("127.0.0.1".to_string(), |ip| ip.to_string());
        hosts.push_str(&format!("{own}\t{}\n", files.hostname));
    }
    write("hosts", &hosts)?;
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = match files.network {
        NetworkMode::Host if files.dns.is_empty() => host_resolv,
        _ => container_resolv(&host_resolv, files.dns),
    };
    write("resolv.conf", &resolv)
}

/// Rewrites the `resolv.conf` in container directory `dir` for a container
/// on its own network whose name servers are now `dns` (or the host's, if
/// none), as Docker does when net-connect puts a container on a network
/// that resolves names. Written in place: a running container has the
/// file itself bound in, not its name.
pub fn write_resolv_conf(dir: &Path, dns: &[String]) -> Result<(), NetworkError> {
    let path = dir.join("resolv.conf");
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    fs::write(&path, container_resolv(&host_resolv, dns))
        .map_err(|source| NetworkError::Io { path, source })
}

/// The host's resolv.conf as a container on its own network needs it:
/// `--dns` servers, else the host's without loopback ones (unreachable
/// from inside), else Docker's public fallback; search and options kept.
fn container_resolv(host: &str, dns: &[String]) -> String {
    let is_server = |line: &str| line.trim_start().starts_with("nameserver");
    let kept: Vec<&str> = host.lines().filter(|l| !is_server(l)).collect();
    let servers: Vec<String> = if dns.is_empty() {
        let reachable: Vec<String> = host
            .lines()
            .filter(|l| is_server(l))
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|ip| {
                ip.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| !ip.is_loopback())
            })
            .map(str::to_string)
            .collect();
        if reachable.is_empty() {
            FALLBACK_DNS.map(str::to_string).to_vec()
        } else {
            reachable
        }
    } else {
        dns.to_vec()
    };
    let mut text = String::new();
    for line in kept {
        text.push_str(line);
        text.push('\n');
    }
    for server in servers {
        text.push_str(&format!("nameserver {server}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_of_its_own_is_named_on_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let files = EtcFiles {
            hostname: "abc123",
            network: NetworkMode::None,
            ..EtcFiles::default()
        };
        write_etc_files(dir.path(), &files).unwrap();
        let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read("hostname"), "abc123\n");
        assert!(read("hosts").starts_with("127.0.0.1\tlocalhost\n"));
        assert!(read("hosts").ends_with("127.0.0.1\tabc123\n"));
        assert!(dir.path().join("resolv.conf").exists());
    }

    #[test]
    fn a_bridged_container_is_named_at_its_address_after_added_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let extra = [("db".to_string(), "10.1.2.3".to_string())];
        let dns = ["10.0.0.53".to_string()];
        let files = EtcFiles {
            hostname: "web",
            network: NetworkMode::Bridge,
            address: Some(Ipv4Addr::new(172, 17, 0, 2)),
            extra_hosts: &extra,
            dns: &dns,
        };
        write_etc_files(dir.path(), &files).unwrap();
        let hosts = fs::read_to_string(dir.path().join("hosts")).unwrap();
        assert!(
            hosts.ends_with("10.1.2.3\tdb\n172.17.0.2\tweb\n"),
            "{hosts}"
        );
        let resolv = fs::read_to_string(dir.path().join("resolv.conf")).unwrap();
        assert_eq!(
            resolv
                .lines()
                .filter(|l| l.starts_with("nameserver"))
                .collect::<Vec<_>>(),
            ["nameserver 10.0.0.53"]
        );
    }

    #[test]
    fn loopback_resolvers_are_replaced_and_the_rest_kept() {
        let host = "search example.org\nnameserver 127.0.0.53\noptions edns0\n";
        assert_eq!(
            container_resolv(host, &[]),
            "search example.org\noptions edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        let host = "nameserver 127.0.0.1\nnameserver 192.0.2.1\n";
        assert_eq!(container_resolv(host, &[]), "nameserver 192.0.2.1\n");
    }
}
