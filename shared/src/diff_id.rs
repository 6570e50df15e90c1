//! A layer's diff ID and tar structure, checked as its compressed bytes
//! stream past (pushed in, as they are read from an archive): decompressed
//! by magic bytes as `layer.rs` does, hashed, and walked header by header,
//! so img-load can refuse a layer that is not a tar or does not match its
//! diff ID without reading the blob a second time.

use crate::compression::Compression;
use crate::digest::{Digest, HashingWriter};
use std::io::{self, Write};

/// Why a layer's uncompressed stream is not the tar its config promises.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DiffIdError {
    #[error("not a valid {format} stream: {reason}")]
    Compression {
        format: &'static str,
        reason: String,
    },
    #[error("not a tar archive: {0}")]
    NotTar(String),
}

const BLOCK: usize = 512;

/// Takes a layer's (gzip, zstd or plain) bytes through `Write` and yields
/// the digest of its uncompressed tar stream.
pub struct DiffIdWriter {
    state: State,
    /// The first failure; later bytes are ignored, the blob still downloads
    /// so that a digest mismatch (the likelier story) is reported first.
    failed: Option<DiffIdError>,
}

enum State {
    /// Fewer bytes than a magic number so far.
    Sniffing(Vec<u8>),
    Gzip(Box<flate2::write::MultiGzDecoder<TarWalker>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, TarWalker>>),
    Plain(TarWalker),
}

impl Default for DiffIdWriter {
    fn default() -> Self {
        DiffIdWriter::new()
    }
}

impl DiffIdWriter {
    pub fn new() -> DiffIdWriter {
        DiffIdWriter {
            state: State::Sniffing(Vec::new()),
            failed: None,
        }
    }

    /// Feeds the next compressed bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.feed(bytes) {
            self.failed = Some(e);
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<(), DiffIdError> {
        if let State::Sniffing(prefix) = &mut self.state {
            prefix.extend_from_slice(bytes);
            if prefix.len() < 4 {
                return Ok(());
            }
            let prefix = std::mem::take(prefix);
            self.start(&prefix)?;
            return self.feed_decoder(&prefix);
        }
        self.feed_decoder(bytes)
    }

    fn start(&mut self, prefix: &[u8]) -> Result<(), DiffIdError> {
        let walker = TarWalker::new();
        self.state = match Compression::detect(prefix) {
            Compression::Gzip => State::Gzip(Box::new(flate2::write::MultiGzDecoder::new(walker))),
            Compression::Zstd => State::Zstd(Box::new(
                zstd::stream::write::Decoder::new(walker).map_err(zstd_error)?,
            )),
            Compression::None => State::Plain(walker),
        };
        Ok(())
    }

    fn feed_decoder(&mut self, bytes: &[u8]) -> Result<(), DiffIdError> {
        match &mut self.state {
            State::Sniffing(_) => unreachable!("started before feeding"),
            State::Gzip(d) => d.write_all(bytes).map_err(|e| decoded_error(e, gzip_error)),
            State::Zstd(d) => d.write_all(bytes).map_err(|e| decoded_error(e, zstd_error)),
            State::Plain(w) => w.walk(bytes),
        }
    }

    /// The diff ID, once every byte is in; or why the stream is no tar.
    pub fn finish(mut self) -> Result<Digest, DiffIdError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if let State::Sniffing(prefix) = &mut self.state {
            let prefix = std::mem::take(prefix);
            self.start(&prefix)?;
            self.feed_decoder(&prefix)?;
        }
        let walker = match self.state {
            State::Sniffing(_) => unreachable!("started above"),
            State::Gzip(d) => (*d).finish().map_err(|e| decoded_error(e, gzip_error))?,
            State::Zstd(mut d) => {
                d.flush().map_err(|e| decoded_error(e, zstd_error))?;
                (*d).into_inner()
            }
            State::Plain(w) => w,
        };
        walker.finish()
    }
}

fn gzip_error(e: io::Error) -> DiffIdError {
    DiffIdError::Compression {
        format: "gzip",
        reason: e.to_string(),
    }
}

fn zstd_error(e: io::Error) -> DiffIdError {
    DiffIdError::Compression {
        format: "zstd",
        reason: e.to_string(),
    }
}

/// A decoder's write error is either the tar walker's refusal (passed on
/// through io::Error) or the decoder's own.
fn decoded_error(e: io::Error, own: fn(io::Error) -> DiffIdError) -> DiffIdError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<DiffIdError>())
    {
        Some(tar) => tar.clone(),
        None => own(e),
    }
}

/// Hashes the uncompressed stream and follows its tar headers as the tar
/// crate reads them at unpack time: checksummed 512-byte headers, each
/// followed by its size rounded up to a block, until a zero block; what
/// comes after that is padding, hashed but not parsed.
struct TarWalker {
    hash: HashingWriter<io::Sink>,
    header: Vec<u8>,
    /// Bytes of the current entry's data (and padding) still to pass.
    skip: u64,
    ended: bool,
}

impl TarWalker {
    fn new() -> TarWalker {
        TarWalker {
            hash: HashingWriter::new(io::sink()),
            header: Vec::new(),
            skip: 0,
            ended: false,
        }
    }

    fn walk(&mut self, mut bytes: &[u8]) -> Result<(), DiffIdError> {
        self.hash
            .write_all(bytes)
            .expect("hashing into a sink cannot fail");
        while !bytes.is_empty() && !self.ended {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len() as u64);
                self.skip -= n;
                bytes = &bytes[n as usize..];
                continue;
            }
            let n = (BLOCK - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.header.len() == BLOCK {
                self.entry_header()?;
                self.header.clear();
            }
        }
        Ok(())
    }

    fn entry_header(&mut self) -> Result<(), DiffIdError> {
        let header = &self.header;
        if header.iter().all(|b| *b == 0) {
            self.ended = true;
            return Ok(());
        }
        let recorded = octal(&header[148..156]).ok_or_else(|| {
            DiffIdError::NotTar("a header's checksum field is not a number".into())
        })?;
        let actual: u64 = header
            .iter()
            .enumerate()
            .map(|(i, b)| u64::from(if (148..156).contains(&i) { b' ' } else { *b }))
            .sum();
        if recorded != actual {
            return Err(DiffIdError::NotTar(format!(
                "header checksum is {recorded}, the header sums to {actual}"
            )));
        }
        let size = entry_size(&header[124..136])
            .ok_or_else(|| DiffIdError::NotTar("a header's size field is not a number".into()))?;
        self.skip = size.div_ceil(BLOCK as u64) * BLOCK as u64;
        Ok(())
    }

    fn finish(self) -> Result<Digest, DiffIdError> {
        if self.skip > 0 || !self.header.is_empty() {
            return Err(DiffIdError::NotTar(
                "the archive ends inside an entry".into(),
            ));
        }
        Ok(self.hash.finish().0)
    }
}

impl Write for TarWalker {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.walk(buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A NUL- or space-terminated octal field, as tar writes numbers.
fn octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// A size field: octal, or GNU's base-256 form (high bit set) for large files.
fn entry_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut value: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            value = value.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(value);
    }
    octal(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// Feeds `bytes` in uneven pieces, as a socket would.
    fn diff_id(bytes: &[u8]) -> Result<Digest, DiffIdError> {
        let mut writer = DiffIdWriter::new();
        for piece in bytes.chunks(333) {
            writer.push(piece);
        }
        writer.finish()
    }

    #[test]
    fn every_compression_yields_the_plain_tar_digest() {
        let big = vec![7u8; 100_000];
        let tar = tar_of(&[("a", b"hello"), ("dir/b", &big)]);
        let expected = Digest::of(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&tar[..], 3).unwrap();
        for form in [&tar, &gz, &zst] {
            assert_eq!(diff_id(form).unwrap(), expected);
        }
    }

    #[test]
    fn what_is_not_a_tar_is_refused() {
        let err = diff_id(&[0x5a; 4096]).unwrap_err();
        assert!(matches!(err, DiffIdError::NotTar(_)), "{err}");
        let tar = tar_of(&[("a", &[1u8; 2000])]);
        let err = diff_id(&tar[..1024]).unwrap_err();
        assert!(err.to_string().contains("ends inside"), "{err}");
        let err = diff_id(&[0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]).unwrap_err();
        assert!(matches!(err, DiffIdError::Compression { .. }), "{err}");
    }

    #[test]
    fn an_empty_layer_is_an_empty_tar() {
        assert_eq!(diff_id(b"").unwrap(), Digest::of(b""));
        let empty = tar::Builder::new(Vec::new()).into_inner().unwrap();
        assert_eq!(diff_id(&empty).unwrap(), Digest::of(&empty));
    }
}
