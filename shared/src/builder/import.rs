//! `img-import`: a root filesystem tarball (plain, gzip, bzip2, xz or
//! zstd, told apart by its bytes) from a file, stdin or an http(s) URL made
//! into a one-layer image, as Docker's `import`. The tar is unpacked into a
//! scratch directory with the layer unpacker's rules (an entry climbing out
//! with `..` is refused, a symlink is never followed) and written again with
//! img-build's layer writer, so what is stored is a clean layer.

use super::archive::archive;
use super::changes;
use super::commit::{Made, push_history, record_image, write};
use super::error::BuildError;
use super::fetch;
use super::layer::{self, LayerCompression};
use super::state::ImageState;
use crate::digest::Digest;
use crate::layer::LayerError;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::{SCRATCH_BUILD, Scratch, Store, StoreError};
use serde_json::json;
use std::io::{self, Read};
use std::path::PathBuf;

/// Where the tarball comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportSource {
    File(PathBuf),
    Stdin,
    Url(String),
}

impl ImportSource {
    /// Docker's reading of the argument: `-` is stdin, `http://` and
    /// `https://` are URLs, anything else a file.
    pub fn parse(arg: &str) -> ImportSource {
        if arg == "-" {
            ImportSource::Stdin
        } else if arg.starts_with("http://") || arg.starts_with("https://") {
            ImportSource::Url(arg.to_string())
        } else {
            ImportSource::File(PathBuf::from(arg))
        }
    }

    /// How the history's comment names it (`Imported from -`).
    pub fn name(&self) -> String {
        match self {
            ImportSource::File(path) => path.display().to_string(),
            ImportSource::Stdin => "-".to_string(),
            ImportSource::Url(url) => url.clone(),
        }
    }
}

/// What img-import asks for.
pub struct ImportOptions<'a> {
    pub changes: &'a [String],
    /// `-m`; Docker's default is `Imported from SOURCE`.
    pub message: Option<&'a str>,
    pub platform: Platform,
}

/// Stores the tarball `source` (stdin read from `stdin`) as a one-layer
/// image named `tag` (or kept as `<none>`), all under the writers' lock so
/// no collection sweeps it before it is named; returns its ID.
pub fn import(
    store: &Store,
    source: &ImportSource,
    stdin: impl Read,
    options: &ImportOptions<'_>,
    tag: Option<&Reference>,
) -> Result<Digest, BuildError> {
    if let Some(tag) = tag
        && tag.digest().is_some()
    {
        return Err(StoreError::TagWithDigest(tag.to_string()).into());
    }
    let _writers = store.lease()?;
    let made = make(store, source, stdin, options)?;
    record_image(store, &made, tag)?;
    Ok(made.id)
}

fn make(
    store: &Store,
    source: &ImportSource,
    stdin: impl Read,
    options: &ImportOptions<'_>,
) -> Result<Made, BuildError> {
    let mut state = ImageState::scratch(&options.platform);
    // Docker's import starts from an empty config, not BuildKit's PATH.
    state.config["config"] = json!({});
    changes::apply_changes(&mut state.config, options.changes)
        .map_err(|e| BuildError::Invalid(e.to_string()))?;
    let name = source.name();
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        BuildError::Invalid(format!("importing {name}: {what}: {e}"))
    };
    store.sweep_scratch(SCRATCH_BUILD);
    let scratch = Scratch::new(store, SCRATCH_BUILD).map_err(|e| failed("scratch", &e))?;
    let _download;
    let path = match source {
        ImportSource::File(path) => path.clone(),
        ImportSource::Url(url) => {
            let got = fetch::download(url, None, store).map_err(|e| failed("fetching", &e))?;
            let path = got.path.clone();
            _download = got;
            path
        }
        ImportSource::Stdin => {
            // Spooled: the bytes are read twice (the magic, then the tar).
            let spool = scratch.path().join("stdin");
            let mut file = std::fs::File::create(&spool).map_err(|e| failed("spooling", &e))?;
            let mut stdin = stdin;
            io::copy(&mut stdin, &mut file).map_err(|e| failed("spooling", &e))?;
            spool
        }
    };
    let plain = archive(&path)?.ok_or_else(|| {
        BuildError::Invalid(format!(
            "importing {name}: not a tar archive (plain, gzip, bzip2, xz or zstd)"
        ))
    })?;
    let root = scratch.path().join("rootfs");
    std::fs::create_dir(&root).map_err(|e| failed("unpacking", &e))?;
    // The diff ID is only known once read; errors name the source instead.
    let label = Digest::of(name.as_bytes());
    crate::layer::unpack_plain(plain, &root, &label).map_err(|e| match e {
        LayerError::Refused { entry, why, .. } => {
            BuildError::Invalid(format!("importing {name}: entry {entry:?} refused: {why}"))
        }
        LayerError::Entry { entry, source, .. } => {
            BuildError::Invalid(format!("importing {name}: entry {entry:?}: {source}"))
        }
        LayerError::Archive { source, .. } => {
            BuildError::Invalid(format!("importing {name}: reading the archive: {source}"))
        }
        LayerError::NotTar { source, .. } => {
            BuildError::Invalid(format!("importing {name}: not a tar archive: {source}"))
        }
        other => other.into(),
    })?;
    let blob = layer::write_layer(store, &root, LayerCompression::Gzip, None)?;
    let diff_ids = [blob.diff_id.clone()];
    state.push_layer(&blob, &diff_ids);
    // The unpacked root is this layer: kept so a run need not unpack it.
    let dest = store.layer_dir(&blob.diff_id);
    if !dest.exists() && keepable(&root) {
        let _ = std::fs::rename(&root, &dest);
    }
    let now = crate::format::human::format_rfc3339(std::time::SystemTime::now());
    let comment = match options.message {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => format!("Imported from {name}"),
    };
    push_history(
        &mut state.config,
        json!({"created": now, "comment": comment}),
    );
    state.config["created"] = json!(now);
    state.config["comment"] = json!(comment);
    write(store, &mut state)
}

/// Readies an unpacked root to become a layer directory: mode 0755 as the
/// unpacker leaves them, and on disk before it gets its name.
fn keepable(root: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).is_ok()
        && std::fs::File::open(root).is_ok_and(|dir| rustix::fs::syncfs(&dir).is_ok())
}
