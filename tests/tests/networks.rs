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
