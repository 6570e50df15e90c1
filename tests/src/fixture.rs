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
use std::time::SystemTime;

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

/// A test that failed half-way may leave containers running: they are
/// killed and removed before their store goes, so no monitor, mount or
/// cgroup outlives the test.
impl Drop for Fixture {
    fn drop(&mut self) {
        for record in berth::lifecycle::list(&self.store).unwrap_or_default() {
            let _ = berth::lifecycle::remove(&self.store, &record, true, true);
        }
        // The default bridge stands after its last container, as docker0
        // does; a test's store takes it along when it goes.
        let _ = berth::network::standing::close(&self.store);
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
    /// The IDs of the containers in the store (none before the first run).
    pub fn container_ids(&self) -> Vec<String> {
        std::fs::read_dir(self.root().join("containers"))
            .map(|dir| {
                dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A container's record as ctr-run wrote it.
    pub fn container_record(&self, id: &str) -> serde_json::Value {
        let path = self
            .root()
            .join("containers")
            .join(id)
            .join("container.json");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    pub fn busybox(&self, reference: &str, label: &str) -> FixtureImage {
        write_busybox(&self.store, &Reference::parse(reference).unwrap(), label)
    }

    /// Like [`Fixture::busybox`], with the config's `created` set to `created`.
    pub fn busybox_created(
        &self,
        reference: &str,
        label: &str,
        created: SystemTime,
    ) -> FixtureImage {
        write_busybox_at(
            &self.store,
            &Reference::parse(reference).unwrap(),
            label,
            &berth::format::human::format_rfc3339(created),
        )
    }

    /// Adds `count` images tagged `many/app-N:latest` that share one busybox
    /// layer and differ by config, tagged in one index update (for benches).
    pub fn many(&self, count: usize) {
        // Labels of equal length keep every config the same size.
        let first = self.busybox("many/app-0:latest", "many 00000");
        let manifest = self.store.read_blob(&first.manifest_digest).unwrap();
        let config = self.store.read_blob(&first.config_digest).unwrap();
        // Blobs go straight to their place, without the store's fsyncs: ten
        // thousand images are made in seconds, and readers check digests.
        let put = |bytes: &[u8]| {
            let digest = Digest::of(bytes);
            std::fs::write(self.store.blob_path(&digest), bytes).unwrap();
            digest
        };
        let mut guard = self.store.lock_index().unwrap();
        for i in 1..count {
            let config = String::from_utf8(config.clone())
                .unwrap()
                .replace("\"many 00000\"", &format!("\"many {i:05}\""));
            let config_digest = put(config.as_bytes());
            let manifest = String::from_utf8(manifest.clone())
                .unwrap()
                .replace(&first.config_digest.to_string(), &config_digest.to_string());
            let manifest_digest = put(manifest.as_bytes());
            let descriptor = Descriptor::new(
                MediaType::ImageManifest,
                manifest.len() as u64,
                oci_spec::image::Digest::from_str(&manifest_digest.to_string()).unwrap(),
            );
            let reference = Reference::parse(&format!("many/app-{i}:latest")).unwrap();
            guard.set_tag(&reference, descriptor);
        }
        guard.save().unwrap();
    }

    /// Adds `count` exited containers `many-N`, copies of the record of
    /// container `template` (a name or ID; one ctr-run made) with their own ID, name,
    /// creation time and paths, written straight into the store (for
    /// benches: thousands of runs would take minutes). Each is a directory
    /// with its record, as a stopped container of ctr-run's has.
    pub fn many_containers(&self, template: &str, count: usize) {
        let template = berth::lifecycle::find(&self.store, template).unwrap();
        let base = SystemTime::now() - std::time::Duration::from_secs(86_400);
        for i in 0..count {
            let id = Digest::of(format!("many-{i}").as_bytes()).hex().to_string();
            let mut record = template.clone();
            let dir = self.store.make_container_dir(&id).unwrap();
            let rename = |path: &str| path.replace(&template.id, &id);
            record.id = id.clone();
            record.name = format!("/many-{i}");
            record.config.hostname = id[..12].to_string();
            record.created = berth::format::human::format_rfc3339(
                base + std::time::Duration::from_secs(i as u64),
            );
            record.log_path = rename(&record.log_path);
            record.resolv_conf_path = rename(&record.resolv_conf_path);
            record.hostname_path = rename(&record.hostname_path);
            record.hosts_path = rename(&record.hosts_path);
            std::fs::write(
                dir.join("container.json"),
                serde_json::to_vec_pretty(&record).unwrap(),
            )
            .unwrap();
        }
    }

    /// Pushes a fixture image to `registry` as `name` (`repo:tag`) in `format`,
    /// returning the reference it is reachable at.
    pub fn push(&self, image: &FixtureImage, host: &str, name: &str, format: Format) -> Reference {
        // skopeo 1.9 will not recompress a gzip layer as zstd, so the zstd
        // form is made here and pushed as it is.
        let reference = match format {
            Format::OciZstd => self.zstd_copy(image),
            _ => image.reference.clone(),
        };
        let source = format!("oci:{}:{}", self.store.images_dir().display(), reference);
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
            Format::OciZstd => args.extend(["--format", "oci"]),
        }
        args.extend([source.as_str(), destination.as_str()]);
        crate::tools::external("skopeo", &args);
        Reference::parse(&format!("{host}/{name}")).unwrap()
    }
}

impl Fixture {
    /// Stores `image` again with its gzip layer recompressed as zstd, tagged
    /// `<repository>:<tag>-zstd`; returns that tag.
    fn zstd_copy(&self, image: &FixtureImage) -> Reference {
        let gz = self.store.read_blob(&image.layer_digest).unwrap();
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut tar).unwrap();
        let layer = zstd::encode_all(&tar[..], 3).unwrap();
        let layer_digest = self.store.put_blob(&layer).unwrap();
        let manifest = self.store.read_blob(&image.manifest_digest).unwrap();
        let mut manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        manifest["layers"][0] = json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
            "digest": layer_digest.to_string(),
            "size": layer.len(),
        });
        let manifest = serde_json::to_vec(&manifest).unwrap();
        let manifest_digest = self.store.put_blob(&manifest).unwrap();
        let tag = format!("{}-zstd", image.reference.tag().unwrap_or("latest"));
        let reference = image.reference.with_tag(&tag);
        let descriptor = Descriptor::new(
            MediaType::ImageManifest,
            manifest.len() as u64,
            oci_spec::image::Digest::from_str(&manifest_digest.to_string()).unwrap(),
        );
        self.store.tag(&reference, descriptor).unwrap();
        reference
    }
}

/// Writes one busybox image (layer, config, manifest) and tags it.
pub fn write_busybox(store: &Store, reference: &Reference, label: &str) -> FixtureImage {
    write_busybox_at(store, reference, label, "2023-11-14T22:13:20Z")
}

fn write_busybox_at(
    store: &Store,
    reference: &Reference,
    label: &str,
    created: &str,
) -> FixtureImage {
    let layer = store_layer(store, &busybox_layer(label), Compression::fast());
    let config = json!({
        "created": created,
        "architecture": berth::platform::Platform::host().architecture,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
            "Labels": {"berth.fixture": label},
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.to_string()]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "berth test fixture"}],
    });
    let manifest = store_manifest(store, &config, std::slice::from_ref(&layer));
    tag_manifest(store, reference, &manifest);
    FixtureImage {
        reference: reference.clone(),
        manifest_digest: manifest.digest,
        manifest_size: manifest.size,
        config_digest: manifest.config_digest,
        layer_digest: layer.digest,
        diff_id: layer.diff_id,
    }
}

/// The bytes of regular-file content in a fixture layer (Docker's unpacked
/// size), counted from the files themselves.
pub fn busybox_content_size(label: &str) -> u64 {
    let busybox = std::fs::metadata("/bin/busybox").unwrap().len();
    busybox + (PASSWD.len() + GROUP.len() + OS_RELEASE.len() + label.len()) as u64
}

const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";
const OS_RELEASE: &str = "NAME=berth-fixture\nID=busybox\n";

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
        ("etc/passwd", PASSWD),
        ("etc/group", GROUP),
        ("etc/fixture", label),
        ("etc/os-release", OS_RELEASE),
    ];
    for (path, contents) in files {
        let mut h = header(tar::EntryType::Regular, 0o644, contents.len() as u64);
        tar.append_data(&mut h, path, contents.as_bytes()).unwrap();
    }
    tar.into_inner().unwrap()
}

/// A multi-platform fixture: an OCI index with an entry for the host and
/// one for linux/arm64/v8 (busybox layers; only the config says arm64).
#[derive(Debug, Clone)]
pub struct FixtureIndex {
    pub reference: Reference,
    pub index_digest: Digest,
    pub host: FixtureImage,
    pub arm64: FixtureImage,
}

impl Fixture {
    /// Writes a two-platform index tagged `reference`.
    pub fn index(&self, reference: &str, label: &str) -> FixtureIndex {
        let reference = Reference::parse(reference).unwrap();
        let host_platform = berth::platform::Platform::host();
        let host = write_image(&self.store, &format!("{label} host"), &host_platform);
        let arm64_platform: berth::platform::Platform = "linux/arm64/v8".parse().unwrap();
        let arm64 = write_image(&self.store, &format!("{label} arm64"), &arm64_platform);
        let entry = |image: &FixtureImage, platform: &berth::platform::Platform| {
            let mut p = json!({"os": platform.os, "architecture": platform.architecture});
            if let Some(variant) = &platform.variant {
                p["variant"] = json!(variant);
            }
            json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": image.manifest_digest.to_string(),
                "size": image.manifest_size,
                "platform": p,
            })
        };
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [entry(&host, &host_platform), entry(&arm64, &arm64_platform)],
        });
        let index = serde_json::to_vec(&index).unwrap();
        let index_digest = self.store.put_blob(&index).unwrap();
        let descriptor = Descriptor::new(
            MediaType::ImageIndex,
            index.len() as u64,
            oci_spec::image::Digest::from_str(&index_digest.to_string()).unwrap(),
        );
        self.store.tag(&reference, descriptor).unwrap();
        FixtureIndex {
            reference: reference.clone(),
            index_digest,
            host: FixtureImage {
                reference: reference.clone(),
                ..host
            },
            arm64: FixtureImage { reference, ..arm64 },
        }
    }

    /// Pushes a fixture index with every platform (`skopeo copy --all`).
    pub fn push_index(&self, index: &FixtureIndex, host: &str, name: &str) -> Reference {
        let source = format!(
            "oci:{}:{}",
            self.store.images_dir().display(),
            index.reference
        );
        let destination = format!("docker://{host}/{name}");
        crate::tools::external(
            "skopeo",
            &[
                "--insecure-policy",
                "copy",
                "--quiet",
                "--all",
                "--preserve-digests",
                "--dest-tls-verify=false",
                &source,
                &destination,
            ],
        );
        Reference::parse(&format!("{host}/{name}")).unwrap()
    }

    /// Adds an image of `layers` layers, each one file of `layer_bytes`
    /// pseudo-random (incompressible) bytes, tagged `reference`; returns the
    /// layer digests. The layers are gzip without compression, so skopeo
    /// pushes them as they are. For benches and interrupted transfers.
    pub fn random(&self, reference: &str, layers: usize, layer_bytes: usize) -> Vec<Digest> {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ reference.len() as u64;
        let mut stored = Vec::new();
        for n in 0..layers {
            let data = crate::incompressible(layer_bytes, &mut seed);
            let mut tar = tar::Builder::new(Vec::with_capacity(layer_bytes + 4096));
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(layer_bytes as u64);
            h.set_mtime(MTIME);
            tar.append_data(&mut h, format!("data/{n}.bin"), &data[..])
                .unwrap();
            drop(data);
            stored.push(store_layer(
                &self.store,
                &tar.into_inner().unwrap(),
                Compression::none(),
            ));
        }
        let diff_ids: Vec<String> = stored.iter().map(|l| l.diff_id.to_string()).collect();
        let config = json!({
            "created": "2023-11-14T22:13:20Z",
            "architecture": berth::platform::Platform::host().architecture,
            "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let manifest = store_manifest(&self.store, &config, &stored);
        tag_manifest(
            &self.store,
            &Reference::parse(reference).unwrap(),
            &manifest,
        );
        stored.into_iter().map(|l| l.digest).collect()
    }
}

/// One untagged busybox image whose config declares `platform`.
fn write_image(store: &Store, label: &str, platform: &berth::platform::Platform) -> FixtureImage {
    let layer = store_layer(store, &busybox_layer(label), Compression::fast());
    let mut config = json!({
        "created": "2023-11-14T22:13:20Z",
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {"Cmd": ["sh"], "Labels": {"berth.fixture": label}},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.to_string()]},
    });
    if let Some(variant) = &platform.variant {
        config["variant"] = json!(variant);
    }
    let manifest = store_manifest(store, &config, std::slice::from_ref(&layer));
    FixtureImage {
        reference: Reference::parse("untagged").unwrap(),
        manifest_digest: manifest.digest,
        manifest_size: manifest.size,
        config_digest: manifest.config_digest,
        layer_digest: layer.digest,
        diff_id: layer.diff_id,
    }
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
    let stored: Vec<StoredLayer> = layers
        .iter()
        .map(|tar| store_layer(store, tar, Compression::fast()))
        .collect();
    let diff_ids: Vec<String> = stored.iter().map(|l| l.diff_id.to_string()).collect();
    let config = json!({
        "created": "2023-11-14T22:13:20Z",
        "architecture": berth::platform::Platform::host().architecture,
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let manifest = store_manifest(store, &config, &stored);
    tag_manifest(store, reference, &manifest);
    manifest.config_digest
}

/// A layer blob in the store, with the diff ID of the tar inside it.
struct StoredLayer {
    digest: Digest,
    size: usize,
    diff_id: Digest,
}

/// Gzips `tar` at `level` and stores it.
fn store_layer(store: &Store, tar: &[u8], level: Compression) -> StoredLayer {
    let mut gz = GzEncoder::new(Vec::with_capacity(tar.len() / 2 + 4096), level);
    std::io::Write::write_all(&mut gz, tar).unwrap();
    let blob = gz.finish().unwrap();
    StoredLayer {
        digest: store.put_blob(&blob).unwrap(),
        size: blob.len(),
        diff_id: Digest::of(tar),
    }
}

/// A config and manifest in the store.
struct StoredManifest {
    config_digest: Digest,
    digest: Digest,
    size: u64,
}

/// Stores `config` and an OCI manifest over it and `layers`.
fn store_manifest(
    store: &Store,
    config: &serde_json::Value,
    layers: &[StoredLayer],
) -> StoredManifest {
    let config = serde_json::to_vec(config).unwrap();
    let config_digest = store.put_blob(&config).unwrap();
    let layers: Vec<_> = layers
        .iter()
        .map(|layer| {
            json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer.digest.to_string(),
                "size": layer.size,
            })
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": layers,
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    StoredManifest {
        config_digest,
        digest: store.put_blob(&manifest).unwrap(),
        size: manifest.len() as u64,
    }
}

/// Points `reference` at a stored manifest.
fn tag_manifest(store: &Store, reference: &Reference, manifest: &StoredManifest) {
    let descriptor = Descriptor::new(
        MediaType::ImageManifest,
        manifest.size,
        oci_spec::image::Digest::from_str(&manifest.digest.to_string()).unwrap(),
    );
    store.tag(reference, descriptor).unwrap();
}

/// A tar built entry by entry: (path, kind, link target or contents).
pub fn layer_of(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(if *kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..path.len()].copy_from_slice(path.as_bytes());
        match kind {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                gnu.linkname[..data.len()].copy_from_slice(data.as_bytes());
                h.set_size(0);
                h.set_cksum();
                tar.append(&h, &[][..]).unwrap();
            }
            _ => {
                h.set_size(data.len() as u64);
                h.set_cksum();
                tar.append(&h, data.as_bytes()).unwrap();
            }
        }
    }
    tar.into_inner().unwrap()
}
