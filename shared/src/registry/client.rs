//! One authenticated conversation with one registry host over oci-client:
//! choosing the scheme, retrying what is worth retrying, and turning
//! oci-client's errors into [`RegistryError`]s that name the registry.

use super::RegistryError;
use super::auth::DockerConfig;
use super::tls::{RegistryOptions, Transport};
use crate::reference::Reference;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};
use std::future::Future;
use std::time::Duration;

/// How often a transient failure (5xx, 429, a dropped connection) is tried
/// in all, and the first pause; each later pause doubles.
pub(crate) const ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// A registry silent this long mid-transfer counts as a dropped connection.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const USER_AGENT: &str = concat!("berth/", env!("CARGO_PKG_VERSION"));

pub(crate) struct Session {
    /// The host the API is served from (`registry-1.docker.io`, `host:5000`).
    pub host: String,
    pub client: Client,
    pub auth: RegistryAuth,
    /// Where the credentials came from, for a 401's message.
    credentials: String,
}

impl Session {
    /// Picks the scheme for `reference`'s registry, loads its credentials
    /// and authenticates (a bearer token, or basic auth on every request).
    pub async fn connect(
        reference: &Reference,
        options: &RegistryOptions,
        config: &DockerConfig,
    ) -> Result<Session, RegistryError> {
        let host = reference.registry_host().to_string();
        let transport = options.transport(&host)?;
        let auth = config.credentials(reference.domain())?;
        let protocol = choose_protocol(&host, &transport).await?;
        let mut client_config = ClientConfig {
            protocol,
            accept_invalid_certificates: !transport.verify,
            extra_root_certificates: transport
                .extra_roots
                .iter()
                .map(|pem| Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: pem.clone(),
                })
                .collect(),
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            user_agent: USER_AGENT,
            ..ClientConfig::default()
        };
        // We pick index entries ourselves (variant-aware, --platform).
        client_config.platform_resolver = None;
        let client = Client::try_from(client_config).map_err(|e| RegistryError::Unreachable {
            registry: host.clone(),
            reason: root_cause(&e),
        })?;
        let session = Session {
            credentials: config.describe(reference.domain()),
            host,
            client,
            auth,
        };
        let target = session.oci_reference(reference, None);
        retry(
            || {
                session
                    .client
                    .auth(&target, &session.auth, RegistryOperation::Pull)
            },
            |_, _| {},
        )
        .await
        .map_err(|e| session.error(&reference.repository(), e))?;
        Ok(session)
    }

    /// oci-client's reference for `reference`, addressing `digest` if given
    /// (else the reference's own digest or tag).
    pub fn oci_reference(
        &self,
        reference: &Reference,
        digest: Option<&crate::Digest>,
    ) -> oci_client::Reference {
        let repository = reference.path().to_string();
        match (digest.or(reference.digest()), reference.tag()) {
            (Some(digest), _) => oci_client::Reference::with_digest(
                self.host.clone(),
                repository,
                digest.to_string(),
            ),
            (None, tag) => oci_client::Reference::with_tag(
                self.host.clone(),
                repository,
                tag.unwrap_or("latest").to_string(),
            ),
        }
    }

    /// Turns an oci-client error about `what` into one that names this
    /// registry and says what to do.
    pub fn error(&self, what: &str, error: OciDistributionError) -> RegistryError {
        let registry = self.host.clone();
        let what = what.to_string();
        match error {
            OciDistributionError::UnauthorizedError { .. } => RegistryError::Unauthorized {
                registry,
                what,
                credentials: self.credentials.clone(),
            },
            OciDistributionError::AuthenticationFailure(reason) => {
                RegistryError::AuthenticationFailed {
                    registry,
                    what,
                    reason: one_line(&reason),
                }
            }
            OciDistributionError::RegistryError { envelope, .. } => {
                let reason = envelope
                    .errors
                    .iter()
                    .map(|e| format!("{}: {}", code_words(&e.code), e.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::BlobUnknown
                            | OciErrorCode::NotFound
                    )
                }) {
                    RegistryError::NotFound { what, reason }
                } else if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Denied | OciErrorCode::Unauthorized))
                {
                    RegistryError::Denied {
                        registry,
                        what,
                        reason,
                    }
                } else {
                    RegistryError::Failed {
                        registry,
                        what,
                        reason,
                    }
                }
            }
            OciDistributionError::ServerError { code: 404, .. } => RegistryError::NotFound {
                what,
                reason: format!("registry {registry} answered 404 Not Found"),
            },
            OciDistributionError::ServerError { code, message, .. } => RegistryError::Failed {
                registry,
                what,
                reason: format!("HTTP {code}: {}", one_line(&message)),
            },
            OciDistributionError::RequestError(e) if e.is_connect() => RegistryError::Unreachable {
                registry,
                reason: root_cause(&e),
            },
            other => RegistryError::Failed {
                registry,
                what,
                reason: root_cause(&other),
            },
        }
    }
}

/// Plain HTTP is only a fallback, and only for loopback and `--insecure`
/// hosts: HTTPS is tried first, and HTTP is used only if it answers like a
/// registry (so a TLS registry with an untrusted certificate reports the
/// certificate problem, not a confusing HTTP 400).
async fn choose_protocol(
    host: &str,
    transport: &Transport,
) -> Result<ClientProtocol, RegistryError> {
    if !transport.http_fallback {
        return Ok(ClientProtocol::Https);
    }
    let probe = |https: bool| async move {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(READ_TIMEOUT)
            .user_agent(USER_AGENT)
            .danger_accept_invalid_certs(!transport.verify);
        if https && !transport.extra_roots.is_empty() {
            let roots = transport
                .extra_roots
                .iter()
                .map(|pem| reqwest::Certificate::from_pem(pem))
                .collect::<Result<Vec<_>, _>>()?;
            builder = builder.tls_certs_merge(roots);
        }
        let scheme = if https { "https" } else { "http" };
        builder
            .build()?
            .get(format!("{scheme}://{host}/v2/"))
            .send()
            .await
            .map(|response| response.status())
    };
    let https_error = match probe(true).await {
        Ok(_) => return Ok(ClientProtocol::Https),
        Err(e) => e,
    };
    match probe(false).await {
        Ok(status) if status.is_success() || status == reqwest::StatusCode::UNAUTHORIZED => {
            Ok(ClientProtocol::Http)
        }
        _ => Err(RegistryError::Unreachable {
            registry: host.to_string(),
            reason: root_cause(&https_error),
        }),
    }
}

/// Runs `operation` until it succeeds, fails for good, or has been tried
/// [`ATTEMPTS`] times; `on_retry` hears of each failure that is retried.
pub(crate) async fn retry<T, F, Fut>(
    mut operation: F,
    mut on_retry: impl FnMut(u32, &OciDistributionError),
) -> Result<T, OciDistributionError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, OciDistributionError>>,
{
    let mut attempt = 1;
    loop {
        match operation().await {
            Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                on_retry(attempt, &e);
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

pub(crate) fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF * 2u32.pow(attempt.saturating_sub(1).min(6))
}

/// Whether trying again may help: server errors, throttling, and transfers
/// cut short. A refused connection is not retried: nobody is listening.
pub(crate) fn is_transient(error: &OciDistributionError) -> bool {
    match error {
        OciDistributionError::ServerError { code, .. } => *code >= 500 || *code == 429,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| e.code == OciErrorCode::Toomanyrequests),
        OciDistributionError::RequestError(e) => !e.is_connect() || e.is_timeout(),
        OciDistributionError::IoError(_) => true,
        _ => false,
    }
}

/// The innermost cause of an error chain: for transport failures that is
/// the part a user recognises ("Connection refused", "UnknownIssuer").
pub(crate) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = error;
    while let Some(source) = deepest.source() {
        deepest = source;
    }
    one_line(&deepest.to_string())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `MANIFEST_UNKNOWN` as Docker words it: "manifest unknown".
fn code_words(code: &OciErrorCode) -> String {
    match code {
        OciErrorCode::Other(other) => other.to_lowercase().replace('_', " "),
        known => serde_json::to_string(known)
            .unwrap_or_default()
            .trim_matches('"')
            .to_lowercase()
            .replace('_', " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(3), Duration::from_millis(800));
    }

    #[test]
    fn server_errors_are_retried_and_client_errors_are_not() {
        let server = |code| OciDistributionError::ServerError {
            code,
            url: String::new(),
            message: String::new(),
        };
        assert!(is_transient(&server(503)));
        assert!(is_transient(&server(429)));
        assert!(!is_transient(&server(404)));
        assert!(!is_transient(&OciDistributionError::UnauthorizedError {
            url: String::new()
        }));
    }

    #[test]
    fn error_codes_read_like_docker() {
        assert_eq!(
            code_words(&OciErrorCode::ManifestUnknown),
            "manifest unknown"
        );
        assert_eq!(
            code_words(&OciErrorCode::Other("FOO_BAR".into())),
            "foo bar"
        );
    }
}
