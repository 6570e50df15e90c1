//! What a build context's files hashed to, remembered from one build to the
//! next (`cache/context-files/<hash of the context's path>`), so that a
//! rebuild reads only the files that changed: BuildKit keeps such a
//! metadata cache too. A file is known by its device, inode, size and both
//! change times, as git's index knows it.
//!
//! The kernel stamps a write with a coarse clock, so a file written again
//! within the same tick keeps its times. An entry is therefore kept only
//! when the file had not changed for a while before it was read (git's
//! "racy clean" rule): any later write then lands on a later tick and
//! shows. A file that changes during the build is simply read again next
//! time. Only files under the context's own directory are remembered,
//! never a stage's root (`COPY --from`), whose inodes are made anew.

use crate::digest::Digest;
use crate::store::Store;
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// How long a file must have been left alone before its digest is kept.
/// Far above any kernel's timestamp tick (a jiffy, at most 10 ms).
const SETTLED_NANOS: i128 = 1_000_000_000;

/// Who a file is and when it last changed; any write changes one of these.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i128,
    ctime: i128,
}

impl Identity {
    fn of(meta: &fs::Metadata) -> Identity {
        let nanos = |secs: i64, nsec: i64| i128::from(secs) * 1_000_000_000 + i128::from(nsec);
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: nanos(meta.mtime(), meta.mtime_nsec()),
            ctime: nanos(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Entry {
    identity: Identity,
    digest: Digest,
}

/// The remembered digests of one context directory, or none at all (a
/// context from stdin or a URL, unpacked afresh each build).
#[derive(Debug, Default)]
pub struct FileDigests {
    memory: Option<Memory>,
}

/// What sources outside a context directory hash through: nothing kept.
pub static NONE: FileDigests = FileDigests { memory: None };

#[derive(Debug)]
struct Memory {
    root: PathBuf,
    file: PathBuf,
    /// Relative path → entry, as the last build left them.
    before: HashMap<String, Entry>,
    /// What this build hashed or found unchanged: all that is written back,
    /// so the memory never outgrows what the context's builds copy.
    now: Mutex<HashMap<String, Entry>>,
}

impl FileDigests {
    /// The memory of the context at `root`, empty if there is none yet or
    /// it cannot be read (it only ever saves work).
    pub fn load(store: &Store, root: &Path) -> FileDigests {
        // Named by where the context really is; matched against paths as
        // the context spells them.
        let Ok(real) = fs::canonicalize(root) else {
            return FileDigests::default();
        };
        let name = Digest::of(real.as_os_str().as_encoded_bytes());
        let file = store
            .root()
            .join("cache")
            .join("context-files")
            .join(name.hex());
        let before = fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        FileDigests {
            memory: Some(Memory {
                root: root.to_path_buf(),
                file,
                before,
                now: Mutex::default(),
            }),
        }
    }

    /// The content digest of the regular file at `path` as `meta` found it,
    /// if it is under the context and unchanged since a build hashed it.
    pub fn known(&self, path: &Path, meta: &fs::Metadata) -> Option<Digest> {
        let memory = self.memory.as_ref()?;
        let rel = memory.relative(path)?;
        let entry = memory.before.get(rel)?;
        if entry.identity != Identity::of(meta) {
            return None;
        }
        let mut now = memory.now.lock().unwrap_or_else(|e| e.into_inner());
        now.insert(rel.to_string(), entry.clone());
        Some(entry.digest.clone())
    }

    /// Remembers that the file at `path`, as `meta` found it before it was
    /// read, hashed to `digest`: only if it had settled by then.
    pub fn learn(&self, path: &Path, meta: &fs::Metadata, digest: &Digest) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        self.learn_at(now, path, meta, digest);
    }

    /// [`FileDigests::learn`] at `now`, in nanoseconds since the epoch.
    fn learn_at(&self, now: i128, path: &Path, meta: &fs::Metadata, digest: &Digest) {
        let Some(memory) = &self.memory else {
            return;
        };
        let Some(rel) = memory.relative(path) else {
            return;
        };
        let identity = Identity::of(meta);
        if now - identity.mtime.max(identity.ctime) < SETTLED_NANOS {
            return;
        }
        let entry = Entry {
            identity,
            digest: digest.clone(),
        };
        let mut kept = memory.now.lock().unwrap_or_else(|e| e.into_inner());
        kept.insert(rel.to_string(), entry);
    }

    /// Writes what this build knew back, when it differs from what was
    /// read: a temp file renamed over the old, never fsynced (a memory lost
    /// with the machine is only work to redo). Failures are ignored.
    pub fn save(&self, store: &Store) {
        let Some(memory) = &self.memory else {
            return;
        };
        let now = memory.now.lock().unwrap_or_else(|e| e.into_inner());
        if *now == memory.before {
            return;
        }
        let Some(dir) = memory.file.parent() else {
            return;
        };
        let _ = fs::create_dir_all(dir).and_then(|_| {
            let mut tmp = store
                .temp_file(".context-files-")
                .map_err(std::io::Error::other)?;
            serde_json::to_writer(&mut tmp, &*now)?;
            tmp.persist(&memory.file).map(|_| ()).map_err(|e| e.error)
        });
        forget_oldest(dir, MEMORIES);
    }
}

/// How many context directories are remembered: a store that builds in a
/// new temporary directory each time must not fill up with memories.
const MEMORIES: usize = 256;

/// Removes the least recently written memories beyond `keep`.
fn forget_oldest(dir: &Path, keep: usize) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut memories: Vec<(SystemTime, PathBuf)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            Some((e.metadata().ok()?.modified().ok()?, e.path()))
        })
        .collect();
    if memories.len() <= keep {
        return;
    }
    memories.sort();
    for (_, path) in &memories[..memories.len() - keep] {
        let _ = fs::remove_file(path);
    }
}

impl Memory {
    fn relative<'a>(&self, path: &'a Path) -> Option<&'a str> {
        path.strip_prefix(&self.root).ok()?.to_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settled(path: &Path) {
        let old = SystemTime::now() - Duration::from_secs(60);
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }

    #[test]
    fn a_settled_file_is_known_until_it_changes_and_a_fresh_one_never_is() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let ctx = dir.path().join("ctx");
        fs::create_dir(&ctx).unwrap();
        let file = ctx.join("a");
        fs::write(&file, "one").unwrap();
        let digest = Digest::of(b"one");

        // Written a moment ago: its ctime is now, so it is not kept.
        let digests = FileDigests::load(&store, &ctx);
        digests.learn(&file, &fs::metadata(&file).unwrap(), &digest);
        digests.save(&store);
        let digests = FileDigests::load(&store, &ctx);
        assert_eq!(digests.known(&file, &fs::metadata(&file).unwrap()), None);

        // Read two seconds after its last change: kept. (ctime cannot be
        // set back, so the clock is moved on instead.)
        let meta = fs::metadata(&file).unwrap();
        let later = Identity::of(&meta).ctime + 2 * SETTLED_NANOS;
        digests.learn_at(later, &file, &meta, &digest);
        digests.save(&store);
        let digests = FileDigests::load(&store, &ctx);
        assert_eq!(
            digests.known(&file, &fs::metadata(&file).unwrap()),
            Some(digest)
        );

        // Rewritten with the same size and its old mtime put back: the
        // ctime still tells.
        fs::write(&file, "two").unwrap();
        settled(&file);
        assert_eq!(digests.known(&file, &fs::metadata(&file).unwrap()), None);

        // Nothing outside the context is ever remembered.
        let outside = dir.path().join("b");
        fs::write(&outside, "one").unwrap();
        let meta = fs::metadata(&outside).unwrap();
        let later = Identity::of(&meta).ctime + 2 * SETTLED_NANOS;
        digests.learn_at(later, &outside, &meta, &Digest::of(b"one"));
        let kept = digests.memory.as_ref().unwrap().now.lock().unwrap().clone();
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["a"], "{kept:?}");
    }

    #[test]
    fn only_the_newest_memories_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..5u64 {
            let path = dir.path().join(format!("m{n}"));
            fs::write(&path, "{}").unwrap();
            let written = SystemTime::now() - Duration::from_secs(100 - n);
            fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(written)
                .unwrap();
        }
        forget_oldest(dir.path(), 3);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["m2", "m3", "m4"]);
    }
}
