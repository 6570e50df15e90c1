//! ctr-run on the bridge, Docker's default, end to end with real
//! containers: an address on the store's bridge, a route out, /etc/hosts at
//! that address, published ports reached from 127.0.0.1, Docker's inspect
//! fields and PORTS column, the same ports after ctr-start, refused ports,
//! parallel runs, and nothing left behind (veth, firewall rules, leases,
//! port claims, namespaces) after rm, --rm, or a SIGKILLed ctr-run. An
//! attacker test checks that a container cannot reach the host's loopback.
//! Traffic goes only to 127.0.0.1 and into the bridge the store makes.

use berth_harness::net::{default_bridge, http_get, serve_once};
use berth_harness::registry::free_port;
use berth_harness::{Fixture, Run, tool, wait_for};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const IMG: &str = "test/busybox:latest";
/// The fixture image with `EXPOSE 80 5432`, for -P.
const WEB: &str = "test/web:latest";

fn fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture.busybox(IMG, "bridge");
    fixture
}

/// The fixture plus an image that exposes ports, built on it.
fn web_fixture() -> Fixture {
    let fixture = fixture();
    let context = tempfile::tempdir().unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        format!("FROM {IMG}\nEXPOSE 80 5432/tcp\n"),
    )
    .unwrap();
    run(
        &fixture,
        "img-build",
        &["-q", "-t", WEB, &context.path().display().to_string()],
    )
    .success();
    fixture
}

fn run(fixture: &Fixture, name: &str, args: &[&str]) -> Run {
    Run::of(tool(name, fixture.root()).args(args), None)
}

fn inspect(fixture: &Fixture, template: &str, target: &str) -> String {
    run(fixture, "ctr-inspect", &["--format", template, target])
        .success()
        .stdout
        .trim()
        .to_string()
}

fn sh(command: &str) -> String {
    let out = Command::new("sh").args(["-c", command]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The store's default network, as it keeps it.
fn network(root: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(root.join("networks/bridge.json")).unwrap()).unwrap()
}

/// Everything the store's containers hold on the host's network: leases,
/// port claims naming its containers, pinned namespaces, veths on its
/// bridge, and once the bridge is closed (it stands between containers,
/// as docker0 does) firewall rules naming its subnet (but the shared ones
/// netavark and berth keep by design).
fn network_leftovers(root: &Path) -> Vec<String> {
    let mut left = Vec::new();
    let leases = root.join("networks/leases");
    for dir in std::fs::read_dir(&leases).into_iter().flatten().flatten() {
        for lease in std::fs::read_dir(dir.path()).unwrap().flatten() {
            left.push(format!("lease {}", lease.path().display()));
        }
    }
    for claim in std::fs::read_dir("/run/berth/ports")
        .into_iter()
        .flatten()
        .flatten()
    {
        let holder = std::fs::read_to_string(claim.path()).unwrap_or_default();
        if holder.starts_with(&root.display().to_string()) {
            left.push(format!("port claim {}", claim.path().display()));
        }
    }
    for dir in std::fs::read_dir(root.join("containers"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if dir.path().join("netns").exists() {
            left.push(format!("namespace in {}", dir.path().display()));
        }
    }
    if root.join("networks/bridge.json").exists() {
        let bridge = default_bridge(root);
        left.extend(berth_harness::network_leftovers(
            root,
            "bridge",
            &bridge.interface,
            &bridge.subnet,
        ));
    }
    left
}

#[test]
fn a_bridged_container_has_an_address_a_route_out_and_is_named_at_it() {
    let fixture = fixture();
    let out = run(
        &fixture,
        "ctr-run",
        &[
            "--rm",
            "--hostname",
            "app",
            "--add-host",
            "db:10.1.2.3",
            "--dns",
            "10.0.0.53",
            IMG,
            "sh",
            "-c",
            "ip -4 -o addr show eth0; ip route; cat /etc/hosts /etc/resolv.conf",
        ],
    )
    .success()
    .stdout;
    let net = network(fixture.root());
    let subnet = net["IPAM"]["Config"][0]["Subnet"].as_str().unwrap();
    let gateway = net["IPAM"]["Config"][0]["Gateway"].as_str().unwrap();
    let address = out
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .expect("an IPv4 address on eth0")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let prefix = subnet.rsplit_once('.').unwrap().0;
    assert!(
        address.starts_with(prefix) || subnet.ends_with("/16"),
        "{address} in {subnet}"
    );
    assert!(
        out.contains(&format!("default via {gateway} dev eth0")),
        "{out}"
    );
    assert!(
        out.contains(&format!("10.1.2.3\tdb\n{address}\tapp\n")),
        "{out}"
    );
    assert!(out.contains("nameserver 10.0.0.53\n"), "{out}");
    assert!(
        !out.contains("nameserver 127."),
        "a loopback resolver: {out}"
    );
    // The way out: the subnet is masqueraded behind the host while a
    // container is on it.
    let holder = run(&fixture, "ctr-run", &["-d", IMG, "sleep", "60"]).success();
    let masquerade = sh("iptables-save -t nat");
    assert!(
        masquerade.contains(&format!("-s {subnet}")),
        "no NAT for {subnet}"
    );
    run(&fixture, "ctr-rm", &["-f", holder.stdout.trim()]).success();
    // The host is reached at the gateway, its end of the bridge.
    let (port, served) = serve_once("from the host\n");
    let reached = run(
        &fixture,
        "ctr-run",
        &["--rm", IMG, "sh", "-c", &format!("nc {gateway} {port}")],
    );
    assert_eq!(reached.success().stdout, "from the host\n");
    served.join().unwrap();
    assert_eq!(network_leftovers(fixture.root()), Vec::<String>::new());
    // The other modes are as they were.
    let none = run(
        &fixture,
        "ctr-run",
        &["--rm", "--network", "none", IMG, "sh", "-c", "ip -o link"],
    )
    .success();
    assert_eq!(
        none.stdout.lines().count(),
        1,
        "only loopback: {}",
        none.stdout
    );
}

#[test]
fn published_ports_reach_the_container_and_come_back_after_a_restart() {
    let fixture = web_fixture();
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), "inside\n").unwrap();
    let fixed = free_port();
    let volume = format!("{}:/www:ro", site.path().display());
    let publish = format!("127.0.0.1:{fixed}:80");
    let id = run(
        &fixture,
        "ctr-run",
        &[
            "-d",
            "--name",
            "web",
            "-p",
            &publish,
            "-P",
            "-v",
            &volume,
            WEB,
            "sh",
            "-c",
            "exec httpd -f -p 80 -h /www",
        ],
    )
    .success()
    .stdout
    .trim()
    .to_string();
    let at = format!("127.0.0.1:{fixed}");
    assert!(
        wait_for(10, || http_get(&at, "/index.html").is_some()),
        "nothing at {at}"
    );
    assert_eq!(http_get(&at, "/index.html").as_deref(), Some("inside\n"));
    // At its own address on the bridge too.
    let address = inspect(&fixture, "{{.NetworkSettings.IPAddress}}", "web");
    assert_eq!(
        http_get(&format!("{address}:80"), "/index.html").as_deref(),
        Some("inside\n")
    );
    // -P gave 5432 a random host port; 80 kept the one asked for.
    let random: u16 = inspect(
        &fixture,
        "{{(index (index .NetworkSettings.Ports \"5432/tcp\") 0).HostPort}}",
        "web",
    )
    .parse()
    .unwrap();
    let ports = run(&fixture, "ctr-ps", &["--format", "{{.Ports}}"])
        .success()
        .stdout;
    assert_eq!(
        ports.trim(),
        format!("127.0.0.1:{fixed}->80/tcp, 0.0.0.0:{random}->5432/tcp")
    );
    assert_eq!(
        run(&fixture, "ctr-port", &["web"]).success().stdout,
        format!("80/tcp -> 127.0.0.1:{fixed}\n5432/tcp -> 0.0.0.0:{random}\n")
    );
    assert_eq!(
        run(&fixture, "ctr-port", &["web", "80"]).success().stdout,
        format!("127.0.0.1:{fixed}\n")
    );
    run(&fixture, "ctr-port", &["web", "81"])
        .failure(1)
        .one_error_line(&["No public port '81/tcp' published for web"]);
    let bindings = inspect(&fixture, "{{json .HostConfig.PortBindings}}", "web");
    assert_eq!(
        bindings,
        format!("{{\"80/tcp\":[{{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"{fixed}\"}}]}}")
    );
    let gateway = inspect(
        &fixture,
        "{{.NetworkSettings.Gateway}} {{.NetworkSettings.IPPrefixLen}} {{len .NetworkSettings.MacAddress}} {{.HostConfig.NetworkMode}}",
        "web",
    );
    let net = network(fixture.root());
    assert!(
        gateway.starts_with(net["IPAM"]["Config"][0]["Gateway"].as_str().unwrap()),
        "{gateway}"
    );
    assert!(gateway.ends_with(" 17 bridge"), "{gateway}");
    assert_eq!(
        inspect(
            &fixture,
            "{{.NetworkSettings.Networks.bridge.IPAddress}} {{.NetworkSettings.Networks.bridge.NetworkID}}",
            "web"
        ),
        format!("{address} {}", net["Id"].as_str().unwrap())
    );

    // Stopped: no address, no ports, nothing held on the host.
    run(&fixture, "ctr-stop", &["-t", "1", "web"]).success();
    assert_eq!(
        inspect(
            &fixture,
            "{{.NetworkSettings.IPAddress}}|{{json .NetworkSettings.Ports}}",
            "web"
        ),
        "|{}"
    );
    assert_eq!(network_leftovers(fixture.root()), Vec::<String>::new());
    assert!(
        http_get(&at, "/index.html").is_none(),
        "still served when stopped"
    );
    // Started again: the same host ports, served again.
    run(&fixture, "ctr-start", &["web"]).success();
    assert!(
        wait_for(10, || http_get(&at, "/index.html").is_some()),
        "nothing at {at} after start"
    );
    let again = run(&fixture, "ctr-ps", &["--format", "{{.Ports}}"])
        .success()
        .stdout;
    assert_eq!(again, ports);
    run(&fixture, "ctr-rm", &["-f", &id]).success();
    assert_eq!(network_leftovers(fixture.root()), Vec::<String>::new());
}

#[test]
fn a_port_already_allocated_is_refused_in_docker_s_words_and_leaves_the_store_as_it_was() {
    let fixture = fixture();
    let taken = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let before = berth_harness::store_listing(fixture.root());
    run(
        &fixture,
        "ctr-run",
        &["-d", "-p", &format!("{port}:80"), IMG, "sleep", "60"],
    )
    .failure(125)
    .one_error_line(&[&format!(
        "Bind for 0.0.0.0:{port} failed: port is already allocated"
    )]);
    // A container's claim counts as a listener does.
    let free = free_port();
    let first = run(
        &fixture,
        "ctr-run",
        &["-d", "-p", &format!("{free}:80"), IMG, "sleep", "60"],
    )
    .success();
    run(
        &fixture,
        "ctr-run",
        &["--rm", "-p", &format!("127.0.0.1:{free}:81"), IMG, "true"],
    )
    .failure(125)
    .one_error_line(&["port is already allocated"]);
    run(&fixture, "ctr-rm", &["-f", first.stdout.trim()]).success();
    let after = berth_harness::store_listing(fixture.root());
    let new: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert!(
        new.iter()
            .all(|k| k.starts_with("networks/") || k.starts_with("layers/")),
        "{new:?}"
    );
    assert_eq!(network_leftovers(fixture.root()), Vec::<String>::new());
    for bad in [
        ["-p", "80:x"],
        ["--ip", "10.0.0.1.5"],
        ["--add-host", "nocolon"],
    ] {
        let mut args = bad.to_vec();
        args.extend([IMG, "true"]);
        run(&fixture, "ctr-run", &args)
            .failure(125)
            .one_error_line(&[bad[0]]);
    }
}

#[test]
fn parallel_runs_never_share_an_address_and_give_every_lease_back() {
    let fixture = fixture();
    let ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    run(&fixture, "ctr-run", &["-d", IMG, "sleep", "60"])
                        .success()
                        .stdout
                        .trim()
                        .to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut addresses: Vec<String> = ids
        .iter()
        .map(|id| inspect(&fixture, "{{.NetworkSettings.IPAddress}}", id))
        .collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), ids.len(), "{addresses:?}");
    // --ip takes one that is free, and not one that is taken.
    let taken = addresses[0].clone();
    run(&fixture, "ctr-run", &["--rm", "--ip", &taken, IMG, "true"])
        .failure(125)
        .one_error_line(&[&format!("address {taken} is already in use")]);
    let mut args = vec!["-f"];
    args.extend(ids.iter().map(String::as_str));
    run(&fixture, "ctr-rm", &args).success();
    assert_eq!(network_leftovers(fixture.root()), Vec::<String>::new());
}

#[test]
fn a_killed_ctr_run_leaves_no_network_behind_once_the_next_tool_looks() {
    let fixture = fixture();
    let root = fixture.root();
    for delay_ms in [30u64, 80, 150, 250, 400] {
        let mut child = tool("ctr-run", root)
            .args(["-d", IMG, "sleep", "60"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // What a dead owner left is found and cleaned by the next tools.
        run(&fixture, "ctr-ps", &["-a"]).success();
        let all = run(&fixture, "ctr-ps", &["-aq", "--no-trunc"])
            .success()
            .stdout;
        if !all.trim().is_empty() {
            let mut args = vec!["-f"];
            args.extend(all.lines());
            run(&fixture, "ctr-rm", &args).success();
        }
        assert_eq!(
            network_leftovers(root),
            Vec::<String>::new(),
            "killed after {delay_ms} ms"
        );
    }
}

/// A container that crafts its own packets (CAP_NET_RAW, which Docker's
/// default set has) can send one to 127.0.0.1 through the bridge; the
/// bridge routes loopback (netavark sets route_localnet for published
/// ports on 127.0.0.1). Played here from the container's network
/// namespace with routes that send 127.0.0.1 via the gateway: the host's
/// loopback-only server must stay out of reach.
#[test]
fn a_container_cannot_reach_services_on_the_host_s_loopback() {
    let fixture = fixture();
    let secret = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = secret.local_addr().unwrap().port();
    secret.set_nonblocking(true).unwrap();
    let id = run(&fixture, "ctr-run", &["-d", IMG, "sleep", "60"])
        .success()
        .stdout
        .trim()
        .to_string();
    let address = inspect(&fixture, "{{.NetworkSettings.IPAddress}}", &id);
    let gateway = inspect(&fixture, "{{.NetworkSettings.Gateway}}", &id);
    let netns = fixture.root().join("containers").join(&id).join("netns");
    let attack = format!(
        "sysctl -qw net.ipv4.conf.eth0.route_localnet=1 net.ipv4.conf.all.route_localnet=1; \
         ip rule del pref 0; ip rule add pref 1000 lookup local; \
         ip rule add pref 10 to 127.0.0.1 lookup 100; \
         ip route add default via {gateway} dev eth0 src {address} table 100; \
         timeout 3 busybox nc 127.0.0.1 {port} </dev/null; echo exit=$?"
    );
    let out = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(["sh", "-c", &attack])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        secret.accept().is_err(),
        "the container reached 127.0.0.1:{port}: {said}"
    );
    assert!(!said.contains("exit=0"), "{said}");
    run(&fixture, "ctr-rm", &["-f", &id]).success();
}

/// The default bridge stands between containers, as docker0 does: the
/// first container opens it through netavark, the next are plugged in
/// with `ip` alone (Docker's MAC for their address, a host end named after
/// them), and a container that publishes ports, which netavark sets up
/// and tears down, does not close it under the plugged ones when it goes.
#[test]
fn the_default_bridge_stands_between_containers_and_a_leaving_publisher_does_not_close_it() {
    let fixture = fixture();
    let (interface, subnet, gateway) = bridge_after_first_run(&fixture);
    // Nothing runs, and the bridge and its NAT stand.
    assert!(
        Path::new("/sys/class/net").join(&interface).exists(),
        "the bridge {interface} went with its last container"
    );
    assert!(sh("iptables-save -t nat").contains(&format!("-s {subnet}")));

    let plugged = run(&fixture, "ctr-run", &["-d", IMG, "sleep", "120"])
        .success()
        .stdout
        .trim()
        .to_string();
    let ip = inspect(&fixture, "{{.NetworkSettings.IPAddress}}", &plugged);
    let octets: Vec<u8> = ip.split('.').map(|o| o.parse().unwrap()).collect();
    let docker_mac = format!(
        "02:42:{:02x}:{:02x}:{:02x}:{:02x}",
        octets[0], octets[1], octets[2], octets[3]
    );
    assert_eq!(
        inspect(&fixture, "{{.NetworkSettings.MacAddress}}", &plugged),
        docker_mac
    );
    let inside = run(
        &fixture,
        "ctr-exec",
        &[
            &plugged,
            "sh",
            "-c",
            "cat /sys/class/net/eth0/address; ip route",
        ],
    )
    .success()
    .stdout;
    assert!(inside.starts_with(&format!("{docker_mac}\n")), "{inside}");
    assert!(
        inside.contains(&format!("default via {gateway} dev eth0")),
        "{inside}"
    );
    let ends = sh(&format!("ip -o link show master {interface}"));
    assert!(
        ends.contains(&format!(": vb{}", &plugged[..8])),
        "no host end of {plugged} on {interface}: {ends}"
    );

    // A publisher comes and goes through netavark.
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let publisher = run(
        &fixture,
        "ctr-run",
        &["-d", "-p", &publish, IMG, "sleep", "120"],
    )
    .success()
    .stdout
    .trim()
    .to_string();
    run(&fixture, "ctr-rm", &["-f", &publisher]).success();

    // The plugged container still gets out: to a server of the test's on
    // the gateway, NATed.
    assert!(sh("iptables-save -t nat").contains(&format!("-s {subnet}")));
    let (host_port, served) = serve_once("still out\n");
    let reached = run(
        &fixture,
        "ctr-exec",
        &[&plugged, "sh", "-c", &format!("nc {gateway} {host_port}")],
    );
    assert_eq!(reached.success().stdout, "still out\n");
    served.join().unwrap();

    run(&fixture, "ctr-rm", &["-f", &plugged]).success();
    assert_eq!(network_leftovers(fixture.root()), Vec::<String>::new());
    assert!(
        !Path::new("/sys/class/net").join(&interface).exists(),
        "the bridge {interface} stayed after it was closed"
    );
}

/// The store's default bridge (interface, subnet, gateway) once a first
/// container has opened it and gone.
fn bridge_after_first_run(fixture: &Fixture) -> (String, String, String) {
    run(fixture, "ctr-run", &["--rm", IMG, "true"]).success();
    let bridge = default_bridge(fixture.root());
    (bridge.interface, bridge.subnet, bridge.gateway)
}

/// What a netavark killed half-way through opening the default bridge
/// leaves (the bridge, not all of its rules) is not taken for a standing
/// bridge: the next container has netavark open it again, rules and all.
#[test]
fn a_half_opened_bridge_is_opened_again_not_plugged_into() {
    let fixture = fixture();
    let (interface, subnet, _) = bridge_after_first_run(&fixture);
    // The remains of a killed set-up: its NAT rule never made, and no
    // record of a set-up that completed.
    let nat = sh("iptables-save -t nat");
    let rule = nat
        .lines()
        .find(|l| l.starts_with("-A POSTROUTING") && l.contains(&format!("-s {subnet}")))
        .unwrap_or_else(|| panic!("no NAT rule for {subnet}: {nat}"))
        .to_string();
    let deleted = Command::new("sh")
        .args([
            "-c",
            &format!("iptables -t nat {}", rule.replacen("-A", "-D", 1)),
        ])
        .status()
        .unwrap();
    assert!(deleted.success());
    std::fs::remove_file(Path::new("/run/berth/opened").join(&interface)).unwrap();
    assert!(!sh("iptables-save -t nat").contains(&format!("-s {subnet}")));

    let id = run(&fixture, "ctr-run", &["-d", IMG, "sleep", "60"])
        .success()
        .stdout
        .trim()
        .to_string();
    assert!(
        sh("iptables-save -t nat").contains(&format!("-s {subnet}")),
        "plugged into a bridge without its NAT"
    );
    let ip = inspect(&fixture, "{{.NetworkSettings.IPAddress}}", &id);
    let mac = inspect(&fixture, "{{.NetworkSettings.MacAddress}}", &id);
    assert!(!ip.is_empty() && mac.len() == 17, "{ip} {mac}");
    run(&fixture, "ctr-rm", &["-f", &id]).success();
    assert_eq!(network_leftovers(fixture.root()), Vec::<String>::new());
}
