//! Fixture images made from the host's `/bin/busybox` (busybox-static),
//! written into a berth store with the library's own write path, then pushed
//! to a test registry in OCI, Docker v2 schema 2, or zstd form by skopeo.

use berth::{Digest, Reference, Store};
use flate2::Compression;
use flate2::write::GzEncoder;
use oci_spec::image::{Descriptor, MediaType};
use serde_json::json;
use std::path::Path;
use std::str::FromStr;

/// Applets linked to busybox in every fixture.
const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "ls", "sleep", "true", "false", "id", "env", "hostname", "ps", "kill",
    "mkdir", "touch", "rm", "pwd", "wc", "head", "grep", "sed", "date", "uname", "test",
];
/// A fixed mtime keeps fixture layers byte-for-byte reproducible.
const MTIME: u64 = 1_700_000_000;

/// A store holding fixture images, in a temp dir removed on drop.
pub struct Fixture {
    pub store: Store,
    dir: tempfile::TempDir,
}

/// What was written for one fixture image.
#[derive(Debug, Clone)]
pub struct FixtureImage {
    pub reference: Reference,
    pub manifest_digest: Digest,
    pub manifest_size: u64,
    pub config_digest: Digest,
    pub layer_digest: Digest,
    pub diff_id: Digest,
}

/// The form skopeo pushes a fixture in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Oci,
    DockerV2s2,
    OciZstd,
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("fixture dir");
        let store = Store::open(dir.path()).expect("fixture store");
        Fixture { store, dir }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Adds a busybox image tagged `reference`. `label` goes into the config
    /// (so images differ by ID) and into `/etc/fixture` (so layers differ).
    pub fn busybox(&self, reference: &str, label: &str) -> FixtureImage {
        write_busybox(&self.store, &Reference::parse(reference).unwrap(), label)
    }

    /// Pushes a fixture image to `registry` as `name` (`repo:tag`) in `format`,
    /// returning the reference it is reachable at.
    pub fn push(&self, image: &FixtureImage, host: &str, name: &str, format: Format) -> Reference {
        let source = format!(
            "oci:{}:{}",
            self.store.images_dir().display(),
            image.reference
        );
        let destination = format!("docker://{host}/{name}");
        let mut args = vec![
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ];
        match format {
            Format::Oci => args.extend(["--format", "oci"]),
            Format::DockerV2s2 => args.extend(["--format", "v2s2"]),
            Format::OciZstd => args.extend(["--format", "oci", "--dest-compress-format", "zstd"]),
        }
        args.extend([source.as_str(), destination.as_str()]);
        crate::tools::external("skopeo", &args);
        Reference::parse(&format!("{host}/{name}")).unwrap()
    }
}

/// Writes one busybox image (layer, config, manifest) and tags it.
pub fn write_busybox(store: &Store, reference: &Reference, label: &str) -> FixtureImage {
    let tar = busybox_layer(label);
    let diff_id = Digest::of(&tar);
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let layer = gz.finish().unwrap();
    let layer_digest = store.put_blob(&layer).unwrap();

    let config = json!({
        "created": "2023-11-14T22:13:20Z",
        "architecture": berth::platform::Platform::host().architecture,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
            "Labels": {"berth.fixture": label},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "berth test fixture"}],
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = store.put_blob(&config).unwrap();

    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer_digest.to_string(),
            "size": layer.len(),
        }],
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = store.put_blob(&manifest).unwrap();
    let descriptor = Descriptor::new(
        MediaType::ImageManifest,
        manifest.len() as u64,
        oci_spec::image::Digest::from_str(&manifest_digest.to_string()).unwrap(),
    );
    store.tag(reference, descriptor).unwrap();
    FixtureImage {
        reference: reference.clone(),
        manifest_digest,
        manifest_size: manifest.len() as u64,
        config_digest,
        layer_digest,
        diff_id,
    }
}

/// An uncompressed layer: a minimal root filesystem around busybox.
pub fn busybox_layer(label: &str) -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox")
        .expect("/bin/busybox (Debian's busybox-static) must be installed");
    let mut tar = tar::Builder::new(Vec::new());
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        h
    };
    for dir in ["bin", "dev", "etc", "proc", "root", "sys", "tmp", "var"] {
        let mode = if dir == "tmp" { 0o1777 } else { 0o755 };
        let mut h = header(tar::EntryType::Directory, mode, 0);
        tar.append_data(&mut h, format!("{dir}/"), &[][..]).unwrap();
    }
    let mut h = header(tar::EntryType::Regular, 0o755, busybox.len() as u64);
    tar.append_data(&mut h, "bin/busybox", &busybox[..])
        .unwrap();
    for applet in APPLETS {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        tar.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    let files: [(&str, &str); 4] = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ("etc/fixture", label),
        ("etc/os-release", "NAME=berth-fixture\nID=busybox\n"),
    ];
    for (path, contents) in files {
        let mut h = header(tar::EntryType::Regular, 0o644, contents.len() as u64);
        tar.append_data(&mut h, path, contents.as_bytes()).unwrap();
    }
    tar.into_inner().unwrap()
}

/// Writes an image whose layers are the given uncompressed tars (bottom
/// first, each stored gzipped) and whose `config` section is `config`, and
/// tags it. For multi-layer, whiteout and hostile-layer scenarios.
pub fn write_layers(
    store: &Store,
    reference: &Reference,
    layers: &[Vec<u8>],
    config: serde_json::Value,
) -> Digest {
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in layers {
        diff_ids.push(Digest::of(tar).to_string());
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        std::io::Write::write_all(&mut gz, tar).unwrap();
        let blob = gz.finish().unwrap();
        let digest = store.put_blob(&blob).unwrap();
        descriptors.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest.to_string(),
            "size": blob.len(),
        }));
    }
    let config = json!({
        "created": "2023-11-14T22:13:20Z",
        "architecture": berth::platform::Platform::host().architecture,
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = store.put_blob(&config).unwrap();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": descriptors,
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = store.put_blob(&manifest).unwrap();
    let descriptor = Descriptor::new(
        MediaType::ImageManifest,
        manifest.len() as u64,
        oci_spec::image::Digest::from_str(&manifest_digest.to_string()).unwrap(),
    );
    store.tag(reference, descriptor).unwrap();
    config_digest
}
