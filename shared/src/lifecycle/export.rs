//! Docker's export: a container's whole root as one flattened tar (its
//! image's layers with its own changes on top, whiteouts applied), for a
//! running or a stopped container. The root is mounted read-only from the
//! unpacked layers and the container's upper dir as the top lower, so the
//! container's own mounts (/proc, volumes) are never in it; a container
//! whose root is a private copy is read from that copy.

use super::LifecycleError;
use super::commit::image_and_layers;
use crate::builder::layer::write_tree;
use crate::builder::rootfs::ReadRoot;
use crate::container::Record;
use crate::store::Store;
use std::io::Write;
use std::path::Path;

/// Writes `record`'s root filesystem as a tar to `out`.
pub fn export<W: Write>(store: &Store, record: &Record, out: W) -> Result<W, LifecycleError> {
    let dir = store.container_dir(&record.id);
    let upper = dir.join("upper");
    if !upper.is_dir() && dir.join("rootfs").is_dir() {
        // The copy fallback: the root is a plain directory.
        return Ok(write_tree(&dir.join("rootfs"), out)?);
    }
    let (_image, _lease, mut layers) = image_and_layers(store, record)?;
    if upper.is_dir() {
        layers.push(upper);
    }
    let root = ReadRoot::mount(store, &layers)?;
    Ok(write_tree(root.path(), out)?)
}

/// [`export`] into `path`, written beside it and renamed into place once
/// whole, as img-save's `-o` is.
pub fn export_to_file(store: &Store, record: &Record, path: &Path) -> Result<(), LifecycleError> {
    let io = |source| LifecycleError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".ctr-export-")
        .tempfile_in(dir)
        .map_err(io)?;
    let out = std::io::BufWriter::with_capacity(1 << 20, temp);
    let out = export(store, record, out)?;
    let temp = out.into_inner().map_err(|e| io(e.into_error()))?;
    temp.as_file().sync_all().map_err(io)?;
    temp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
