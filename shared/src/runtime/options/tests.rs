use super::*;
use crate::runtime::mounts::MountSource;

/// The one line a bad value gives, as the flag's parser says it.
fn refused<T: FromStr>(value: &str) -> String
where
    T::Err: std::fmt::Display,
{
    match value.parse::<T>() {
        Ok(_) => panic!("{value:?} was taken"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn memory_takes_dockers_sizes_from_6mb() {
    assert_eq!("256m".parse::<Memory>().unwrap().bytes(), 256 << 20);
    assert_eq!("1g".parse::<Memory>().unwrap().bytes(), 1 << 30);
    assert_eq!("1.5G".parse::<Memory>().unwrap().bytes(), 3 << 29);
    assert_eq!("64MB".parse::<Memory>().unwrap().bytes(), 64 << 20);
    assert_eq!(" 6m ".parse::<Memory>().unwrap().bytes(), 6 << 20);
    assert_eq!("6291456".parse::<Memory>().unwrap().bytes(), 6 << 20);
    assert_eq!(parse_bytes("--memory", "64k").unwrap(), 64 << 10);
    assert_eq!(parse_bytes("--memory", "2t").unwrap(), 2 << 40);
}

#[test]
fn every_bad_memory_value_is_refused_in_dockers_words() {
    let size = "expected a size such as 256m or 1g";
    for (value, why) in [
        ("lots", size),
        ("", size),
        ("m", size),
        ("12x", size),
        ("1e3", size),
        ("inf", size),
        ("1.2.3m", size),
        ("0", "must be positive"),
        ("-1m", "must be positive"),
        ("0.0g", "must be positive"),
        ("1m", "Minimum memory limit allowed is 6MB"),
        ("6291455", "Minimum memory limit allowed is 6MB"),
        ("5.9m", "Minimum memory limit allowed is 6MB"),
    ] {
        assert_eq!(
            refused::<Memory>(value),
            format!("invalid --memory value {value:?}: {why}"),
        );
    }
}

#[test]
fn cpus_are_kept_as_nano_cpus() {
    assert_eq!("1.5".parse::<Cpus>().unwrap().nano(), 1_500_000_000);
    assert_eq!("0.5".parse::<Cpus>().unwrap().nano(), 500_000_000);
    assert_eq!("1".parse::<Cpus>().unwrap().nano(), 1_000_000_000);
}

#[test]
fn cpus_beyond_the_host_s_are_refused_in_docker_s_words() {
    let host = host_cpus();
    for value in [
        "0.001".to_string(),
        format!("{}.5", host),
        "100000".to_string(),
    ] {
        assert_eq!(
            refused::<Cpus>(&value),
            format!(
                "invalid --cpus value {value:?}: Range of CPUs is from 0.01 to {host}.00, as there are only {host} CPUs available"
            ),
        );
    }
}

#[test]
fn every_bad_cpus_value_is_refused_in_dockers_words() {
    let number = "expected a number such as 1.5";
    for (value, why) in [
        ("lots", number),
        ("", number),
        ("1,5", number),
        ("2cpus", number),
        ("0", "must be positive"),
        ("-1", "must be positive"),
        ("inf", "must be positive"),
        ("NaN", "must be positive"),
    ] {
        assert_eq!(
            refused::<Cpus>(value),
            format!("invalid --cpus value {value:?}: {why}"),
        );
    }
}

#[test]
fn every_bad_network_value_is_refused_naming_the_supported_ones() {
    assert_eq!("none".parse::<NetworkMode>().unwrap(), NetworkMode::None);
    assert_eq!("host".parse::<NetworkMode>().unwrap(), NetworkMode::Host);
    for value in ["", "container:", "none ", "a/b"] {
        assert_eq!(
            refused::<NetworkMode>(value),
            format!(
                "invalid --network value {value:?}: supported: bridge, none, host, container:NAME|ID, or a network's name"
            ),
        );
    }
}

#[test]
fn every_bad_platform_value_is_refused_with_an_example() {
    let arm: Platform = "linux/aarch64".parse().unwrap();
    assert_eq!(arm.to_string(), "linux/arm64");
    for value in [
        "linux",
        "",
        "linux/",
        "/amd64",
        "linux/amd64/v1/x",
        "linux amd64",
        "linux/am.d64",
    ] {
        assert_eq!(
            refused::<Platform>(value),
            format!("invalid platform {value:?}: expected os/arch[/variant], e.g. linux/arm64"),
        );
    }
}

#[test]
fn the_other_flags_are_checked_before_anything_is_touched() {
    let refused = |change: &dyn Fn(&mut RunOptions)| {
        let mut opts = RunOptions::default();
        change(&mut opts);
        match check(&opts) {
            Ok(_) => panic!("{opts:?} was taken"),
            Err(e) => e.to_string(),
        }
    };
    assert_eq!(
        refused(&|o| o.volumes = vec!["../x:/data".into()]),
        "invalid --volume value \"../x:/data\": ../x: \"../x\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    );
    assert_eq!(
        refused(&|o| o.volumes = vec!["data:rel".into()]),
        "invalid --volume value \"data:rel\": invalid mount path: 'rel' mount path must be absolute"
    );
    assert_eq!(
        refused(&|o| o.volumes = vec!["/a:/b:rx".into()]),
        "invalid --volume value \"/a:/b:rx\": invalid mode: rx"
    );
    assert_eq!(
        refused(&|o| o.volumes = vec!["a:b:c:d".into()]),
        "invalid --volume value \"a:b:c:d\": expected [HOST-DIR|VOLUME:]CONTAINER-DIR[:ro]"
    );
    assert_eq!(
        refused(&|o| o.mounts = vec!["type=volume,src=x".into()]),
        "invalid --mount value \"type=volume,src=x\": target is required"
    );
    assert_eq!(
        refused(&|o| o.mounts = vec!["type=bind,src=/no/such/dir,dst=/x".into()]),
        "invalid --mount value \"type=bind,src=/no/such/dir,dst=/x\": invalid mount config for type \"bind\": bind source path does not exist: /no/such/dir"
    );
    assert_eq!(
        refused(&|o| o.mounts = vec!["dst=/x,bogus=1".into()]),
        "invalid --mount value \"dst=/x,bogus=1\": unexpected key 'bogus' in 'bogus=1'"
    );
    assert_eq!(
        refused(&|o| o.tmpfs = vec!["run:size=1m".into()]),
        "invalid --tmpfs value \"run:size=1m\": the container path must be absolute"
    );
    assert_eq!(
        refused(&|o| o.pids_limit = Some(0)),
        "invalid --pids-limit value \"0\": must be positive, or -1 for unlimited"
    );
    assert_eq!(
        refused(&|o| o.cap_add = vec!["CAP_NOPE".into()]),
        "invalid --cap-add/--cap-drop value \"CAP_NOPE\": unknown capability"
    );
    assert_eq!(
        refused(&|o| o.security_opt = vec!["apparmor=x".into()]),
        "invalid --security-opt value \"apparmor=x\": supported: no-new-privileges, seccomp=unconfined|PROFILE.json"
    );
    assert_eq!(
        refused(&|o| o.hostname = Some("a b".into())),
        "invalid --hostname value \"a b\": expected a host name of at most 64 characters"
    );
    assert_eq!(
        refused(&|o| o.env = vec!["=x".into()]),
        "invalid --env value \"=x\": variable name is empty"
    );
    assert!(refused(&|o| o.name = Some("bad/name".into())).contains("invalid container name"));
    for (set, line) in [
        (
            (&|o: &mut RunOptions| o.publish = vec!["8080:x".into()]) as &dyn Fn(&mut RunOptions),
            "invalid --publish value \"8080:x\": invalid containerPort: x",
        ),
        (
            &|o| o.add_hosts = vec!["db".into()],
            "invalid --add-host value \"db\": expected HOST:IP",
        ),
        (
            &|o| o.add_hosts = vec!["db:10.0.0.999".into()],
            "invalid --add-host value \"db:10.0.0.999\": invalid IP address \"10.0.0.999\"",
        ),
        (
            &|o| o.dns = vec!["resolver".into()],
            "invalid --dns value \"resolver\": not an IP address",
        ),
        (
            &|o| {
                o.network = NetworkMode::Host;
                o.ip = Some("172.17.0.9".parse().unwrap());
            },
            "invalid --ip value \"172.17.0.9\": an address needs --network bridge",
        ),
        (
            &|o| o.network_aliases = vec!["db".into()],
            "invalid --network-alias value \"db\": network-scoped alias is supported only for containers in user defined networks",
        ),
        (
            &|o| {
                o.network = NetworkMode::Container("web".into());
                o.hostname = Some("x".into());
            },
            "conflicting options: hostname and the network mode",
        ),
        (
            &|o| {
                o.network = NetworkMode::Container("web".into());
                o.dns = vec!["10.0.0.53".into()];
            },
            "conflicting options: dns and the network mode",
        ),
        (
            &|o| {
                o.network = NetworkMode::Container("web".into());
                o.add_hosts = vec!["db:10.1.2.3".into()];
            },
            "conflicting options: custom host-to-IP mapping and the network mode",
        ),
        (
            &|o| {
                o.network = NetworkMode::Container("web".into());
                o.publish_all = true;
            },
            "conflicting options: port publishing and the container type network mode",
        ),
    ] {
        assert_eq!(refused(set), line);
    }
    let opts = RunOptions {
        publish: vec!["127.0.0.1:8080:80".into(), "53/udp".into()],
        add_hosts: vec!["db:10.1.2.3".into(), "gw=host-gateway".into()],
        ..RunOptions::default()
    };
    let checked = check(&opts).unwrap();
    assert_eq!(checked.publish.len(), 2);
    assert_eq!(
        checked.extra_hosts,
        [
            ("db".to_string(), "10.1.2.3".to_string()),
            ("gw".to_string(), HOST_GATEWAY.to_string())
        ]
    );

    let opts = RunOptions {
        volumes: vec!["/srv:/data:ro".into()],
        tmpfs: vec!["/run:size=1m,mode=700".into()],
        memory: Some("16m".parse().unwrap()),
        cpus: Some("0.5".parse().unwrap()),
        pids_limit: Some(-1),
        cap_add: vec!["net_admin".into()],
        security_opt: vec!["no-new-privileges".into(), "seccomp=unconfined".into()],
        env: vec!["A=1".into()],
        ..RunOptions::default()
    };
    let checked = check(&opts).unwrap();
    assert_eq!(
        checked.volumes,
        [MountFlag {
            source: MountSource::Host(PathBuf::from("/srv")),
            target: "/data".into(),
            read_only: true,
            nocopy: false,
            mode: "ro".into(),
            bind: Some("/srv:/data:ro".into()),
            from_mount: false,
        }]
    );
    assert_eq!(checked.tmpfs[0].options, ["size=1m", "mode=700"]);
    assert_eq!(
        checked.limits,
        Limits {
            memory: Some(16 << 20),
            nano_cpus: Some(500_000_000),
            pids: None,
        }
    );
    assert_eq!(checked.cap_add, ["CAP_NET_ADMIN"]);
    assert!(checked.no_new_privileges);
    assert_eq!(checked.seccomp, seccomp::Seccomp::Unconfined);
    assert_eq!(checked.env, ["A=1"]);
}
