//! The network pieces against the real stack: a pinned namespace wired to
//! a bridge of the test's own by netavark, a server in it reached through
//! a published port on 127.0.0.1 and at its bridge address, and nothing
//! left behind after teardown (bridge, veth, firewall rules, namespace).
//! Traffic goes only to loopback and into the bridge this test makes.

use berth::network::ipam::{Subnet, first_free, routed_subnets};
use berth::network::netavark::{self, Attachment, Bridge};
use berth::network::{netns, ports};
use berth_harness::net::http_get;
use berth_harness::registry::free_port;
use berth_harness::wait_for;
use std::net::TcpStream;
use std::process::Command;

fn sh(command: &str) -> (bool, String) {
    let out = Command::new("sh").args(["-c", command]).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn netavark_wires_a_pinned_namespace_to_a_bridge_and_takes_it_all_down() {
    if !std::path::Path::new(netavark::NETAVARK).exists() {
        panic!("netavark is not installed: cargo xtask ci installs it");
    }
    // A subnet nothing on this host routes, for this test alone.
    let candidates: Vec<Subnet> = (200..250)
        .map(|n| format!("10.{n}.77.0/24").parse().unwrap())
        .collect();
    let subnet = first_free(&candidates, &routed_subnets()).expect("a free test subnet");
    let interface = format!("br-test{}", std::process::id() % 100_000);
    let bridge = Bridge {
        name: interface.clone(),
        id: format!("{:0>64}", std::process::id()),
        interface: interface.clone(),
        subnet,
        internal: false,
        dns: false,
    };
    let dir = tempfile::tempdir().unwrap();
    let ns = dir.path().join("netns");
    netns::create(&ns).unwrap();
    let ip = subnet.hosts().next().unwrap();
    let host_port = free_port();
    let published = ports::parse_publish(&format!("127.0.0.1:{host_port}:80")).unwrap()[0];
    let mapped = [(published, host_port)];
    let attachment = Attachment {
        container_id: "berth-network-test",
        container_name: "berth-network-test",
        ip,
        aliases: &[],
        interface: "eth0",
        ports: &mapped,
    };
    // berth's own guard of the host's loopback stays by design, as
    // netavark's shared chains do.
    let rules =
        "iptables-save | grep -v '^#' | grep -v NETAVARK | grep -vc 'berth: no host loopback'";
    let rules_before = sh(rules).1;
    let config = dir.path().join("netavark");
    let configured = netavark::setup(&config, &ns, &bridge, &attachment).unwrap();
    assert_eq!(configured.mac_address.len(), 17, "{configured:?}");
    let (ok, inside) = sh(&format!(
        "nsenter --net={} ip -4 -o addr show eth0",
        ns.display()
    ));
    assert!(ok && inside.contains(&format!("{ip}/24")), "{inside}");

    // A web server in the namespace, reached both ways.
    let site = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    std::fs::write(site.join("index.html"), "inside\n").unwrap();
    let mut server = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["busybox", "httpd", "-f", "-p", "80", "-h"])
        .arg(&site)
        .spawn()
        .unwrap();
    let direct = format!("{ip}:80");
    assert!(
        wait_for(10, || TcpStream::connect(&direct).is_ok()),
        "no server at {direct}"
    );
    assert_eq!(
        http_get(&direct, "/index.html").as_deref(),
        Some("inside\n")
    );
    let published = format!("127.0.0.1:{host_port}");
    assert_eq!(
        http_get(&published, "/index.html").as_deref(),
        Some("inside\n")
    );
    server.kill().unwrap();
    server.wait().unwrap();

    netavark::teardown(&config, &ns, &bridge, &attachment).unwrap();
    netns::remove(&ns);
    assert!(!ns.exists());
    let (exists, _) = sh(&format!("ip link show {interface}"));
    assert!(!exists, "the bridge {interface} stayed");
    let (_, leftovers) = sh(&format!(
        "iptables-save | grep -c '{}' || true",
        subnet.network
    ));
    assert_eq!(leftovers.trim(), "0", "rules for {subnet} stayed");
    let rules_after = sh(rules).1;
    assert_eq!(rules_after, rules_before, "firewall rules changed");
}
