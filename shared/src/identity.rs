//! Fresh IDs and timestamps as Docker writes them, for everything the store
//! names: containers, networks, volumes.

use std::fs::File;
use std::io::{self, Read};

/// Now, as Docker writes timestamps (RFC 3339, nanoseconds, UTC).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// A fresh 64-hex ID from the kernel's CSPRNG.
pub fn new_id() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
