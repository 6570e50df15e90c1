//! One authenticated conversation with one registry host over oci-client:
//! choosing the scheme, retrying what is worth retrying, bounding what is
//! read and how long anything may take, and turning transport failures
//! into [`RegistryError`]s that name the registry and the real cause.

use super::RegistryError;
use super::auth::DockerConfig;
use super::limits::{Limited, MAX_MANIFEST_BYTES, TIMEOUT_ENV, Timeouts, read_limited};
use super::tls::{RegistryOptions, Transport, lazily_verified};
use crate::reference::Reference;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciEnvelope, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};
use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// How often a transient failure (5xx, 429, a dropped connection) is tried
/// in all, and the first pause; each later pause doubles.
pub(crate) const ATTEMPTS: u32 = 5;
/// A registry that went silent for a whole read timeout gets one more
/// chance, not four: a hung server rarely recovers, and five silences
/// would turn a 30 s deadline into minutes.
pub(crate) const TIMEOUT_ATTEMPTS: u32 = 2;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The most of an error body we read to explain a refusal.
const ERROR_BODY_LIMIT: u64 = 64 << 10;
const USER_AGENT: &str = concat!("berth/", env!("CARGO_PKG_VERSION"));

pub(crate) struct Session {
    /// The host the API is served from (`registry-1.docker.io`, `host:5000`).
    pub host: String,
    /// oci-client, for the token dance and tag lists; built on first use:
    /// building it loads the system's roots twice (tens of milliseconds),
    /// which a registry that asks for no token never needs.
    oci: OnceLock<Client>,
    /// What [`Session::client`] builds it from.
    transport: Transport,
    protocol: ClientProtocol,
    pub auth: RegistryAuth,
    /// Where the credentials came from, for a 401's message.
    credentials: String,
    pub timeouts: Timeouts,
    /// Our own client, for the requests whose bodies we must bound
    /// (manifests): oci-client reads those whole into memory.
    http: reqwest::Client,
    scheme: &'static str,
    /// The `Authorization` our own requests carry: the bearer token
    /// oci-client obtained, or basic credentials; renewed on a 401.
    authorization: Mutex<Option<String>>,
    /// What the token is for: pulling, or pulling and pushing.
    operation: RegistryOperation,
}

impl Session {
    /// Picks the scheme for `reference`'s registry, loads its credentials
    /// and authenticates (a bearer token, or basic auth on every request).
    pub async fn connect(
        reference: &Reference,
        options: &RegistryOptions,
        config: &DockerConfig,
    ) -> Result<Session, RegistryError> {
        Session::connect_for(reference, options, config, RegistryOperation::Pull).await
    }

    /// As [`Session::connect`], with a token for `operation` on the
    /// reference's repository (a push needs `pull,push`).
    pub async fn connect_for(
        reference: &Reference,
        options: &RegistryOptions,
        config: &DockerConfig,
        operation: RegistryOperation,
    ) -> Result<Session, RegistryError> {
        let host = reference.registry_host().to_string();
        let transport = options.transport(&host)?;
        let timeouts = Timeouts::resolve(options.timeout)?;
        let auth = config.credentials(reference.domain())?;
        let http = http_client(&host, &transport, timeouts)?;
        let (protocol, challenged) = probe_protocol(&host, &transport, &http, timeouts).await?;
        let scheme = match protocol {
            ClientProtocol::Http => "http",
            _ => "https",
        };
        let session = Session {
            credentials: config.describe(reference.domain()),
            host,
            oci: OnceLock::new(),
            transport,
            protocol,
            auth,
            timeouts,
            http,
            scheme,
            authorization: Mutex::new(None),
            operation,
        };
        // A `GET /v2/` that chose the scheme and drew no challenge already
        // says what oci-client's would: no token, so its own request and
        // the client it needs are skipped.
        if challenged == Some(false) && !matches!(session.auth, RegistryAuth::Bearer(_)) {
            *session.authorization.lock().expect("authorization lock") =
                session.authorization_for(None);
            return Ok(session);
        }
        let target = session.oci_reference(reference, None);
        session
            .authenticate(&target)
            .await
            .map_err(|e| session.error(&reference.repository(), e))?;
        Ok(session)
    }

    /// oci-client, built the first time it is needed.
    pub fn client(&self) -> Result<&Client, OciDistributionError> {
        if let Some(client) = self.oci.get() {
            return Ok(client);
        }
        let mut client_config = ClientConfig {
            protocol: self.protocol.clone(),
            accept_invalid_certificates: !self.transport.verify,
            extra_root_certificates: self
                .transport
                .extra_roots
                .iter()
                .map(|pem| Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: pem.clone(),
                })
                .collect(),
            connect_timeout: Some(self.timeouts.connect),
            read_timeout: Some(self.timeouts.read),
            user_agent: USER_AGENT,
            ..ClientConfig::default()
        };
        // We pick index entries ourselves (variant-aware, --platform).
        client_config.platform_resolver = None;
        let client = Client::try_from(client_config)?;
        Ok(self.oci.get_or_init(|| client))
    }

    /// The `Authorization` our own requests carry, given oci-client's
    /// bearer token (if it got one): the token, or basic credentials.
    fn authorization_for(&self, token: Option<String>) -> Option<String> {
        match (token, &self.auth) {
            (Some(token), _) => Some(format!("Bearer {token}")),
            (None, RegistryAuth::Basic(user, password)) => {
                use base64::Engine as _;
                let pair = format!("{user}:{password}");
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))
            }
            (None, _) => None,
        }
    }

    /// Runs oci-client's authentication (a bearer token, or basic auth on
    /// every request) and keeps what our own requests must send.
    async fn authenticate(
        &self,
        target: &oci_client::Reference,
    ) -> Result<(), OciDistributionError> {
        let client = self.client()?;
        let token = retry(
            || client.auth(target, &self.auth, self.operation),
            |_, _| {},
        )
        .await?;
        let header = self.authorization_for(token);
        *self.authorization.lock().expect("authorization lock") = header;
        Ok(())
    }

    /// GETs the manifest `target` names, accepting `accept`, and reads at
    /// most [`MAX_MANIFEST_BYTES`] + 1 bytes of it. Also returns the
    /// registry's `Docker-Content-Digest`, if it sent one.
    pub async fn get_manifest(
        &self,
        target: &oci_client::Reference,
        accept: &[&str],
    ) -> Result<(Limited, Option<String>), OciDistributionError> {
        let url = format!(
            "{}://{}/v2/{}/manifests/{}",
            self.scheme,
            self.host,
            target.repository(),
            target.digest().or(target.tag()).unwrap_or("latest"),
        );
        let accept = accept.join(", ");
        let response = self
            .send(target, |http| http.get(&url).header("Accept", &accept))
            .await?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(Session::refused(response, &url).await);
        }
        let digest = response
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok((read_limited(response, MAX_MANIFEST_BYTES).await?, digest))
    }

    /// The URL of `path` (`/v2/…`, or an absolute `Location` a registry
    /// sent) on this registry.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}://{}{path}", self.scheme, self.host)
        }
    }

    /// Sends the request `build` makes with our client, carrying our
    /// credentials. A bearer token expires (Docker Hub's after five
    /// minutes): one 401 is answered with a fresh token and `build` is
    /// called again, so a body is made per attempt.
    /// Any status is returned; [`Session::refused`] explains a bad one.
    pub async fn send(
        &self,
        target: &oci_client::Reference,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, OciDistributionError> {
        let mut renewed = false;
        loop {
            let mut request = build(&self.http);
            let authorization = self
                .authorization
                .lock()
                .expect("authorization lock")
                .clone();
            if let Some(value) = authorization {
                request = request.header("Authorization", value);
            }
            let response = request.send().await?;
            if response.status() == reqwest::StatusCode::UNAUTHORIZED && !renewed {
                renewed = true;
                self.authenticate(target).await?;
                continue;
            }
            return Ok(response);
        }
    }

    /// The error a refused `response` to a request for `url` means, with
    /// the registry's explanation if it gave one.
    pub async fn refused(response: reqwest::Response, url: &str) -> OciDistributionError {
        let status = response.status();
        let body = match read_limited(response, ERROR_BODY_LIMIT).await {
            Ok(Limited::Within(body)) => body,
            _ => bytes::Bytes::new(),
        };
        refusal(status, &body, url)
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
                reason: failure_reason(&e, self.timeouts),
            },
            other => RegistryError::Failed {
                registry,
                what,
                reason: failure_reason(&other, self.timeouts),
            },
        }
    }
}

/// The runtime a blocking puller or pusher drives its requests on, with
/// the TLS provider installed (reqwest is built without a bundled one;
/// another part of the process may have installed it already). A pull
/// hashes on the workers, so there are as many as cores, from 2 up to 4
/// (a pull's 3 streams and the connections they wait on).
pub(crate) fn network_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.clamp(2, 4))
        .enable_all()
        .build()
}

/// A reqwest client with our deadlines, roots and user agent, for both
/// schemes. A conversation builds it once: the probes of `choose_protocol`
/// and every later request share it (and its pooled connections). The
/// system's roots are read only if a server shows a certificate
/// ([`lazily_verified`]). reqwest follows at most ten redirects, then
/// fails with "too many redirects". A client that cannot be built leaves
/// `host` unreachable, for the reason in one line.
pub(crate) fn http_client(
    host: &str,
    transport: &Transport,
    timeouts: Timeouts,
) -> Result<reqwest::Client, RegistryError> {
    let unreachable = |reason: String| RegistryError::Unreachable {
        registry: host.to_string(),
        reason,
    };
    let builder = reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .read_timeout(timeouts.read)
        .user_agent(USER_AGENT);
    let builder = if transport.verify {
        builder.tls_backend_preconfigured(
            lazily_verified(&transport.extra_roots).map_err(unreachable)?,
        )
    } else {
        builder.tls_danger_accept_invalid_certs(true)
    };
    builder.build().map_err(|e| unreachable(root_cause(&e)))
}

/// oci-client's reading of a refused request, for a body we read ourselves.
fn refusal(status: reqwest::StatusCode, body: &[u8], url: &str) -> OciDistributionError {
    let url = url.to_string();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return OciDistributionError::UnauthorizedError { url };
    }
    if status.is_client_error()
        && let Ok(envelope) = serde_json::from_slice::<OciEnvelope>(body)
    {
        return OciDistributionError::RegistryError { envelope, url };
    }
    OciDistributionError::ServerError {
        code: status.as_u16(),
        url,
        message: String::from_utf8_lossy(body).into_owned(),
    }
}

/// Plain HTTP is only a fallback, and only for loopback and `--insecure`
/// hosts: HTTPS is tried first, and HTTP is used only if it answers like a
/// registry. When neither works, the failure reported is the one that
/// explains it: HTTPS's when the host does speak TLS (an untrusted
/// certificate), HTTP's when it does not (a redirect loop, a stall).
pub(crate) async fn choose_protocol(
    host: &str,
    transport: &Transport,
    http: &reqwest::Client,
    timeouts: Timeouts,
) -> Result<ClientProtocol, RegistryError> {
    Ok(probe_protocol(host, transport, http, timeouts).await?.0)
}

/// [`choose_protocol`], also telling whether the `GET /v2/` that chose it
/// was answered with an authentication challenge (`WWW-Authenticate`);
/// `None` when no probe was needed (HTTPS only).
async fn probe_protocol(
    host: &str,
    transport: &Transport,
    http: &reqwest::Client,
    timeouts: Timeouts,
) -> Result<(ClientProtocol, Option<bool>), RegistryError> {
    if !transport.http_fallback {
        return Ok((ClientProtocol::Https, None));
    }
    let probe = |https: bool| async move {
        let scheme = if https { "https" } else { "http" };
        http.get(format!("{scheme}://{host}/v2/"))
            .send()
            .await
            .map(|response| {
                let challenged = response
                    .headers()
                    .contains_key(reqwest::header::WWW_AUTHENTICATE);
                (response.status(), challenged)
            })
    };
    let https_error = match probe(true).await {
        Ok((_, challenged)) => return Ok((ClientProtocol::Https, Some(challenged))),
        Err(e) => e,
    };
    // Only a TLS-level refusal (a certificate, an alert) shows the host
    // speaks TLS; a non-TLS answer, a hang-up or a timeout mean it does not,
    // and then HTTP's own failure is the real one.
    let speaks_tls = is_tls_refusal(&https_error);
    let reason = match probe(false).await {
        Ok((status, challenged))
            if status.is_success() || status == reqwest::StatusCode::UNAUTHORIZED =>
        {
            return Ok((ClientProtocol::Http, Some(challenged)));
        }
        Ok(_) | Err(_) if speaks_tls => failure_reason(&https_error, timeouts),
        Ok((status, _)) => {
            format!("GET /v2/ over plain HTTP answered {status}: not a registry API")
        }
        Err(http_error) => failure_reason(&http_error, timeouts),
    };
    Err(RegistryError::Unreachable {
        registry: host.to_string(),
        reason,
    })
}

/// Whether TLS itself refused: rustls understood the peer and said no
/// (an untrusted certificate, an alert), as opposed to a peer whose first
/// bytes are not TLS at all ("InvalidContentType").
fn is_tls_refusal(error: &(dyn std::error::Error + 'static)) -> bool {
    chain_any(error, &|e| {
        e.downcast_ref::<rustls::Error>()
            .is_some_and(|tls| !matches!(tls, rustls::Error::InvalidMessage(_)))
    })
}

/// Whether `test` holds for `error` or anything it wraps, looking inside
/// `io::Error`s too (their `source()` skips the error they carry).
fn chain_any(
    error: &(dyn std::error::Error + 'static),
    test: &dyn Fn(&(dyn std::error::Error + 'static)) -> bool,
) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if test(e) {
            return true;
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && chain_any(inner, test)
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// Whether a deadline, not the registry, ended the request.
pub(crate) fn is_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    chain_any(error, &|e| {
        e.downcast_ref::<reqwest::Error>()
            .is_some_and(|r| r.is_timeout())
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    })
}

/// What went wrong, in words a user can act on: a timeout says how long
/// was waited and how to wait longer; anything else is its root cause
/// ("too many redirects", "Connection refused", "UnknownIssuer").
pub(crate) fn failure_reason(
    error: &(dyn std::error::Error + 'static),
    timeouts: Timeouts,
) -> String {
    if is_timeout(error) {
        format!(
            "timed out: no answer for {} s (set {TIMEOUT_ENV} to wait longer)",
            timeouts.read.as_secs_f64()
        )
    } else {
        root_cause(error)
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
            Err(e) if attempt < attempts_for(&e) => {
                on_retry(attempt, &e);
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// How many tries in all `error` deserves: none more if it is permanent,
/// one more after a timeout, [`ATTEMPTS`] for the rest.
pub(crate) fn attempts_for(error: &OciDistributionError) -> u32 {
    if !is_transient(error) {
        1
    } else if is_timeout(error) {
        TIMEOUT_ATTEMPTS
    } else {
        ATTEMPTS
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
        // A redirect loop stays a loop, and nobody listens on a refused port.
        OciDistributionError::RequestError(e) => {
            !e.is_redirect() && (!e.is_connect() || e.is_timeout())
        }
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
