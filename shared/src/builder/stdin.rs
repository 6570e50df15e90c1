//! `img-build -`: what comes on stdin is either a Dockerfile or a whole
//! build context as a tar (plain, gzip, bzip2, xz or zstd), told apart by
//! its bytes as Docker tells them apart. A context is unpacked into a
//! scratch directory of the store (swept if the builder is killed).

use super::archive::{archive, extract_archive};
use super::error::BuildError;
use crate::store::{SCRATCH_BUILD, Scratch, Store};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// What stdin held.
pub enum StdinInput {
    /// A Dockerfile's text; the build has no context.
    Dockerfile(String),
    /// A context unpacked at `dir`, which lives as long as `scratch`.
    Context { scratch: Scratch, dir: PathBuf },
}

impl StdinInput {
    /// Reads all of `input` and decides what it is.
    pub fn read(store: &Store, mut input: impl Read) -> Result<StdinInput, BuildError> {
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            BuildError::Invalid(format!("reading the build input from stdin: {what}: {e}"))
        };
        let scratch = Scratch::new(store, SCRATCH_BUILD).map_err(|e| failed("scratch", &e))?;
        // Spooled to a file: an archive is read twice (its magic, then its
        // entries) and may be far larger than memory should hold.
        let spool = scratch.path().join("stdin");
        let mut file = std::fs::File::create(&spool).map_err(|e| failed("spooling", &e))?;
        io::copy(&mut input, &mut file).map_err(|e| failed("spooling", &e))?;
        drop(file);
        let Some(plain) = archive(&spool)? else {
            let bytes = std::fs::read(&spool).map_err(|e| failed("spooling", &e))?;
            let text = String::from_utf8(bytes).map_err(|_| {
                BuildError::Invalid(
                    "stdin is neither a Dockerfile (UTF-8 text) nor a tar build context"
                        .to_string(),
                )
            })?;
            return Ok(StdinInput::Dockerfile(text));
        };
        let dir = scratch.path().join("context");
        std::fs::create_dir(&dir).map_err(|e| failed("unpacking", &e))?;
        let dest = std::fs::File::open(&dir).map_err(|e| failed("unpacking", &e))?;
        extract_archive(Path::new("-"), plain, &dest.into())?;
        let _ = std::fs::remove_file(&spool);
        Ok(StdinInput::Context { scratch, dir })
    }
}
