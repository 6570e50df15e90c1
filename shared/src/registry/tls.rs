//! How a registry host is reached: HTTPS verified against the system roots
//! plus `/etc/docker/certs.d/<host>/*.crt`; plain HTTP only as a fallback for
//! loopback hosts and hosts the user named insecure, as Docker does.

use super::RegistryError;
use std::net::IpAddr;
use std::path::PathBuf;

/// Where Docker keeps per-registry certificates.
pub const DOCKER_CERTS_DIR: &str = "/etc/docker/certs.d";

/// Settings shared by every registry conversation.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Hosts (`host[:port]`) that may be reached over plain HTTP or HTTPS
    /// without certificate verification (Docker's `insecure-registries`).
    pub insecure: Vec<String>,
    /// The directory holding `<host>/ca.crt` files.
    pub certs_dir: PathBuf,
    /// The directory holding `config.json`; `None` means `$DOCKER_CONFIG`,
    /// else `~/.docker`.
    pub docker_config: Option<PathBuf>,
    /// How long connecting, or any silence of the registry, may last;
    /// `None` means `$BERTH_REGISTRY_TIMEOUT` seconds, else 15 s to
    /// connect and 30 s of silence.
    pub timeout: Option<std::time::Duration>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: Vec::new(),
            certs_dir: PathBuf::from(DOCKER_CERTS_DIR),
            docker_config: None,
            timeout: None,
        }
    }
}

/// What the client for one host is built with.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    /// Whether HTTPS certificates are checked.
    pub verify: bool,
    /// Whether plain HTTP may be tried when HTTPS does not work.
    pub http_fallback: bool,
    /// Extra trusted roots (PEM), from the certs directory.
    pub extra_roots: Vec<Vec<u8>>,
}

impl RegistryOptions {
    pub(crate) fn transport(&self, host: &str) -> Result<Transport, RegistryError> {
        let insecure = self.insecure.iter().any(|h| h == host);
        Ok(Transport {
            verify: !insecure,
            http_fallback: insecure || is_loopback(host),
            extra_roots: self.extra_roots(host)?,
        })
    }

    /// Every `*.crt` in `<certs_dir>/<host>/`, as Docker reads them. A host
    /// without a directory simply has none.
    fn extra_roots(&self, host: &str) -> Result<Vec<Vec<u8>>, RegistryError> {
        let dir = self.certs_dir.join(host);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(Vec::new());
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "crt"))
            .collect();
        paths.sort();
        paths
            .into_iter()
            .map(|path| {
                let pem = std::fs::read(&path).map_err(|e| RegistryError::Certificate {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                let certificates = reqwest::Certificate::from_pem_bundle(&pem).unwrap_or_default();
                if certificates.is_empty() {
                    return Err(RegistryError::Certificate {
                        path: path.clone(),
                        reason: "no PEM certificate in it".to_string(),
                    });
                }
                Ok(pem)
            })
            .collect()
    }
}

/// Whether `host` (with or without a port) names this machine: Docker
/// treats 127.0.0.0/8, ::1 and localhost as insecure registries.
pub fn is_loopback(host: &str) -> bool {
    let name = if host.parse::<IpAddr>().is_ok() {
        host
    } else if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised_with_and_without_ports() {
        for host in [
            "127.0.0.1",
            "127.0.0.1:5000",
            "127.8.9.1:1",
            "localhost:5000",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "registry-1.docker.io",
            "10.0.0.1:5000",
            "example.com:443",
            "[fe80::1]:5000",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn insecure_hosts_skip_verification_and_may_use_http() {
        let options = RegistryOptions {
            insecure: vec!["reg.internal:5000".into()],
            certs_dir: tempfile::tempdir().unwrap().path().to_path_buf(),
            ..RegistryOptions::default()
        };
        let t = options.transport("reg.internal:5000").unwrap();
        assert!(!t.verify && t.http_fallback);
        let t = options.transport("example.com").unwrap();
        assert!(t.verify && !t.http_fallback);
        let t = options.transport("127.0.0.1:5000").unwrap();
        assert!(t.verify && t.http_fallback);
    }

    #[test]
    fn a_certs_dir_file_that_is_not_pem_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("reg:5000")).unwrap();
        std::fs::write(dir.path().join("reg:5000/ca.crt"), "garbage").unwrap();
        let options = RegistryOptions {
            certs_dir: dir.path().to_path_buf(),
            ..RegistryOptions::default()
        };
        let err = options.transport("reg:5000").unwrap_err().to_string();
        assert!(err.contains("reg:5000/ca.crt"), "{err}");
    }
}
