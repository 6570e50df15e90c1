//! The image side of a check: blobs hash to their names and match their
//! descriptors' sizes, every `index.json` entry is whole, and every unpacked
//! layer belongs to an image (the collector's own reachability).

use super::{Kind, Problem, Target, relative};
use crate::digest::{Digest, HashingWriter};
use crate::store::{MediaKind, Store, StoreError, chain_ids, descriptor_digest, tag_of};
use oci_spec::image::Descriptor;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io;

/// What the index reaches: every blob with the sizes its descriptors give
/// it and the image that keeps it, and the chain IDs of its layers.
#[derive(Default)]
struct Reach {
    sizes: HashMap<Digest, u64>,
    kept_by: HashMap<Digest, String>,
    chains: HashSet<String>,
    /// Blobs only img-build's step cache refers to: kept until the next
    /// collection, which may take them (the cache is derived data).
    cached: HashSet<Digest>,
}

impl Reach {
    fn add(&mut self, descriptor: &Descriptor, image: &str) {
        let digest = descriptor_digest(descriptor);
        self.sizes.insert(digest.clone(), descriptor.size());
        self.kept_by
            .entry(digest)
            .or_insert_with(|| image.to_string());
    }
}

pub(super) fn check(
    store: &Store,
    judge_unreferenced: bool,
    problems: &mut Vec<Problem>,
) -> Result<(), StoreError> {
    let index = match store.read_index() {
        Ok(index) => index,
        Err(e) => {
            problems.push(Problem::new(
                Kind::Image,
                "images/index.json",
                format!("unreadable, so no image can be checked: {e}"),
            ));
            return Ok(());
        }
    };
    let mut reach = Reach::default();
    for entry in index.manifests() {
        let digest = descriptor_digest(entry);
        let name = tag_of(entry).map_or_else(|| digest.to_string(), |t| t.to_string());
        reach.add(entry, &name);
        match MediaKind::of(entry.media_type().as_ref()) {
            MediaKind::Manifest => check_manifest(store, &digest, &name, &mut reach, problems),
            MediaKind::Index => check_index(store, &digest, &name, &mut reach, problems),
            MediaKind::Other => {}
        }
    }
    mark_cached(store, &mut reach);
    check_blobs(store, &reach, judge_unreferenced, problems)?;
    if judge_unreferenced {
        check_layers(store, &reach, problems)?;
    }
    Ok(())
}

/// The intermediate images img-build's cache entries name
/// (`cache/build/<key>` holds a manifest digest).
fn mark_cached(store: &Store, reach: &mut Reach) {
    let Ok(entries) = fs::read_dir(store.root().join("cache/build")) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(manifest) = fs::read_to_string(entry.path())
            .ok()
            .and_then(|text| text.trim().parse::<Digest>().ok())
        else {
            continue;
        };
        if let Ok(parsed) = store.read_manifest(&manifest) {
            reach.cached.insert(descriptor_digest(parsed.config()));
            reach
                .cached
                .extend(parsed.layers().iter().map(descriptor_digest));
        }
        reach.cached.insert(manifest);
    }
}

/// How to get a missing blob back, by what the image is named.
fn refetch_hint(name: &str) -> String {
    if name.starts_with("sha256:") {
        "the image is untagged; img-rm it, or build or pull it again".to_string()
    } else {
        format!("`img-pull {name}` fetches it again (a built image: build it again)")
    }
}

fn check_index(
    store: &Store,
    digest: &Digest,
    name: &str,
    reach: &mut Reach,
    problems: &mut Vec<Problem>,
) {
    if !store.has_blob(digest) {
        problems.push(Problem::new(
            Kind::Image,
            name,
            format!("its index {digest} is missing; {}", refetch_hint(name)),
        ));
        return;
    }
    let Ok(index) = store.read_image_index(digest) else {
        return; // the blob check reports a blob that does not read back
    };
    let mut present = 0;
    for child in index.manifests() {
        reach.add(child, name);
        let child_digest = descriptor_digest(child);
        // A platform that was never pulled is fine.
        if MediaKind::of(child.media_type().as_ref()) == MediaKind::Manifest
            && store.has_blob(&child_digest)
        {
            present += 1;
            check_manifest(store, &child_digest, name, reach, problems);
        }
    }
    if present == 0 {
        problems.push(Problem::new(
            Kind::Image,
            name,
            format!(
                "its index {digest} is here but no platform's manifest is; {}",
                refetch_hint(name)
            ),
        ));
    }
}

fn check_manifest(
    store: &Store,
    digest: &Digest,
    name: &str,
    reach: &mut Reach,
    problems: &mut Vec<Problem>,
) {
    if !store.has_blob(digest) {
        problems.push(Problem::new(
            Kind::Image,
            name,
            format!("its manifest {digest} is missing; {}", refetch_hint(name)),
        ));
        return;
    }
    let manifest = match store.read_manifest(digest) {
        Ok(manifest) => manifest,
        // A blob that does not hash to its name is the blob check's.
        Err(StoreError::DigestMismatch { .. }) => return,
        Err(e) => {
            problems.push(Problem::new(
                Kind::Image,
                name,
                format!("its manifest {digest} does not parse: {e}"),
            ));
            return;
        }
    };
    let config = manifest.config();
    reach.add(config, name);
    let config_digest = descriptor_digest(config);
    match store.read_blob(&config_digest) {
        Ok(bytes) => reach
            .chains
            .extend(chain_ids(&bytes).iter().map(|c| c.hex().to_string())),
        Err(StoreError::MissingBlob(_)) => problems.push(Problem::new(
            Kind::Image,
            name,
            format!(
                "its config {config_digest} is missing; {}",
                refetch_hint(name)
            ),
        )),
        Err(_) => {} // the blob check's
    }
    for layer in manifest.layers() {
        reach.add(layer, name);
        let layer_digest = descriptor_digest(layer);
        if !store.has_blob(&layer_digest) {
            problems.push(Problem::new(
                Kind::Image,
                name,
                format!(
                    "its layer {layer_digest} is missing; {}",
                    refetch_hint(name)
                ),
            ));
        }
    }
}

/// Re-hashes every blob; checks its size against what its descriptors say.
fn check_blobs(
    store: &Store,
    reach: &Reach,
    judge_unreferenced: bool,
    problems: &mut Vec<Problem>,
) -> Result<(), StoreError> {
    let dir = store.blobs_dir();
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(digest) = format!("sha256:{name}").parse::<Digest>() else {
            continue; // not a blob of ours: the collector leaves it too
        };
        let path = entry.path();
        let subject = relative(store, &path);
        let (actual, size) = match hash(&path) {
            Ok(hashed) => hashed,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                problems.push(Problem::new(
                    Kind::Blob,
                    subject,
                    format!("unreadable: {e}"),
                ));
                continue;
            }
        };
        let kept_by = reach.kept_by.get(&digest);
        let wrong = if actual != digest {
            Some(format!("its content hashes to {actual} (corrupted)"))
        } else {
            reach
                .sizes
                .get(&digest)
                .filter(|expected| **expected != size)
                .map(|expected| format!("{size} bytes, but its descriptor says {expected}"))
        };
        match (wrong, kept_by) {
            (Some(wrong), Some(image)) => problems.push(Problem::new(
                Kind::Blob,
                subject,
                format!(
                    "{wrong}; kept, as image {image} uses it (img-fsck never deletes a tagged \
                     image's blob): img-pull does not fetch a blob the store has, so \
                     `img-rm -f {image}`, then img-pull it again"
                ),
            )),
            (Some(wrong), None) if judge_unreferenced => problems.push(
                Problem::new(Kind::Blob, subject, format!("{wrong}; no image uses it"))
                    .repaired_by(Target::Swept),
            ),
            (None, None) if judge_unreferenced && !reach.cached.contains(&digest) => problems.push(
                Problem::new(Kind::Blob, subject, "no image uses it").repaired_by(Target::Swept),
            ),
            _ => {}
        }
    }
    Ok(())
}

fn hash(path: &std::path::Path) -> io::Result<(Digest, u64)> {
    let mut file = File::open(path)?;
    let mut hashing = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut hashing)?;
    let (digest, size, _) = hashing.finish();
    Ok((digest, size))
}

/// Every unpacked layer must belong to an image in the index. A layer is
/// only ever renamed into `layers/` whole, so a half-unpacked one is a dead
/// scratch directory in `tmp/` (the temp check's).
fn check_layers(
    store: &Store,
    reach: &Reach,
    problems: &mut Vec<Problem>,
) -> Result<(), StoreError> {
    let dir = store.root().join("layers");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| Digest::is_hex64(name))
        .collect();
    names.sort();
    for name in names {
        if !reach.chains.contains(&name) {
            problems.push(
                Problem::new(
                    Kind::Layer,
                    format!("layers/{name}"),
                    "unpacked, but no image in the store has this chain ID",
                )
                .repaired_by(Target::Swept),
            );
        }
    }
    Ok(())
}
