//! The files a container's network is named in: its `/etc/hostname`,
//! `/etc/hosts` and `/etc/resolv.conf`, written in its directory for the
//! spec to bind in (Docker's `HostnamePath`, `HostsPath`, `ResolvConfPath`).

use super::{NetworkError, NetworkMode};
use std::fs;
use std::path::Path;

/// Writes `hostname`, `hosts` and `resolv.conf` in the container directory
/// `dir`: with the host's network, the host's hosts file; with its own, a
/// loopback-only one naming it.
pub fn write_etc_files(
    dir: &Path,
    hostname: &str,
    network: NetworkMode,
) -> Result<(), NetworkError> {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        fs::write(&path, text).map_err(|source| NetworkError::Io { path, source })
    };
    write("hostname", &format!("{hostname}\n"))?;
    let hosts = match network {
        NetworkMode::Host => fs::read_to_string("/etc/hosts").unwrap_or_default(),
        NetworkMode::None => format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.0.1\t{hostname}\n"
        ),
    };
    write("hosts", &hosts)?;
    let resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    write("resolv.conf", &resolv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_of_its_own_is_named_on_loopback() {
        let dir = tempfile::tempdir().unwrap();
        write_etc_files(dir.path(), "abc123", NetworkMode::None).unwrap();
        let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read("hostname"), "abc123\n");
        assert!(read("hosts").starts_with("127.0.0.1\tlocalhost\n"));
        assert!(read("hosts").ends_with("127.0.0.1\tabc123\n"));
        assert!(dir.path().join("resolv.conf").exists());
    }
}
