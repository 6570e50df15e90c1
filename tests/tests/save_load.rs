//! img-save and img-load end to end: images travel between stores as one
//! tar that skopeo reads as `docker-archive:` and `oci-archive:`, tars
//! skopeo writes load, and a hostile or broken tar leaves the store as it
//! was with one line.

use berth::{Digest, Reference, Store};
use berth_harness::fixture::{busybox_layer, write_layers};
use berth_harness::hostile::tar_of;
use berth_harness::tools::{external, skopeo_copy};
use berth_harness::{Fixture, Run, store_listing, tool};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// Two images sharing their busybox base layer, one with a second layer.
struct Scene {
    fixture: Fixture,
    shared_layer: Digest,
}

fn scene() -> Scene {
    let fixture = Fixture::new();
    let base = busybox_layer("shared base");
    let app = Reference::parse("app:1").unwrap();
    let tool_ref = Reference::parse("registry.local:5000/team/tool:2").unwrap();
    write_layers(
        &fixture.store,
        &app,
        &[base.clone(), tar_of("app.txt", b"the app\n")],
        json!({"Cmd": ["cat", "/app.txt"]}),
    );
    write_layers(&fixture.store, &tool_ref, &[base], json!({"Cmd": ["sh"]}));
    let image = fixture.store.resolve_image("app:1").unwrap();
    let shared_layer = berth::store::descriptor_digest(&image.manifest.layers()[0]);
    Scene {
        fixture,
        shared_layer,
    }
}

/// (manifest digest, image ID, tags) of every image in the store.
fn images(root: &Path) -> BTreeSet<(String, String, Vec<String>)> {
    let store = Store::open(root).unwrap();
    store
        .images()
        .unwrap()
        .into_iter()
        .map(|image| {
            let mut tags: Vec<String> = image.tags.iter().map(|t| t.to_string()).collect();
            tags.sort();
            (
                image.manifest_digest.to_string(),
                image.id().to_string(),
                tags,
            )
        })
        .collect()
}

/// img-save's stdout, raw.
fn save(root: &Path, args: &[&str]) -> Vec<u8> {
    let output = tool("img-save", root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "img-save {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn load(root: &Path, input: &[u8]) -> Run {
    Run::of_bytes(&mut tool("img-load", root), Some(input))
}

/// One entry of a tar: path, kind, content and link target.
struct Entry {
    path: String,
    kind: tar::EntryType,
    bytes: Vec<u8>,
    link: Option<String>,
}

fn entries(tar: &[u8]) -> Vec<Entry> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let kind = entry.header().entry_type();
            let link = entry.link_name().unwrap().map(|l| l.display().to_string());
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            Entry {
                path,
                kind,
                bytes,
                link,
            }
        })
        .collect()
}

fn entry_json(tar: &[u8], name: &str) -> Value {
    let entry = entries(tar)
        .into_iter()
        .find(|e| e.path == name)
        .unwrap_or_else(|| panic!("no {name} in the archive"));
    serde_json::from_slice(&entry.bytes).unwrap()
}

/// The tar with each file's content passed through `change` (None drops
/// the entry); links are kept as they are.
fn rewrite(tar: &[u8], change: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    for entry in entries(tar) {
        let Some(bytes) = change(&entry.path, entry.bytes) else {
            continue;
        };
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(entry.kind);
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        match entry.link {
            Some(target) => out.append_link(&mut h, &entry.path, target).unwrap(),
            None => out.append_data(&mut h, &entry.path, &bytes[..]).unwrap(),
        }
    }
    out.into_inner().unwrap()
}

#[test]
fn two_images_sharing_a_layer_round_trip_with_their_digests_ids_and_tags() {
    let s = scene();
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("images.tar");
    let targets = ["app:1", "registry.local:5000/team/tool:2"];
    let mut args = vec!["-o", file.to_str().unwrap()];
    args.extend(targets);
    Run::of(tool("img-save", s.fixture.root()).args(&args), None).success();
    let tar = std::fs::read(&file).unwrap();
    // The same images give the same bytes, on stdout as in a file.
    assert!(
        save(s.fixture.root(), &targets) == tar,
        "stdout differs from -o"
    );

    let listed = entries(&tar);
    let shared = format!("blobs/sha256/{}", s.shared_layer.hex());
    assert_eq!(listed.iter().filter(|e| e.path == shared).count(), 1);
    let manifest = entry_json(&tar, "manifest.json");
    assert_eq!(manifest[0]["RepoTags"], json!(["app:1"]));
    assert_eq!(
        manifest[1]["RepoTags"],
        json!(["registry.local:5000/team/tool:2"])
    );
    assert_eq!(manifest[0]["Layers"][0], json!(shared));
    assert_eq!(manifest[1]["Layers"], json!([shared]));
    let index = entry_json(&tar, "index.json");
    let names: Vec<(&str, &str)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let a = &d["annotations"];
            (
                a["io.containerd.image.name"].as_str().unwrap(),
                a["org.opencontainers.image.ref.name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("docker.io/library/app:1", "1"),
            ("registry.local:5000/team/tool:2", "2")
        ]
    );
    assert_eq!(
        entry_json(&tar, "oci-layout")["imageLayoutVersion"],
        "1.0.0"
    );
    assert!(entry_json(&tar, "repositories")["app"]["1"].is_string());

    let empty = tempfile::tempdir().unwrap();
    let run = load(empty.path(), &tar).success();
    assert_eq!(
        run.stdout,
        "Loaded image: app:1\nLoaded image: registry.local:5000/team/tool:2\n"
    );
    assert_eq!(images(empty.path()), images(s.fixture.root()));
    // The loaded store is whole: every blob present and matching its digest.
    let fsck = Run::of(&mut tool("img-fsck", empty.path()), None).success();
    assert_eq!(fsck.stdout, "");
}

#[test]
fn an_image_saved_by_id_loads_untagged_and_a_repository_saves_every_tag() {
    let s = scene();
    let root = s.fixture.root();
    Run::of(tool("img-tag", root).args(["app:1", "app:also"]), None).success();
    let image = s.fixture.store.resolve_image("app:1").unwrap();
    let id = image.id();

    let tar = save(root, &[&id.hex()[..12]]);
    assert_eq!(
        entry_json(&tar, "manifest.json")[0]["RepoTags"],
        Value::Null
    );
    let empty = tempfile::tempdir().unwrap();
    let run = load(empty.path(), &tar).success();
    assert_eq!(run.stdout, format!("Loaded image ID: {id}\n"));
    let loaded = Store::open(empty.path()).unwrap().images().unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id(), id);
    assert_eq!(loaded[0].manifest_digest, image.manifest_digest);
    assert!(loaded[0].tags.is_empty());

    let tar = save(root, &["app"]);
    let manifest = entry_json(&tar, "manifest.json");
    assert_eq!(manifest.as_array().unwrap().len(), 1, "{manifest}");
    let mut tags: Vec<&str> = manifest[0]["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(tags, ["app:1", "app:also"]);
}

fn skopeo_raw(reference: &str, config: bool) -> Vec<u8> {
    let mut args = vec!["inspect", "--raw"];
    if config {
        args.push("--config");
    }
    args.push(reference);
    external("skopeo", &args).into_bytes()
}

#[test]
fn skopeo_reads_the_archive_both_ways_and_berth_loads_what_skopeo_writes() {
    let s = scene();
    let root = s.fixture.root();
    let image = s.fixture.store.resolve_image("app:1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.tar");
    Run::of(
        tool("img-save", root).args(["-o", file.to_str().unwrap(), "app:1"]),
        None,
    )
    .success();
    let file = file.display();

    // Both readings give our manifest (OCI) and config (both) unchanged.
    let oci = format!("oci-archive:{file}");
    let docker = format!("docker-archive:{file}");
    assert_eq!(Digest::of(&skopeo_raw(&oci, false)), image.manifest_digest);
    assert_eq!(Digest::of(&skopeo_raw(&oci, true)), image.id());
    assert_eq!(Digest::of(&skopeo_raw(&docker, true)), image.id());
    let inspected: Value =
        serde_json::from_str(&external("skopeo", &["inspect", &docker])).unwrap();
    assert_eq!(
        inspected["Layers"].as_array().unwrap().len(),
        2,
        "{inspected}"
    );

    let source = format!(
        "oci:{}:docker.io/library/app:1",
        s.fixture.store.images_dir().display()
    );
    // skopeo's docker-archive: the 1.x-era layout, uncompressed layer tars.
    let docker_tar = dir.path().join("docker.tar");
    skopeo_copy(
        &source,
        &format!("docker-archive:{}:app:1", docker_tar.display()),
    );
    let loaded = tempfile::tempdir().unwrap();
    let run = Run::of(
        tool("img-load", loaded.path()).args(["-i", docker_tar.to_str().unwrap()]),
        None,
    )
    .success();
    assert_eq!(run.stdout, "Loaded image: app:1\n");
    let store = Store::open(loaded.path()).unwrap();
    let got = store.resolve_image("app:1").unwrap();
    assert_eq!(got.id(), image.id());
    for layer in got.manifest.layers() {
        assert_eq!(
            layer.media_type().to_string(),
            "application/vnd.oci.image.layer.v1.tar"
        );
    }
    // The manifest made for it is OCI, so the store stays a layout skopeo reads.
    let stored = format!(
        "oci:{}/images:docker.io/library/app:1",
        loaded.path().display()
    );
    assert_eq!(Digest::of(&skopeo_raw(&stored, false)), got.manifest_digest);

    // Docker 1.10-24 named `<id>/layer.tar` in manifest.json, a symlink
    // where the layer was already saved: the same tar, pointed that way.
    let skopeo_tar = std::fs::read(&docker_tar).unwrap();
    let links: Vec<(String, String)> = entries(&skopeo_tar)
        .into_iter()
        .filter_map(|e| Some((e.link?.trim_start_matches("../").to_string(), e.path)))
        .collect();
    let legacy = rewrite(&skopeo_tar, |path, bytes| {
        if path != "manifest.json" {
            return Some(bytes);
        }
        let mut manifest: Value = serde_json::from_slice(&bytes).unwrap();
        for layer in manifest[0]["Layers"].as_array_mut().unwrap() {
            let (_, link) = links.iter().find(|(to, _)| to == layer).unwrap();
            *layer = json!(link);
        }
        Some(serde_json::to_vec(&manifest).unwrap())
    });
    assert!(
        entry_json(&legacy, "manifest.json")[0]["Layers"][0]
            .as_str()
            .unwrap()
            .ends_with("/layer.tar")
    );
    let again = tempfile::tempdir().unwrap();
    load(again.path(), &legacy).success();
    assert_eq!(images(again.path()), images(loaded.path()));
    // Its uncompressed layers unpack and run (diff IDs checked there too).
    let ran = Run::of(tool("ctr-run", loaded.path()).args(["--rm", "app:1"]), None).success();
    assert_eq!(ran.stdout, "the app\n");

    // skopeo's oci-archive, unnamed and named.
    let oci_tar = dir.path().join("oci.tar");
    skopeo_copy(&source, &format!("oci-archive:{}", oci_tar.display()));
    let loaded = tempfile::tempdir().unwrap();
    let run = load(loaded.path(), &std::fs::read(&oci_tar).unwrap()).success();
    assert_eq!(run.stdout, format!("Loaded image ID: {}\n", image.id()));
    let got = Store::open(loaded.path()).unwrap().images().unwrap();
    assert_eq!(got[0].manifest_digest, image.manifest_digest);
    let named = dir.path().join("named.tar");
    skopeo_copy(
        &source,
        &format!("oci-archive:{}:docker.io/library/app:1", named.display()),
    );
    let run = load(loaded.path(), &std::fs::read(&named).unwrap()).success();
    assert_eq!(run.stdout, "Loaded image: app:1\n");
}

#[test]
fn a_multi_platform_index_in_an_oci_archive_loads_whole_under_its_tag() {
    let fixture = Fixture::new();
    let index = fixture.index("multi:1", "multi");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("multi.tar");
    external(
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "--quiet",
            "--all",
            &format!(
                "oci:{}:docker.io/library/multi:1",
                fixture.store.images_dir().display()
            ),
            &format!("oci-archive:{}:docker.io/library/multi:1", file.display()),
        ],
    );
    let empty = tempfile::tempdir().unwrap();
    let run = load(empty.path(), &std::fs::read(&file).unwrap()).success();
    assert_eq!(run.stdout, "Loaded image: multi:1\n");
    let store = Store::open(empty.path()).unwrap();
    let tagged = store
        .lookup_tag(&Reference::parse("multi:1").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(tagged.digest().to_string(), index.index_digest.to_string());
    assert_eq!(
        store.resolve_image("multi:1").unwrap().id(),
        index.host.config_digest
    );
    let arm64 = store.resolve_image_on("multi:1", &"linux/arm64/v8".parse().unwrap());
    assert_eq!(arm64.unwrap().id(), index.arm64.config_digest);
    let fsck = Run::of(&mut tool("img-fsck", empty.path()), None).success();
    assert_eq!(fsck.stdout, "");
}

#[test]
fn gzip_and_zstd_compressed_archives_load() {
    let s = scene();
    let tar = save(
        s.fixture.root(),
        &["app:1", "registry.local:5000/team/tool:2"],
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    for compressed in [gz, zst] {
        let empty = tempfile::tempdir().unwrap();
        let run = load(empty.path(), &compressed).success();
        assert_eq!(run.stdout.lines().count(), 2, "{run:#?}");
        assert_eq!(images(empty.path()), images(s.fixture.root()));
    }
}

/// A one-entry tar whose name is written raw, past the tar crate's checks.
fn raw_entry(name: &str, content: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(content.len() as u64);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend_from_slice(content);
    tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
    tar
}

#[test]
fn hostile_and_broken_archives_get_one_line_and_leave_the_store_as_it_was() {
    let s = scene();
    let tar = save(s.fixture.root(), &["app:1"]);
    let layer = format!("blobs/sha256/{}", s.shared_layer.hex());

    let target = Fixture::new();
    target.busybox("keep:1", "already here");
    let before = store_listing(target.root());

    let mut symlinked = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    symlinked
        .append_link(&mut h, &layer, "/etc/passwd")
        .unwrap();
    let symlinked = symlinked.into_inner().unwrap();
    let mut garbage = vec![0u8; 100_000];
    for (i, byte) in garbage.iter_mut().enumerate() {
        *byte = (i.wrapping_mul(2_654_435_761) >> 13) as u8;
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "traversal",
            raw_entry("../escaped", b"x"),
            "leaves the archive",
        ),
        (
            "digest mismatch",
            rewrite(&tar, |path, mut bytes| {
                if path == layer {
                    let middle = bytes.len() / 2;
                    bytes[middle] ^= 0xff;
                }
                Some(bytes)
            }),
            "content verification failed",
        ),
        (
            "missing layer",
            rewrite(&tar, |path, bytes| (path != layer).then_some(bytes)),
            "not in the archive",
        ),
        ("truncated", tar[..tar.len() / 2].to_vec(), "truncated"),
        ("garbage", garbage, "not an image archive"),
        ("symlink blob", symlinked, "not a link"),
        ("empty", Vec::new(), "empty input"),
    ];
    for (case, bytes, says) in cases {
        let run = load(target.root(), &bytes).failure(1);
        assert_eq!(run.stdout, "", "{case}: {run:#?}");
        run.one_error_line(&["img-load: ", says]);
        assert_eq!(
            store_listing(target.root()),
            before,
            "{case} changed the store"
        );
    }
}

#[test]
fn img_save_refuses_a_terminal_and_img_load_an_empty_one() {
    let s = scene();
    let mut command = Command::new(berth_harness::tools::binary("img-save"));
    command.args(["--root", s.fixture.root().to_str().unwrap(), "app:1"]);
    let mut session = berth_harness::pty::PtySession::spawn(&mut command);
    session.expect(
        "img-save: cowardly refusing to save to a terminal. Use the -o flag or redirect",
        10,
    );
    assert_eq!(session.wait(10).code(), Some(1));

    let mut command = Command::new(berth_harness::tools::binary("img-load"));
    command.args(["--root", s.fixture.root().to_str().unwrap()]);
    let mut session = berth_harness::pty::PtySession::spawn(&mut command);
    session.expect("requested load from stdin, but stdin is empty", 10);
    assert_eq!(session.wait(10).code(), Some(1));
}
