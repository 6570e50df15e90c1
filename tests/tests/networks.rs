//! User-defined networks end to end (net-create, net-ls, net-inspect,
//! net-rm, `ctr-run --network NAME`): containers on one find each other by
//! name and alias through aardvark-dns, containers elsewhere cannot reach
//! them, and what Docker refuses is refused in its words. Traffic stays
//! inside the bridges the test's store makes.

use berth_harness::{Fixture, Run, tool};
use serde_json::Value;

const IMG: &str = "test/busybox:latest";

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

#[test]
fn containers_on_a_user_network_find_each_other_by_name_and_others_cannot_reach_them() {
    let fixture = Fixture::new();
    fixture.busybox(IMG, "networks");
    let id = run(&fixture, "net-create", &["--label", "team=a", "appnet"])
        .success()
        .stdout;
    let id = id.trim();
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    let listed = run(&fixture, "net-ls", &[]).success().stdout;
    let names: Vec<&str> = listed
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(names, ["appnet", "bridge", "host", "none"], "{listed}");
    assert!(
        listed.starts_with("NETWORK ID     NAME      DRIVER    SCOPE\n"),
        "{listed}"
    );
    assert!(listed.contains(&format!("{}   appnet    bridge    local\n", &id[..12])));
    let quiet = run(&fixture, "net-ls", &["-q"]).success().stdout;
    assert_eq!(quiet.lines().count(), 4);
    assert_eq!(
        run(
            &fixture,
            "net-inspect",
            &["-f", "{{.Name}} {{.Driver}} {{.Labels.team}}", &id[..8]]
        )
        .success()
        .stdout,
        "appnet bridge a\n"
    );

    run(
        &fixture,
        "ctr-run",
        &[
            "-d",
            "--name",
            "db",
            "--network",
            "appnet",
            "--network-alias",
            "database",
            IMG,
            "sleep",
            "60",
        ],
    )
    .success();
    let db_ip = inspect(
        &fixture,
        "{{.NetworkSettings.Networks.appnet.IPAddress}}",
        "db",
    );
    assert!(db_ip.parse::<std::net::Ipv4Addr>().is_ok(), "{db_ip:?}");
    assert_eq!(
        inspect(&fixture, "{{.HostConfig.NetworkMode}}", "db"),
        "appnet"
    );
    assert_eq!(
        inspect(
            &fixture,
            "{{json .NetworkSettings.Networks.appnet.Aliases}}",
            "db"
        ),
        "[\"database\"]"
    );
    // By name and by alias, through the network's own resolver.
    let client = run(
        &fixture,
        "ctr-run",
        &[
            "--rm",
            "--network",
            "appnet",
            IMG,
            "sh",
            "-c",
            "nslookup db; nslookup database; ping -c 1 -W 5 db >/dev/null && echo reached",
        ],
    )
    .success()
    .stdout;
    assert_eq!(
        client.matches(&format!("Address: {db_ip}")).count(),
        2,
        "{client}"
    );
    assert!(client.ends_with("reached\n"), "{client}");
    // From the default bridge, the user network is out of reach.
    let outsider = format!("ping -c 1 -W 2 {db_ip} >/dev/null && echo reached || echo isolated");
    let outside = run(&fixture, "ctr-run", &["--rm", IMG, "sh", "-c", &outsider]).success();
    assert_eq!(outside.stdout, "isolated\n");
    // net-inspect lists the running container at its address.
    let object: Value =
        serde_json::from_str(&run(&fixture, "net-inspect", &["appnet"]).success().stdout).unwrap();
    let containers = object[0]["Containers"].as_object().unwrap();
    assert_eq!(containers.len(), 1);
    let (_, db) = containers.iter().next().unwrap();
    assert_eq!(db["Name"], "db");
    assert!(
        db["IPv4Address"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{db_ip}/"))
    );

    // Removal waits for its containers, as Docker's does.
    run(&fixture, "net-rm", &["appnet"])
        .failure(1)
        .one_error_line(&["network appnet id", "has active endpoints"]);
    run(&fixture, "ctr-rm", &["-f", "db"]).success();
    assert_eq!(
        run(&fixture, "net-rm", &["appnet"]).success().stdout,
        "appnet\n"
    );
    run(&fixture, "net-inspect", &["appnet"])
        .failure(1)
        .one_error_line(&["network appnet not found"]);
    let leases = fixture.root().join("networks/leases");
    for dir in std::fs::read_dir(&leases).into_iter().flatten().flatten() {
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "a lease stayed"
        );
    }
}

#[test]
fn what_docker_refuses_about_networks_is_refused_in_its_words() {
    let fixture = Fixture::new();
    fixture.busybox(IMG, "networks refused");
    run(
        &fixture,
        "ctr-run",
        &["--rm", "--network", "nosuch", IMG, "true"],
    )
    .failure(125)
    .one_error_line(&["network nosuch not found"]);
    run(&fixture, "net-create", &["bridge"])
        .failure(1)
        .one_error_line(&["network with name bridge already exists"]);
    run(&fixture, "net-rm", &["bridge"])
        .failure(1)
        .one_error_line(&["bridge is a pre-defined network and cannot be removed"]);
    run(&fixture, "net-create", &["-bad"]).failure(2);
    run(&fixture, "net-create", &["a/b"])
        .failure(1)
        .one_error_line(&["invalid network name \"a/b\""]);
    run(&fixture, "net-create", &["--driver", "overlay", "x"])
        .failure(1)
        .one_error_line(&["plugin \"overlay\" not found"]);
    // A subnet the store's default bridge already has overlaps.
    run(&fixture, "ctr-run", &["--rm", IMG, "true"]).success();
    let bridge: Value = serde_json::from_slice(
        &std::fs::read(fixture.root().join("networks/bridge.json")).unwrap(),
    )
    .unwrap();
    let taken = bridge["IPAM"]["Config"][0]["Subnet"].as_str().unwrap();
    run(&fixture, "net-create", &["--subnet", taken, "clash"])
        .failure(1)
        .one_error_line(&["Pool overlaps with other one on this address space"]);
    run(
        &fixture,
        "ctr-run",
        &["--rm", "--network-alias", "x", IMG, "true"],
    )
    .failure(125)
    .one_error_line(&[
        "network-scoped alias is supported only for containers in user defined networks",
    ]);
    assert!(!fixture.root().join("networks/clash.json").exists());
}

/// A store's network as it keeps it.
fn definition(root: &std::path::Path, name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(root.join(format!("networks/{name}.json"))).unwrap())
        .unwrap()
}

fn sh(command: &str) -> String {
    let out = std::process::Command::new("sh")
        .args(["-c", command])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Everything the store's containers hold on the host's networks: leases,
/// pinned namespaces (and mounts of them), veths on each of its bridges,
/// firewall rules naming each subnet (but the shared ones netavark and
/// berth keep by design), the default bridge closed first.
fn leftovers(root: &std::path::Path) -> Vec<String> {
    let mut left = Vec::new();
    for dir in std::fs::read_dir(root.join("networks/leases"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for lease in std::fs::read_dir(dir.path()).unwrap().flatten() {
            left.push(format!("lease {}", lease.path().display()));
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
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let prefix = root.display().to_string();
    left.extend(
        mounts
            .lines()
            .filter(|l| l.contains(&prefix) && l.contains("/netns "))
            .map(|l| format!("mount {l}")),
    );
    for entry in std::fs::read_dir(root.join("networks"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(name) = file.strip_suffix(".json") else {
            continue;
        };
        let net = definition(root, name);
        let interface = net["Options"]["com.docker.network.bridge.name"]
            .as_str()
            .unwrap();
        let subnet = net["IPAM"]["Config"][0]["Subnet"].as_str().unwrap();
        left.extend(berth_harness::network_leftovers(
            root, name, interface, subnet,
        ));
    }
    left
}

fn exec(fixture: &Fixture, container: &str, script: &str) -> String {
    run(fixture, "ctr-exec", &[container, "sh", "-c", script])
        .success()
        .stdout
}

#[test]
fn net_connect_puts_a_running_container_on_another_network_where_it_is_found_by_name() {
    let fixture = Fixture::new();
    fixture.busybox(IMG, "net-connect");
    run(&fixture, "net-create", &["appnet"]).success();
    run(
        &fixture,
        "ctr-run",
        &["-d", "--name", "web", IMG, "sleep", "120"],
    )
    .success();
    run(
        &fixture,
        "ctr-run",
        &[
            "-d",
            "--name",
            "db",
            "--network",
            "appnet",
            IMG,
            "sleep",
            "120",
        ],
    )
    .success();
    let bridge_ip = inspect(&fixture, "{{.NetworkSettings.IPAddress}}", "web");

    let connected = run(
        &fixture,
        "net-connect",
        &["--alias", "www", "appnet", "web"],
    )
    .success();
    assert_eq!(connected.stdout, "", "Docker prints nothing");
    let web_ip = inspect(
        &fixture,
        "{{.NetworkSettings.Networks.appnet.IPAddress}}",
        "web",
    );
    let subnet: String = definition(fixture.root(), "appnet")["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_string();
    let net_prefix = subnet.rsplit_once('.').unwrap().0.to_string();
    assert!(web_ip.starts_with(&net_prefix), "{web_ip} in {subnet}");
    // Its first network and top-level address are as they were.
    assert_eq!(
        inspect(
            &fixture,
            "{{.NetworkSettings.Networks.bridge.IPAddress}}",
            "web"
        ),
        bridge_ip
    );
    assert_eq!(
        inspect(&fixture, "{{.NetworkSettings.IPAddress}}", "web"),
        bridge_ip
    );
    assert_eq!(
        inspect(
            &fixture,
            "{{json .NetworkSettings.Networks.appnet.Aliases}}",
            "web"
        ),
        "[\"www\"]"
    );
    // A second interface, in the namespace it had.
    let eth1 = exec(&fixture, "web", "ip -4 -o addr show eth1");
    assert!(eth1.contains(&format!("{web_ip}/")), "{eth1}");
    // The network's containers find it by name and alias, and it finds
    // them: its resolv.conf now names the network's resolver.
    let lookup = exec(
        &fixture,
        "db",
        "nslookup web; nslookup www; ping -c 1 -W 5 web >/dev/null && echo reached",
    );
    assert_eq!(
        lookup.matches(&format!("Address: {web_ip}")).count(),
        2,
        "{lookup}"
    );
    assert!(lookup.ends_with("reached\n"), "{lookup}");
    let back = exec(
        &fixture,
        "web",
        "ping -c 1 -W 5 db >/dev/null && echo reached",
    );
    assert_eq!(back, "reached\n");
    let object: Value =
        serde_json::from_str(&run(&fixture, "net-inspect", &["appnet"]).success().stdout).unwrap();
    let mut names: Vec<&str> = object[0]["Containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["Name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["db", "web"]);
    run(&fixture, "net-connect", &["appnet", "web"])
        .failure(1)
        .one_error_line(&["endpoint with name web already exists in network appnet"]);

    // Off again: its interface, address and name there go; the rest stays.
    assert_eq!(
        run(&fixture, "net-disconnect", &["appnet", "web"])
            .success()
            .stdout,
        ""
    );
    let links = exec(&fixture, "web", "ip -o link");
    assert!(!links.contains("eth1"), "{links}");
    assert!(links.contains("eth0"), "{links}");
    let gone = exec(
        &fixture,
        "db",
        "ping -c 1 -W 2 web >/dev/null 2>&1 && echo reached || echo gone",
    );
    assert_eq!(gone, "gone\n");
    assert_eq!(
        inspect(&fixture, "{{len .NetworkSettings.Networks}}", "web"),
        "1"
    );
    let id = inspect(&fixture, "{{.Id}}", "web");
    run(&fixture, "net-disconnect", &["appnet", "web"])
        .failure(1)
        .one_error_line(&[&format!(
            "container {id} is not connected to network appnet"
        )]);
    // Still on its bridge.
    assert_eq!(
        exec(
            &fixture,
            "web",
            &format!("ip -4 -o addr show eth0 | grep -c {bridge_ip}")
        ),
        "1\n"
    );
    run(&fixture, "ctr-rm", &["-f", "web", "db"]).success();
    run(&fixture, "net-rm", &["appnet"]).success();
    assert_eq!(leftovers(fixture.root()), Vec::<String>::new());
}

#[test]
fn a_stopped_container_s_networks_change_for_its_next_start() {
    let fixture = Fixture::new();
    fixture.busybox(IMG, "net-connect stopped");
    run(
        &fixture,
        "net-create",
        &["--subnet", "10.214.9.0/24", "later"],
    )
    .success();
    run(
        &fixture,
        "ctr-run",
        &["-d", "--name", "s", IMG, "sleep", "120"],
    )
    .success();
    run(&fixture, "ctr-kill", &["s"]).success();
    run(&fixture, "ctr-wait", &["s"]).success();
    run(
        &fixture,
        "net-connect",
        &["--ip", "10.214.9.77", "later", "s"],
    )
    .success();
    // Docker keeps a stopped container's first request, silently.
    run(&fixture, "net-connect", &["later", "s"]).success();
    assert_eq!(
        inspect(
            &fixture,
            "{{.NetworkSettings.Networks.later.IPAMConfig.IPv4Address}}",
            "s"
        ),
        "10.214.9.77"
    );
    run(&fixture, "ctr-start", &["s"]).success();
    let eth1 = exec(&fixture, "s", "ip -4 -o addr show eth1");
    assert!(eth1.contains("10.214.9.77/24"), "{eth1}");
    assert_eq!(
        inspect(
            &fixture,
            "{{.NetworkSettings.Networks.later.IPAddress}}",
            "s"
        ),
        "10.214.9.77"
    );
    // Stopped again, it leaves the network for the start after.
    run(&fixture, "ctr-kill", &["s"]).success();
    run(&fixture, "ctr-wait", &["s"]).success();
    assert_eq!(leftovers(fixture.root()), Vec::<String>::new());
    run(&fixture, "net-disconnect", &["later", "s"]).success();
    let id = inspect(&fixture, "{{.Id}}", "s");
    run(&fixture, "net-disconnect", &["later", "s"])
        .failure(1)
        .one_error_line(&[&format!(
            "container {id} is not connected to the network later"
        )]);
    run(&fixture, "ctr-start", &["s"]).success();
    let links = exec(&fixture, "s", "ip -o link");
    assert!(links.contains("eth0") && !links.contains("eth1"), "{links}");
    run(&fixture, "ctr-rm", &["-f", "s"]).success();
    run(&fixture, "net-rm", &["later"]).success();
    assert_eq!(leftovers(fixture.root()), Vec::<String>::new());
}

#[test]
fn what_docker_refuses_about_connecting_is_refused_in_its_words() {
    let fixture = Fixture::new();
    fixture.busybox(IMG, "net-connect refused");
    run(&fixture, "net-create", &["other"]).success();
    run(
        &fixture,
        "ctr-run",
        &["-d", "--name", "web", IMG, "sleep", "120"],
    )
    .success();
    run(
        &fixture,
        "ctr-run",
        &[
            "-d",
            "--name",
            "hosted",
            "--network",
            "host",
            IMG,
            "sleep",
            "120",
        ],
    )
    .success();
    run(
        &fixture,
        "ctr-run",
        &[
            "-d",
            "--name",
            "alone",
            "--network",
            "none",
            IMG,
            "sleep",
            "120",
        ],
    )
    .success();
    let before = berth_harness::store_listing(fixture.root());
    let refused = [
        (
            vec!["net-connect", "nosuch", "web"],
            "network nosuch not found",
        ),
        (
            vec!["net-connect", "other", "nosuch"],
            "No such container: nosuch",
        ),
        (
            vec!["net-disconnect", "other", "nosuch"],
            "No such container: nosuch",
        ),
        (
            vec!["net-disconnect", "-f", "other", "nosuch"],
            "endpoint nosuch not found",
        ),
        (
            vec!["net-disconnect", "nosuch", "web"],
            "network nosuch not found",
        ),
        (
            vec!["net-connect", "other", "hosted"],
            "container sharing network namespace with another container or host cannot be connected to any other network",
        ),
        (
            vec!["net-disconnect", "host", "hosted"],
            "container cannot be disconnected from host network or connected to host network",
        ),
        (
            vec!["net-connect", "host", "web"],
            "container cannot be disconnected from host network or connected to host network",
        ),
        (
            vec!["net-connect", "other", "alone"],
            "container cannot be connected to multiple networks with one of the networks in private (none) mode",
        ),
        (
            vec!["net-connect", "--ip", "10.0.0.5", "bridge", "web"],
            "user specified IP address is supported on user defined networks only",
        ),
        (
            vec!["net-connect", "--alias", "x", "bridge", "web"],
            "network-scoped alias is supported only for containers in user defined networks",
        ),
    ];
    for (args, line) in refused {
        run(&fixture, args[0], &args[1..])
            .failure(1)
            .one_error_line(&[line]);
    }
    run(&fixture, "net-connect", &["other"]).failure(2);
    let after = berth_harness::store_listing(fixture.root());
    let changed: Vec<&String> = after
        .keys()
        .chain(before.keys())
        // The logs are the running containers' own.
        .filter(|k| before.get(*k) != after.get(*k) && !k.ends_with("-json.log"))
        .collect();
    assert!(
        changed.is_empty(),
        "refusals changed the store: {changed:?}"
    );
    run(&fixture, "ctr-rm", &["-f", "web", "hosted", "alone"]).success();
    assert_eq!(leftovers(fixture.root()), Vec::<String>::new());
}

#[test]
fn network_container_joins_another_s_namespace_and_keeps_it_when_that_one_stops() {
    let fixture = Fixture::new();
    fixture.busybox(IMG, "network container");
    run(
        &fixture,
        "ctr-run",
        &["-d", "--name", "target", IMG, "sleep", "120"],
    )
    .success();
    let target_id = inspect(&fixture, "{{.Id}}", "target");
    let target_ip = inspect(&fixture, "{{.NetworkSettings.IPAddress}}", "target");
    run(
        &fixture,
        "ctr-run",
        &[
            "-d",
            "--name",
            "joined",
            "--network",
            "container:target",
            IMG,
            "sleep",
            "120",
        ],
    )
    .success();
    assert_eq!(
        inspect(&fixture, "{{.HostConfig.NetworkMode}}", "joined"),
        format!("container:{target_id}")
    );
    assert_eq!(
        inspect(&fixture, "{{json .NetworkSettings.Networks}}", "joined"),
        "{}"
    );
    // The same interfaces, host name and hosts file; a server on the
    // other's loopback answers on its own.
    let inside = exec(
        &fixture,
        "joined",
        "ip -4 -o addr show eth0; hostname; cat /etc/hosts",
    );
    assert!(inside.contains(&format!("{target_ip}/")), "{inside}");
    assert!(
        inside.contains(&format!("\n{}\n", &target_id[..12])),
        "{inside}"
    );
    assert!(
        inside.contains(&format!("{target_ip}\t{}", &target_id[..12])),
        "{inside}"
    );
    run(
        &fixture,
        "ctr-exec",
        &[
            "-d",
            "target",
            "sh",
            "-c",
            "exec httpd -f -p 127.0.0.1:8080 -h /etc",
        ],
    )
    .success();
    let fetched = exec(
        &fixture,
        "joined",
        "for i in $(seq 50); do wget -q -O - http://127.0.0.1:8080/hostname && break; sleep 0.1; done",
    );
    assert_eq!(fetched, format!("{}\n", &target_id[..12]));
    run(&fixture, "net-connect", &["bridge", "joined"])
        .failure(1)
        .one_error_line(&["container sharing network namespace with another container"]);

    // What Docker will not take with it.
    for (flags, line) in [
        (
            vec!["-p", "80"],
            "conflicting options: port publishing and the container type network mode",
        ),
        (
            vec!["-P"],
            "conflicting options: port publishing and the container type network mode",
        ),
        (
            vec!["--hostname", "x"],
            "conflicting options: hostname and the network mode",
        ),
        (
            vec!["--dns", "10.0.0.53"],
            "conflicting options: dns and the network mode",
        ),
        (
            vec!["--add-host", "a:10.0.0.1"],
            "conflicting options: custom host-to-IP mapping and the network mode",
        ),
    ] {
        let mut args = vec!["--rm", "--network", "container:target"];
        args.extend(flags);
        args.extend([IMG, "true"]);
        run(&fixture, "ctr-run", &args)
            .failure(125)
            .one_error_line(&[line]);
    }
    run(
        &fixture,
        "ctr-run",
        &["--rm", "--network", "container:nosuch", IMG, "true"],
    )
    .failure(125)
    .one_error_line(&["No such container: nosuch"]);

    // The other stops: the joined one runs on in the namespace, which has
    // only its loopback left; a new one cannot join a stopped container.
    run(&fixture, "ctr-kill", &["target"]).success();
    run(&fixture, "ctr-wait", &["target"]).success();
    assert_eq!(inspect(&fixture, "{{.State.Status}}", "joined"), "running");
    let links = exec(&fixture, "joined", "ip -o link | cut -d: -f2");
    assert_eq!(
        links.split_whitespace().collect::<Vec<_>>(),
        ["lo"],
        "{links}"
    );
    run(
        &fixture,
        "ctr-run",
        &["--rm", "--network", "container:target", IMG, "true"],
    )
    .failure(125)
    .one_error_line(&[&format!(
        "cannot join network of a non running container: {target_id}"
    )]);
    run(&fixture, "ctr-rm", &["-f", "joined", "target"]).success();
    assert_eq!(leftovers(fixture.root()), Vec::<String>::new());
}

#[test]
fn the_default_bridge_works_beside_docker_s_engine_and_its_drop_policy() {
    use berth_harness::dockerd::{DockerFirewall, Dockerd, TestBridge};
    const BRIDGE: &str = "berthco0";
    let _firewall = DockerFirewall::save(BRIDGE);
    let engine = TestBridge::new(BRIDGE, "10.197.4.1/24").and_then(|bridge| {
        let flags = [
            &format!("--bridge={BRIDGE}") as &str,
            "--iptables=true",
            "--ip-masq=true",
        ];
        Dockerd::start_with("127.0.0.1:1", &flags).map(|engine| (bridge, engine))
    });
    let (_bridge, _engine) = match engine {
        Ok(both) => both,
        Err(why) => {
            eprintln!(
                "\n{bar}\nCOEXISTENCE TEST SKIPPED: Docker's engine cannot start here: {why}\n{bar}\n",
                bar = "!".repeat(72)
            );
            return;
        }
    };
    // dockerd sets FORWARD's policy to DROP when it turns IP forwarding
    // on; where forwarding is on already (netavark turned it on) it leaves
    // the policy, so the test sets it as a fresh host's dockerd leaves it.
    sh("iptables -w -P FORWARD DROP");
    assert_eq!(
        sh("iptables -w -S FORWARD | head -1").trim(),
        "-P FORWARD DROP"
    );
    let fixture = Fixture::new();
    fixture.busybox(IMG, "coexistence");
    let port = berth_harness::registry::free_port().to_string();
    run(
        &fixture,
        "ctr-run",
        &[
            "-d",
            "--name",
            "server",
            "-p",
            &format!("127.0.0.1:{port}:80"),
            IMG,
            "sh",
            "-c",
            "exec httpd -f -p 80 -h /etc",
        ],
    )
    .success();
    let server_ip = inspect(&fixture, "{{.NetworkSettings.IPAddress}}", "server");
    let server_name = inspect(&fixture, "{{.Config.Hostname}}", "server");
    // Container to container, across the bridge (the FORWARD chain).
    let fetch = |url: &str| {
        run(
            &fixture,
            "ctr-run",
            &[
                "--rm",
                IMG,
                "sh",
                "-c",
                &format!(
                    "for i in $(seq 50); do wget -q -O - {url} && exit; sleep 0.1; done; exit 1"
                ),
            ],
        )
        .success()
        .stdout
    };
    assert_eq!(
        fetch(&format!("http://{server_ip}/hostname")),
        format!("{server_name}\n")
    );
    // The host, from the container: a server of the test's on the
    // bridge's gateway address.
    let gateway = inspect(&fixture, "{{.NetworkSettings.Gateway}}", "server");
    let listener = std::net::TcpListener::bind((gateway.as_str(), 0)).unwrap();
    let host_port = listener.local_addr().unwrap().port();
    let answering = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request);
        stream
            .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhost\n")
            .unwrap();
    });
    assert_eq!(fetch(&format!("http://{gateway}:{host_port}/")), "host\n");
    answering.join().unwrap();
    // The container, from the host: its published port on 127.0.0.1.
    let published = std::process::Command::new("busybox")
        .args([
            "wget",
            "-q",
            "-O",
            "-",
            &format!("http://127.0.0.1:{port}/hostname"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&published.stdout),
        format!("{server_name}\n")
    );
    run(&fixture, "ctr-rm", &["-f", "server"]).success();
    assert_eq!(leftovers(fixture.root()), Vec::<String>::new());
}

#[test]
fn a_container_on_three_networks_killed_from_outside_leaves_nothing_and_starts_on_all_three() {
    let fixture = Fixture::new();
    fixture.busybox(IMG, "three networks");
    run(&fixture, "net-create", &["one"]).success();
    run(&fixture, "net-create", &["two"]).success();
    run(
        &fixture,
        "ctr-run",
        &["-d", "--name", "multi", IMG, "sleep", "300"],
    )
    .success();
    run(&fixture, "net-connect", &["one", "multi"]).success();
    run(&fixture, "net-connect", &["two", "multi"]).success();
    let interfaces = "ls /sys/class/net | tr '\\n' ' '";
    assert_eq!(exec(&fixture, "multi", interfaces), "eth0 eth1 eth2 lo ");
    let pid: i32 = inspect(&fixture, "{{.State.Pid}}", "multi")
        .parse()
        .unwrap();
    // SAFETY: killing the container's init, as `kill -9 <pid>` would.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    // ctr-wait returns once the monitor has recorded the exit and let go,
    // its teardown done.
    assert_eq!(
        run(&fixture, "ctr-wait", &["multi"]).success().stdout,
        "137\n"
    );
    assert_eq!(leftovers(fixture.root()), Vec::<String>::new());
    // The next start has all three again, in the same order.
    run(&fixture, "ctr-start", &["multi"]).success();
    assert_eq!(exec(&fixture, "multi", interfaces), "eth0 eth1 eth2 lo ");
    assert_eq!(
        inspect(&fixture, "{{len .NetworkSettings.Networks}}", "multi"),
        "3"
    );
    run(&fixture, "ctr-rm", &["-f", "multi"]).success();
    run(&fixture, "net-rm", &["one", "two"]).success();
    assert_eq!(leftovers(fixture.root()), Vec::<String>::new());
}

/// net-connect SIGKILLed after the container is on the network but before
/// its record says so: the record and `network.json` disagree until the
/// next net-connect, which undoes the orphaned set-up and makes it again
/// rather than refusing as "already exists".
#[test]
fn a_net_connect_killed_before_its_record_is_redone_by_the_next() {
    use berth::testhook::CONNECTED;
    use berth_harness::pause::PausePoint;
    let fixture = Fixture::new();
    fixture.busybox(IMG, "killed-connect");
    run(&fixture, "net-create", &["other"]).success();
    run(
        &fixture,
        "ctr-run",
        &["-d", "--name", "c", IMG, "sleep", "120"],
    )
    .success();
    let point = PausePoint::new(CONNECTED);
    let mut held = point.hold(tool("net-connect", fixture.root()).args(["other", "c"]), 60);
    held.child.kill().unwrap();
    let killed = held.release();
    assert_ne!(killed.code, Some(0), "{killed:#?}");
    let networks = inspect(&fixture, "{{json .NetworkSettings.Networks}}", "c");
    assert!(!networks.contains("\"other\""), "{networks}");
    run(&fixture, "net-connect", &["other", "c"]).success();
    let ip = inspect(
        &fixture,
        "{{.NetworkSettings.Networks.other.IPAddress}}",
        "c",
    );
    let inside = exec(&fixture, "c", "ip -4 -o addr show eth1");
    assert!(inside.contains(&format!("{ip}/")), "{ip}: {inside}");
    run(&fixture, "ctr-rm", &["-f", "c"]).success();
    assert_eq!(leftovers(fixture.root()), Vec::<String>::new());
}
