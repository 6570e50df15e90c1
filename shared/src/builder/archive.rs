//! Archives, as ADD and `img-build -` meet them: telling a tar (plain,
//! gzip, bzip2, xz or zstd) from any other file by its bytes, and unpacking
//! one into a directory already resolved inside a step's root.

use std::fs;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("extracting {path}: {source}")]
    Extract {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + use<> {
    let path = path.to_path_buf();
    move |source| ArchiveError::Io { path, source }
}

/// ADD unpacks a local file when it is a tar, plain or compressed (gzip,
/// bzip2, xz as Docker's classic builder; zstd as BuildKit): the tar stream
/// if it is one, `None` to copy the file as is.
pub(super) fn archive(path: &Path) -> Result<Option<Box<dyn Read>>, ArchiveError> {
    let mut file = fs::File::open(path).map_err(io_err(path))?;
    let mut magic = [0u8; 6];
    let n = file.read(&mut magic).map_err(io_err(path))?;
    io::Seek::rewind(&mut file).map_err(io_err(path))?;
    let mut plain: Box<dyn Read> = if magic[..n] == *b"\xfd7zXZ\0" {
        // lzma-rs decodes whole streams: into an unnamed temp file first.
        let mut out = tempfile::tempfile().map_err(io_err(path))?;
        if lzma_rs::xz_decompress(&mut io::BufReader::new(file), &mut out).is_err() {
            return Ok(None);
        }
        io::Seek::rewind(&mut out).map_err(io_err(path))?;
        Box::new(out)
    } else if magic[..n].starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(io::BufReader::new(file)))
    } else {
        match crate::compression::decompressed(io::BufReader::new(file)) {
            Ok(reader) => reader,
            Err(_) => return Ok(None),
        }
    };
    let mut block = vec![0u8; 512];
    let mut filled = 0;
    while filled < block.len() {
        match plain.read(&mut block[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(_) => return Ok(None),
        }
    }
    if filled < 512 || !is_tar_header(&block) {
        return Ok(None);
    }
    Ok(Some(Box::new(io::Cursor::new(block).chain(plain))))
}

/// A tar header: "ustar" magic, or a v7 header whose checksum adds up.
fn is_tar_header(block: &[u8]) -> bool {
    if &block[257..262] == b"ustar" {
        return true;
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim_matches(|c: char| c == '\0' || c == ' '), 8).ok());
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                *b as u32
            }
        })
        .sum();
    stored == Some(sum) && block[0] != 0
}

/// Unpacks a tar stream (as `archive` returned it) into `dest`, keeping
/// owners, modes and times.
pub(super) fn extract_archive(
    path: &Path,
    plain: Box<dyn Read>,
    dest: &OwnedFd,
) -> Result<(), ArchiveError> {
    let extract_err = |source| ArchiveError::Extract {
        path: path.to_path_buf(),
        source,
    };
    // The destination by its /proc name: the tar crate wants a path, and
    // this one names the directory already resolved inside the root.
    let dest_path = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(dest)
    ));
    let dest_path = fs::read_link(&dest_path).map_err(extract_err)?;
    let mut archive = tar::Archive::new(plain);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    archive.unpack(&dest_path).map_err(extract_err)
}
