//! The networks a store knows, one JSON file each under `networks/`, in
//! the shape of Docker's network inspect (`Name`, `Id`, `Driver`, `IPAM`,
//! `Internal`, `Options`). The default `bridge` is made on first use.
//!
//! A store is one daemon's worth of state, but bridges, subnets and
//! firewall chains are the host's: two stores (tests run dozens) must not
//! pick one subnet or one interface. So each network's interface is named
//! after its ID (`berth0` only for the default store's default bridge),
//! netavark is told that unique name, and every subnet in use is claimed
//! host-wide by a file under `/run/berth/subnets` naming its network's
//! definition; a claim whose store is gone (its `networks/` directory,
//! made before any claim) is stale and is taken over.

use super::NetworkError;
use super::ipam::{Ipam, Subnet, routed_subnets};
use super::netavark::Bridge;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The default network's name, as Docker's.
pub const DEFAULT: &str = "bridge";
/// The default store's default bridge interface (Docker's is `docker0`).
pub const DEFAULT_INTERFACE: &str = "berth0";
/// Where subnets are claimed host-wide.
const CLAIMS: &str = "/run/berth/subnets";

/// One network as `networks/<name>.json` keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Network {
    pub name: String,
    pub id: String,
    pub created: String,
    pub driver: String,
    #[serde(rename = "IPAM")]
    pub ipam: IpamConfig,
    pub internal: bool,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    pub driver: String,
    pub config: Vec<SubnetConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct SubnetConfig {
    pub subnet: String,
    pub gateway: String,
}

/// Docker's option naming a bridge network's interface.
const BRIDGE_NAME: &str = "com.docker.network.bridge.name";

impl Network {
    pub fn subnet(&self) -> Result<Subnet, NetworkError> {
        let config = self
            .ipam
            .config
            .first()
            .ok_or_else(|| self.broken("no subnet"))?;
        config
            .subnet
            .parse()
            .map_err(|e: super::ipam::IpamError| self.broken(&e.to_string()))
    }

    pub fn interface(&self) -> &str {
        self.options
            .get(BRIDGE_NAME)
            .map(String::as_str)
            .unwrap_or(DEFAULT_INTERFACE)
    }

    fn broken(&self, message: &str) -> NetworkError {
        NetworkError::Definition {
            name: self.name.clone(),
            message: message.to_string(),
        }
    }

    /// The network as netavark is told it: named by its interface, which
    /// is unique on the host (netavark names firewall chains after it).
    pub fn bridge(&self) -> Result<Bridge, NetworkError> {
        Ok(Bridge {
            name: self.interface().to_string(),
            id: self.id.clone(),
            interface: self.interface().to_string(),
            subnet: self.subnet()?,
            internal: self.internal,
            // Docker's default bridge resolves no container names; a
            // network of the user's does (aardvark-dns, at its gateway).
            dns: self.name != DEFAULT,
        })
    }
}

/// The networks of one store.
pub struct Networks {
    dir: PathBuf,
    default_store: bool,
}

impl Networks {
    pub fn of(store: &Store) -> Networks {
        Networks {
            dir: store.root().join("networks"),
            default_store: store.root() == Path::new("/var/lib/berth"),
        }
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> NetworkError + use<> {
        let path = path.to_path_buf();
        move |source| NetworkError::Io { path, source }
    }

    fn definition(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// netavark's own state (aardvark-dns's name lists) for this store.
    pub fn netavark_dir(&self) -> PathBuf {
        self.dir.join("netavark")
    }

    /// The leases of network `network`.
    pub fn ipam(&self, network: &Network) -> Result<Ipam, NetworkError> {
        Ok(Ipam::new(
            &self.dir.join("leases").join(&network.id[..12]),
            &network.name,
            network.subnet()?,
        ))
    }

    /// Network `name`, if the store has it.
    pub fn get(&self, name: &str) -> Result<Option<Network>, NetworkError> {
        let path = self.definition(name);
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| NetworkError::Definition {
                        name: name.to_string(),
                        message: format!("{}: {e}", path.display()),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::io(&path)(e)),
        }
    }

    /// The default bridge, made (with a subnet nothing else on the host
    /// uses) on first use; its subnet's claim renewed (after a reboot).
    pub fn default_bridge(&self) -> Result<Network, NetworkError> {
        if let Some(network) = self.get(DEFAULT)? {
            claim(&network.subnet()?, &self.definition(DEFAULT), true)?;
            return Ok(network);
        }
        let made = self.make(&NewNetwork {
            name: DEFAULT,
            ..NewNetwork::default()
        });
        match made {
            // Another run made it while we waited for the lock.
            Err(NetworkError::Exists(_)) => self
                .get(DEFAULT)?
                .ok_or_else(|| NetworkError::NotFound(DEFAULT.into())),
            other => other,
        }
    }

    /// A network of the store's by `name`, or one of its ID's unique
    /// prefix; claimed again host-wide (after a reboot) when it is used.
    pub fn find(&self, name: &str) -> Result<Network, NetworkError> {
        if name == DEFAULT {
            return self.default_bridge();
        }
        let network = match self.get(name)? {
            Some(network) => network,
            None => {
                let matching: Vec<Network> = self
                    .list()?
                    .into_iter()
                    .filter(|n| !name.is_empty() && n.id.starts_with(name))
                    .collect();
                match <[Network; 1]>::try_from(matching) {
                    Ok([network]) => network,
                    Err(_) => return Err(NetworkError::NotFound(name.to_string())),
                }
            }
        };
        claim(&network.subnet()?, &self.definition(&network.name), true)?;
        Ok(network)
    }

    /// Every network the store has, by name.
    pub fn list(&self) -> Result<Vec<Network>, NetworkError> {
        let mut networks = Vec::new();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Ok(networks);
        };
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(name) = file.strip_suffix(".json")
                && let Some(network) = self.get(name)?
            {
                networks.push(network);
            }
        }
        networks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(networks)
    }

    /// Makes a bridge network (`net-create`): its subnet the one asked
    /// for, if no route and no other network on the host overlaps it, else
    /// the first free one; written whole under the store's networks lock.
    pub fn create(&self, new: &NewNetwork<'_>) -> Result<Network, NetworkError> {
        if !valid_name(new.name) {
            return Err(NetworkError::BadName(new.name.to_string()));
        }
        // Docker's three exist from the start (the bridge made on use).
        if PREDEFINED.contains(&new.name) {
            return Err(NetworkError::Exists(new.name.to_string()));
        }
        self.make(new)
    }

    /// Writes a new network's definition, its subnet claimed.
    fn make(&self, new: &NewNetwork<'_>) -> Result<Network, NetworkError> {
        fs::create_dir_all(&self.dir).map_err(Self::io(&self.dir))?;
        let lock_path = self.dir.join(".lock");
        let lock = File::create(&lock_path).map_err(Self::io(&lock_path))?;
        lock.lock().map_err(Self::io(&lock_path))?;
        if self.get(new.name)?.is_some() {
            return Err(NetworkError::Exists(new.name.to_string()));
        }
        let path = self.definition(new.name);
        let subnet = match new.subnet {
            Some(subnet) => {
                if routed_subnets().iter().any(|r| r.overlaps(subnet))
                    || !claim(&subnet, &path, false)?
                {
                    return Err(NetworkError::Overlaps(subnet.to_string()));
                }
                subnet
            }
            None => pick_subnet(&path)?,
        };
        let gateway = new.gateway.unwrap_or_else(|| subnet.gateway());
        if !subnet.contains(gateway) {
            release(&subnet, &path);
            return Err(NetworkError::Definition {
                name: new.name.to_string(),
                message: format!("gateway {gateway} is outside the subnet {subnet}"),
            });
        }
        let id = crate::identity::new_id().map_err(Self::io(Path::new("/dev/urandom")))?;
        let interface = if self.default_store && new.name == DEFAULT {
            DEFAULT_INTERFACE.to_string()
        } else {
            format!("br-{}", &id[..12])
        };
        let network = Network {
            name: new.name.to_string(),
            id,
            created: crate::identity::now(),
            driver: "bridge".to_string(),
            ipam: IpamConfig {
                driver: "default".to_string(),
                config: vec![SubnetConfig {
                    subnet: subnet.to_string(),
                    gateway: gateway.to_string(),
                }],
            },
            internal: new.internal,
            options: BTreeMap::from([(BRIDGE_NAME.to_string(), interface)]),
            labels: new.labels.clone(),
        };
        let text = serde_json::to_vec_pretty(&network).map_err(|e| NetworkError::Definition {
            name: new.name.to_string(),
            message: e.to_string(),
        })?;
        if let Err(e) = write_atomically(&path, &text) {
            release(&subnet, &path);
            return Err(Self::io(&path)(e));
        }
        Ok(network)
    }

    /// Removes network `name` (`net-rm`): not a predefined one, and not
    /// while a container holds an address on it (Docker's "active
    /// endpoints"). Its subnet's claim goes with it.
    pub fn remove(&self, name: &str) -> Result<Network, NetworkError> {
        if PREDEFINED.contains(&name) {
            return Err(NetworkError::Predefined(name.to_string()));
        }
        let network = self.find(name)?;
        let lock_path = self.dir.join(".lock");
        let lock = File::create(&lock_path).map_err(Self::io(&lock_path))?;
        lock.lock().map_err(Self::io(&lock_path))?;
        let ipam = self.ipam(&network)?;
        if !ipam.leases().is_empty() {
            return Err(NetworkError::InUse {
                name: network.name.clone(),
                id: network.id.clone(),
            });
        }
        let path = self.definition(&network.name);
        fs::remove_file(&path).map_err(Self::io(&path))?;
        let _ = fs::remove_dir_all(self.dir.join("leases").join(&network.id[..12]));
        release(&network.subnet()?, &path);
        Ok(network)
    }
}

/// What `net-create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewNetwork<'a> {
    pub name: &'a str,
    pub subnet: Option<Subnet>,
    pub gateway: Option<std::net::Ipv4Addr>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

/// Docker's networks that every daemon has.
pub const PREDEFINED: [&str; 3] = [DEFAULT, "host", "none"];

/// Docker's rule for network names.
pub(super) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Writes `path` whole or not at all.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

/// The subnets a new network may take, in Docker's order of preference
/// (172.17-31.0.0/16), then podman's (10.89.N.0/24).
fn candidates() -> impl Iterator<Item = Subnet> {
    (17..=31)
        .map(|n| format!("172.{n}.0.0/16"))
        .chain((0..=255).map(|n| format!("10.89.{n}.0/24")))
        .filter_map(|text| text.parse().ok())
}

/// Picks and claims a subnet that no route and no live claim on the host
/// uses, for the network defined at `owner`.
fn pick_subnet(owner: &Path) -> Result<Subnet, NetworkError> {
    let routed = routed_subnets();
    for subnet in candidates() {
        if routed.iter().any(|r| r.overlaps(subnet)) {
            continue;
        }
        if claim(&subnet, owner, false)? {
            return Ok(subnet);
        }
    }
    Err(NetworkError::Definition {
        name: DEFAULT.to_string(),
        message: "no free subnet left in 172.17-31.0.0/16 or 10.89.0-255.0/24".to_string(),
    })
}

/// Claims `subnet` host-wide for the network defined at `owner`: true if
/// it is now ours (free, stale, or already ours). With `required`, a live
/// claim of another network is an error rather than false.
fn claim(subnet: &Subnet, owner: &Path, required: bool) -> Result<bool, NetworkError> {
    let dir = Path::new(CLAIMS);
    let ours = owner.display().to_string();
    let path = dir.join(subnet.to_string().replace('/', "-"));
    // Held already (every start on the network asks): no other network
    // can have claimed an overlapping subnet past a live claim of ours.
    if fs::read_to_string(&path).is_ok_and(|holder| holder == ours) {
        return Ok(true);
    }
    fs::create_dir_all(dir).map_err(Networks::io(dir))?;
    let lock_path = dir.join(".lock");
    let lock = File::create(&lock_path).map_err(Networks::io(&lock_path))?;
    lock.lock().map_err(Networks::io(&lock_path))?;
    // Any live claim of another network that overlaps this subnet.
    for entry in fs::read_dir(dir).map_err(Networks::io(dir))?.flatten() {
        let Some(claimed) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.replacen('-', "/", 1).parse::<Subnet>().ok())
        else {
            continue;
        };
        let holder = fs::read_to_string(entry.path()).unwrap_or_default();
        if claimed.overlaps(*subnet)
            && holder != ours
            && Path::new(&holder).parent().is_some_and(Path::exists)
        {
            return match required {
                false => Ok(false),
                true => Err(NetworkError::Definition {
                    name: DEFAULT.to_string(),
                    message: format!(
                        "subnet {subnet} is in use by the network defined at {holder}"
                    ),
                }),
            };
        }
    }
    write_atomically(&path, ours.as_bytes()).map_err(Networks::io(&path))?;
    Ok(true)
}

/// Gives up the claim of `subnet` if the network at `owner` holds it.
fn release(subnet: &Subnet, owner: &Path) {
    let path = Path::new(CLAIMS).join(subnet.to_string().replace('/', "-"));
    if fs::read_to_string(&path).is_ok_and(|holder| holder == owner.display().to_string()) {
        let _ = fs::remove_file(&path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_stores_get_different_subnets_and_interfaces() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (
            Store::open(a.path()).unwrap(),
            Store::open(b.path()).unwrap(),
        );
        let first = Networks::of(&a).default_bridge().unwrap();
        let second = Networks::of(&b).default_bridge().unwrap();
        assert_ne!(first.subnet().unwrap(), second.subnet().unwrap());
        assert_ne!(first.interface(), second.interface());
        assert!(first.interface().len() <= 15, "IFNAMSIZ");
        // Made once: the same definition comes back.
        assert_eq!(Networks::of(&a).default_bridge().unwrap(), first);
        // A user's network: its own subnet, refused where it overlaps.
        let nets = Networks::of(&a);
        let wanted: Subnet = "10.213.7.0/24".parse().unwrap();
        let made = nets
            .create(&NewNetwork {
                name: "app-net",
                subnet: Some(wanted),
                ..NewNetwork::default()
            })
            .unwrap();
        assert_eq!(made.subnet().unwrap(), wanted);
        assert!(made.interface().starts_with("br-"));
        let overlap = Networks::of(&b).create(&NewNetwork {
            name: "other",
            subnet: Some("10.213.0.0/16".parse().unwrap()),
            ..NewNetwork::default()
        });
        assert_eq!(
            overlap.unwrap_err().to_string(),
            "Pool overlaps with other one on this address space"
        );
        assert!(matches!(
            nets.create(&NewNetwork {
                name: "app-net",
                ..NewNetwork::default()
            }),
            Err(NetworkError::Exists(_))
        ));
        assert!(matches!(
            nets.create(&NewNetwork {
                name: "-x",
                ..NewNetwork::default()
            }),
            Err(NetworkError::BadName(_))
        ));
        assert_eq!(nets.find(&made.id[..10]).unwrap(), made);
        let names: Vec<String> = nets.list().unwrap().into_iter().map(|n| n.name).collect();
        assert_eq!(names, ["app-net", "bridge"]);
        assert!(matches!(
            nets.remove("bridge"),
            Err(NetworkError::Predefined(_))
        ));
        nets.remove("app-net").unwrap();
        assert!(matches!(
            nets.find("app-net"),
            Err(NetworkError::NotFound(_))
        ));
        // Its subnet is free again.
        Networks::of(&b)
            .create(&NewNetwork {
                name: "other",
                subnet: Some(wanted),
                ..NewNetwork::default()
            })
            .unwrap();
        let subnet = first.subnet().unwrap();
        assert_eq!(first.ipam.config[0].gateway, subnet.gateway().to_string());
    }
}
