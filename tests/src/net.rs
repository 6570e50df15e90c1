//! What network tests share: the store's default bridge as it keeps it,
//! what a network leaves on the host, a one-line server for containers to
//! reach, and a plain HTTP GET. Traffic only to 127.0.0.1 and into the
//! bridges the tests' stores make.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

/// A store's default bridge, from `networks/bridge.json`.
pub struct DefaultBridge {
    /// The bridge's interface on the host.
    pub interface: String,
    pub subnet: String,
    pub gateway: String,
}

/// The default bridge of the store at `root` (made by its first run).
pub fn default_bridge(root: &Path) -> DefaultBridge {
    let net: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("networks/bridge.json")).unwrap()).unwrap();
    let text = |value: &serde_json::Value| value.as_str().unwrap().to_string();
    DefaultBridge {
        interface: text(&net["Options"]["com.docker.network.bridge.name"]),
        subnet: text(&net["IPAM"]["Config"][0]["Subnet"]),
        gateway: text(&net["IPAM"]["Config"][0]["Gateway"]),
    }
}

/// A server of the test's on every host address that sends `line` to the
/// first to connect: its port, and the thread to join once it was reached.
pub fn serve_once(line: &'static str) -> (u16, std::thread::JoinHandle<()>) {
    let host = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = host.local_addr().unwrap().port();
    let served = std::thread::spawn(move || {
        let (mut peer, _) = host.accept().unwrap();
        peer.write_all(line.as_bytes()).unwrap();
    });
    (port, served)
}

/// The body of `path` over plain HTTP/1.0 at `address`, if it answers.
pub fn http_get(address: &str, path: &str) -> Option<String> {
    let mut stream =
        TcpStream::connect_timeout(&address.parse().ok()?, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

/// What network `name` of the store at `root` leaves on the host once its
/// containers are gone: `network_traces`, after waiting for the veths of
/// containers just torn down (the kernel deletes a pair a few milliseconds
/// after teardown returns: `standing::unplug`) and, for the default
/// bridge, which stands between containers as docker0 does, closing it.
pub fn network_leftovers(
    root: &std::path::Path,
    name: &str,
    interface: &str,
    subnet: &str,
) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !veths_on(interface).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    if name == berth::network::networks::DEFAULT {
        let store = berth::store::Store::open(root).expect("the store");
        berth::network::standing::close(&store).expect("closing the default bridge");
    }
    network_traces(interface, subnet)
}

/// The interfaces on bridge `interface`, one line each.
fn veths_on(interface: &str) -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["-br", "link", "show", "master", interface])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// What a bridge network's containers left on the host: the veths still on
/// its bridge `interface`, and the firewall rules naming its `subnet`.
pub fn network_traces(interface: &str, subnet: &str) -> Vec<String> {
    let prefix = subnet.split('/').next().unwrap();
    let rules = std::process::Command::new("sh")
        .args(["-c", &format!("iptables-save | grep -F '{prefix}' || true")])
        .output()
        .unwrap();
    veths_on(interface)
        .into_iter()
        .map(|l| format!("veth {l}"))
        .chain(
            String::from_utf8_lossy(&rules.stdout)
                .lines()
                .map(|l| format!("rule {l}")),
        )
        .collect()
}
