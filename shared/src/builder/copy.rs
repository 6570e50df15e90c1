//! COPY and ADD: walking the matched sources (hashing them for the cache)
//! and writing them into a step's mounted root with Docker's directory
//! semantics; every destination lookup stays inside that root.

use super::archive::{ArchiveError, archive, extract_archive};
use super::context::{Context, Ignore, Source};
use super::file_digests::FileDigests;
use crate::digest::{Digest, HashingWriter};
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use rustix::io::Errno;
use std::fs;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot copy to {dest}: {why}")]
    Dest { dest: String, why: String },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CopyError + use<> {
    let path = path.to_path_buf();
    move |source| CopyError::Io { path, source }
}

/// One file, directory or link under a source, `rel` relative to the
/// source itself (empty for the source).
#[derive(Debug)]
pub struct Item {
    pub rel: String,
    pub path: PathBuf,
    pub meta: fs::Metadata,
}

/// Everything a source brings, in a stable order (parents first, names
/// sorted), leaving out what `.dockerignore` excludes and what the
/// instruction's `--exclude` patterns match (relative to the source).
pub fn walk(source: &Source, context: &Context, excludes: &Ignore) -> Result<Vec<Item>, CopyError> {
    let meta = fs::symlink_metadata(&source.path).map_err(io_err(&source.path))?;
    let is_dir = meta.is_dir();
    let mut items = vec![Item {
        rel: String::new(),
        path: source.path.clone(),
        meta,
    }];
    if is_dir {
        walk_dir(&source.path, "", &source.rel, context, excludes, &mut items)?;
    }
    Ok(items)
}

fn walk_dir(
    dir: &Path,
    rel: &str,
    context_rel: &str,
    context: &Context,
    excludes: &Ignore,
    items: &mut Vec<Item>,
) -> Result<(), CopyError> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_err(dir))?;
    names.sort();
    for name in names {
        let name = name.to_string_lossy().into_owned();
        let path = dir.join(&name);
        let child_rel = join(rel, &name);
        let in_context = join(context_rel, &name);
        let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let excluded = context.excluded(&in_context) || excludes.excludes(&child_rel);
        let exceptions = context.ignore().has_exceptions() || excludes.has_exceptions();
        if excluded && !(meta.is_dir() && exceptions) {
            continue;
        }
        let is_dir = meta.is_dir();
        let at = items.len();
        items.push(Item {
            rel: child_rel.clone(),
            path: path.clone(),
            meta,
        });
        if is_dir {
            walk_dir(&path, &child_rel, &in_context, context, excludes, items)?;
            // An excluded directory stays only for what it brings back.
            if excluded && items.len() == at + 1 {
                items.pop();
            }
        }
    }
    Ok(())
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}/{b}")
    }
}

/// The cache's view of what a COPY copies: names, types, modes, link
/// targets and content, but not timestamps (as BuildKit's checksums). A
/// file's content is read only when `digests` does not know it already.
pub fn hash_sources<'a>(
    sources: impl IntoIterator<Item = &'a (Source, Vec<Item>)>,
    digests: &FileDigests,
) -> Result<Digest, CopyError> {
    let mut hasher = Hasher(HashingWriter::new(io::sink()));
    let mut buf = vec![0u8; 64 * 1024];
    for (source, items) in sources {
        hasher.update(format!("source {}\0", source.rel).as_bytes());
        for item in items {
            let kind = item.meta.file_type();
            let mode = item.meta.mode() & 0o7777;
            hasher.update(format!("{}\0{:o}\0{:o}\0", item.rel, kind_bits(&kind), mode).as_bytes());
            if kind.is_file() {
                let content = match digests.known(&item.path, &item.meta) {
                    Some(known) => known,
                    None => {
                        let content = hash_file(&item.path, &mut buf)?;
                        digests.learn(&item.path, &item.meta, &content);
                        content
                    }
                };
                hasher.update(content.to_string().as_bytes());
            } else if kind.is_symlink() {
                let target = fs::read_link(&item.path).map_err(io_err(&item.path))?;
                hasher.update(target.to_string_lossy().as_bytes());
            }
            hasher.update(b"\n");
        }
    }
    Ok(hasher.0.finish().0)
}

fn hash_file(path: &Path, buf: &mut [u8]) -> Result<Digest, CopyError> {
    let mut file = fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = HashingWriter::new(io::sink());
    loop {
        let n = file.read(buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        let _ = io::Write::write_all(&mut hasher, &buf[..n]);
    }
    Ok(hasher.finish().0)
}

struct Hasher(HashingWriter<io::Sink>);

impl Hasher {
    fn update(&mut self, bytes: &[u8]) {
        let _ = io::Write::write_all(&mut self.0, bytes);
    }
}

fn kind_bits(kind: &fs::FileType) -> u32 {
    if kind.is_dir() {
        1
    } else if kind.is_symlink() {
        2
    } else if kind.is_file() {
        3
    } else {
        4
    }
}

/// How the copied files are owned and moded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attributes {
    /// `--chown`; Docker's default is 0:0.
    pub owner: Option<(u32, u32)>,
    /// `--chmod`, applied to files and directories alike.
    pub chmod: Option<u32>,
}

/// Writes sources into the root filesystem at `rootfs`. `dest` is absolute
/// (the WORKDIR already applied); `dest_is_dir` when it ended with `/` or
/// several sources were given. `extract`: ADD's local archive unpacking.
pub fn copy_into(
    rootfs: &Path,
    sources: &[(Source, Vec<Item>)],
    dest: &str,
    dest_is_dir: bool,
    attrs: Attributes,
    extract: bool,
) -> Result<(), CopyError> {
    let root = Root::open(rootfs)?;
    let mut dir_times = Vec::new();
    for (source, items) in sources {
        let top = &items[0];
        if top.meta.is_dir() {
            root.mkdir_all(dest, attrs.owner)?;
            for item in &items[1..] {
                let target = join(dest.trim_end_matches('/'), &item.rel);
                root.write(&target, item, attrs, &mut dir_times)?;
            }
            continue;
        }
        if extract
            && top.meta.is_file()
            && let Some(plain) = archive(&top.path)?
        {
            let dir = root.mkdir_all(dest, attrs.owner)?;
            extract_archive(&top.path, plain, &dir)?;
            continue;
        }
        let base = source.rel.rsplit('/').next().unwrap_or(&source.rel);
        let into_dir = dest_is_dir || root.is_dir(dest);
        let target = if into_dir {
            root.mkdir_all(dest, attrs.owner)?;
            join(dest.trim_end_matches('/'), base)
        } else {
            let parent = dest.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
            root.mkdir_all(parent, attrs.owner)?;
            dest.to_string()
        };
        root.write(&target, top, attrs, &mut dir_times)?;
    }
    // Children changed their parents' times: directories are dated last.
    for (path, at) in dir_times.iter().rev() {
        root.set_times(path, *at)?;
    }
    Ok(())
}

/// `mkdir -p` of an absolute path inside the root (WORKDIR).
pub fn mkdir_in(rootfs: &Path, path: &str) -> Result<(), CopyError> {
    Root::open(rootfs)?.mkdir_all(path, None).map(|_| ())
}

/// Writes a heredoc's text as a file (COPY <<EOF).
pub fn write_text(
    rootfs: &Path,
    dest: &str,
    text: &str,
    attrs: Attributes,
    mtime: Timespec,
) -> Result<(), CopyError> {
    let root = Root::open(rootfs)?;
    let parent = dest.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
    let dir = root.mkdir_all(parent, attrs.owner)?;
    let name = dest.rsplit('/').next().unwrap_or(dest);
    let fd = create_file(&dir, name).map_err(|e| io_err(&root.show(dest))(e.into()))?;
    let mut file = fs::File::from(fd);
    io::Write::write_all(&mut file, text.as_bytes()).map_err(io_err(&root.show(dest)))?;
    let (uid, gid) = attrs.owner.unwrap_or((0, 0));
    rustix::fs::fchown(
        &file,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .and_then(|()| rustix::fs::fchmod(&file, Mode::from_raw_mode(attrs.chmod.unwrap_or(0o644))))
    .and_then(|()| {
        rustix::fs::futimens(
            &file,
            &Timestamps {
                last_access: mtime,
                last_modification: mtime,
            },
        )
    })
    .map_err(|e| io_err(&root.show(dest))(e.into()))
}

fn create_file(dir: &OwnedFd, name: &str) -> rustix::io::Result<OwnedFd> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir() => {
            remove_tree(dir, name)?
        }
        Ok(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty())?,
        Err(_) => {}
    }
    rustix::fs::openat(
        dir,
        name,
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
}

fn remove_tree(parent: &OwnedFd, name: &str) -> rustix::io::Result<()> {
    let dir = rustix::fs::openat(
        parent,
        name,
        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let children: Vec<(String, bool)> = rustix::fs::Dir::read_from(&dir)?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_bytes() != b"." && e.file_name().to_bytes() != b"..")
        .map(|e| {
            (
                String::from_utf8_lossy(e.file_name().to_bytes()).into_owned(),
                e.file_type() == rustix::fs::FileType::Directory,
            )
        })
        .collect();
    for (child, is_dir) in children {
        if is_dir {
            remove_tree(&dir, &child)?;
        } else {
            rustix::fs::unlinkat(&dir, child.as_str(), AtFlags::empty())?;
        }
    }
    rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)
}

/// A root filesystem in which every path is resolved as if it were `/`.
struct Root {
    path: PathBuf,
    fd: OwnedFd,
}

impl Root {
    fn open(path: &Path) -> Result<Root, CopyError> {
        let fd = rustix::fs::open(
            path,
            OFlags::DIRECTORY | OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err(path)(e.into()))?;
        Ok(Root {
            path: path.to_path_buf(),
            fd,
        })
    }

    /// How a path inside the root is named in errors.
    fn show(&self, path: &str) -> PathBuf {
        PathBuf::from(if path.is_empty() { "/" } else { path })
    }

    fn open_dir(&self, path: &str) -> rustix::io::Result<OwnedFd> {
        let rel = path.trim_start_matches('/');
        rustix::fs::openat2(
            &self.fd,
            if rel.is_empty() { "." } else { rel },
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
    }

    fn is_dir(&self, path: &str) -> bool {
        self.open_dir(path).is_ok()
    }

    /// `mkdir -p` inside the root; new directories get `owner` (Docker's
    /// rule for directories a COPY creates) and mode 0755.
    fn mkdir_all(&self, path: &str, owner: Option<(u32, u32)>) -> Result<OwnedFd, CopyError> {
        let mut current = String::new();
        let mut dir = self
            .open_dir("")
            .map_err(|e| io_err(&self.path)(e.into()))?;
        for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
            current = join(&current, part);
            match rustix::fs::mkdirat(&dir, part, Mode::from_raw_mode(0o755)) {
                Ok(()) => {
                    let (uid, gid) = owner.unwrap_or((0, 0));
                    rustix::fs::chownat(
                        &dir,
                        part,
                        Some(rustix::fs::Uid::from_raw(uid)),
                        Some(rustix::fs::Gid::from_raw(gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| io_err(&self.show(&current))(e.into()))?;
                }
                Err(Errno::EXIST) => {}
                Err(e) => return Err(io_err(&self.show(&current))(e.into())),
            }
            dir = self.open_dir(&current).map_err(|e| match e {
                Errno::NOTDIR => CopyError::Dest {
                    dest: format!("/{current}"),
                    why: "not a directory".to_string(),
                },
                e => io_err(&self.show(&current))(e.into()),
            })?;
        }
        Ok(dir)
    }

    /// Writes one item at `target` (absolute in the root), its parent
    /// already existing.
    fn write(
        &self,
        target: &str,
        item: &Item,
        attrs: Attributes,
        dir_times: &mut Vec<(String, Timespec)>,
    ) -> Result<(), CopyError> {
        let (parent_path, name) = match target.rsplit_once('/') {
            Some((p, n)) => (p, n),
            None => ("", target),
        };
        let parent = self
            .open_dir(parent_path)
            .map_err(|e| io_err(&self.show(parent_path))(e.into()))?;
        let err = |e: Errno| io_err(&self.show(target))(e.into());
        let meta = &item.meta;
        let kind = meta.file_type();
        let (uid, gid) = attrs.owner.unwrap_or((0, 0));
        let uid = Some(rustix::fs::Uid::from_raw(uid));
        let gid = Some(rustix::fs::Gid::from_raw(gid));
        let mode = Mode::from_raw_mode(attrs.chmod.unwrap_or(meta.mode() & 0o7777));
        let mtime = Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec() as _,
        };
        if kind.is_dir() {
            match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir() => {}
                Ok(_) => {
                    rustix::fs::unlinkat(&parent, name, AtFlags::empty()).map_err(err)?;
                    rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755)).map_err(err)?;
                }
                Err(_) => {
                    rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755)).map_err(err)?
                }
            }
            rustix::fs::chownat(&parent, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
                .and_then(|()| rustix::fs::chmodat(&parent, name, mode, AtFlags::empty()))
                .map_err(err)?;
            dir_times.push((target.to_string(), mtime));
            return Ok(());
        }
        if kind.is_symlink() {
            let link = fs::read_link(&item.path).map_err(io_err(&item.path))?;
            match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir() => {
                    remove_tree(&parent, name).map_err(err)?
                }
                Ok(_) => rustix::fs::unlinkat(&parent, name, AtFlags::empty()).map_err(err)?,
                Err(_) => {}
            }
            rustix::fs::symlinkat(link.as_os_str(), &parent, name).map_err(err)?;
            return rustix::fs::chownat(&parent, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
                .and_then(|()| {
                    rustix::fs::utimensat(
                        &parent,
                        name,
                        &Timestamps {
                            last_access: mtime,
                            last_modification: mtime,
                        },
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                })
                .map_err(err);
        }
        if kind.is_file() {
            let mut from = fs::File::open(&item.path).map_err(io_err(&item.path))?;
            let fd = create_file(&parent, name).map_err(err)?;
            let mut to = fs::File::from(fd);
            io::copy(&mut from, &mut to).map_err(io_err(&self.show(target)))?;
            return rustix::fs::fchown(&to, uid, gid)
                .and_then(|()| rustix::fs::fchmod(&to, mode))
                .and_then(|()| {
                    rustix::fs::futimens(
                        &to,
                        &Timestamps {
                            last_access: mtime,
                            last_modification: mtime,
                        },
                    )
                })
                .map_err(err);
        }
        // Devices and fifos from a stage's root (COPY --from) are recreated.
        let file_type = if kind.is_char_device() {
            rustix::fs::FileType::CharacterDevice
        } else if kind.is_block_device() {
            rustix::fs::FileType::BlockDevice
        } else if kind.is_fifo() {
            rustix::fs::FileType::Fifo
        } else {
            return Ok(());
        };
        let _ = rustix::fs::unlinkat(&parent, name, AtFlags::empty());
        rustix::fs::mknodat(&parent, name, file_type, mode, meta.rdev()).map_err(err)?;
        rustix::fs::chownat(&parent, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW).map_err(err)
    }

    fn set_times(&self, path: &str, at: Timespec) -> Result<(), CopyError> {
        let dir = self
            .open_dir(path)
            .map_err(|e| io_err(&self.show(path))(e.into()))?;
        rustix::fs::futimens(
            &dir,
            &Timestamps {
                last_access: at,
                last_modification: at,
            },
        )
        .map_err(|e| io_err(&self.show(path))(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::file_digests::NONE;

    fn source(root: &Path, rel: &str) -> Source {
        Source {
            rel: rel.to_string(),
            path: root.join(rel),
        }
    }

    fn walked(ctx: &Context, root: &Path, rels: &[&str]) -> Vec<(Source, Vec<Item>)> {
        rels.iter()
            .map(|r| {
                let s = source(root, r);
                let items = walk(&s, ctx, &Ignore::default()).unwrap();
                (s, items)
            })
            .collect()
    }

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        let rootfs = dir.path().join("rootfs");
        fs::create_dir_all(ctx.join("dir/sub")).unwrap();
        fs::write(ctx.join("dir/a"), "a").unwrap();
        fs::write(ctx.join("dir/sub/b"), "b").unwrap();
        fs::write(ctx.join("dir/skip.log"), "x").unwrap();
        fs::write(ctx.join("f"), "f").unwrap();
        fs::write(ctx.join(".dockerignore"), "dir/*.log\n").unwrap();
        fs::create_dir_all(rootfs.join("existing")).unwrap();
        std::os::unix::fs::symlink("/existing", rootfs.join("link")).unwrap();
        (dir, ctx, rootfs)
    }

    #[test]
    fn a_directory_copies_its_contents_not_itself() {
        let (_d, ctx_dir, rootfs) = setup();
        let ctx = Context::open(&ctx_dir).unwrap();
        let sources = walked(&ctx, &ctx_dir, &["dir"]);
        copy_into(
            &rootfs,
            &sources,
            "/app",
            false,
            Attributes::default(),
            false,
        )
        .unwrap();
        assert_eq!(fs::read_to_string(rootfs.join("app/a")).unwrap(), "a");
        assert_eq!(fs::read_to_string(rootfs.join("app/sub/b")).unwrap(), "b");
        assert!(!rootfs.join("app/skip.log").exists());
        assert!(!rootfs.join("app/dir").exists());
    }

    #[test]
    fn a_file_goes_into_an_existing_directory_or_becomes_the_destination() {
        let (_d, ctx_dir, rootfs) = setup();
        let ctx = Context::open(&ctx_dir).unwrap();
        let sources = walked(&ctx, &ctx_dir, &["f"]);
        copy_into(
            &rootfs,
            &sources,
            "/existing",
            false,
            Attributes::default(),
            false,
        )
        .unwrap();
        assert!(rootfs.join("existing/f").is_file());
        copy_into(
            &rootfs,
            &sources,
            "/renamed",
            false,
            Attributes::default(),
            false,
        )
        .unwrap();
        assert!(rootfs.join("renamed").is_file());
        copy_into(
            &rootfs,
            &sources,
            "/new/dir/",
            true,
            Attributes::default(),
            false,
        )
        .unwrap();
        assert!(rootfs.join("new/dir/f").is_file());
        // Through the image's absolute symlink, resolved inside the root.
        copy_into(
            &rootfs,
            &sources,
            "/link/",
            true,
            Attributes::default(),
            false,
        )
        .unwrap();
        assert!(rootfs.join("existing/f").is_file());
    }

    #[test]
    fn chown_and_chmod_apply_to_files_and_created_dirs() {
        let (_d, ctx_dir, rootfs) = setup();
        let ctx = Context::open(&ctx_dir).unwrap();
        let sources = walked(&ctx, &ctx_dir, &["dir"]);
        let attrs = Attributes {
            owner: Some((1000, 1001)),
            chmod: Some(0o640),
        };
        copy_into(&rootfs, &sources, "/x/y", false, attrs, false).unwrap();
        for path in ["x", "x/y"] {
            let m = fs::metadata(rootfs.join(path)).unwrap();
            assert_eq!((m.uid(), m.gid()), (1000, 1001), "{path}");
        }
        let m = fs::metadata(rootfs.join("x/y/a")).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1000, 1001, 0o640));
    }

    #[test]
    fn the_hash_follows_content_and_names_but_not_times() {
        let (_d, ctx_dir, _rootfs) = setup();
        let ctx = Context::open(&ctx_dir).unwrap();
        let before = hash_sources(&walked(&ctx, &ctx_dir, &["dir"]), &NONE).unwrap();
        let file = fs::File::options()
            .write(true)
            .open(ctx_dir.join("dir/a"))
            .unwrap();
        file.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(
            before,
            hash_sources(&walked(&ctx, &ctx_dir, &["dir"]), &NONE).unwrap()
        );
        fs::write(ctx_dir.join("dir/skip.log"), "ignored anyway").unwrap();
        assert_eq!(
            before,
            hash_sources(&walked(&ctx, &ctx_dir, &["dir"]), &NONE).unwrap()
        );
        fs::write(ctx_dir.join("dir/sub/b"), "changed").unwrap();
        assert_ne!(
            before,
            hash_sources(&walked(&ctx, &ctx_dir, &["dir"]), &NONE).unwrap()
        );
    }

    #[test]
    fn add_extracts_local_tars_and_copies_other_files() {
        let (_d, ctx_dir, rootfs) = setup();
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        h.set_mode(0o600);
        h.set_uid(7);
        h.set_gid(0);
        h.set_mtime(0);
        tar.append_data(&mut h, "in/tar.txt", &b"hi"[..]).unwrap();
        let plain = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &plain).unwrap();
        fs::write(ctx_dir.join("a.tar.gz"), gz.finish().unwrap()).unwrap();
        let ctx = Context::open(&ctx_dir).unwrap();
        let sources = walked(&ctx, &ctx_dir, &["a.tar.gz", "f"]);
        copy_into(
            &rootfs,
            &sources,
            "/opt/",
            true,
            Attributes::default(),
            true,
        )
        .unwrap();
        let m = fs::metadata(rootfs.join("opt/in/tar.txt")).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o777), (7, 0o600));
        assert!(rootfs.join("opt/f").is_file());
        assert!(archive(&ctx_dir.join("f")).unwrap().is_none());
    }

    #[test]
    fn add_extracts_xz_bzip2_and_zstd_tars_too() {
        let (_d, ctx_dir, rootfs) = setup();
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        tar.append_data(&mut h, "z", &b"z"[..]).unwrap();
        let plain = tar.into_inner().unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &plain[..], &mut xz).unwrap();
        fs::write(ctx_dir.join("a.tar.xz"), xz).unwrap();
        fs::write(
            ctx_dir.join("b.tar.zst"),
            zstd::encode_all(&plain[..], 3).unwrap(),
        )
        .unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        std::io::Write::write_all(&mut bz, &plain).unwrap();
        fs::write(ctx_dir.join("c.tar.bz2"), bz.finish().unwrap()).unwrap();
        // bzip2 magic on bytes that are not bzip2: copied as they are.
        fs::write(ctx_dir.join("fake.bz2"), b"BZh9 but not really").unwrap();
        assert!(archive(&ctx_dir.join("fake.bz2")).unwrap().is_none());
        let ctx = Context::open(&ctx_dir).unwrap();
        for (name, dest) in [
            ("a.tar.xz", "/xz"),
            ("b.tar.zst", "/zst"),
            ("c.tar.bz2", "/bz2"),
        ] {
            let sources = walked(&ctx, &ctx_dir, &[name]);
            copy_into(&rootfs, &sources, dest, false, Attributes::default(), true).unwrap();
            assert_eq!(
                fs::read_to_string(rootfs.join(&dest[1..]).join("z")).unwrap(),
                "z"
            );
        }
    }
}
