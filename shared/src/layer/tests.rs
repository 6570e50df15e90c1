//! Unit tests of `layer`.

use super::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_600_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn file(tar: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
    tar.append_data(&mut h, path, data).unwrap();
}

fn raw_name(
    tar: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    path: &str,
    link: &str,
    data: &[u8],
) {
    // The tar crate's safe setters refuse `..` and absolute names; a
    // hostile layer writes them raw, so do we.
    let mut h = header(kind, 0o644, data.len() as u64);
    let gnu = h.as_gnu_mut().unwrap();
    gnu.name[..path.len()].copy_from_slice(path.as_bytes());
    gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_cksum();
    tar.append(&h, data).unwrap();
}

fn apply(bytes: &[u8]) -> (tempfile::TempDir, Result<(), LayerError>) {
    let dir = tempfile::tempdir().unwrap();
    let layer = Digest::of(b"test layer");
    let result = unpack(bytes, dir.path(), &layer, &Digest::of(bytes));
    (dir, result)
}

#[test]
fn chain_ids_follow_the_oci_rule() {
    let a = Digest::of(b"a");
    let b = Digest::of(b"b");
    let ids = chain_ids(&[a.clone(), b.clone()]);
    assert_eq!(ids[0], a);
    assert_eq!(ids[1], Digest::of(format!("{a} {b}").as_bytes()));
}

#[test]
fn files_links_modes_and_times_are_kept() {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Directory, 0o750, 0);
    h.set_uid(12);
    h.set_gid(34);
    tar.append_data(&mut h, "d/", &[][..]).unwrap();
    let mut h = header(tar::EntryType::Regular, 0o4755, 2);
    h.set_uid(1000);
    tar.append_data(&mut h, "d/f", &b"hi"[..]).unwrap();
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    tar.append_link(&mut h, "d/s", "/etc/passwd").unwrap();
    let mut h = header(tar::EntryType::Link, 0o644, 0);
    tar.append_link(&mut h, "d/h", "d/f").unwrap();
    let mut h = header(tar::EntryType::Fifo, 0o600, 0);
    tar.append_data(&mut h, "d/p", &[][..]).unwrap();
    let bytes = tar.into_inner().unwrap();
    let (dir, result) = apply(&bytes);
    result.unwrap();
    let d = std::fs::metadata(dir.path().join("d")).unwrap();
    assert_eq!((d.mode() & 0o7777, d.uid(), d.gid()), (0o750, 12, 34));
    assert_eq!(d.mtime(), 1_600_000_000);
    let f = std::fs::metadata(dir.path().join("d/f")).unwrap();
    assert_eq!((f.mode() & 0o7777, f.uid(), f.nlink()), (0o4755, 1000, 2));
    assert_eq!(
        std::fs::read_link(dir.path().join("d/s")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert!(
        std::fs::symlink_metadata(dir.path().join("d/p"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let mut tar = tar::Builder::new(Vec::new());
    file(&mut tar, "a/.wh..wh..opq", b"");
    file(&mut tar, "a/.wh.gone", b"");
    let bytes = tar.into_inner().unwrap();
    let (dir, result) = apply(&bytes);
    result.unwrap();
    let gone = std::fs::symlink_metadata(dir.path().join("a/gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    let mut value = [0u8; 4];
    let n =
        rustix::fs::getxattr(dir.path().join("a"), "trusted.overlay.opaque", &mut value).unwrap();
    assert_eq!(&value[..n], b"y");
    assert!(!dir.path().join("a/.wh..wh..opq").exists());
}

#[test]
fn compressed_layers_are_detected_and_diff_id_checked() {
    let mut tar = tar::Builder::new(Vec::new());
    file(&mut tar, "x", b"content");
    let plain = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    io::Write::write_all(&mut gz, &plain).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&plain[..], 1).unwrap();
    for blob in [&plain, &gz, &zst] {
        let dir = tempfile::tempdir().unwrap();
        unpack(
            &blob[..],
            dir.path(),
            &Digest::of(blob),
            &Digest::of(&plain),
        )
        .unwrap();
        assert_eq!(std::fs::read(dir.path().join("x")).unwrap(), b"content");
    }
    let dir = tempfile::tempdir().unwrap();
    let wrong = Digest::of(b"other");
    let err = unpack(&gz[..], dir.path(), &Digest::of(&gz), &wrong).unwrap_err();
    assert!(matches!(err, LayerError::DiffIdMismatch { .. }), "{err}");
}

#[test]
fn dot_dot_entries_are_refused() {
    let mut tar = tar::Builder::new(Vec::new());
    raw_name(
        &mut tar,
        tar::EntryType::Regular,
        "a/../../escaped",
        "",
        b"x",
    );
    let (dir, result) = apply(&tar.into_inner().unwrap());
    let err = result.unwrap_err();
    assert!(err.to_string().contains("a/../../escaped"), "{err}");
    assert!(!dir.path().parent().unwrap().join("escaped").exists());
}

#[test]
fn absolute_entries_are_refused() {
    let mut tar = tar::Builder::new(Vec::new());
    raw_name(
        &mut tar,
        tar::EntryType::Regular,
        "/tmp/berth-absolute",
        "",
        b"x",
    );
    let err = apply(&tar.into_inner().unwrap()).1.unwrap_err();
    assert!(err.to_string().contains("absolute path"), "{err}");
}

#[test]
fn a_root_entry_written_as_slash_is_the_layer_root() {
    // umoci writes the root directory's own entry as "/".
    let mut tar = tar::Builder::new(Vec::new());
    raw_name(&mut tar, tar::EntryType::Directory, "/", "", b"");
    raw_name(&mut tar, tar::EntryType::Regular, "bin/tool", "", b"x");
    let (dir, result) = apply(&tar.into_inner().unwrap());
    result.unwrap();
    assert!(dir.path().join("bin/tool").is_file());
}

#[test]
fn writes_through_a_planted_symlink_are_refused() {
    let outside = tempfile::tempdir().unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    tar.append_link(&mut h, "evil", outside.path()).unwrap();
    file(&mut tar, "evil/pwned", b"x");
    let err = apply(&tar.into_inner().unwrap()).1.unwrap_err();
    assert!(err.to_string().contains("\"evil/pwned\""), "{err}");
    assert!(err.to_string().contains("symlink"), "{err}");
    assert!(!outside.path().join("pwned").exists());
}

#[test]
fn hardlinks_out_of_the_layer_are_refused() {
    for target in ["/etc/shadow", "../../etc/shadow"] {
        let mut tar = tar::Builder::new(Vec::new());
        raw_name(&mut tar, tar::EntryType::Link, "shadow", target, b"");
        let (dir, result) = apply(&tar.into_inner().unwrap());
        let err = result.unwrap_err();
        assert!(err.to_string().contains("\"shadow\""), "{err}");
        assert!(!dir.path().join("shadow").exists());
    }
}

#[test]
fn hardlinks_through_a_symlink_are_refused() {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    tar.append_link(&mut h, "etc", "/etc").unwrap();
    raw_name(&mut tar, tar::EntryType::Link, "shadow", "etc/shadow", b"");
    let (dir, result) = apply(&tar.into_inner().unwrap());
    assert!(result.unwrap_err().to_string().contains("symlink"));
    assert!(!dir.path().join("shadow").exists());
}

#[test]
fn a_directory_replaced_by_a_symlink_is_not_written_through_by_later_entries() {
    // The unpacker keeps the last entry's parent directories open; an entry
    // that swaps one of them for a symlink must not leave a later entry
    // writing through the old descriptor, nor through the new link.
    let outside = tempfile::tempdir().unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    file(&mut tar, "a/b/first", b"1");
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    tar.append_link(&mut h, "a/b", outside.path()).unwrap();
    file(&mut tar, "a/b/second", b"2");
    let (dir, result) = apply(&tar.into_inner().unwrap());
    let err = result.unwrap_err();
    assert!(err.to_string().contains("\"a/b/second\""), "{err}");
    assert!(err.to_string().contains("symlink"), "{err}");
    assert!(!outside.path().join("second").exists());
    assert!(!outside.path().join("first").exists());
    assert!(dir.path().join("a/b").is_symlink());
}

#[test]
fn a_directory_replaced_by_a_file_then_a_directory_holds_only_the_new_entries() {
    let mut tar = tar::Builder::new(Vec::new());
    file(&mut tar, "a/b/old", b"old");
    file(&mut tar, "a", b"now a file");
    file(&mut tar, "a/b/new", b"new");
    let (_, result) = apply(&tar.into_inner().unwrap());
    assert!(result.unwrap_err().to_string().contains("not a directory"));

    let mut tar = tar::Builder::new(Vec::new());
    file(&mut tar, "a/b/old", b"old");
    let mut h = header(tar::EntryType::Regular, 0o644, 1);
    tar.append_data(&mut h, "a/b", &b"f"[..]).unwrap();
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    tar.append_data(&mut h, "a/b", &b""[..]).unwrap();
    file(&mut tar, "a/b/new", b"new");
    let (dir, result) = apply(&tar.into_inner().unwrap());
    result.unwrap();
    assert!(!dir.path().join("a/b/old").exists());
    assert_eq!(std::fs::read(dir.path().join("a/b/new")).unwrap(), b"new");
}

#[test]
fn paths_deeper_than_the_held_directories_are_unpacked() {
    // Two files 200 directories down, then one back up at 40: the walk
    // holds descriptors for the first 64 only and walks the rest afresh.
    let deep = vec!["d"; 200].join("/");
    let mut tar = tar::Builder::new(Vec::new());
    file(&mut tar, &format!("{deep}/one"), b"1");
    file(&mut tar, &format!("{deep}/two"), b"2");
    file(
        &mut tar,
        &format!("{}/three", vec!["d"; 40].join("/")),
        b"3",
    );
    let (dir, result) = apply(&tar.into_inner().unwrap());
    result.unwrap();
    let at = |path: &str| std::fs::read(dir.path().join(path)).unwrap();
    assert_eq!(at(&format!("{deep}/one")), b"1");
    assert_eq!(at(&format!("{deep}/two")), b"2");
    assert_eq!(at(&format!("{}/three", vec!["d"; 40].join("/"))), b"3");
}
