//! One container's place on a bridge, from set-up to teardown: an address
//! leased, host ports claimed, a network namespace pinned at
//! `<container>/netns` for libcontainer to join, and netavark's veth, routes
//! and firewall rules. What was set up is saved first in
//! `<container>/network.json`, so whoever tears the container down (its
//! owner, or the next tool to find the owner dead) undoes exactly that, and
//! doing it twice is harmless.

use super::host_ports;
use super::netavark::{self, Attachment, NETAVARK, NetavarkError};
use super::networks::{Network, Networks};
use super::ports::{Protocol, Published};
use super::{NetworkError, NetworkMode, netns};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// What a container asks of its network.
#[derive(Debug, Clone, Default)]
pub struct NetworkRequest {
    pub mode: NetworkMode,
    /// `--ip`.
    pub ip: Option<Ipv4Addr>,
    /// `-p`, and `-P`'s exposed ports, host ports still to choose.
    pub publish: Vec<Published>,
    /// `--network-alias`.
    pub aliases: Vec<String>,
}

/// What the container got.
#[derive(Debug, Clone)]
pub struct Attached {
    pub network: Network,
    pub ip: Ipv4Addr,
    pub mac_address: String,
    pub ports: Vec<(Published, u16)>,
    pub netns: PathBuf,
    /// aardvark-dns's address for the container's resolv.conf, on a
    /// network that resolves container names.
    pub dns_servers: Vec<String>,
}

/// `network.json`: what teardown needs, saved before set-up begins.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    network: String,
    ip: Ipv4Addr,
    ports: Vec<(Protocol, u16)>,
    options: Value,
}

const SAVED: &str = "network.json";
const NETNS: &str = "netns";

/// The pinned namespace of the container in `dir`.
pub fn netns_path(dir: &Path) -> PathBuf {
    dir.join(NETNS)
}

/// Sets up the network of container `id` (named `name`, directory `dir`)
/// as `request` asks: nothing to do but for a bridge. `earlier` are the
/// host ports a previous start had, taken again where free. On error,
/// whatever was done is undone.
pub fn attach(
    store: &Store,
    id: &str,
    name: &str,
    request: &NetworkRequest,
    earlier: &[(Published, u16)],
) -> Result<Option<Attached>, NetworkError> {
    let Some(wanted) = request.mode.network() else {
        return Ok(None);
    };
    if !Path::new(NETAVARK).exists() {
        return Err(
            NetavarkError::Missing(std::io::Error::from(std::io::ErrorKind::NotFound)).into(),
        );
    }
    let networks = Networks::of(store);
    let network = networks.find(wanted)?;
    let ipam = networks.ipam(&network)?;
    // Leases of containers that are gone (a tool killed mid-run).
    ipam.sweep(|owner| store.container_dir(owner).exists());
    let ip = ipam.lease(id, request.ip)?;
    let dir = store.container_dir(id);
    let ports = match host_ports::allocate(&request.publish, earlier, &dir) {
        Ok(ports) => ports,
        Err(e) => {
            ipam.release(ip, id);
            return Err(e.into());
        }
    };
    let bridge = network.bridge()?;
    let attachment = Attachment {
        container_id: id,
        container_name: name,
        ip,
        aliases: &request.aliases,
        ports: &ports,
    };
    let options = netavark::options(&bridge, &attachment);
    let saved = Saved {
        network: network.name.clone(),
        ip,
        ports: ports
            .iter()
            .map(|(binding, port)| (binding.container.protocol, *port))
            .collect(),
        options,
    };
    let saved_path = dir.join(SAVED);
    let saved_text = serde_json::to_vec(&saved).map_err(|e| NetworkError::Definition {
        name: network.name.clone(),
        message: e.to_string(),
    })?;
    if let Err(source) = fs::write(&saved_path, saved_text) {
        ipam.release(ip, id);
        for (binding, port) in &ports {
            host_ports::release(binding.container.protocol, *port, &dir);
        }
        return Err(NetworkError::Io {
            path: saved_path,
            source,
        });
    }
    let undo = |e: NetworkError| {
        detach(store, id);
        e
    };
    let netns = netns_path(&dir);
    netns::create(&netns).map_err(|source| {
        undo(NetworkError::Io {
            path: netns.clone(),
            source,
        })
    })?;
    let config_dir = networks.netavark_dir();
    fs::create_dir_all(&config_dir).map_err(|source| {
        undo(NetworkError::Io {
            path: config_dir.clone(),
            source,
        })
    })?;
    let configured =
        netavark::setup(&config_dir, &netns, &bridge, &attachment).map_err(|e| undo(e.into()))?;
    Ok(Some(Attached {
        network,
        ip,
        mac_address: configured.mac_address,
        dns_servers: configured.dns_servers,
        ports,
        netns,
    }))
}

/// Undoes what `attach` set up for container `id`, as its `network.json`
/// says; nothing if there is none. Safe to call again, from any process.
pub fn detach(store: &Store, id: &str) {
    let dir = store.container_dir(id);
    let saved_path = dir.join(SAVED);
    let Some(saved) = fs::read(&saved_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Saved>(&bytes).ok())
    else {
        return;
    };
    let networks = Networks::of(store);
    let netns = netns_path(&dir);
    if netns.exists() {
        // A failure (rules a half-done set-up never made, netavark gone)
        // must not keep the rest from going: the namespace, the claims
        // and the lease are ours to free whatever netavark says.
        let _ = netavark::teardown_with(&networks.netavark_dir(), &netns, &saved.options);
    }
    netns::remove(&netns);
    for (protocol, port) in &saved.ports {
        host_ports::release(*protocol, *port, &dir);
    }
    if let Ok(Some(network)) = networks.get(&saved.network)
        && let Ok(ipam) = networks.ipam(&network)
    {
        ipam.release(saved.ip, id);
    }
    let _ = fs::remove_file(&saved_path);
}
