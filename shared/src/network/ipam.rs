//! Addresses for containers on a network (netavark allocates none; this
//! is ours): one file per leased address, `<dir>/<ip>`, created with
//! O_EXCL and naming its container. Two parallel runs can never both
//! create one file, so no address is handed out twice, without a lock; a
//! lease is released by removing its file, and leases whose container is
//! gone are swept.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// An IPv4 subnet, `172.18.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("invalid subnet {0:?}: expected an IPv4 CIDR such as 172.18.0.0/16")]
    BadSubnet(String),
    #[error("no available IPv4 addresses on network {0}")]
    Exhausted(String),
    #[error("address {ip} is outside the network's subnet {subnet}")]
    Outside { ip: Ipv4Addr, subnet: Subnet },
    #[error("address {0} is already in use")]
    Taken(Ipv4Addr),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Subnet {
    fn mask(self) -> u32 {
        match self.prefix {
            0 => 0,
            p => u32::MAX << (32 - u32::from(p)),
        }
    }

    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }

    /// Docker's gateway: the subnet's first address.
    pub fn gateway(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// The addresses containers may have: all but the network's own, the
    /// gateway and the broadcast address.
    pub fn hosts(self) -> impl Iterator<Item = Ipv4Addr> {
        let first = u32::from(self.network) + 2;
        let broadcast = u32::from(self.network) | !self.mask();
        (first..broadcast).map(Ipv4Addr::from)
    }

    /// Whether the two share any address.
    pub fn overlaps(self, other: Subnet) -> bool {
        let prefix = self.prefix.min(other.prefix);
        let wider = Subnet {
            network: self.network,
            prefix,
        };
        u32::from(self.network) & wider.mask() == u32::from(other.network) & wider.mask()
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = IpamError;
    fn from_str(text: &str) -> Result<Subnet, IpamError> {
        let bad = || IpamError::BadSubnet(text.to_string());
        let (ip, prefix) = text.split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        // Room for the gateway and at least one container.
        if !(1..=30).contains(&prefix) {
            return Err(bad());
        }
        let subnet = Subnet {
            network: ip,
            prefix,
        };
        Ok(Subnet {
            network: Ipv4Addr::from(u32::from(ip) & subnet.mask()),
            prefix,
        })
    }
}

/// The subnets the host routes now (`/proc/net/route`): a new network
/// must not take one of them.
pub fn routed_subnets() -> Vec<Subnet> {
    let Ok(table) = fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let destination = u32::from_str_radix(fields.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(fields.get(7)?, 16).ok()?;
            // The kernel writes them in host order of a little-endian word.
            let destination = Ipv4Addr::from(destination.swap_bytes());
            let prefix = mask.count_ones() as u8;
            (prefix > 0).then_some(Subnet {
                network: destination,
                prefix,
            })
        })
        .collect()
}

/// The first of `candidates` that overlaps none of `taken`.
pub fn first_free(candidates: &[Subnet], taken: &[Subnet]) -> Option<Subnet> {
    candidates
        .iter()
        .copied()
        .find(|c| !taken.iter().any(|t| c.overlaps(*t)))
}

/// The leases of one network.
pub struct Ipam {
    dir: PathBuf,
    name: String,
    subnet: Subnet,
}

impl Ipam {
    pub fn new(dir: &Path, name: &str, subnet: Subnet) -> Ipam {
        Ipam {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            subnet,
        }
    }

    fn io(&self, path: &Path) -> impl FnOnce(io::Error) -> IpamError + use<> {
        let path = path.to_path_buf();
        move |source| IpamError::Io { path, source }
    }

    /// Leases `wanted` (`--ip`), or the lowest free address, to `owner`.
    pub fn lease(&self, owner: &str, wanted: Option<Ipv4Addr>) -> Result<Ipv4Addr, IpamError> {
        fs::create_dir_all(&self.dir).map_err(self.io(&self.dir))?;
        if let Some(ip) = wanted {
            if !self.subnet.contains(ip) || ip == self.subnet.gateway() {
                return Err(IpamError::Outside {
                    ip,
                    subnet: self.subnet,
                });
            }
            return match self.try_take(ip, owner)? {
                true => Ok(ip),
                false => Err(IpamError::Taken(ip)),
            };
        }
        let taken: std::collections::HashSet<String> = fs::read_dir(&self.dir)
            .map_err(self.io(&self.dir))?
            .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
            .collect();
        for ip in self.subnet.hosts() {
            if !taken.contains(&ip.to_string()) && self.try_take(ip, owner)? {
                return Ok(ip);
            }
        }
        Err(IpamError::Exhausted(self.name.clone()))
    }

    /// Creates the lease file of `ip`; false if another run holds it.
    fn try_take(&self, ip: Ipv4Addr, owner: &str) -> Result<bool, IpamError> {
        let path = self.dir.join(ip.to_string());
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut file) => {
                file.write_all(owner.as_bytes()).map_err(self.io(&path))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(self.io(&path)(e)),
        }
    }

    /// Ends `ip`'s lease if `owner` holds it.
    pub fn release(&self, ip: Ipv4Addr, owner: &str) {
        let path = self.dir.join(ip.to_string());
        if fs::read_to_string(&path).is_ok_and(|held| held == owner) {
            let _ = fs::remove_file(&path);
        }
    }

    /// Every lease: address and owner. A file still being written (empty)
    /// is listed with no owner yet.
    pub fn leases(&self) -> Vec<(Ipv4Addr, String)> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut leases: Vec<(Ipv4Addr, String)> = entries
            .filter_map(|e| {
                let e = e.ok()?;
                let ip = e.file_name().to_str()?.parse().ok()?;
                Some((ip, fs::read_to_string(e.path()).ok()?))
            })
            .collect();
        leases.sort();
        leases
    }

    /// Removes the leases whose owner `live` says is gone; returns how many.
    pub fn sweep(&self, live: impl Fn(&str) -> bool) -> usize {
        let mut swept = 0;
        for (ip, owner) in self.leases() {
            if !owner.is_empty() && !live(&owner) {
                self.release(ip, &owner);
                swept += 1;
            }
        }
        swept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_mask_and_list_their_hosts() {
        let s: Subnet = "10.77.3.9/24".parse().unwrap();
        assert_eq!(s.to_string(), "10.77.3.0/24");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 77, 3, 1));
        assert!(s.contains(Ipv4Addr::new(10, 77, 3, 200)));
        assert!(!s.contains(Ipv4Addr::new(10, 77, 4, 1)));
        let hosts: Vec<Ipv4Addr> = s.hosts().collect();
        assert_eq!(hosts.first(), Some(&Ipv4Addr::new(10, 77, 3, 2)));
        assert_eq!(hosts.last(), Some(&Ipv4Addr::new(10, 77, 3, 254)));
        assert_eq!(hosts.len(), 253);
        for bad in ["10.0.0.0", "10.0.0.0/31", "10.0.0.0/0", "x/16", "::1/64"] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_free_subnet_avoids_every_routed_one() {
        let candidates: Vec<Subnet> = ["172.17.0.0/16", "172.18.0.0/16", "172.19.0.0/16"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let taken: Vec<Subnet> = ["172.17.0.0/16", "172.18.5.0/24"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(first_free(&candidates, &taken), Some(candidates[2]));
        assert_eq!(first_free(&candidates[..2], &taken), None);
        // The host's own routes read back as subnets (loopback-free here).
        for subnet in routed_subnets() {
            assert!(subnet.prefix > 0);
        }
    }

    #[test]
    fn parallel_leases_never_share_an_address_and_release_frees_one() {
        let dir = tempfile::tempdir().unwrap();
        let subnet: Subnet = "10.99.0.0/27".parse().unwrap();
        let leased: Vec<Ipv4Addr> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..29)
                .map(|n| {
                    let dir = dir.path();
                    scope.spawn(move || {
                        Ipam::new(dir, "test", subnet)
                            .lease(&format!("c{n}"), None)
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut distinct = leased.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 29);
        let ipam = Ipam::new(dir.path(), "test", subnet);
        assert!(matches!(
            ipam.lease("more", None),
            Err(IpamError::Exhausted(_))
        ));
        let owner = ipam
            .leases()
            .into_iter()
            .find(|(ip, _)| *ip == leased[0])
            .unwrap()
            .1;
        ipam.release(leased[0], "someone else");
        assert!(ipam.lease("more", None).is_err(), "released by a stranger");
        ipam.release(leased[0], &owner);
        assert_eq!(ipam.lease("more", None).unwrap(), leased[0]);
        assert_eq!(ipam.sweep(|owner| owner != "more"), 1);
        assert_eq!(ipam.leases().len(), 28);
    }

    #[test]
    fn a_wanted_address_must_be_inside_and_free() {
        let dir = tempfile::tempdir().unwrap();
        let subnet: Subnet = "10.98.0.0/24".parse().unwrap();
        let ipam = Ipam::new(dir.path(), "test", subnet);
        let ip = Ipv4Addr::new(10, 98, 0, 50);
        assert_eq!(ipam.lease("a", Some(ip)).unwrap(), ip);
        assert!(matches!(
            ipam.lease("b", Some(ip)),
            Err(IpamError::Taken(_))
        ));
        let outside = ipam.lease("b", Some(Ipv4Addr::new(10, 97, 0, 5)));
        assert_eq!(
            outside.unwrap_err().to_string(),
            "address 10.97.0.5 is outside the network's subnet 10.98.0.0/24"
        );
        assert!(ipam.lease("b", Some(subnet.gateway())).is_err());
    }
}
