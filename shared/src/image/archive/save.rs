//! `docker save`: the images a user names, with the tags they were named
//! by, as one tar that is Docker's save format and an OCI image layout at
//! once. Every blob is streamed from the store once however many images
//! share it, hashed on the way and refused if the store's copy no longer
//! matches its digest. Entries are sorted and dated 0, so saving the same
//! images twice gives the same bytes.

use super::{
    BLOBS_DIR, IMAGE_NAME_ANNOTATION, INDEX_JSON, MANIFEST_JSON, ManifestItem, OCI_LAYOUT,
    REPOSITORIES, blob_path,
};
use crate::digest::{Digest, HashingWriter};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::{Image, REF_NAME_ANNOTATION, Store, StoreError, descriptor_digest};
use serde_json::json;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;
use std::rc::Rc;

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the archive: {0}")]
    Write(#[source] io::Error),
    #[error("{path}: {source}")]
    Output {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
}

/// One image to save and the tags it goes under (none: saved by ID).
struct Saving {
    image: Image,
    tags: Vec<Reference>,
}

/// Saves `targets` (references or IDs) as a tar written to `out`.
pub fn save(store: &Store, targets: &[String], out: impl Write) -> Result<(), SaveError> {
    let images = resolve(store, targets)?;
    write_archive(store, &images, out)
}

/// Saves `targets` to `path`: written beside it under a temp name, fsynced,
/// then renamed, so `path` is never a partial archive.
pub fn save_to_file(store: &Store, targets: &[String], path: &Path) -> Result<(), SaveError> {
    let images = resolve(store, targets)?;
    let output = |source| SaveError::Output {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".img-save-")
        .tempfile_in(dir)
        .map_err(output)?;
    let mut writer = io::BufWriter::with_capacity(1 << 20, tmp);
    write_archive(store, &images, &mut writer)?;
    let tmp = writer.into_inner().map_err(|e| output(e.into_error()))?;
    tmp.as_file().sync_all().map_err(output)?;
    tmp.persist(path).map_err(|e| output(e.error))?;
    Ok(())
}

/// Docker's reading of save targets: `repo:tag` saves that tag; a bare
/// `repo` every tag of the repository (or, if it has none, the image it
/// names as an ID prefix); an ID or a digest reference saves the image
/// untagged. Images named twice are saved once, with every tag asked for.
fn resolve(store: &Store, targets: &[String]) -> Result<Vec<Saving>, SaveError> {
    let mut saving: Vec<Saving> = Vec::new();
    let mut add = |image: Image, tag: Option<Reference>| {
        let at = match saving
            .iter()
            .position(|s| s.image.manifest_digest == image.manifest_digest)
        {
            Some(at) => at,
            None => {
                saving.push(Saving {
                    image,
                    tags: Vec::new(),
                });
                saving.len() - 1
            }
        };
        if let Some(tag) = tag
            && !saving[at].tags.contains(&tag)
        {
            saving[at].tags.push(tag);
        }
    };
    for target in targets {
        let name = Reference::parse_unnormalised(target)
            .ok()
            .filter(|_| !target.starts_with("sha256:"));
        match name {
            Some(name) if name.digest().is_some() => add(store.resolve_image(target)?, None),
            Some(name) if name.tag().is_some() => {
                let tag = Reference::parse(target).expect("parsed above");
                add(store.resolve_image(target)?, Some(tag));
            }
            Some(name) => {
                let repository = Reference::parse(target).expect("parsed above").repository();
                let mut found = false;
                for image in store.images()? {
                    let tags: Vec<Reference> = image
                        .tags
                        .iter()
                        .filter(|t| t.repository() == repository && t.tag().is_some())
                        .cloned()
                        .collect();
                    for tag in tags {
                        found = true;
                        add(image.clone(), Some(tag));
                    }
                }
                if !found {
                    // Not a repository here: perhaps an ID prefix.
                    let image = store
                        .resolve_image(target)
                        .map_err(|_| StoreError::NoSuchImage(name.familiar()))?;
                    add(image, None);
                }
            }
            None => add(store.resolve_image(target)?, None),
        }
    }
    Ok(saving)
}

/// A blob of the archive, as the manifests describe it.
struct BlobEntry {
    digest: Digest,
    size: u64,
}

fn write_archive(store: &Store, images: &[Saving], out: impl Write) -> Result<(), SaveError> {
    let mut blobs: BTreeMap<String, BlobEntry> = BTreeMap::new();
    let mut add_blob = |digest: Digest, size: u64| {
        blobs
            .entry(digest.hex().to_string())
            .or_insert(BlobEntry { digest, size });
    };
    let mut items = Vec::new();
    let mut descriptors = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for saving in images {
        let image = &saving.image;
        let config = image.manifest.config();
        let config_digest = image.id();
        add_blob(config_digest.clone(), config.size());
        add_blob(image.manifest_digest.clone(), image.descriptor.size());
        let layers: Vec<Digest> = image
            .manifest
            .layers()
            .iter()
            .map(descriptor_digest)
            .collect();
        for (layer, digest) in image.manifest.layers().iter().zip(&layers) {
            add_blob(digest.clone(), layer.size());
        }
        let platform = Platform::of_config(&store.read_blob(&config_digest)?);
        let mut platform_json = json!({"architecture": platform.architecture, "os": platform.os});
        if let Some(variant) = &platform.variant {
            platform_json["variant"] = json!(variant);
        }
        let descriptor = |annotations: Option<serde_json::Value>| {
            let mut d = json!({
                "mediaType": image.descriptor.media_type().to_string(),
                "digest": image.manifest_digest.to_string(),
                "size": image.descriptor.size(),
            });
            if let Some(annotations) = annotations {
                d["annotations"] = annotations;
            }
            d["platform"] = platform_json.clone();
            d
        };
        // Docker 25 names each tag in the index: the full name in
        // containerd's annotation, the tag alone as the OCI ref name. An
        // image saved by ID is listed unnamed, so the layout stays whole.
        if saving.tags.is_empty() {
            descriptors.push(descriptor(None));
        }
        for tag in &saving.tags {
            let tag_name = tag.tag().unwrap_or("latest");
            descriptors.push(descriptor(Some(json!({
                IMAGE_NAME_ANNOTATION: tag.to_string(),
                REF_NAME_ANNOTATION: tag_name,
            }))));
            if let Some(top) = layers.last() {
                repositories
                    .entry(tag.familiar_repository())
                    .or_default()
                    .insert(tag_name.to_string(), top.hex().to_string());
            }
        }
        items.push(ManifestItem {
            config: blob_path(config_digest.hex()),
            repo_tags: (!saving.tags.is_empty())
                .then(|| saving.tags.iter().map(Reference::familiar).collect()),
            layers: layers.iter().map(|d| blob_path(d.hex())).collect(),
        });
    }

    // If a blob fails half-way, the tar builder still writes its end
    // marker when dropped: that must not make a cut archive look whole.
    let failed = Rc::new(Cell::new(false));
    let mut tar = tar::Builder::new(Guarded {
        inner: out,
        failed: failed.clone(),
    });
    let written = write_entries(&mut tar, store, &blobs, &descriptors, &items, &repositories);
    if written.is_err() {
        failed.set(true);
    }
    written?;
    let mut out = tar.into_inner().map_err(SaveError::Write)?;
    out.inner.flush().map_err(SaveError::Write)
}

fn write_entries<W: Write>(
    tar: &mut tar::Builder<W>,
    store: &Store,
    blobs: &BTreeMap<String, BlobEntry>,
    descriptors: &[serde_json::Value],
    items: &[ManifestItem],
    repositories: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<(), SaveError> {
    for dir in ["blobs/", BLOBS_DIR] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        tar.append_data(&mut h, dir, io::empty())
            .map_err(SaveError::Write)?;
    }
    for (hex, blob) in blobs {
        let file = store.open_blob(&blob.digest)?;
        let mut reader = Verifying::new(file, blob);
        let mut h = header(tar::EntryType::Regular, 0o644, blob.size);
        if let Err(e) = tar.append_data(&mut h, blob_path(hex), &mut reader) {
            return Err(reader
                .failure
                .take()
                .map_or(SaveError::Write(e), Into::into));
        }
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": descriptors,
    });
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        (
            INDEX_JSON,
            serde_json::to_vec(&index).expect("JSON values serialise"),
        ),
        (MANIFEST_JSON, json_line(items)),
        (OCI_LAYOUT, br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
    ];
    if !repositories.is_empty() {
        files.push((REPOSITORIES, json_line(repositories)));
    }
    for (name, bytes) in files {
        let mut h = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        tar.append_data(&mut h, name, &bytes[..])
            .map_err(SaveError::Write)?;
    }
    Ok(())
}

/// The output, written through until `failed` is set; after that every
/// write is swallowed.
struct Guarded<W> {
    inner: W,
    failed: Rc<Cell<bool>>,
}

impl<W: Write> Write for Guarded<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.failed.get() {
            true => Ok(buf.len()),
            false => self.inner.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.failed.get() {
            true => Ok(()),
            false => self.inner.flush(),
        }
    }
}

/// JSON and a newline, as Go's `json.Encoder` writes Docker's files.
fn json_line<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(value).expect("plain data serialises");
    bytes.push(b'\n');
    bytes
}

/// A header owned by root, dated 0: the archive depends only on content.
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Reads exactly a blob's size from the store, hashing as it goes; at the
/// end, a blob whose bytes or length no longer match is an error, so a
/// corrupted store never yields an archive that looks whole.
struct Verifying<'a> {
    file: io::Take<std::fs::File>,
    hash: HashingWriter<io::Sink>,
    blob: &'a BlobEntry,
    failure: Option<StoreError>,
}

impl<'a> Verifying<'a> {
    fn new(file: std::fs::File, blob: &'a BlobEntry) -> Verifying<'a> {
        Verifying {
            file: file.take(blob.size),
            hash: HashingWriter::new(io::sink()),
            blob,
            failure: None,
        }
    }

    fn check(&mut self) -> Result<(), StoreError> {
        let hash = std::mem::replace(&mut self.hash, HashingWriter::new(io::sink()));
        let (actual, size, _) = hash.finish();
        if size != self.blob.size {
            return Err(StoreError::SizeMismatch {
                digest: self.blob.digest.clone(),
                expected: self.blob.size,
                actual: size,
            });
        }
        if actual != self.blob.digest {
            return Err(StoreError::DigestMismatch {
                expected: self.blob.digest.clone(),
                actual,
            });
        }
        Ok(())
    }
}

impl Read for Verifying<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if let Err(e) = self.check() {
                let message = e.to_string();
                self.failure = Some(e);
                return Err(io::Error::other(message));
            }
            return Ok(0);
        }
        self.hash.write_all(&buf[..n])?;
        Ok(n)
    }
}
