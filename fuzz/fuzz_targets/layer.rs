//! The layer unpacker, as root, on hostile tars: it never panics and never
//! writes outside the directory it unpacks into. Each run unpacks into a
//! fresh directory inside a sandbox whose siblings are a `canary` directory
//! that must stay empty and a `victim` file that must keep its content and
//! its single link. After a first byte 0 the input is the layer's raw bytes;
//! after any other, a tar built from arbitrary entries: `..` and absolute
//! names, symlinks and hard links pointing out, whiteouts, special files.
#![no_main]

use arbitrary::Arbitrary;
use berth::Digest;
use libfuzzer_sys::fuzz_target;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::OnceLock;

const VICTIM: &[u8] = b"victim\n";

struct Sandbox {
    dir: PathBuf,
    canary: PathBuf,
    victim: PathBuf,
}

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("berth-fuzz-layer-")
            .tempdir()
            .expect("a sandbox dir")
            .keep();
        let canary = dir.join("canary");
        std::fs::create_dir(&canary).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, VICTIM).unwrap();
        Sandbox {
            dir,
            canary,
            victim,
        }
    })
}

/// Path pieces that matter to the unpacker.
const PIECES: &[&str] = &[
    "a",
    "b",
    "dir",
    "..",
    ".",
    "",
    ".wh.a",
    ".wh.b",
    ".wh.dir",
    ".wh..wh..opq",
    ".wh..wh.plnk",
    ".wh.",
    "canary",
    "victim",
];

#[derive(Arbitrary, Debug)]
struct Name {
    absolute: bool,
    trailing_slash: bool,
    pieces: Vec<u8>,
}

impl Name {
    fn render(&self) -> String {
        let pieces: Vec<&str> = self
            .pieces
            .iter()
            .take(6)
            .map(|&p| PIECES[p as usize % PIECES.len()])
            .collect();
        let mut out = pieces.join("/");
        if self.absolute {
            out.insert(0, '/');
        }
        if self.trailing_slash {
            out.push('/');
        }
        out
    }
}

#[derive(Arbitrary, Debug)]
enum Target {
    /// A name built like an entry's.
    Inside(Name),
    /// The canary directory or the victim file, reached relatively.
    UpToCanary,
    UpToVictim,
    UpUpToVictim,
    /// The same, by absolute path.
    AbsoluteCanary,
    AbsoluteVictim,
}

impl Target {
    fn render(&self) -> String {
        let sandbox = sandbox();
        match self {
            Target::Inside(name) => name.render(),
            Target::UpToCanary => "../canary".to_string(),
            Target::UpToVictim => "../victim".to_string(),
            Target::UpUpToVictim => "../../victim".to_string(),
            Target::AbsoluteCanary => sandbox.canary.to_string_lossy().into_owned(),
            Target::AbsoluteVictim => sandbox.victim.to_string_lossy().into_owned(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(Target),
    Hardlink(Target),
    Fifo,
    /// Only the whiteout device numbers and /dev/null: others are real devices.
    Char {
        null: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Entry {
    name: Name,
    kind: Kind,
    mode: u16,
    uid: u8,
    xattr: Option<(bool, Vec<u8>)>,
}

fn build(entries: &[Entry]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for entry in entries.iter().take(24) {
        let name = entry.name.render();
        let (kind, link, data): (tar::EntryType, String, &[u8]) = match &entry.kind {
            Kind::File(data) => (tar::EntryType::Regular, String::new(), data),
            Kind::Dir => (tar::EntryType::Directory, String::new(), &[]),
            Kind::Symlink(to) => (tar::EntryType::Symlink, to.render(), &[]),
            Kind::Hardlink(to) => (tar::EntryType::Link, to.render(), &[]),
            Kind::Fifo => (tar::EntryType::Fifo, String::new(), &[]),
            Kind::Char { .. } => (tar::EntryType::Char, String::new(), &[]),
        };
        if name.len() > 100 || link.len() > 100 {
            continue;
        }
        if let Some((trusted, value)) = &entry.xattr {
            // A PAX header carrying one xattr for the next entry.
            let key = if *trusted {
                "SCHILY.xattr.trusted.overlay.opaque"
            } else {
                "SCHILY.xattr.user.fuzz"
            };
            let _ = tar.append_pax_extensions([(key, value.as_slice())]);
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(u32::from(entry.mode) & 0o7777);
        header.set_uid(u64::from(entry.uid));
        header.set_gid(u64::from(entry.uid));
        header.set_mtime(1_600_000_000);
        header.set_size(data.len() as u64);
        if let Kind::Char { null } = entry.kind {
            let (major, minor) = if null { (1, 3) } else { (0, 0) };
            let _ = header.set_device_major(major);
            let _ = header.set_device_minor(minor);
        }
        // Written raw: the tar crate's own setters refuse `..` and absolute
        // names, which is what a hostile layer sends.
        let gnu = header.as_gnu_mut().expect("a GNU header");
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_cksum();
        tar.append(&header, data).expect("appending to a Vec");
    }
    tar.into_inner().expect("finishing a Vec")
}

fn check_sandbox(dest: &std::path::Path) {
    let sandbox = sandbox();
    let canary: Vec<_> = std::fs::read_dir(&sandbox.canary)
        .expect("the canary dir is still there")
        .collect();
    assert!(
        canary.is_empty(),
        "the unpacker wrote into the canary dir: {canary:?}"
    );
    let victim = std::fs::symlink_metadata(&sandbox.victim).expect("the victim is still there");
    assert!(
        victim.file_type().is_file(),
        "the victim is no longer a file"
    );
    assert_eq!(victim.nlink(), 1, "the victim was hard-linked");
    assert_eq!(
        std::fs::read(&sandbox.victim).unwrap(),
        VICTIM,
        "the victim was written"
    );
    for sibling in std::fs::read_dir(&sandbox.dir).unwrap() {
        let path = sibling.unwrap().path();
        assert!(
            path == sandbox.canary || path == sandbox.victim || path == dest,
            "the unpacker created {path:?} beside its directory"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let bytes = match data.split_first() {
        Some((0, raw)) => raw.to_vec(),
        Some((_, rest)) => {
            let unstructured = arbitrary::Unstructured::new(rest);
            match Vec::<Entry>::arbitrary_take_rest(unstructured) {
                Ok(entries) => build(&entries),
                Err(_) => return,
            }
        }
        None => return,
    };
    let sandbox = sandbox();
    let dest = tempfile::Builder::new()
        .prefix("layer-")
        .tempdir_in(&sandbox.dir)
        .expect("a fresh layer dir");
    let layer = Digest::of(b"fuzz layer");
    let _ = berth::layer::unpack(bytes.as_slice(), dest.path(), &layer, &Digest::of(&bytes));
    check_sandbox(dest.path());
    drop(dest);
});
