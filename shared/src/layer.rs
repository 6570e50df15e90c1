//! Layers unpacked once into `layers/<chain id>/`: decompression by magic
//! bytes, diff ID verification, overlay-style whiteouts, hostile-tar defence.

use crate::digest::{Digest, HashingWriter};
use crate::store::{Image, SCRATCH_LAYER, Scratch, Store, StoreError, descriptor_digest};
use oci_spec::image::ImageConfiguration;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("layer {layer}: entry {entry:?} refused: {why}")]
    Refused {
        layer: Digest,
        entry: String,
        why: String,
    },
    #[error("layer {layer}: entry {entry:?}: {source}")]
    Entry {
        layer: Digest,
        entry: String,
        #[source]
        source: io::Error,
    },
    #[error("layer {layer}: reading the archive: {source}")]
    Archive {
        layer: Digest,
        #[source]
        source: io::Error,
    },
    /// The tar crate could not read an entry's header: the stream is no
    /// tar, or ends inside one.
    #[error("layer {layer}: not a tar archive: {source}")]
    NotTar {
        layer: Digest,
        #[source]
        source: io::Error,
    },
    #[error(
        "layer {layer}: diff ID mismatch: the image config says {expected}, the content is {actual}"
    )]
    DiffIdMismatch {
        layer: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "image {image}: the manifest has {layers} layers but the config lists {diff_ids} diff IDs"
    )]
    LayerCount {
        image: Digest,
        layers: usize,
        diff_ids: usize,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The chain IDs of a stack of diff IDs, bottom first (OCI image spec).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => diff_id.clone(),
            Some(parent) => Digest::of(format!("{parent} {diff_id}").as_bytes()),
        };
        out.push(next);
    }
    out
}

impl Store {
    /// Where the layer with this chain ID is (or will be) unpacked.
    pub fn layer_dir(&self, chain_id: &Digest) -> PathBuf {
        self.root().join("layers").join(chain_id.hex())
    }

    /// Reads an image's config blob.
    pub fn read_image_config(&self, image: &Image) -> Result<ImageConfiguration, StoreError> {
        let digest = image.id();
        let bytes = self.read_blob(&digest)?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            path: self.blob_path(&digest),
            source,
        })
    }

    /// Makes sure every layer of `image` is unpacked, and returns their
    /// directories bottom first. Layers already there cost one stat each.
    pub fn unpack_layers(
        &self,
        image: &Image,
        config: &ImageConfiguration,
    ) -> Result<Vec<PathBuf>, LayerError> {
        let diff_ids: Vec<Digest> = config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| d.parse().unwrap_or_else(|_| Digest::of(d.as_bytes())))
            .collect();
        let layers = image.manifest.layers();
        if layers.len() != diff_ids.len() {
            return Err(LayerError::LayerCount {
                image: image.id(),
                layers: layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        let mut dirs = Vec::with_capacity(layers.len());
        for ((layer, diff_id), chain_id) in layers.iter().zip(&diff_ids).zip(chain_ids(&diff_ids)) {
            let dir = self.layer_dir(&chain_id);
            if !dir.is_dir() {
                self.unpack_layer(&descriptor_digest(layer), diff_id, &dir)?;
            }
            dirs.push(dir);
        }
        Ok(dirs)
    }

    /// Unpacks one layer blob into a fresh scratch directory under `tmp/`, checks
    /// its diff ID, then renames it to `dest`: a layer directory exists
    /// only once it is complete. If another process won the race, theirs stands.
    fn unpack_layer(&self, blob: &Digest, diff_id: &Digest, dest: &Path) -> Result<(), LayerError> {
        // What a killed unpack left (its owner's lock is free) goes first.
        self.sweep_scratch(SCRATCH_LAYER);
        let tmp = Scratch::new(self, SCRATCH_LAYER)?;
        let file = self.open_blob(blob)?;
        unpack(file, tmp.path(), blob, diff_id)?;
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source: io::Error| LayerError::Io { path, source }
        };
        std::fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .map_err(io_err(tmp.path()))?;
        let root = std::fs::File::open(tmp.path()).map_err(io_err(tmp.path()))?;
        rustix::fs::syncfs(&root).map_err(|e| io_err(tmp.path())(e.into()))?;
        match tmp.rename_to(dest) {
            Ok(()) => Ok(()),
            Err(e) if dest.is_dir() => {
                drop(e);
                Ok(())
            }
            Err(e) => Err(io_err(dest)(e)),
        }
    }
}

/// Unpacks the (gzip, zstd or plain) tar stream `blob` into the existing
/// empty directory `dest`, verifying that the uncompressed stream hashes to
/// `diff_id`. Every path is resolved under `dest` one component at a time
/// without following symlinks, so no entry can reach outside it.
///
/// A second thread decompresses and hashes while this one walks the tar
/// and writes the files: the two halves of `pigz -d | tar -x`, on two
/// cores rather than one.
pub fn unpack(
    blob: impl Read + Send,
    dest: &Path,
    layer: &Digest,
    diff_id: &Digest,
) -> Result<(), LayerError> {
    let archive_err = |source| LayerError::Archive {
        layer: layer.clone(),
        source,
    };
    let buffered = BufReader::with_capacity(256 * 1024, blob);
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    let (walked, decoded) = std::thread::scope(|scope| {
        let decoder = scope.spawn(move || -> io::Result<Digest> {
            let mut decoded = crate::compression::decompressed(buffered)?;
            let mut hash = HashingWriter::new(io::sink());
            loop {
                let mut chunk = vec![0u8; CHUNK];
                let n = crate::compression::read_full(&mut decoded, &mut chunk)?;
                if n == 0 {
                    break;
                }
                chunk.truncate(n);
                io::Write::write_all(&mut hash, &chunk)?;
                if sender.send(chunk).is_err() {
                    break; // the walk gave up; its error is the one reported
                }
            }
            Ok(hash.finish().0)
        });
        let mut chunks = Chunks {
            receiver,
            chunk: Vec::new(),
            at: 0,
        };
        let walked = walk(&mut chunks, dest, layer).and_then(|()| {
            // Trailing padding after the end-of-archive blocks is part of
            // the diff: all of it is hashed.
            io::copy(&mut chunks, &mut io::sink())
                .map(|_| ())
                .map_err(archive_err)
        });
        // A walk that stopped early lets the decoder go.
        drop(chunks);
        let decoded = decoder
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (walked, decoded)
    });
    // A stream that failed to decode is reported as that, not as the
    // truncated archive the walk saw because of it.
    let actual = decoded.map_err(archive_err)?;
    walked?;
    if actual != *diff_id {
        return Err(LayerError::DiffIdMismatch {
            layer: layer.clone(),
            expected: diff_id.clone(),
            actual,
        });
    }
    Ok(())
}

/// The size of the pieces handed from the decoding thread to the walk, and
/// how many may wait between them.
const CHUNK: usize = 256 * 1024;
const CHUNKS_IN_FLIGHT: usize = 16;

/// The decoding thread's chunks as one stream; it ends when the thread
/// stops sending.
struct Chunks {
    receiver: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.receiver.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Unpacks the plain tar stream `plain` into the existing empty directory
/// `dest` with [`unpack`]'s rules (`layer` names it in errors), and returns
/// the stream's digest: its diff ID.
pub fn unpack_plain(plain: impl Read, dest: &Path, layer: &Digest) -> Result<Digest, LayerError> {
    let mut hashing = HashingReader {
        inner: plain,
        hash: HashingWriter::new(io::sink()),
    };
    walk(&mut hashing, dest, layer)?;
    // Trailing padding after the end-of-archive blocks is part of the diff.
    io::copy(&mut hashing, &mut io::sink()).map_err(|source| LayerError::Archive {
        layer: layer.clone(),
        source,
    })?;
    let (actual, _, _) = hashing.hash.finish();
    Ok(actual)
}

struct HashingReader<R> {
    inner: R,
    hash: HashingWriter<io::Sink>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        io::Write::write_all(&mut self.hash, &buf[..n])?;
        Ok(n)
    }
}

mod unpacker;
pub(crate) use unpacker::times;
use unpacker::walk;

#[cfg(test)]
mod tests;
