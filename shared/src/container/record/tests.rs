use super::*;

#[test]
fn records_use_dockers_field_names() {
    let record = Record {
        id: "a".repeat(64),
        ..Record::default()
    };
    let json = serde_json::to_value(&record).unwrap();
    for field in [
        "Id",
        "Name",
        "Created",
        "Path",
        "Args",
        "Image",
        "Config",
        "HostConfig",
        "Mounts",
        "LogPath",
    ] {
        assert!(json.get(field).is_some(), "{field}");
    }
    assert!(json["State"].get("OOMKilled").is_some());
    assert!(json["State"].get("ExitCode").is_some());
}

#[test]
fn names_are_unique_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let record = |id: &str| Record {
        id: id.to_string(),
        name: "/web".to_string(),
        ..Record::default()
    };
    store.create_container(&record("1")).unwrap();
    let err = store.create_container(&record("2")).unwrap_err();
    assert!(
        matches!(err, ContainerError::NameInUse { ref id, .. } if id == "1"),
        "{err}"
    );
    assert!(!store.container_dir("2").exists());
    assert!(check_name("bad/name").is_err());
    store
        .create_container(&Record {
            name: "/db".to_string(),
            ..record("3")
        })
        .unwrap();
    let err = store.rename_container("3", "web").unwrap_err();
    assert!(matches!(err, ContainerError::NameInUse { ref id, .. } if id == "1"));
    assert_eq!(store.load_container("3").unwrap().name, "/db");
    assert_eq!(store.rename_container("3", "cache").unwrap().name, "/cache");
    assert_eq!(store.load_container("3").unwrap().name, "/cache");
    store.rename_container("3", "db").unwrap(); // the old name is free again
    check_name(&random_name()).unwrap();
    let updated = store
        .update_container("1", |r| r.state.exit_code = 7)
        .unwrap();
    assert_eq!(store.load_container("1").unwrap(), updated);
    assert_eq!(new_id().unwrap().len(), 64);
}

#[test]
fn statuses_are_spelt_as_docker_spells_them() {
    let words = [
        "created",
        "restarting",
        "running",
        "removing",
        "paused",
        "exited",
        "dead",
    ];
    for (status, word) in Status::ALL.into_iter().zip(words) {
        assert_eq!(status.to_string(), word);
        assert_eq!(word.parse::<Status>().unwrap(), status);
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            format!("\"{word}\"")
        );
        let read: Status = serde_json::from_str(&format!("\"{word}\"")).unwrap();
        assert_eq!(read, status);
    }
    assert_eq!(
        "sleepy".parse::<Status>().unwrap_err().to_string(),
        "unknown container status \"sleepy\""
    );
    assert!("Running".parse::<Status>().is_err());
}

#[test]
fn state_changes_are_dockers() {
    let mut state = State::created();
    assert_eq!(state.status, Status::Created);
    assert_eq!(state.started_at, ZERO_TIME);
    state.start(42);
    assert!(state.running && state.pid == 42 && state.status == Status::Running);
    assert_ne!(state.started_at, ZERO_TIME);
    state.pause();
    assert!(state.running && state.paused && state.status == Status::Paused);
    state.unpause();
    assert!(state.running && !state.paused && state.status == Status::Running);
    state.pause();
    state.exit(255);
    assert!(!state.running && state.pid == 0 && state.status == Status::Exited);
    assert!(!state.paused, "an exit ends a pause");
    state.pause();
    state.unpause();
    assert_eq!(
        state.status,
        Status::Exited,
        "a stopped container stays stopped"
    );
    assert_eq!(state.exit_code, 255);
    assert_ne!(state.finished_at, ZERO_TIME);
}

/// A record as earlier berth wrote it (the status a plain string)
/// reads, and is written back byte for byte.
#[test]
fn records_on_disk_read_and_write_back_unchanged() {
    let on_disk = r#"{
  "Id": "0123456789ab",
  "Name": "/web",
  "Created": "2024-01-01T00:00:00.000000001Z",
  "Path": "sh",
  "Args": [
    "-c",
    "exit 3"
  ],
  "State": {
    "Status": "exited",
    "Running": false,
    "Paused": false,
    "Restarting": false,
    "OOMKilled": false,
    "Dead": false,
    "Pid": 0,
    "ExitCode": 3,
    "Error": "",
    "StartedAt": "2024-01-01T00:00:01Z",
    "FinishedAt": "2024-01-01T00:00:02Z"
  },
  "Image": "sha256:00",
  "Config": {
    "Hostname": "0123456789ab",
    "Domainname": "",
    "User": "",
    "AttachStdin": false,
    "AttachStdout": true,
    "AttachStderr": true,
    "Tty": false,
    "OpenStdin": false,
    "StdinOnce": false,
    "Env": [
      "PATH=/bin"
    ],
    "Cmd": [
      "sh"
    ],
    "Image": "busybox",
    "Volumes": null,
    "WorkingDir": "/",
    "Entrypoint": null,
    "Labels": {},
    "StopSignal": ""
  },
  "HostConfig": {
    "Binds": null,
    "NetworkMode": "none",
    "AutoRemove": false,
    "Privileged": false,
    "ReadonlyRootfs": false,
    "CapAdd": [],
    "CapDrop": [],
    "SecurityOpt": [],
    "Memory": 0,
    "NanoCpus": 0,
    "PidsLimit": 0,
    "Tmpfs": {},
    "CgroupParent": "/berth",
    "PortBindings": {},
    "PublishAllPorts": false,
    "ExtraHosts": [],
    "Dns": []
  },
  "Mounts": [],
  "LogPath": "/x/0123456789ab-json.log",
  "ResolvConfPath": "/x/resolv.conf",
  "HostnamePath": "/x/hostname",
  "HostsPath": "/x/hosts",
  "Driver": "overlay2",
  "Platform": "linux",
  "NetworkSettings": {
    "Bridge": "",
    "SandboxID": "",
    "SandboxKey": "",
    "Ports": {},
    "Gateway": "",
    "IPAddress": "",
    "IPPrefixLen": 0,
    "MacAddress": "",
    "Networks": {}
  }
}"#;
    for word in ["created", "running", "exited"] {
        let text = on_disk.replace("\"exited\"", &format!("\"{word}\""));
        let record: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(record.state.status.as_str(), word);
        assert_eq!(serde_json::to_string_pretty(&record).unwrap(), text);
    }
}

#[test]
fn an_update_that_changes_nothing_writes_nothing() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let record = Record {
        id: "c".repeat(64),
        name: "/quiet".to_string(),
        ..Record::default()
    };
    store.create_container(&record).unwrap();
    let path = store.record_path(&record.id);
    let inode = || fs::metadata(&path).unwrap().ino();
    let first = inode();
    store
        .update_container(&record.id, |r| r.name = "/quiet".into())
        .unwrap();
    assert_eq!(inode(), first, "the same record, not replaced");
    store
        .update_container(&record.id, |r| r.state.exit(4))
        .unwrap();
    assert_ne!(inode(), first, "a change is written (by rename)");
    assert_eq!(store.load_container(&record.id).unwrap().state.exit_code, 4);
}

#[test]
fn only_containers_whose_exit_is_recorded_get_a_reserve() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut kept = Record {
        id: "d".repeat(64),
        name: "/kept".to_string(),
        ..Record::default()
    };
    store.create_container(&kept).unwrap();
    kept.id = "e".repeat(64);
    kept.name = "/removed".into();
    kept.host_config.auto_remove = true;
    store.create_container(&kept).unwrap();
    store
        .update_container(&kept.id, |r| r.state.start(1))
        .unwrap();
    assert!(
        store
            .container_dir(&"d".repeat(64))
            .join("reserve")
            .exists()
    );
    assert!(!store.container_dir(&kept.id).join("reserve").exists());
}
