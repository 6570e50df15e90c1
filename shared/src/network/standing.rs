//! The default bridge left standing between containers, as Docker's
//! `docker0` is: netavark opens it (bridge, NAT and isolation rules) for
//! the first container, and from then on a container without published
//! ports is plugged in and out with two `ip` runs of a few milliseconds,
//! not netavark's ~25 `iptables` runs each way (0.3-0.4 s a start on this
//! hardware, seconds under load).
//!
//! This is sound because netavark's only per-container state on a network
//! without DNS and without published ports is the veth pair: its firewall
//! rules name the subnet, not the container. What netavark would do when
//! such a container leaves, other than deleting the pair, is close the
//! network when it was the last, and that is what is skipped.
//!
//! Every plug and every network change is made under netavark's host-wide
//! lock, so a container is never plugged into a bridge that netavark is
//! deleting under it; and only into a bridge whose netavark set-up last
//! completed with no teardown begun since (`netavark::is_open`), never into
//! what a netavark killed half-way left.

use super::netavark::{self, Attachment, Bridge, NetavarkError};
use super::networks::{self, Networks};
use super::{NetworkError, netns};
use crate::store::Store;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};

/// iproute2's `ip`, the field's tool for links, addresses and routes.
const IP: &str = "ip";

/// Whether netavark's bridge `bridge` stands whole on the host: what a
/// killed set-up or teardown left is opened again by netavark.
fn is_up(bridge: &Bridge) -> bool {
    netavark::is_open(&bridge.interface)
}

/// Whether bridge `bridge` is on the host at all, whole or not.
fn exists(bridge: &Bridge) -> bool {
    Path::new("/sys/class/net").join(&bridge.interface).exists()
}

/// Docker's MAC address for a container's address: `02:42` and the
/// address's four bytes, so it is the same for the same address.
pub fn mac_of(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

/// The host end of a plugged container's veth pair (at most 15 bytes, as
/// interface names are): its container's and four random hex digits, as
/// the end of its last start may still be going (`unplug`).
fn host_end(container_id: &str) -> String {
    let nonce = crate::identity::new_id().unwrap_or_else(|_| {
        format!(
            "{:08x}",
            std::process::id()
                ^ std::time::UNIX_EPOCH
                    .elapsed()
                    .unwrap_or_default()
                    .subsec_nanos()
        )
    });
    format!(
        "vb{}{}",
        &container_id[..container_id.len().min(8)],
        &nonce[..4]
    )
}

/// Puts the container of `attachment` on `bridge` in `netns`: a veth pair
/// (Docker's MAC, its address, a default route through the gateway) if
/// the bridge is standing; netavark's full set-up, which opens it, if it
/// is not. Returns the interface's MAC address.
pub fn plug(
    config_dir: &Path,
    netns: &Path,
    bridge: &Bridge,
    attachment: &Attachment<'_>,
) -> Result<String, NetavarkError> {
    let lock = netavark::host_lock()?;
    if !is_up(bridge) {
        drop(lock);
        return netavark::setup(config_dir, netns, bridge, attachment)
            .map(|configured| configured.mac_address);
    }
    let host = host_end(attachment.container_id);
    let mac = mac_of(attachment.ip);
    let on_host = format!(
        "link add {host} type veth peer name {interface} address {mac} netns {netns}\n\
         link set {host} master {bridge} up\n",
        interface = attachment.interface,
        netns = netns.display(),
        bridge = bridge.interface,
    );
    ip_batch(None, &on_host, Wait::Yes)?;
    let inside = format!(
        "link set lo up\n\
         addr add {ip}/{prefix} dev {interface}\n\
         link set {interface} up\n\
         route add default via {gateway} dev {interface} proto static metric 100\n",
        ip = attachment.ip,
        prefix = bridge.subnet.prefix,
        interface = attachment.interface,
        gateway = bridge.subnet.gateway(),
    );
    if let Err(e) = ip_batch(Some(netns), &inside, Wait::Yes) {
        let _ = ip_batch(None, &format!("link del {host}\n"), Wait::Yes);
        return Err(e);
    }
    Ok(mac)
}

/// Takes a plugged container's interface off its bridge: deleting the end
/// in its namespace deletes the pair. The kernel takes ~20 ms to do it (it
/// waits out an RCU grace period), which a container alone in its
/// namespace need not wait for (`Wait::No`): the batch runs on while the
/// caller goes on. A namespace another container joined (`--network
/// container:`) must have lost the interface when this returns, as in
/// Docker (`Wait::Yes`). A re-leased address gets the same MAC, so the
/// few milliseconds in which both ends exist confuse no neighbour table.
/// Missing is fine.
pub fn unplug(netns: &Path, interface: &str, wait: Wait) {
    let _ = ip_batch(Some(netns), &format!("link del {interface}\n"), wait);
}

/// Closes the store's default bridge if it is there (whole, or what a
/// killed set-up or teardown left) with no container on it: the bridge and
/// its firewall rules go, as netavark takes them when its last container
/// leaves. True if it was closed. For whoever owns the store's end (a
/// test's store, an uninstall); a running berth reopens it.
pub fn close(store: &Store) -> Result<bool, NetworkError> {
    let networks = Networks::of(store);
    let Some(network) = networks.get(networks::DEFAULT)? else {
        return Ok(false);
    };
    let bridge = network.bridge()?;
    // The veths of containers just torn down go in the kernel's own time.
    for _ in 0..500 {
        if !has_ports(&bridge) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    {
        let _lock = netavark::host_lock()?;
        if !exists(&bridge) || has_ports(&bridge) {
            return Ok(false);
        }
    }
    // netavark closes a network when its last container leaves: a
    // throwaway namespace joins it and leaves.
    let scratch = tempfile::tempdir_in(store.root()).map_err(|source| NetworkError::Io {
        path: store.root().to_path_buf(),
        source,
    })?;
    let ns = scratch.path().join("netns");
    netns::create(&ns).map_err(|source| NetworkError::Io {
        path: ns.clone(),
        source,
    })?;
    let ipam = networks.ipam(&network)?;
    let owner = "closing";
    let closed = (|| -> Result<(), NetworkError> {
        let ip = ipam.lease(owner, None)?;
        let attachment = Attachment {
            container_id: owner,
            container_name: owner,
            ip,
            aliases: &[],
            interface: "eth0",
            ports: &[],
        };
        let config_dir = networks.netavark_dir();
        let result = netavark::setup(&config_dir, &ns, &bridge, &attachment)
            .and_then(|_| netavark::teardown(&config_dir, &ns, &bridge, &attachment));
        ipam.release(ip, owner);
        result.map_err(NetworkError::from)
    })();
    netns::remove(&ns);
    closed.map(|()| !exists(&bridge))
}

/// Whether any interface is enslaved to the bridge.
fn has_ports(bridge: &Bridge) -> bool {
    std::fs::read_dir(
        Path::new("/sys/class/net")
            .join(&bridge.interface)
            .join("brif"),
    )
    .map(|mut ports| ports.next().is_some())
    .unwrap_or(false)
}

/// Whether a batch of `ip` commands is waited for.
#[derive(Clone, Copy, PartialEq)]
pub enum Wait {
    Yes,
    /// It runs on; a thread of ours reaps it, or init does if we are gone.
    No,
}

/// Runs `commands` through `ip -batch -`, in the namespace pinned at
/// `netns` if given (from a thread of its own that enters it: the child
/// is born there, and no thread of ours but that one ever moves).
fn ip_batch(netns: Option<&Path>, commands: &str, wait: Wait) -> Result<(), NetavarkError> {
    let run = move |commands: String| -> Result<(), NetavarkError> {
        let mut child = Command::new(IP)
            .args(["-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(NetavarkError::Missing)?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(commands.as_bytes());
        }
        let reaped = move || child.wait_with_output().map_err(NetavarkError::Missing);
        if wait == Wait::No {
            std::thread::spawn(reaped);
            return Ok(());
        }
        let output = reaped()?;
        match output.status.success() {
            true => Ok(()),
            false => Err(NetavarkError::Failed {
                verb: "setup",
                message: format!("ip: {}", String::from_utf8_lossy(&output.stderr).trim()),
            }),
        }
    };
    let commands = commands.to_string();
    let Some(netns) = netns else {
        return run(commands);
    };
    let netns = netns.to_path_buf();
    std::thread::spawn(move || {
        let namespace = std::fs::File::open(&netns).map_err(|source| NetavarkError::Io {
            path: netns.clone(),
            source,
        })?;
        // SAFETY: setns takes a descriptor we hold and moves this thread
        // alone, which ends when the batch has run.
        if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(NetavarkError::Io {
                path: netns,
                source: std::io::Error::last_os_error(),
            });
        }
        run(commands)
    })
    .join()
    .unwrap_or_else(|_| {
        Err(NetavarkError::Failed {
            verb: "setup",
            message: "the namespace thread panicked".into(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_dockers_and_host_ends_fit_an_interface_name() {
        assert_eq!(mac_of(Ipv4Addr::new(172, 17, 0, 2)), "02:42:ac:11:00:02");
        let id = "5d427ede".repeat(8);
        let (one, two) = (host_end(&id), host_end(&id));
        assert!(one.starts_with("vb5d427ede") && one.len() <= 15, "{one}");
        assert_ne!(one, two, "a restart's end may meet its last one's");
    }
}
