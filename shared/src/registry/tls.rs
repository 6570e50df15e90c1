//! How a registry host is reached: HTTPS verified against the system roots
//! plus `/etc/docker/certs.d/<host>/*.crt`; plain HTTP only as a fallback for
//! loopback hosts and hosts the user named insecure, as Docker does.

use super::RegistryError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

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

/// A TLS configuration that checks certificates against the system's
/// roots plus `extra_roots` (PEM), as reqwest's own does, but reads the
/// system's roots only when a server first shows a certificate. reqwest
/// reads them (some 140 files here, a few ms) when a client is built:
/// at the start of every pull and push, even from a plain-HTTP registry
/// on loopback, whose HTTPS probe fails before any certificate.
pub(crate) fn lazily_verified(extra_roots: &[Vec<u8>]) -> Result<rustls::ClientConfig, String> {
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let mut extra = Vec::new();
    for pem in extra_roots {
        for certificate in CertificateDer::pem_slice_iter(pem) {
            extra.push(certificate.map_err(|e| e.to_string())?);
        }
    }
    // Refused now, as reqwest would, rather than at the first handshake.
    let mut anchors = rustls::RootCertStore::empty();
    for certificate in &extra {
        anchors
            .add(certificate.clone())
            .map_err(|e| e.to_string())?;
    }
    let verifier = LazyRoots {
        extra,
        provider: provider.clone(),
        verifier: OnceLock::new(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    // What reqwest offers when built without HTTP/2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The platform's verifier (the system's roots and `extra`), made on the
/// first certificate it is asked about. Signatures are checked with the
/// provider's algorithms, as that verifier checks them, without roots.
#[derive(Debug)]
struct LazyRoots {
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<Result<rustls_platform_verifier::Verifier, rustls::Error>>,
}

impl ServerCertVerifier for LazyRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verifier = self.verifier.get_or_init(|| {
            rustls_platform_verifier::Verifier::new_with_extra_roots(
                self.extra.iter().cloned(),
                self.provider.clone(),
            )
        });
        match verifier {
            Ok(verifier) => verifier.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            Err(e) => Err(e.clone()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
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

    #[test]
    fn an_extra_root_that_is_no_certificate_is_refused_before_any_connection() {
        let fake = b"-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n".to_vec();
        assert!(lazily_verified(&[fake]).is_err());
        let config = lazily_verified(&[]).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
