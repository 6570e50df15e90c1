//! Layers unpacked once into `layers/<chain id>/`: decompression by magic
//! bytes, diff ID verification, overlay-style whiteouts, hostile-tar defence.

use crate::digest::{Digest, HashingWriter};
use crate::store::{Image, SCRATCH_LAYER, Scratch, Store, StoreError, descriptor_digest};
use oci_spec::image::ImageConfiguration;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::fs::{Gid, Uid};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::io::{self, BufReader, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

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

/// The tar's entries written under `dest`, directory times set last.
fn walk(plain: impl Read, dest: &Path, layer: &Digest) -> Result<(), LayerError> {
    let archive_err = |source| LayerError::Archive {
        layer: layer.clone(),
        source,
    };
    let root = rustix::fs::open(
        dest,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| LayerError::Io {
        path: dest.to_path_buf(),
        source: e.into(),
    })?;
    let mut unpacker = Unpacker {
        root,
        layer: layer.clone(),
        parents: Vec::new(),
        dir_times: Vec::new(),
        buffer: vec![0; WRITE_BUFFER],
    };
    let mut archive = tar::Archive::new(plain);
    for entry in archive.entries().map_err(archive_err)? {
        let mut entry = entry.map_err(archive_err)?;
        unpacker.entry(&mut entry)?;
    }
    unpacker.finish_dir_times()
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

struct Unpacker {
    root: OwnedFd,
    layer: Digest,
    /// The directories from the layer root to the last entry's parent, each
    /// opened from the one before it. A tar lists a directory's entries
    /// together, so the next entry usually needs no `openat` at all (on a
    /// Debian rootfs, 48,000 fewer). Only the last entry can have changed
    /// anything since they were opened, and what it changed is a child of
    /// the last of them, never one of them.
    parents: Vec<(OsString, OwnedFd)>,
    /// Directory mtimes are set last: writing their children changes them.
    dir_times: Vec<(Vec<OsString>, u64)>,
    /// Where a file's bytes pass through on their way to it: one large
    /// buffer for every file, so a 4 MiB library is 16 writes rather than
    /// the 512 that `io::copy`'s 8 KiB stack buffer would make.
    buffer: Vec<u8>,
}

const DIR_FLAGS: OFlags = OFlags::DIRECTORY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::RDONLY)
    .union(OFlags::CLOEXEC);

/// Opens directory `name` in `dir` without following a symlink, first
/// creating it (as tar does) when it is missing and `create` is set.
fn open_child_dir(dir: &OwnedFd, name: &OsStr, create: bool) -> Result<OwnedFd, Errno> {
    match rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty()) {
        Err(Errno::NOENT) if create => {
            match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e),
            }
            rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty())
        }
        other => other,
    }
}

/// The size of [`Unpacker::buffer`].
const WRITE_BUFFER: usize = 256 * 1024;

/// Files at least this large are sent on their way to the disk as soon as
/// they are written, so the `syncfs` that makes a layer durable before it
/// is renamed into place finds most of its bytes already written rather
/// than writing all of them while the caller waits.
const EARLY_WRITEBACK: u64 = 256 * 1024;

/// Copies `from` into `to` through `buffer`; the bytes copied.
fn copy_through(
    from: &mut impl Read,
    to: &mut impl io::Write,
    buffer: &mut [u8],
) -> io::Result<u64> {
    let mut copied = 0;
    loop {
        let n = match from.read(buffer) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buffer[..n])?;
        copied += n as u64;
    }
}

/// Starts writing `file`'s dirty pages to the disk without waiting for
/// them (durability still comes from the `syncfs` at the end). A failure
/// only means the `syncfs` does this work itself.
fn start_writeback(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a descriptor we own; no memory is shared.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

impl Unpacker {
    fn refuse(&self, entry: &str, why: impl Into<String>) -> LayerError {
        LayerError::Refused {
            layer: self.layer.clone(),
            entry: entry.to_string(),
            why: why.into(),
        }
    }

    fn entry_err(&self, entry: &str) -> impl FnOnce(io::Error) -> LayerError + use<> {
        let layer = self.layer.clone();
        let entry = entry.to_string();
        move |source| LayerError::Entry {
            layer,
            entry,
            source,
        }
    }

    /// Splits an entry's path into plain components, refusing any that is
    /// absolute or climbs with `..`.
    fn components(&self, path: &Path, entry: &str) -> Result<Vec<OsString>, LayerError> {
        // umoci writes the layer root as "/": that is the root, not a way out.
        if path == Path::new("/") {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for component in path.components() {
            match component {
                Component::Normal(name) => out.push(name.to_os_string()),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(self.refuse(entry, "path climbs out with \"..\""));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(self.refuse(entry, "absolute path"));
                }
            }
        }
        Ok(out)
    }

    /// Opens the directory `parents` under the layer root, one component at
    /// a time and never through a symlink; missing ones are created (as tar
    /// does) when `create` is set.
    fn open_dir(
        &self,
        parents: &[OsString],
        entry: &str,
        create: bool,
    ) -> Result<OwnedFd, LayerError> {
        let mut dir = rustix::fs::openat(&self.root, ".", DIR_FLAGS, Mode::empty())
            .map_err(|e| self.entry_err(entry)(e.into()))?;
        for (i, name) in parents.iter().enumerate() {
            dir = open_child_dir(&dir, name, create)
                .map_err(|e| self.dir_error(&dir, parents, i, e, entry))?;
        }
        Ok(dir)
    }

    /// Makes [`Unpacker::parents`] end at `parents`, opening (and creating)
    /// only the components it does not already hold.
    fn descend(&mut self, parents: &[OsString], entry: &str) -> Result<(), LayerError> {
        let held = self
            .parents
            .iter()
            .zip(parents)
            .take_while(|((a, _), b)| a == *b)
            .count();
        self.parents.truncate(held);
        for (i, name) in parents.iter().enumerate().skip(held) {
            let dir = self.parents.last().map_or(&self.root, |(_, fd)| fd);
            let next = open_child_dir(dir, name, true)
                .map_err(|e| self.dir_error(dir, parents, i, e, entry))?;
            self.parents.push((name.clone(), next));
        }
        Ok(())
    }

    /// Why component `i` of `parents`, looked up in `dir`, could not be
    /// opened as a directory.
    fn dir_error(
        &self,
        dir: &OwnedFd,
        parents: &[OsString],
        i: usize,
        error: Errno,
        entry: &str,
    ) -> LayerError {
        if !matches!(error, Errno::LOOP | Errno::NOTDIR) {
            return self.entry_err(entry)(error.into());
        }
        let prefix = join(&parents[..=i]);
        let is_link = rustix::fs::statat(dir, parents[i].as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
        let why = if is_link {
            format!("its path goes through the symlink {prefix:?}")
        } else {
            format!("{prefix:?} is not a directory")
        };
        self.refuse(entry, why)
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), LayerError> {
        let path = entry.path().map_err(|source| LayerError::Archive {
            layer: self.layer.clone(),
            source,
        })?;
        let name = path.to_string_lossy().into_owned();
        let mut comps = self.components(&path, &name)?;
        let Some(last) = comps.pop() else {
            // The layer root itself ("./"): its metadata is the lower dirs' business.
            return Ok(());
        };
        let kind = entry.header().entry_type();
        self.descend(&comps, &name)?;
        let parent = self.parents.last().map_or(&self.root, |(_, fd)| fd);
        let last_str = last.to_string_lossy();

        if last_str == OPAQUE_WHITEOUT {
            return rustix::fs::fsetxattr(
                parent,
                "trusted.overlay.opaque",
                b"y",
                XattrFlags::empty(),
            )
            .map_err(|e| self.entry_err(&name)(e.into()));
        }
        if let Some(hidden) = last_str.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.starts_with(WHITEOUT_PREFIX) || hidden.is_empty() {
                // aufs bookkeeping (.wh..wh.plnk and friends): not content.
                return Ok(());
            }
            self.clear(parent, OsStr::new(hidden), false, &name)?;
            return rustix::fs::mknodat(
                parent,
                hidden,
                FileType::CharacterDevice,
                Mode::empty(),
                rustix::fs::makedev(0, 0),
            )
            .map_err(|e| self.entry_err(&name)(e.into()));
        }

        let header = entry.header();
        let mode = Mode::from_raw_mode(header.mode().map_err(self.entry_err(&name))? & 0o7777);
        let uid = Uid::from_raw(header.uid().unwrap_or(0) as u32);
        let gid = Gid::from_raw(header.gid().unwrap_or(0) as u32);
        let mtime = header.mtime().map_err(self.entry_err(&name))?;
        let major = header.device_major().ok().flatten().unwrap_or(0);
        let minor = header.device_minor().ok().flatten().unwrap_or(0);
        let xattrs = xattrs_of(entry);
        let err = self.entry_err(&name);
        let target = last.as_os_str();

        match kind {
            tar::EntryType::Directory => {
                self.clear(parent, target, true, &name)?;
                match rustix::fs::mkdirat(parent, target, mode) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(err(e.into())),
                }
                let dir = open_child_dir(parent, &last, false).map_err(|e| {
                    self.dir_error(parent, std::slice::from_ref(&last), 0, e, &name)
                })?;
                self.metadata(&dir, uid, gid, mode, &xattrs, &name)?;
                let mut full = comps.clone();
                full.push(last.clone());
                self.dir_times.push((full, mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.clear(parent, target, false, &name)?;
                let fd = rustix::fs::openat(
                    parent,
                    target,
                    OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::WRONLY
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| self.entry_err(&name)(e.into()))?;
                let mut file = std::fs::File::from(fd);
                let written = copy_through(entry, &mut file, &mut self.buffer)
                    .map_err(self.entry_err(&name))?;
                if written >= EARLY_WRITEBACK {
                    start_writeback(&file);
                }
                self.metadata(&file, uid, gid, mode, &xattrs, &name)?;
                rustix::fs::futimens(&file, &times(mtime))
                    .map_err(|e| self.entry_err(&name)(e.into()))?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(self.entry_err(&name))?
                    .ok_or_else(|| self.refuse(&name, "symlink without a target"))?;
                self.clear(parent, target, false, &name)?;
                rustix::fs::symlinkat(link.as_os_str(), parent, target)
                    .map_err(|e| err(e.into()))?;
                let nofollow = AtFlags::SYMLINK_NOFOLLOW;
                rustix::fs::chownat(parent, target, Some(uid), Some(gid), nofollow)
                    .and_then(|()| rustix::fs::utimensat(parent, target, &times(mtime), nofollow))
                    .map_err(|e| self.entry_err(&name)(e.into()))?;
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(self.entry_err(&name))?
                    .ok_or_else(|| self.refuse(&name, "hardlink without a target"))?
                    .into_owned();
                let mut to = self.components(&link, &name).map_err(|_| {
                    self.refuse(
                        &name,
                        format!("hardlink target {:?} is outside the layer", link),
                    )
                })?;
                let to_name = to
                    .pop()
                    .ok_or_else(|| self.refuse(&name, "hardlink to the layer root"))?;
                let to_dir = self.open_dir(&to, &name, false)?;
                self.clear(parent, target, false, &name)?;
                rustix::fs::linkat(
                    &to_dir,
                    to_name.as_os_str(),
                    parent,
                    target,
                    AtFlags::empty(),
                )
                .map_err(|e| err(e.into()))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let file_type = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                self.clear(parent, target, false, &name)?;
                rustix::fs::mknodat(
                    parent,
                    target,
                    file_type,
                    mode,
                    rustix::fs::makedev(major, minor),
                )
                .map_err(|e| err(e.into()))?;
                let nofollow = AtFlags::SYMLINK_NOFOLLOW;
                rustix::fs::chownat(parent, target, Some(uid), Some(gid), nofollow)
                    .and_then(|()| rustix::fs::chmodat(parent, target, mode, AtFlags::empty()))
                    .and_then(|()| rustix::fs::utimensat(parent, target, &times(mtime), nofollow))
                    .map_err(|e| self.entry_err(&name)(e.into()))?;
            }
            // PAX and GNU long-name headers are folded into entries by the
            // tar crate; anything else carries no file.
            _ => {}
        }
        Ok(())
    }

    /// Removes what is at `name` so a new entry can take its place; an
    /// existing directory stays when the new entry is a directory too.
    fn clear(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        keep_dir: bool,
        entry: &str,
    ) -> Result<(), LayerError> {
        match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(self.entry_err(entry)(e.into())),
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                if keep_dir {
                    return Ok(());
                }
                remove_tree(parent, name).map_err(|e| self.entry_err(entry)(e.into()))
            }
            Ok(_) => rustix::fs::unlinkat(parent, name, AtFlags::empty())
                .map_err(|e| self.entry_err(entry)(e.into())),
        }
    }

    fn metadata(
        &self,
        fd: impl std::os::fd::AsFd,
        uid: Uid,
        gid: Gid,
        mode: Mode,
        xattrs: &[(OsString, Vec<u8>)],
        entry: &str,
    ) -> Result<(), LayerError> {
        // chown before chmod: chown clears setuid/setgid bits.
        rustix::fs::fchown(&fd, Some(uid), Some(gid))
            .and_then(|()| rustix::fs::fchmod(&fd, mode))
            .map_err(|e| self.entry_err(entry)(e.into()))?;
        for (key, value) in xattrs {
            rustix::fs::fsetxattr(&fd, key.as_os_str(), value, XattrFlags::empty()).map_err(
                |e| self.entry_err(entry)(io::Error::other(format!("xattr {key:?}: {e}"))),
            )?;
        }
        Ok(())
    }

    fn finish_dir_times(&mut self) -> Result<(), LayerError> {
        let dirs = std::mem::take(&mut self.dir_times);
        for (mut comps, mtime) in dirs {
            let name = join(&comps);
            let last = comps.pop().expect("directories have a name");
            let parent = self.open_dir(&comps, &name, false)?;
            rustix::fs::utimensat(
                &parent,
                last.as_os_str(),
                &times(mtime),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.entry_err(&name)(e.into()))?;
        }
        Ok(())
    }
}

/// Removes a directory tree below an already-safe parent, fd-relative.
fn remove_tree(parent: &OwnedFd, name: &OsStr) -> rustix::io::Result<()> {
    let flags = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC;
    let dir = rustix::fs::openat(parent, name, flags, Mode::empty())?;
    let children: Vec<(OsString, bool)> = rustix::fs::Dir::read_from(&dir)?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_bytes() != b"." && e.file_name().to_bytes() != b"..")
        .map(|e| {
            (
                OsStr::from_bytes(e.file_name().to_bytes()).to_os_string(),
                e.file_type() == FileType::Directory,
            )
        })
        .collect();
    for (child, is_dir) in children {
        if is_dir {
            remove_tree(&dir, &child)?;
        } else {
            rustix::fs::unlinkat(&dir, child.as_os_str(), AtFlags::empty())?;
        }
    }
    rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)
}

fn xattrs_of<R: Read>(entry: &mut tar::Entry<R>) -> Vec<(OsString, Vec<u8>)> {
    let Ok(Some(extensions)) = entry.pax_extensions() else {
        return Vec::new();
    };
    extensions
        .filter_map(Result::ok)
        .filter_map(|ext| {
            let key = ext.key_bytes().strip_prefix(b"SCHILY.xattr.")?;
            Some((
                OsStr::from_bytes(key).to_os_string(),
                ext.value_bytes().to_vec(),
            ))
        })
        .collect()
}

fn times(mtime: u64) -> Timestamps {
    let at = Timespec {
        tv_sec: mtime as i64,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: at,
        last_modification: at,
    }
}

fn join(comps: &[OsString]) -> String {
    comps
        .iter()
        .map(|c| c.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests;
