//! `docker login` and `docker logout`: credentials are checked against the
//! registry's own challenge before anything is saved, then kept where the
//! docker CLI keeps them (a `docker-credential-<name>` helper when one is
//! configured, else `auths` in `config.json`), so Docker and berth share
//! one login.

use super::RegistryError;
use super::auth::{
    AuthError, DockerConfig, call_helper, helper_failed, helper_said, hostname_of, server_key,
};
use super::client::{choose_protocol, http_client, root_cause};
use super::limits::Timeouts;
use super::tls::RegistryOptions;
use crate::reference::DEFAULT_DOMAIN;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where a login was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavedIn {
    /// In the named credential helper (`config.json` only names the server).
    Helper(String),
    /// Base64 in `config.json`, as Docker warns: unencrypted.
    File(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Docker's words for refused credentials.
    #[error("login to {registry} failed: unauthorized: incorrect username or password")]
    Refused { registry: String },
    #[error("{path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("cannot start the network runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// A registry as `img-login` names it: the reference domain (`docker.io`
/// for Docker Hub, whatever the user typed for it) and the host its API is
/// served from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub domain: String,
    pub api_host: String,
}

impl Server {
    /// `SERVER` as typed (`host:5000`, `https://host/v1/`, nothing for
    /// Docker Hub).
    pub fn parse(typed: Option<&str>) -> Server {
        let host = typed.map(hostname_of).unwrap_or(DEFAULT_DOMAIN);
        let hub = ["docker.io", "index.docker.io", "registry-1.docker.io"].contains(&host);
        match hub {
            true => Server {
                domain: DEFAULT_DOMAIN.to_string(),
                api_host: "registry-1.docker.io".to_string(),
            },
            false => Server {
                domain: host.to_string(),
                api_host: host.to_string(),
            },
        }
    }

    /// The key Docker keeps its credentials under (Docker Hub's is
    /// `https://index.docker.io/v1/`).
    pub fn key(&self) -> String {
        server_key(&self.domain)
    }
}

/// Asks the registry whether `user`/`password` are good: its `/v2/`
/// challenge says how (HTTP basic, or a token service), and that is
/// answered. A registry that asks for nothing accepts anyone.
pub fn verify(
    server: &Server,
    user: &str,
    password: &str,
    options: &RegistryOptions,
) -> Result<(), LoginError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LoginError::Runtime)?;
    runtime.block_on(verify_async(server, user, password, options))
}

async fn verify_async(
    server: &Server,
    user: &str,
    password: &str,
    options: &RegistryOptions,
) -> Result<(), LoginError> {
    let host = &server.api_host;
    let transport = options.transport(host)?;
    let timeouts = Timeouts::resolve(options.timeout)?;
    let unreachable = |e: reqwest::Error| RegistryError::Unreachable {
        registry: host.clone(),
        reason: root_cause(&e),
    };
    let http = http_client(host, &transport, timeouts)?;
    let protocol = choose_protocol(host, &transport, &http, timeouts).await?;
    let https = !matches!(protocol, oci_client::client::ClientProtocol::Http);
    let scheme = if https { "https" } else { "http" };
    let base = format!("{scheme}://{host}/v2/");
    let challenge = http.get(&base).send().await.map_err(unreachable)?;
    let refused = || LoginError::Refused {
        registry: host.clone(),
    };
    let status = challenge.status();
    if status.is_success() {
        return Ok(());
    }
    if status != reqwest::StatusCode::UNAUTHORIZED {
        return Err(RegistryError::Failed {
            registry: host.clone(),
            what: "GET /v2/".to_string(),
            reason: format!("answered {status}"),
        }
        .into());
    }
    let header = challenge
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (scheme_name, params) = header.split_once(' ').unwrap_or((&header, ""));
    let answered = if scheme_name.eq_ignore_ascii_case("bearer") {
        let params = challenge_params(params);
        let realm = params.get("realm").ok_or_else(|| RegistryError::Failed {
            registry: host.clone(),
            what: "its token challenge".to_string(),
            reason: format!("no realm in {header:?}"),
        })?;
        let mut query = vec![("account", user.to_string())];
        if let Some(service) = params.get("service") {
            query.push(("service", service.clone()));
        }
        http.get(realm)
            .query(&query)
            .basic_auth(user, Some(password))
            .send()
            .await
            .map_err(unreachable)?
    } else {
        http.get(&base)
            .basic_auth(user, Some(password))
            .send()
            .await
            .map_err(unreachable)?
    };
    match answered.status() {
        s if s.is_success() => Ok(()),
        reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN => Err(refused()),
        other => Err(RegistryError::Failed {
            registry: host.clone(),
            what: "the login".to_string(),
            reason: format!("answered {other}"),
        }
        .into()),
    }
}

/// `realm="…",service="…"` as a map.
pub(super) fn challenge_params(text: &str) -> std::collections::HashMap<String, String> {
    let mut params = std::collections::HashMap::new();
    let mut rest = text.trim();
    while let Some((name, after)) = rest.split_once('=') {
        let name = name
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.split_once('"') {
                Some((value, next)) => (value.to_string(), next),
                None => (quoted.to_string(), ""),
            },
            None => match after.split_once(',') {
                Some((value, next)) => (value.trim().to_string(), next),
                None => (after.trim().to_string(), ""),
            },
        };
        params.insert(name, value);
        rest = next.trim_start_matches(',').trim();
    }
    params
}

/// Keeps a verified login where Docker would.
pub fn save(
    config: &DockerConfig,
    server: &Server,
    user: &str,
    password: &str,
) -> Result<SavedIn, LoginError> {
    let path = config_path(config)?;
    let key = server.key();
    match config.helper_for(&server.domain) {
        Some(helper) => {
            let request = serde_json::json!({
                "ServerURL": key,
                "Username": user,
                "Secret": password,
            });
            run_helper(helper, "store", &request.to_string(), &key)?;
            // Docker names the server in the file, without its secret.
            edit_config(&path, |auths| {
                auths.insert(key.clone(), serde_json::json!({}));
                true
            })?;
            Ok(SavedIn::Helper(helper.to_string()))
        }
        None => {
            use base64::Engine as _;
            let auth =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            edit_config(&path, |auths| {
                // One entry per host, whatever form an older one was saved in.
                auths.retain(|k, _| hostname_of(k) != hostname_of(&key));
                auths.insert(key.clone(), serde_json::json!({ "auth": auth }));
                true
            })?;
            Ok(SavedIn::File(path))
        }
    }
}

/// Forgets a login; returns whether there was one.
pub fn remove(config: &DockerConfig, server: &Server) -> Result<bool, LoginError> {
    let path = config_path(config)?;
    let key = server.key();
    let mut found = false;
    if let Some(helper) = config.helper_for(&server.domain) {
        // A helper that holds nothing for the server says so; not an error.
        found = run_helper(helper, "erase", &key, &key).is_ok();
    }
    let in_file = edit_config(&path, |auths| {
        let before = auths.len();
        auths.retain(|k, _| hostname_of(k) != hostname_of(&key));
        auths.len() != before
    })?;
    Ok(found || in_file)
}

fn config_path(config: &DockerConfig) -> Result<PathBuf, LoginError> {
    config
        .path()
        .map(Path::to_path_buf)
        .ok_or_else(|| LoginError::Config {
            path: PathBuf::from("config.json"),
            reason: "no DOCKER_CONFIG and no HOME: nowhere to keep the login".to_string(),
        })
}

/// Read-modify-write of `config.json`'s `auths`, keeping every other key;
/// written to a temp file (mode 0600) and renamed, as Docker does. `edit`
/// says whether it changed anything; nothing is written if not.
fn edit_config(
    path: &Path,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>) -> bool,
) -> Result<bool, LoginError> {
    let bad = |reason: String| LoginError::Config {
        path: path.to_path_buf(),
        reason,
    };
    let mut document = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .map_err(|e| bad(format!("malformed JSON: {e}")))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(bad(e.to_string())),
    };
    let object = document
        .as_object_mut()
        .ok_or_else(|| bad("not a JSON object".to_string()))?;
    let auths = object
        .entry("auths")
        .or_insert_with(|| serde_json::json!({}))
        .as_object_mut()
        .ok_or_else(|| bad("\"auths\" is not an object".to_string()))?;
    if !edit(auths) {
        return Ok(false);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| bad(e.to_string()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".config.json.")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| bad(e.to_string()))?;
    let mut text = serde_json::to_string_pretty(&document).expect("JSON serialises");
    text.push('\n');
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| bad(e.to_string()))?;
    tmp.persist(path).map_err(|e| bad(e.error.to_string()))?;
    Ok(true)
}

/// `docker-credential-<helper> <verb>`, which must succeed.
fn run_helper(helper: &str, verb: &str, input: &str, server: &str) -> Result<(), AuthError> {
    let output = call_helper(helper, verb, input, server)?;
    if !output.status.success() {
        let said = helper_said(&output);
        return Err(helper_failed(helper, server, format!("{verb}: {said}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_named_as_docker_keys_them() {
        let hub = Server::parse(None);
        assert_eq!(hub.key(), "https://index.docker.io/v1/");
        assert_eq!(hub.api_host, "registry-1.docker.io");
        assert_eq!(Server::parse(Some("docker.io")), hub);
        assert_eq!(Server::parse(Some("https://index.docker.io/v1/")), hub);
        let local = Server::parse(Some("https://127.0.0.1:5000/v2/"));
        assert_eq!(local.key(), "127.0.0.1:5000");
        assert_eq!(local.api_host, "127.0.0.1:5000");
    }

    #[test]
    fn token_challenges_are_read_with_quotes_and_commas() {
        let params = challenge_params(
            r#"realm="https://auth.example/token",service="registry.example",scope="repository:a:pull,push""#,
        );
        assert_eq!(params["realm"], "https://auth.example/token");
        assert_eq!(params["service"], "registry.example");
        assert_eq!(params["scope"], "repository:a:pull,push");
    }

    #[test]
    fn a_saved_login_keeps_every_other_key_and_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"psFormat":"table {{.ID}}","auths":{"other:5000":{"auth":"eDp5"},"https://h:1/v1/":{"auth":"b2xkOm9sZA=="}}}"#,
        )
        .unwrap();
        let config = DockerConfig::load(Some(dir.path())).unwrap();
        let server = Server::parse(Some("h:1"));
        assert_eq!(
            save(&config, &server, "u", "p").unwrap(),
            SavedIn::File(path.clone())
        );
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(saved["psFormat"], "table {{.ID}}");
        assert_eq!(saved["auths"]["other:5000"]["auth"], "eDp5");
        assert_eq!(saved["auths"]["h:1"]["auth"], "dTpw");
        assert!(saved["auths"].get("https://h:1/v1/").is_none());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let config = DockerConfig::load(Some(dir.path())).unwrap();
        assert!(remove(&config, &server).unwrap());
        assert!(!remove(&config, &server).unwrap());
        let left: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(left["auths"].as_object().unwrap().len(), 1);
    }
}
