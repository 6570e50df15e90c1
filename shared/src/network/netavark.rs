//! Driving netavark, podman's network stack (bridge, veth, routes, NAT,
//! port forwarding, firewall rules), rather than writing netlink and
//! iptables code ourselves: `netavark setup <netns>` and `teardown
//! <netns>`, each with the container's options as JSON on stdin.
//!
//! netavark is not safe in parallel (simultaneous setups race on the
//! firewall's chains), so every call holds one host-wide lock, as podman's
//! do. It allocates no addresses: the caller's IPAM gives the static IP.

use super::ipam::Subnet;
use super::ports::Published;
use serde_json::{Value, json};
use std::fs::{self, File};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where Debian's netavark and aardvark-dns live.
pub const NETAVARK: &str = "/usr/lib/podman/netavark";
pub const AARDVARK_DNS: &str = "/usr/lib/podman/aardvark-dns";
/// The host-wide lock every netavark call holds.
const LOCK: &str = "/run/berth/netavark.lock";
/// Per bridge, its interface index when a netavark set-up of it last
/// completed with no teardown begun since: the bridge is then whole
/// (bridge, NAT and isolation rules), not the remains of a set-up or a
/// teardown that was killed half-way, which leave the bridge but not all
/// of its rules. A bridge deleted and made again has another index.
const OPENED: &str = "/run/berth/opened";

#[derive(Debug, thiserror::Error)]
pub enum NetavarkError {
    #[error("cannot run {NETAVARK}: {0} (install netavark: apt install netavark aardvark-dns)")]
    Missing(std::io::Error),
    #[error("netavark {verb} failed: {message}")]
    Failed { verb: &'static str, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A bridge network as netavark is told it.
#[derive(Debug, Clone)]
pub struct Bridge {
    pub name: String,
    /// 64 hex characters, as podman's network IDs.
    pub id: String,
    /// The Linux bridge on the host (`berth0`).
    pub interface: String,
    pub subnet: Subnet,
    /// No route out, no NAT.
    pub internal: bool,
    /// aardvark-dns answers the names of the network's containers.
    pub dns: bool,
}

/// One container's place on a bridge.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    pub container_id: &'a str,
    pub container_name: &'a str,
    pub ip: Ipv4Addr,
    pub aliases: &'a [String],
    /// Its interface inside the container: `eth0` for the network it
    /// started on, `eth1`… for those net-connect adds.
    pub interface: &'a str,
    /// Host ports already chosen for every binding.
    pub ports: &'a [(Published, u16)],
}

/// What setup gave the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configured {
    pub mac_address: String,
    pub dns_servers: Vec<String>,
}

/// netavark's options JSON for one container on one bridge.
pub fn options(bridge: &Bridge, attachment: &Attachment<'_>) -> Value {
    let ports: Vec<Value> = attachment
        .ports
        .iter()
        .map(|(published, host_port)| {
            json!({
                "host_ip": published.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                "container_port": published.container.number,
                "host_port": host_port,
                "range": 1,
                "protocol": published.container.protocol.as_str(),
            })
        })
        .collect();
    json!({
        "container_id": attachment.container_id,
        "container_name": attachment.container_name,
        "port_mappings": ports,
        "networks": {
            bridge.name.clone(): {
                "interface_name": attachment.interface,
                "static_ips": [attachment.ip.to_string()],
                "aliases": attachment.aliases,
            }
        },
        "network_info": {
            bridge.name.clone(): {
                "name": bridge.name,
                "id": bridge.id,
                "driver": "bridge",
                "network_interface": bridge.interface,
                "subnets": [{
                    "subnet": bridge.subnet.to_string(),
                    "gateway": bridge.subnet.gateway().to_string(),
                }],
                "ipv6_enabled": false,
                "internal": bridge.internal,
                "dns_enabled": bridge.dns,
                "options": { "isolate": "true" },
            }
        },
    })
}

/// `netavark setup`: the container's end of a veth pair in `netns`, the
/// bridge and the firewall rules on the host.
pub fn setup(
    config_dir: &Path,
    netns: &Path,
    bridge: &Bridge,
    attachment: &Attachment<'_>,
) -> Result<Configured, NetavarkError> {
    let _serialised = host_lock()?;
    guard_host_loopback(&bridge.interface)?;
    let reply = run(config_dir, "setup", netns, &options(bridge, attachment))?;
    mark_opened(&bridge.interface);
    let status: Value = serde_json::from_slice(&reply).map_err(|e| NetavarkError::Failed {
        verb: "setup",
        message: format!("unreadable answer: {e}"),
    })?;
    let network = &status[bridge.name.as_str()];
    Ok(Configured {
        mac_address: network["interfaces"][attachment.interface]["mac_address"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        dns_servers: network["dns_server_ips"]
            .as_array()
            .map(|ips| {
                ips.iter()
                    .filter_map(|ip| ip.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// `netavark teardown`: the same options undo what setup did (the last
/// container of a network takes its bridge with it).
pub fn teardown(
    config_dir: &Path,
    netns: &Path,
    bridge: &Bridge,
    attachment: &Attachment<'_>,
) -> Result<(), NetavarkError> {
    teardown_with(config_dir, netns, &options(bridge, attachment))
}

/// `netavark teardown` with the options saved at setup.
pub fn teardown_with(
    config_dir: &Path,
    netns: &Path,
    options: &Value,
) -> Result<(), NetavarkError> {
    let _serialised = host_lock()?;
    // It may close the network: whole again only after the next set-up.
    if let Some(networks) = options["network_info"].as_object() {
        for network in networks.values() {
            if let Some(interface) = network["network_interface"].as_str() {
                let _ = fs::remove_file(Path::new(OPENED).join(interface));
            }
        }
    }
    run(config_dir, "teardown", netns, options).map(|_| ())
}

/// The interface index of bridge `interface`, if it exists.
fn index_of(interface: &str) -> Option<String> {
    fs::read_to_string(Path::new("/sys/class/net").join(interface).join("ifindex"))
        .ok()
        .map(|index| index.trim().to_string())
}

/// Records that bridge `interface` is whole (the host lock held).
fn mark_opened(interface: &str) {
    if let Some(index) = index_of(interface) {
        let _ = fs::create_dir_all(OPENED);
        let _ = fs::write(Path::new(OPENED).join(interface), index);
    }
}

/// Whether bridge `interface` stands whole, as netavark's last completed
/// set-up left it (to be asked under the host lock).
pub fn is_open(interface: &str) -> bool {
    let marked = fs::read_to_string(Path::new(OPENED).join(interface)).ok();
    marked.is_some() && marked == index_of(interface)
}

/// netavark sets `route_localnet` on its bridges (so that the host's
/// `127.0.0.1:<published port>` reaches a container), which also lets a
/// container that crafts its own packets (CAP_NET_RAW, in Docker's default
/// set) reach services the host binds to 127.0.0.1 only (CVE-2020-8558's
/// class). A rule in INPUT drops new connections to 127.0.0.0/8 that come
/// in on a berth bridge; replies to the host's own connections pass. It is
/// added once per interface pattern and left, as netavark's shared chains.
fn guard_host_loopback(interface: &str) -> Result<(), NetavarkError> {
    let pattern = if interface.starts_with("br-") {
        "br-+"
    } else {
        interface
    };
    let rule = [
        "INPUT",
        "-i",
        pattern,
        "-d",
        "127.0.0.0/8",
        "-m",
        "conntrack",
        "!",
        "--ctstate",
        "RELATED,ESTABLISHED",
        "-m",
        "comment",
        "--comment",
        "berth: no host loopback from containers",
        "-j",
        "DROP",
    ];
    let iptables = |verb: &str| {
        Command::new("iptables")
            .args(["-w", verb])
            .args(rule)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
    };
    let present = iptables("-C").map_err(NetavarkError::Missing)?;
    if present.status.success() {
        return Ok(());
    }
    let added = iptables("-I").map_err(NetavarkError::Missing)?;
    if !added.status.success() {
        return Err(NetavarkError::Failed {
            verb: "setup",
            message: format!(
                "cannot guard the host's loopback: iptables: {}",
                String::from_utf8_lossy(&added.stderr).trim()
            ),
        });
    }
    Ok(())
}

fn run(
    config_dir: &Path,
    verb: &'static str,
    netns: &Path,
    options: &Value,
) -> Result<Vec<u8>, NetavarkError> {
    let mut command = Command::new(NETAVARK);
    // netavark must not outlive the caller that holds the host lock: a
    // SIGKILLed tool's netavark would go on changing the firewall while the
    // next caller, lock free, changes it too (seen: chains gone under a
    // setup's feet). It dies with us; the half-done work is undone by the
    // teardown of the container's saved network, under the lock.
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .arg("--config")
        .arg(config_dir)
        .args(["--aardvark-binary", AARDVARK_DNS])
        .arg(verb)
        .arg(netns)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NetavarkError::Missing)?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(options.to_string().as_bytes());
    }
    let output = child.wait_with_output().map_err(NetavarkError::Missing)?;
    if !output.status.success() {
        // netavark says why as JSON on stdout (`{"error": …}`), else on stderr.
        let said = serde_json::from_slice::<Value>(&output.stdout)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&output.stderr).into_owned());
        let message = said
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message")
            .trim()
            .to_string();
        return Err(NetavarkError::Failed { verb, message });
    }
    Ok(output.stdout)
}

/// The host-wide lock every netavark call (and our own firewall rule) is
/// made under, held until dropped.
pub(super) fn host_lock() -> Result<File, NetavarkError> {
    let path = Path::new(LOCK);
    let io = |source| NetavarkError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io)?;
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io)?;
    file.lock().map_err(io)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::ports::parse_publish;

    #[test]
    fn options_carry_the_address_ports_and_network_as_netavark_reads_them() {
        let bridge = Bridge {
            name: "bridge".into(),
            id: "0".repeat(64),
            interface: "berth0".into(),
            subnet: "10.88.7.0/24".parse().unwrap(),
            internal: false,
            dns: false,
        };
        let published = parse_publish("127.0.0.1:8080:80/udp").unwrap()[0];
        let ports = [(published, 8080)];
        let options = options(
            &bridge,
            &Attachment {
                container_id: "abc",
                container_name: "web",
                ip: Ipv4Addr::new(10, 88, 7, 2),
                aliases: &[],
                interface: "eth0",
                ports: &ports,
            },
        );
        assert_eq!(options["networks"]["bridge"]["static_ips"][0], "10.88.7.2");
        let info = &options["network_info"]["bridge"];
        assert_eq!(info["subnets"][0]["gateway"], "10.88.7.1");
        assert_eq!(info["network_interface"], "berth0");
        let port = &options["port_mappings"][0];
        assert_eq!(
            (
                &port["host_ip"],
                &port["host_port"],
                &port["container_port"],
                &port["protocol"]
            ),
            (&json!("127.0.0.1"), &json!(8080), &json!(80), &json!("udp"))
        );
    }
}
