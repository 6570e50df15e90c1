//! The default bridge on a host whose `iptables` is the legacy (x_tables)
//! one rather than iptables-nft: netavark and berth's own guard rule call
//! whichever `iptables` is first on PATH, as on such a host. The test puts
//! a directory of the legacy commands first on this process's PATH (its
//! own test binary, so no other test sees it) and checks that a container
//! is plugged, published, reached and torn down with every rule in the
//! legacy tables and none in nftables. Traffic goes only to 127.0.0.1 and
//! into the bridge the store makes.

use berth_harness::net::{default_bridge, http_get, serve_once};
use berth_harness::registry::free_port;
use berth_harness::{Fixture, Run, tool, wait_for};

const IMG: &str = "test/busybox:latest";

fn run(fixture: &Fixture, name: &str, args: &[&str]) -> Run {
    Run::of(tool(name, fixture.root()).args(args), None)
}

fn save(command: &str) -> String {
    let out = std::process::Command::new(command).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_default_bridge_works_on_a_legacy_iptables_host_and_leaves_no_rule() {
    let legacy = tempfile::tempdir().unwrap();
    for (name, target) in [
        ("iptables", "iptables-legacy"),
        ("iptables-save", "iptables-legacy-save"),
        ("iptables-restore", "iptables-legacy-restore"),
        ("ip6tables", "ip6tables-legacy"),
        ("ip6tables-save", "ip6tables-legacy-save"),
        ("ip6tables-restore", "ip6tables-legacy-restore"),
    ] {
        std::os::unix::fs::symlink(format!("/usr/sbin/{target}"), legacy.path().join(name))
            .unwrap();
    }
    let path = format!(
        "{}:{}",
        legacy.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // SAFETY: this binary's one test sets it before it starts any thread
    // that reads the environment.
    unsafe { std::env::set_var("PATH", &path) };

    // A host that has no legacy tables in use gets none left behind.
    let pristine = !save("iptables-legacy-save").contains("-A ");

    let fixture = Fixture::new();
    fixture.busybox(IMG, "legacy");
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let server = run(
        &fixture,
        "ctr-run",
        &[
            "-d",
            "-p",
            &publish,
            IMG,
            "sh",
            "-c",
            "echo legacy > /index.html; exec httpd -f -p 80 -h /",
        ],
    )
    .success()
    .stdout
    .trim()
    .to_string();
    let plugged = run(&fixture, "ctr-run", &["-d", IMG, "sleep", "120"])
        .success()
        .stdout
        .trim()
        .to_string();
    let bridge = default_bridge(fixture.root());
    let (interface, subnet, gateway) = (bridge.interface, bridge.subnet, bridge.gateway);

    // Every rule is a legacy one.
    let in_legacy = save("iptables-legacy-save");
    assert!(
        in_legacy.contains(&format!("-s {subnet}")),
        "no NAT for {subnet} in the legacy tables"
    );
    assert!(in_legacy.contains(&format!("--dport {port}")), "no DNAT");
    assert!(in_legacy.contains("berth: no host loopback"));
    assert!(
        !save("iptables-nft-save").contains(&subnet),
        "rules for {subnet} in nftables"
    );

    // The published port answers on 127.0.0.1; the plugged container
    // reaches a server of the test's at the gateway.
    let published = format!("127.0.0.1:{port}");
    assert!(
        wait_for(10, || http_get(&published, "/index.html").is_some()),
        "nothing at {published}"
    );
    assert_eq!(
        http_get(&published, "/index.html").as_deref(),
        Some("legacy\n")
    );
    let (host_port, served) = serve_once("from the host\n");
    let reached = run(
        &fixture,
        "ctr-exec",
        &[&plugged, "sh", "-c", &format!("nc {gateway} {host_port}")],
    );
    assert_eq!(reached.success().stdout, "from the host\n");
    served.join().unwrap();

    run(&fixture, "ctr-rm", &["-f", &server, &plugged]).success();
    assert_eq!(
        berth_harness::network_leftovers(fixture.root(), "bridge", &interface, &subnet),
        Vec::<String>::new()
    );
    assert!(
        !save("iptables-legacy-save").contains(&subnet),
        "legacy rules for {subnet} stayed"
    );
    drop(fixture);
    if pristine {
        for table in ["filter", "nat", "mangle", "raw"] {
            for verb in ["-F", "-X"] {
                let _ = std::process::Command::new("iptables-legacy")
                    .args(["-t", table, verb])
                    .status();
            }
        }
    }
}
