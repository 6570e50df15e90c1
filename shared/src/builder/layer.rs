//! A build step's layer: the overlay upper dir written as a reproducible tar
//! (sorted entries, no owner names or access times, overlay whiteouts turned
//! into `.wh.` files) compressed straight into a store blob.

use crate::digest::{Digest, HashingWriter};
use crate::parallel_gzip::ParallelGzip;
use crate::store::{BlobWriter, Store, StoreError};
use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// How layer blobs are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayerCompression {
    #[default]
    Gzip,
    Zstd,
}

impl LayerCompression {
    pub fn media_type(self) -> &'static str {
        match self {
            LayerCompression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            LayerCompression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

impl std::str::FromStr for LayerCompression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "gzip" => Ok(LayerCompression::Gzip),
            "zstd" => Ok(LayerCompression::Zstd),
            other => Err(format!(
                "unknown compression {other:?}: expected gzip or zstd"
            )),
        }
    }
}

/// A layer blob written into the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    pub digest: Digest,
    pub size: u64,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
    pub media_type: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LayerWriteError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Whether an upper dir holds any change at all.
pub fn is_empty(upper: &Path) -> bool {
    fs::read_dir(upper).map_or(true, |mut d| d.next().is_none())
}

/// Writes the upper dir `upper` as a layer blob. With `epoch`, every
/// timestamp later than it is clamped to it (SOURCE_DATE_EPOCH), so the
/// same inputs give the same bytes.
pub fn write_layer(
    store: &Store,
    upper: &Path,
    compression: LayerCompression,
    epoch: Option<u64>,
) -> Result<LayerBlob, LayerWriteError> {
    write_layer_without(store, upper, compression, epoch, &[])
}

/// [`write_layer`], leaving out the paths `skip` (relative to `upper`,
/// with all under them): a container's runtime mount points.
pub fn write_layer_without(
    store: &Store,
    upper: &Path,
    compression: LayerCompression,
    epoch: Option<u64>,
    skip: &[String],
) -> Result<LayerBlob, LayerWriteError> {
    let blob = store.blob_writer()?;
    let encoder: Box<dyn FinishWrite> = match compression {
        LayerCompression::Gzip => Box::new(ParallelGzip::new(blob, flate2::Compression::default())),
        LayerCompression::Zstd => Box::new(zstd::stream::write::Encoder::new(blob, 3).map_err(
            |source| LayerWriteError::Io {
                path: store.tmp_dir(),
                source,
            },
        )?),
    };
    let hashing = HashingWriter::new(encoder);
    let mut tar = tar::Builder::new(hashing);
    tar.mode(tar::HeaderMode::Complete);
    let mut writer = TarWriter {
        tar: &mut tar,
        epoch,
        links: HashMap::new(),
        skip,
    };
    writer.directory(upper, "")?;
    let io_err = |source| LayerWriteError::Io {
        path: upper.to_path_buf(),
        source,
    };
    let hashing = tar.into_inner().map_err(io_err)?;
    let (diff_id, _, encoder) = hashing.finish();
    let blob = encoder.finish_blob().map_err(io_err)?;
    let (digest, size) = blob.commit(None, None)?;
    Ok(LayerBlob {
        digest,
        size,
        diff_id,
        media_type: compression.media_type().to_string(),
    })
}

/// Writes the tree at `dir` as a plain tar to `out` (sorted entries, times
/// and owners kept): `ctr-export`'s flattened root. Returns `out`.
pub fn write_tree<W: Write>(dir: &Path, out: W) -> Result<W, LayerWriteError> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Complete);
    let mut writer = TarWriter {
        tar: &mut tar,
        epoch: None,
        links: HashMap::new(),
        skip: &[],
    };
    writer.directory(dir, "")?;
    tar.into_inner().map_err(|source| LayerWriteError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// A compressor over a blob writer, finished explicitly so its trailer is
/// written before the blob is committed.
trait FinishWrite: Write {
    fn finish_blob(self: Box<Self>) -> io::Result<BlobWriter>;
}

impl FinishWrite for ParallelGzip<BlobWriter> {
    fn finish_blob(self: Box<Self>) -> io::Result<BlobWriter> {
        self.finish()
    }
}

impl FinishWrite for zstd::stream::write::Encoder<'static, BlobWriter> {
    fn finish_blob(self: Box<Self>) -> io::Result<BlobWriter> {
        self.finish()
    }
}

struct TarWriter<'a, W: Write> {
    tar: &'a mut tar::Builder<W>,
    epoch: Option<u64>,
    /// (dev, inode) → the first path written for a hard-linked file.
    links: HashMap<(u64, u64), String>,
    /// Layer paths left out, with everything under them.
    skip: &'a [String],
}

impl<W: Write> TarWriter<'_, W> {
    fn err(path: &Path) -> impl FnOnce(io::Error) -> LayerWriteError + use<W> {
        let path = path.to_path_buf();
        move |source| LayerWriteError::Io { path, source }
    }

    fn mtime(&self, meta: &fs::Metadata) -> u64 {
        let mtime = meta.mtime().max(0) as u64;
        match self.epoch {
            Some(epoch) => mtime.min(epoch),
            None => mtime,
        }
    }

    fn header(&self, meta: &fs::Metadata, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(meta.mode() & 0o7777);
        h.set_uid(meta.uid() as u64);
        h.set_gid(meta.gid() as u64);
        h.set_mtime(self.mtime(meta));
        h.set_size(0);
        h
    }

    /// Writes the entries under `dir` (whose layer path is `prefix`), sorted
    /// by name so the order never depends on the filesystem.
    fn directory(&mut self, dir: &Path, prefix: &str) -> Result<(), LayerWriteError> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(Self::err(dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(Self::err(dir))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let path = dir.join(&name);
            let name = name.to_string_lossy();
            let rel = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}/{name}")
            };
            if self.skip.contains(&rel) {
                continue;
            }
            self.entry(&path, &rel)?;
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, rel: &str) -> Result<(), LayerWriteError> {
        let meta = fs::symlink_metadata(path).map_err(Self::err(path))?;
        let kind = meta.file_type();
        let err = Self::err(path);
        if kind.is_char_device() && meta.rdev() == 0 {
            // An overlay whiteout: the file is gone in this layer.
            let (parent, name) = match rel.rsplit_once('/') {
                Some((p, n)) => (format!("{p}/"), n),
                None => (String::new(), rel),
            };
            let mut h = self.header(&meta, tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            return self
                .tar
                .append_data(&mut h, format!("{parent}.wh.{name}"), io::empty())
                .map_err(err);
        }
        self.xattrs(path, &kind)?;
        if kind.is_dir() {
            let mut h = self.header(&meta, tar::EntryType::Directory);
            self.tar
                .append_data(&mut h, format!("{rel}/"), io::empty())
                .map_err(Self::err(path))?;
            let mut value = [0u8; 4];
            if rustix::fs::lgetxattr(path, OPAQUE_XATTR, &mut value)
                .is_ok_and(|n| &value[..n] == b"y")
            {
                let mut h = self.header(&meta, tar::EntryType::Regular);
                h.set_mode(0o644);
                self.tar
                    .append_data(&mut h, format!("{rel}/.wh..wh..opq"), io::empty())
                    .map_err(Self::err(path))?;
            }
            return self.directory(path, rel);
        }
        if kind.is_symlink() {
            let target = fs::read_link(path).map_err(Self::err(path))?;
            let mut h = self.header(&meta, tar::EntryType::Symlink);
            return self.tar.append_link(&mut h, rel, target).map_err(err);
        }
        if kind.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.links.get(&key) {
                    let mut h = self.header(&meta, tar::EntryType::Link);
                    let first = first.clone();
                    return self.tar.append_link(&mut h, rel, first).map_err(err);
                }
                self.links.insert(key, rel.to_string());
            }
            let mut h = self.header(&meta, tar::EntryType::Regular);
            h.set_size(meta.len());
            let file = fs::File::open(path).map_err(Self::err(path))?;
            return self.tar.append_data(&mut h, rel, file).map_err(err);
        }
        let entry_type = if kind.is_char_device() {
            tar::EntryType::Char
        } else if kind.is_block_device() {
            tar::EntryType::Block
        } else if kind.is_fifo() {
            tar::EntryType::Fifo
        } else {
            // Sockets are not content.
            return Ok(());
        };
        let mut h = self.header(&meta, entry_type);
        let rdev = meta.rdev();
        h.set_device_major(rustix::fs::major(rdev))
            .map_err(Self::err(path))?;
        h.set_device_minor(rustix::fs::minor(rdev))
            .map_err(Self::err(path))?;
        self.tar.append_data(&mut h, rel, io::empty()).map_err(err)
    }

    /// File capabilities and user xattrs travel in PAX records; overlay's
    /// own `trusted.*` bookkeeping never does.
    fn xattrs(&mut self, path: &Path, kind: &fs::FileType) -> Result<(), LayerWriteError> {
        if kind.is_symlink() {
            return Ok(());
        }
        let mut names = vec![0u8; 1024];
        let Ok(n) = rustix::fs::llistxattr(path, &mut names) else {
            return Ok(());
        };
        let mut records: Vec<(String, Vec<u8>)> = Vec::new();
        for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
            let name = String::from_utf8_lossy(name).into_owned();
            if !(name == "security.capability" || name.starts_with("user.")) {
                continue;
            }
            let mut value = vec![0u8; 4096];
            if let Ok(len) = rustix::fs::lgetxattr(path, name.as_str(), &mut value) {
                value.truncate(len);
                records.push((format!("SCHILY.xattr.{name}"), value));
            }
        }
        if records.is_empty() {
            return Ok(());
        }
        records.sort();
        self.tar
            .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .map_err(Self::err(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entries(store: &Store, blob: &LayerBlob) -> Vec<(String, tar::EntryType, u64)> {
        let file = store.open_blob(&blob.digest).unwrap();
        let mut plain = Vec::new();
        crate::compression::decompressed(io::BufReader::new(file))
            .unwrap()
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(Digest::of(&plain), blob.diff_id);
        let mut archive = tar::Archive::new(&plain[..]);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().entry_type(),
                    e.header().mtime().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn whiteouts_opaque_dirs_links_and_order() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path().join("store")).unwrap();
        let upper = root.path().join("upper");
        fs::create_dir_all(upper.join("b/opaque")).unwrap();
        fs::write(upper.join("b/z"), "z").unwrap();
        fs::write(upper.join("a"), "a").unwrap();
        fs::hard_link(upper.join("a"), upper.join("c")).unwrap();
        std::os::unix::fs::symlink("a", upper.join("link")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            upper.join("gone"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap();
        rustix::fs::setxattr(
            upper.join("b/opaque"),
            OPAQUE_XATTR,
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        let blob = write_layer(&store, &upper, LayerCompression::Gzip, Some(1000)).unwrap();
        let got = entries(&store, &blob);
        let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "a",
                "b/",
                "b/opaque/",
                "b/opaque/.wh..wh..opq",
                "b/z",
                "c",
                ".wh.gone",
                "link"
            ]
        );
        assert_eq!(got[5].1, tar::EntryType::Link);
        assert_eq!(got[7].1, tar::EntryType::Symlink);
        assert!(got.iter().all(|(_, _, mtime)| *mtime <= 1000));
        // The same tree gives the same bytes, in either compression.
        let again = write_layer(&store, &upper, LayerCompression::Gzip, Some(1000)).unwrap();
        assert_eq!(again, blob);
        let zstd = write_layer(&store, &upper, LayerCompression::Zstd, Some(1000)).unwrap();
        assert_eq!(zstd.diff_id, blob.diff_id);
        assert_ne!(zstd.digest, blob.digest);
        assert!(entries(&store, &zstd).len() == 8);
    }
}
