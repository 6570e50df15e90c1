//! `ctr-cp`: files between a container's root filesystem (running or
//! stopped) and the host, or a tar stream, with Docker's path rules
//! (`SRC/.` copies a directory's contents; a file into an existing
//! directory keeps its name; a missing destination takes the source's
//! place; its parent must exist). Every copy is a tar stream from a packer
//! (`pack`) to an extractor (`unpack`); on the container's side every path
//! is resolved as if chrooted (`root`), so neither a symlink in the
//! container nor a hostile tar reaches the host.

mod pack;
mod root;
mod unpack;

pub use unpack::Ownership;

use crate::container::{ContainerError, Record};
use crate::store::{Store, StoreError};
use pack::Packer;
use root::Root;
use rustix::fs::{FileType, OFlags};
use rustix::io::Errno;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("Could not find the file {path} in container {container}")]
    NotFound { path: String, container: String },
    #[error("lstat {path}: {reason}")]
    LocalNotFound { path: String, reason: String },
    #[error("{0}: not a directory")]
    NotADirectory(String),
    #[error("cannot copy directory")]
    CannotCopyDir,
    #[error("no such directory")]
    DirNotExists,
    #[error("invalid output path: directory {0:?} does not exist")]
    OutputDir(String),
    #[error("destination \"{container}:{path}\" must be a directory")]
    MustBeDirectory { container: String, path: String },
    #[error("extraction point is not a directory")]
    ExtractionPoint,
    #[error("archive entry {entry:?} refused: {why}")]
    Refused { entry: String, why: String },
    #[error("container {0} is being started, or copied by another ctr-cp while stopped: try again")]
    Busy(String),
    #[error("{0}: changed while it was being copied")]
    Changed(String),
    #[error("reading the archive: {0}")]
    Archive(#[source] io::Error),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Layer(#[from] crate::layer::LayerError),
}

/// `-a` and `-L`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// Keep the source's owners (else: the receiving side's user).
    pub archive: bool,
    /// Follow a symlink that is the source itself.
    pub follow_link: bool,
}

/// The host side of a copy.
#[derive(Debug, Clone)]
pub enum Local {
    Path(PathBuf),
    /// `-`: a tar on stdout (from a container) or stdin (into one).
    Stream,
}

/// A path as Docker reads it: cleaned, remembering whether it ended in
/// `/.` (a directory's contents) or `/` (it must be a directory).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    clean: String,
    contents: bool,
    asserts_dir: bool,
}

impl Spec {
    fn parse(path: &str) -> Spec {
        let contents = path == "." || path.ends_with("/.");
        Spec {
            clean: clean(path),
            contents,
            asserts_dir: contents || path.ends_with('/'),
        }
    }

    /// The last component; `None` for `/` (whose contents are copied).
    fn base(&self) -> Option<&str> {
        match self.clean.rsplit('/').next() {
            Some("") | Some(".") | None => None,
            Some(base) => Some(base),
        }
    }

    fn parent(&self) -> String {
        match self.clean.rsplit_once('/') {
            Some(("", _)) => "/".to_string(),
            Some((parent, _)) => parent.to_string(),
            None => ".".to_string(),
        }
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if out.last().is_some_and(|p| *p != "..") => {
                out.pop();
            }
            ".." if rooted => {}
            other => out.push(other),
        }
    }
    match (rooted, out.is_empty()) {
        (true, _) => format!("/{}", out.join("/")),
        (false, true) => ".".to_string(),
        (false, false) => out.join("/"),
    }
}

/// What is known of a destination.
struct Dest {
    spec: Spec,
    exists: bool,
    is_dir: bool,
}

/// Docker's `PrepareArchiveCopy`: the directory the archive is extracted
/// into, and the name the source's top entry takes there (`None`: its
/// children go straight in).
fn plan(
    source: &Spec,
    source_is_dir: bool,
    dest: &Dest,
) -> Result<(String, Option<String>), CopyError> {
    let contents = source_is_dir && (source.contents || source.base().is_none());
    let dest_base = dest.spec.base().map(str::to_string);
    if dest.exists && dest.is_dir {
        let name = if contents {
            None
        } else {
            source.base().map(str::to_string)
        };
        return Ok((dest.spec.clean.clone(), name));
    }
    if dest.exists && source_is_dir {
        return Err(CopyError::CannotCopyDir);
    }
    if !dest.exists && !source_is_dir && dest.spec.asserts_dir {
        return Err(CopyError::DirNotExists);
    }
    match dest_base {
        Some(base) => Ok((dest.spec.parent(), Some(base))),
        None => Err(CopyError::DirNotExists),
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(Errno) -> CopyError {
    let what = what.into();
    move |e| CopyError::Io {
        what,
        source: e.into(),
    }
}

/// An errno as Go words it: `no such file or directory`.
fn go_words(e: Errno) -> String {
    let text = io::Error::from(e).to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// Packs `top` as `name` on a thread while `extract` reads the stream, so
/// neither side holds the whole archive. If the extractor fails first, the
/// rest is drained so the packer is not killed by a broken pipe.
fn through_pipe(
    top: &OwnedFd,
    name: Option<&str>,
    extract: impl FnOnce(&mut dyn Read) -> Result<u64, CopyError>,
) -> Result<u64, CopyError> {
    let (reader, writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(io_err("creating a pipe"))?;
    let mut reader = std::fs::File::from(reader);
    std::thread::scope(|scope| {
        let packer = scope.spawn(move || {
            let mut packer = Packer::new(io::BufWriter::new(std::fs::File::from(writer)));
            packer.top(top, name)?;
            packer.finish()?.flush().map_err(|source| CopyError::Io {
                what: "writing the archive".to_string(),
                source,
            })
        });
        let extracted = extract(&mut reader);
        if extracted.is_err() {
            let _ = io::copy(&mut reader, &mut io::sink());
        }
        drop(reader);
        let packed = packer.join().expect("the packer does not panic");
        // The packer's own failure is the cause of the extractor's.
        packed?;
        extracted
    })
}

/// `ctr-cp CONTAINER:SRC DEST|-`: returns the bytes of file content copied.
pub fn from_container(
    store: &Store,
    record: &Record,
    container: &str,
    src: &str,
    dest: &Local,
    options: CopyOptions,
    stdout: impl Write,
) -> Result<u64, CopyError> {
    let root = Root::container(store, record)?;
    let source = Spec::parse(&format!("/{src}"));
    let follow = options.follow_link || source.asserts_dir;
    let not_found = || CopyError::NotFound {
        path: src.to_string(),
        container: container.to_string(),
    };
    let top = root
        .open(&source.clean, OFlags::PATH, follow)
        .map_err(|e| match e {
            Errno::NOENT => not_found(),
            Errno::NOTDIR => CopyError::NotADirectory(src.to_string()),
            e => io_err(src)(e),
        })?;
    let source_is_dir = is_dir(&top)?;
    if source.asserts_dir && !source_is_dir {
        return Err(CopyError::NotADirectory(src.to_string()));
    }
    let Local::Path(path) = dest else {
        // Docker's names: `DIR/…`, or `./` and its children for a
        // directory's contents.
        let name = match (source_is_dir && source.contents, source.base()) {
            (false, Some(base)) => base,
            _ => ".",
        };
        let mut packer = Packer::new(stdout);
        packer.top(&top, Some(name))?;
        let bytes = packer.bytes;
        packer.finish()?.flush().map_err(|source| CopyError::Io {
            what: "writing to stdout".to_string(),
            source,
        })?;
        return Ok(bytes);
    };
    let dest = local_dest(path)?;
    let (into, name) = plan(&source, source_is_dir, &dest)?;
    let host = Root::host(Path::new(&into))?;
    let ownership = if options.archive {
        Ownership::Keep
    } else {
        Ownership::As(
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        )
    };
    through_pipe(&top, name.as_deref(), |input| {
        Ok(unpack::unpack(input, &host, "", ownership)?.bytes)
    })
}

/// `ctr-cp SRC|- CONTAINER:DEST`: returns the bytes of file content copied.
pub fn into_container(
    store: &Store,
    record: &Record,
    container: &str,
    src: &Local,
    dest_path: &str,
    options: CopyOptions,
    stdin: impl Read,
) -> Result<u64, CopyError> {
    let root = Root::container(store, record)?;
    let spec = Spec::parse(&format!("/{dest_path}"));
    // A destination that is a symlink is followed, inside the container.
    let (exists, is_directory) = match root.open(&spec.clean, OFlags::PATH, true) {
        Ok(fd) => (true, is_dir(&fd)?),
        Err(Errno::NOENT | Errno::NOTDIR) => (false, false),
        Err(e) => return Err(io_err(dest_path)(e)),
    };
    let ownership = if options.archive {
        Ownership::Keep
    } else {
        Ownership::As(0, 0)
    };
    let Local::Path(path) = src else {
        if !is_directory {
            return Err(CopyError::MustBeDirectory {
                container: container.to_string(),
                path: dest_path.to_string(),
            });
        }
        return Ok(unpack::unpack(stdin, &root, &spec.clean, ownership)?.bytes);
    };
    let text = path.to_string_lossy();
    let source = Spec::parse(&absolute(&text));
    let follow = options.follow_link || source.asserts_dir;
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let top =
        rustix::fs::open(source.clean.as_str(), flags, rustix::fs::Mode::empty()).map_err(|e| {
            CopyError::LocalNotFound {
                path: source.clean.clone(),
                reason: go_words(e),
            }
        })?;
    let source_is_dir = is_dir(&top)?;
    if source.asserts_dir && !source_is_dir {
        return Err(CopyError::NotADirectory(text.into_owned()));
    }
    let dest = Dest {
        spec,
        exists,
        is_dir: is_directory,
    };
    let (into, name) = plan(&source, source_is_dir, &dest)?;
    match root.open(&into, OFlags::PATH | OFlags::DIRECTORY, true) {
        Ok(_) => {}
        Err(Errno::NOENT) => {
            return Err(CopyError::NotFound {
                path: into,
                container: container.to_string(),
            });
        }
        Err(Errno::NOTDIR) => return Err(CopyError::ExtractionPoint),
        Err(e) => return Err(io_err(into)(e)),
    }
    through_pipe(&top, name.as_deref(), |input| {
        Ok(unpack::unpack(input, &root, &into, ownership)?.bytes)
    })
}

fn is_dir(fd: &OwnedFd) -> Result<bool, CopyError> {
    let stat = rustix::fs::fstat(fd).map_err(io_err("stat"))?;
    Ok(FileType::from_raw_mode(stat.st_mode) == FileType::Directory)
}

/// `path` made absolute against the working directory, keeping a
/// trailing `/` or `/.` (which cleaning would drop).
fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        return path.to_string();
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    format!("{}/{path}", cwd.display())
}

/// The host destination, checked as Docker's CLI does first: its parent
/// must exist; a symlink there is followed (the host is the user's own).
fn local_dest(path: &Path) -> Result<Dest, CopyError> {
    let spec = Spec::parse(&absolute(&path.to_string_lossy()));
    let parent = spec.parent();
    if !Path::new(&parent).exists() {
        return Err(CopyError::OutputDir(parent));
    }
    let mut spec = spec;
    if std::fs::symlink_metadata(&spec.clean).is_ok_and(|m| m.file_type().is_symlink())
        && let Ok(target) = std::fs::canonicalize(&spec.clean)
    {
        spec.clean = target.to_string_lossy().into_owned();
    }
    let meta = std::fs::metadata(&spec.clean);
    Ok(Dest {
        exists: meta.is_ok(),
        is_dir: meta.is_ok_and(|m| m.is_dir()),
        spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(path: &str, exists: bool, is_dir: bool) -> Dest {
        Dest {
            spec: Spec::parse(path),
            exists,
            is_dir,
        }
    }

    fn plan_of(src: &str, src_dir: bool, d: Dest) -> Result<(String, Option<String>), String> {
        plan(&Spec::parse(src), src_dir, &d).map_err(|e| e.to_string())
    }

    #[test]
    fn docker_path_rules() {
        let some = |dir: &str, name: &str| Ok((dir.to_string(), Some(name.to_string())));
        // A file: into an existing directory under its own name...
        assert_eq!(
            plan_of("/etc/hosts", false, dest("/tmp/d", true, true)),
            some("/tmp/d", "hosts")
        );
        // ...over an existing file, or to a new name beside it.
        assert_eq!(
            plan_of("/etc/hosts", false, dest("/tmp/f", true, false)),
            some("/tmp", "f")
        );
        assert_eq!(
            plan_of("/etc/hosts", false, dest("/tmp/new", false, false)),
            some("/tmp", "new")
        );
        // ...never to a directory that does not exist.
        assert_eq!(
            plan_of("/etc/hosts", false, dest("/tmp/new/", false, false)),
            Err("no such directory".to_string())
        );
        // A directory: into one, as itself; its contents with `/.`.
        assert_eq!(
            plan_of("/etc", true, dest("/tmp/d", true, true)),
            some("/tmp/d", "etc")
        );
        assert_eq!(
            plan_of("/etc/.", true, dest("/tmp/d", true, true)),
            Ok(("/tmp/d".to_string(), None))
        );
        // A missing destination becomes the directory, with or without `/.`.
        assert_eq!(
            plan_of("/etc", true, dest("/tmp/new", false, false)),
            some("/tmp", "new")
        );
        assert_eq!(
            plan_of("/etc/.", true, dest("/tmp/new", false, false)),
            some("/tmp", "new")
        );
        assert_eq!(
            plan_of("/etc", true, dest("/tmp/f", true, false)),
            Err("cannot copy directory".to_string())
        );
        // The root's contents, as `/.`.
        assert_eq!(
            plan_of("/", true, dest("/tmp/d", true, true)),
            Ok(("/tmp/d".to_string(), None))
        );
    }

    #[test]
    fn paths_keep_what_their_trailing_characters_say() {
        let spec = Spec::parse("/a/b/.");
        assert_eq!(
            (spec.clean.as_str(), spec.contents, spec.asserts_dir),
            ("/a/b", true, true)
        );
        let spec = Spec::parse("/a/b/");
        assert_eq!(
            (spec.contents, spec.asserts_dir, spec.base()),
            (false, true, Some("b"))
        );
        assert_eq!(Spec::parse("/../../etc").clean, "/etc");
        assert_eq!(Spec::parse("/").base(), None);
        assert_eq!(Spec::parse("/x").parent(), "/");
    }
}
