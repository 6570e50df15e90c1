//! One container's places on bridges, from set-up to teardown: a network
//! namespace pinned at `<container>/netns` for libcontainer to join, and
//! per network an address leased, host ports claimed and netavark's veth,
//! routes and firewall rules. What is set up is saved first in
//! `<container>/network.json` (one entry per network), so whoever tears
//! the container down (its owner, or the next tool to find the owner dead)
//! undoes exactly that, and doing it twice is harmless. net-connect and
//! net-disconnect add and remove one entry of a running container's, under
//! the same lock as set-up and teardown (`network.lock`).

use super::host_ports;
use super::netavark::{self, Attachment, Configured, NETAVARK, NetavarkError};
use super::networks::{self, Network, Networks};
use super::ports::{Protocol, Published};
use super::{NetworkError, NetworkMode, netns, standing};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// What a container asks of one network.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Endpoint {
    /// The network's name, ID or ID prefix.
    pub network: String,
    /// `--ip`.
    pub ip: Option<Ipv4Addr>,
    /// `--network-alias`, net-connect's `--alias`.
    pub aliases: Vec<String>,
    /// `-p`, and `-P`'s exposed ports, host ports still to choose.
    pub publish: Vec<Published>,
}

/// What a container asks of its network: its mode, and the bridge
/// networks it is on (the mode's first, with the published ports; then
/// those net-connect added).
#[derive(Debug, Clone, Default)]
pub struct NetworkRequest {
    pub mode: NetworkMode,
    pub endpoints: Vec<Endpoint>,
}

/// What the container got on one network.
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

/// One entry of `network.json`: what teardown of one network needs,
/// saved before its set-up begins.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saved {
    network: String,
    ip: Ipv4Addr,
    ports: Vec<(Protocol, u16)>,
    options: Value,
    /// Absent in files written before containers had more than one.
    #[serde(default = "first_interface")]
    interface: String,
    /// Plugged into the standing default bridge: teardown unplugs it and
    /// leaves the network up (see `standing`).
    #[serde(default)]
    standing: bool,
}

fn first_interface() -> String {
    "eth0".to_string()
}

/// `network.json` as read: a list, or the one object written before
/// net-connect existed.
#[derive(Deserialize)]
#[serde(untagged)]
enum SavedFile {
    Many(Vec<Saved>),
    One(Saved),
}

const SAVED: &str = "network.json";
const NETNS: &str = "netns";
const LOCK: &str = "network.lock";
/// Marks a container whose namespace another joined (`join`).
const SHARED: &str = "netns.shared";

/// The pinned namespace of the container in `dir`.
pub fn netns_path(dir: &Path) -> PathBuf {
    dir.join(NETNS)
}

/// The container's network lock: set-up, teardown, net-connect and
/// net-disconnect change its namespace and `network.json` one at a time.
fn lock(dir: &Path) -> Result<File, NetworkError> {
    let path = dir.join(LOCK);
    let io = |source| NetworkError::Io {
        path: path.clone(),
        source,
    };
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    file.lock().map_err(io)?;
    Ok(file)
}

fn read_saved(dir: &Path) -> Vec<Saved> {
    match fs::read(dir.join(SAVED))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<SavedFile>(&bytes).ok())
    {
        Some(SavedFile::Many(all)) => all,
        Some(SavedFile::One(one)) => vec![one],
        None => Vec::new(),
    }
}

/// Writes `network.json` whole (temp file, rename): a crash leaves the old
/// list or the new, never half of one. Not synced: what it names (a
/// namespace, veths, rules, port claims under /run) does not outlive the
/// machine, so the page cache, which outlives any process, is enough.
fn write_saved(dir: &Path, saved: &[Saved]) -> Result<(), NetworkError> {
    let path = dir.join(SAVED);
    let io = |source| NetworkError::Io {
        path: path.clone(),
        source,
    };
    if saved.is_empty() {
        return match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        };
    }
    let text = serde_json::to_vec(saved).expect("saved entries serialise");
    let tmp = dir.join(format!("{SAVED}.tmp"));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut file = File::create(&tmp)?;
        file.write_all(&text)?;
        fs::rename(&tmp, &path)
    };
    write().map_err(io)
}

fn netavark_present() -> Result<(), NetworkError> {
    match Path::new(NETAVARK).exists() {
        true => Ok(()),
        false => {
            Err(NetavarkError::Missing(std::io::Error::from(std::io::ErrorKind::NotFound)).into())
        }
    }
}

/// Sets up the network of container `id` (named `name`) as `request`
/// asks: for a bridge mode, a pinned namespace and each endpoint in it;
/// nothing for the others. `earlier` are the host ports a previous start
/// had, taken again where free. On error, whatever was done is undone.
pub fn attach(
    store: &Store,
    id: &str,
    name: &str,
    request: &NetworkRequest,
    earlier: &[(Published, u16)],
) -> Result<Vec<Attached>, NetworkError> {
    if request.mode.network().is_none() {
        return Ok(Vec::new());
    }
    if !request.endpoints.is_empty() {
        netavark_present()?;
    }
    let dir = store.container_dir(id);
    let _lock = lock(&dir)?;
    let netns = netns_path(&dir);
    netns::create(&netns).map_err(|source| NetworkError::Io {
        path: netns.clone(),
        source,
    })?;
    let mut saved = Vec::new();
    let mut attached = Vec::new();
    for (index, endpoint) in request.endpoints.iter().enumerate() {
        let interface = format!("eth{index}");
        match attach_one(store, id, name, endpoint, &interface, earlier, &mut saved) {
            Ok(one) => attached.push(one),
            Err(e) => {
                detach_locked(store, id);
                return Err(e);
            }
        }
    }
    Ok(attached)
}

/// Attaches the running container `id` to one more network (net-connect),
/// in the namespace it has: `None` if it has none (it is not running, or
/// being torn down), for the caller to record the network for its next
/// start. Docker's refusal if it is on that network already.
pub fn connect(
    store: &Store,
    id: &str,
    name: &str,
    endpoint: &Endpoint,
) -> Result<Option<Attached>, NetworkError> {
    let dir = store.container_dir(id);
    let _lock = lock(&dir)?;
    if !netns_path(&dir).exists() {
        return Ok(None);
    }
    netavark_present()?;
    let network = Networks::of(store).find(&endpoint.network)?;
    let mut saved = read_saved(&dir);
    if saved.iter().any(|s| s.network == network.name) {
        return Err(NetworkError::EndpointExists {
            container: name.to_string(),
            network: network.name,
        });
    }
    // The first interface name no endpoint has.
    let interface = (0..)
        .map(|n| format!("eth{n}"))
        .find(|candidate| !saved.iter().any(|s| &s.interface == candidate))
        .expect("an unused interface name");
    attach_one(store, id, name, endpoint, &interface, &[], &mut saved).map(Some)
}

/// Takes the running container `id` off network `network` (its name):
/// false if it has no endpoint there (it is not running, or not on it).
pub fn disconnect(store: &Store, id: &str, network: &str) -> Result<bool, NetworkError> {
    let dir = store.container_dir(id);
    let _lock = lock(&dir)?;
    let mut saved = read_saved(&dir);
    let Some(index) = saved.iter().position(|s| s.network == network) else {
        return Ok(false);
    };
    let gone = saved.remove(index);
    release(store, &dir, &gone);
    write_saved(&dir, &saved)?;
    Ok(true)
}

/// One network's set-up in the pinned namespace (the lock held): a lease,
/// host ports, the entry saved (appended to `saved` and written), then
/// netavark. On error, this network's part is undone and its entry gone.
fn attach_one(
    store: &Store,
    id: &str,
    name: &str,
    endpoint: &Endpoint,
    interface: &str,
    earlier: &[(Published, u16)],
    saved: &mut Vec<Saved>,
) -> Result<Attached, NetworkError> {
    let dir = store.container_dir(id);
    let networks = Networks::of(store);
    let network = networks.find(&endpoint.network)?;
    let ipam = networks.ipam(&network)?;
    // Leases of containers that are gone (a tool killed mid-run).
    ipam.sweep(|owner| store.container_dir(owner).exists());
    let ip = ipam.lease(id, endpoint.ip)?;
    let ports = match host_ports::allocate(&endpoint.publish, earlier, &dir) {
        Ok(ports) => ports,
        Err(e) => {
            ipam.release(ip, id);
            return Err(e.into());
        }
    };
    let bridge = network.bridge()?;
    // The default bridge stands between containers; one that publishes
    // ports has rules of its own, which only netavark makes and removes.
    let standing = network.name == networks::DEFAULT && ports.is_empty() && interface == "eth0";
    let attachment = Attachment {
        container_id: id,
        container_name: name,
        ip,
        aliases: &endpoint.aliases,
        interface,
        ports: &ports,
    };
    let entry = Saved {
        network: network.name.clone(),
        ip,
        ports: ports
            .iter()
            .map(|(binding, port)| (binding.container.protocol, *port))
            .collect(),
        options: netavark::options(&bridge, &attachment),
        interface: interface.to_string(),
        standing,
    };
    saved.push(entry.clone());
    let undo = |saved: &mut Vec<Saved>, e: NetworkError| {
        saved.pop();
        release(store, &dir, &entry);
        let _ = write_saved(&dir, saved);
        e
    };
    if let Err(e) = write_saved(&dir, saved) {
        return Err(undo(saved, e));
    }
    let netns = netns_path(&dir);
    let config_dir = networks.netavark_dir();
    if let Err(source) = fs::create_dir_all(&config_dir) {
        let e = NetworkError::Io {
            path: config_dir,
            source,
        };
        return Err(undo(saved, e));
    }
    let configured = match standing {
        true => standing::plug(&config_dir, &netns, &bridge, &attachment).map(|mac_address| {
            Configured {
                mac_address,
                dns_servers: Vec::new(),
            }
        }),
        false => netavark::setup(&config_dir, &netns, &bridge, &attachment),
    };
    let configured = match configured {
        Ok(configured) => configured,
        Err(e) => return Err(undo(saved, e.into())),
    };
    Ok(Attached {
        network,
        ip,
        mac_address: configured.mac_address,
        dns_servers: configured.dns_servers,
        ports,
        netns,
    })
}

/// Undoes one network's set-up: netavark's part (while the namespace is
/// there), the host ports, the lease.
fn release(store: &Store, dir: &Path, saved: &Saved) {
    let networks = Networks::of(store);
    let netns = netns_path(dir);
    if netns.exists() && saved.standing {
        let wait = match dir.join(SHARED).exists() {
            true => standing::Wait::Yes,
            false => standing::Wait::No,
        };
        standing::unplug(&netns, &saved.interface, wait);
    } else if netns.exists() {
        // A failure (rules a half-done set-up never made, netavark gone)
        // must not keep the rest from going: the claims and the lease are
        // ours to free whatever netavark says.
        let _ = netavark::teardown_with(&networks.netavark_dir(), &netns, &saved.options);
    }
    for (protocol, port) in &saved.ports {
        host_ports::release(*protocol, *port, dir);
    }
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Ok(Some(network)) = networks.get(&saved.network)
        && let Ok(ipam) = networks.ipam(&network)
    {
        ipam.release(saved.ip, &id);
    }
}

/// Undoes what `attach` and `connect` set up for container `id`, as its
/// `network.json` says, and unpins its namespace (a bridge's, or another
/// container's it joined). Safe to call again, from any process.
pub fn detach(store: &Store, id: &str) {
    let dir = store.container_dir(id);
    if !dir.exists() {
        return;
    }
    // Without the lock file (a directory being removed) there is nobody
    // to race with.
    let _lock = lock(&dir).ok();
    detach_locked(store, id);
}

fn detach_locked(store: &Store, id: &str) {
    let dir = store.container_dir(id);
    let mut saved = read_saved(&dir);
    // Last connected first; each entry leaves the file once undone, so a
    // teardown killed half-way is finished by the next.
    while let Some(last) = saved.pop() {
        release(store, &dir, &last);
        let _ = write_saved(&dir, &saved);
    }
    netns::remove(&netns_path(&dir));
    let _ = fs::remove_file(dir.join(SAVED));
    let _ = fs::remove_file(dir.join(SHARED));
}

/// Pins the network namespace of process `pid` (container `other`'s init)
/// as container `id`'s, for `--network container:…`: its namespace is
/// then that one for as long as it runs, whatever becomes of the other.
/// The other is marked as sharing its namespace, so its teardown takes
/// its interfaces out of it before it returns (`standing::unplug`).
pub fn join(store: &Store, id: &str, other: &str, pid: i32) -> Result<PathBuf, NetworkError> {
    let marker = store.container_dir(other).join(SHARED);
    File::create(&marker).map_err(|source| NetworkError::Io {
        path: marker,
        source,
    })?;
    let dir = store.container_dir(id);
    let _lock = lock(&dir)?;
    let netns = netns_path(&dir);
    netns::pin(&PathBuf::from(format!("/proc/{pid}/ns/net")), &netns).map_err(|source| {
        NetworkError::Io {
            path: netns.clone(),
            source,
        }
    })?;
    Ok(netns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_files_of_one_network_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let old = r#"{"network":"bridge","ip":"10.88.0.2","ports":[],"options":{}}"#;
        fs::write(dir.path().join(SAVED), old).unwrap();
        let read = read_saved(dir.path());
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].interface, "eth0");
        write_saved(dir.path(), &read).unwrap();
        assert_eq!(read_saved(dir.path())[0].network, "bridge");
        write_saved(dir.path(), &[]).unwrap();
        assert!(!dir.path().join(SAVED).exists());
    }
}
