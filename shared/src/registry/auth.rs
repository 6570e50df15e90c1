//! Credentials the way the docker CLI stores them: `config.json`'s `auths`
//! (base64 `user:password`), and `credHelpers`/`credsStore`, which name a
//! `docker-credential-<name>` executable speaking the helper protocol.

use oci_client::secrets::RegistryAuth;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The key Docker Hub's credentials are stored under.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("credential helper docker-credential-{helper} failed for {registry}: {reason}")]
    Helper {
        helper: String,
        registry: String,
        reason: String,
    },
}

/// The parts of `config.json` that concern pulling.
#[derive(Debug, Default, serde::Deserialize)]
pub struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(skip)]
    path: Option<PathBuf>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "registrytoken")]
    registry_token: Option<String>,
}

#[derive(serde::Deserialize)]
struct HelperReply {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

impl DockerConfig {
    /// Reads `<dir>/config.json`, `dir` defaulting to `$DOCKER_CONFIG`, else
    /// `~/.docker`. A missing file means no credentials, as for Docker.
    pub fn load(dir: Option<&Path>) -> Result<DockerConfig, AuthError> {
        let dir = match dir {
            Some(dir) => dir.to_path_buf(),
            None => match std::env::var_os("DOCKER_CONFIG") {
                Some(dir) => PathBuf::from(dir),
                None => match std::env::var_os("HOME") {
                    Some(home) => PathBuf::from(home).join(".docker"),
                    None => return Ok(DockerConfig::default()),
                },
            },
        };
        let path = dir.join("config.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DockerConfig {
                    path: Some(path),
                    ..DockerConfig::default()
                });
            }
            Err(e) => {
                return Err(AuthError::Config {
                    path,
                    reason: e.to_string(),
                });
            }
        };
        let mut config: DockerConfig =
            serde_json::from_str(&text).map_err(|e| AuthError::Config {
                path: path.clone(),
                reason: format!("malformed JSON: {e}"),
            })?;
        config.path = Some(path);
        Ok(config)
    }

    /// The `config.json` this was read from (or would be).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Where the credentials were looked up, for messages.
    pub fn describe(&self, domain: &str) -> String {
        let path = self
            .path
            .as_ref()
            .map_or("config.json".to_string(), |p| p.display().to_string());
        match self.helper_for(domain) {
            Some(helper) => format!("credentials from docker-credential-{helper}"),
            None if self.entry_for(domain).is_some() => format!("credentials from {path}"),
            None => format!("no credentials for {domain} in {path}"),
        }
    }

    /// The credentials for the registry named `domain` in references
    /// (`docker.io`, `host:5000`).
    pub fn credentials(&self, domain: &str) -> Result<RegistryAuth, AuthError> {
        if let Some(helper) = self.helper_for(domain) {
            return run_helper(helper, &server_key(domain));
        }
        let Some(entry) = self.entry_for(domain) else {
            return Ok(RegistryAuth::Anonymous);
        };
        if let Some(token) = &entry.registry_token {
            return Ok(RegistryAuth::Bearer(token.clone()));
        }
        if let (Some(user), Some(password)) = (&entry.username, &entry.password) {
            return Ok(RegistryAuth::Basic(user.clone(), password.clone()));
        }
        let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) else {
            return Ok(RegistryAuth::Anonymous);
        };
        let bad = |reason: &str| AuthError::Config {
            path: self.path.clone().unwrap_or_default(),
            reason: format!("auths entry for {domain}: {reason}"),
        };
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| bad("\"auth\" is not base64"))?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad("\"auth\" is not UTF-8"))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| bad("\"auth\" is not user:password"))?;
        Ok(RegistryAuth::Basic(user.to_string(), password.to_string()))
    }

    /// Whether anything is configured for `domain`: a helper, or an entry.
    /// (Whether a helper actually holds a secret is its own business.)
    pub fn has_credentials(&self, domain: &str) -> bool {
        self.helper_for(domain).is_some() || self.entry_for(domain).is_some()
    }

    /// The helper that keeps `domain`'s secrets, if one is configured.
    pub(crate) fn helper_for(&self, domain: &str) -> Option<&str> {
        self.cred_helpers
            .iter()
            .find(|(key, _)| hostname_of(key) == hostname_of(&server_key(domain)))
            .map(|(_, helper)| helper.as_str())
            .or(self.creds_store.as_deref())
            .filter(|h| !h.is_empty())
    }

    /// Docker matches `auths` keys by hostname, whatever scheme or path they
    /// were saved with (`https://host/v1/` and `host` are the same entry).
    fn entry_for(&self, domain: &str) -> Option<&AuthEntry> {
        let wanted = hostname_of(&server_key(domain)).to_string();
        self.auths.get(&server_key(domain)).or_else(|| {
            self.auths
                .iter()
                .find(|(k, _)| hostname_of(k) == wanted)
                .map(|(_, v)| v)
        })
    }
}

/// The server key Docker stores credentials under for a reference domain.
pub(crate) fn server_key(domain: &str) -> String {
    if domain == crate::reference::DEFAULT_DOMAIN {
        DOCKER_HUB_KEY.to_string()
    } else {
        domain.to_string()
    }
}

pub(crate) fn hostname_of(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// `docker-credential-<helper> <verb>` with `input` on stdin: its output,
/// whatever its status (each verb reads a failure its own way).
pub(crate) fn call_helper(
    helper: &str,
    verb: &str,
    input: &str,
    server: &str,
) -> Result<std::process::Output, AuthError> {
    let program = format!("docker-credential-{helper}");
    let failed = |reason: String| helper_failed(helper, server, reason);
    let mut child = Command::new(&program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    child.wait_with_output().map_err(|e| failed(e.to_string()))
}

pub(crate) fn helper_failed(helper: &str, server: &str, reason: String) -> AuthError {
    AuthError::Helper {
        helper: helper.to_string(),
        registry: server.to_string(),
        reason,
    }
}

/// What a helper said when it failed: its stdout and stderr on one line.
pub(crate) fn helper_said(output: &std::process::Output) -> String {
    format!(
        "{}: {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    )
}

/// `docker-credential-<helper> get`, the server on stdin, JSON on stdout.
/// "credentials not found" is no error: the pull goes on anonymously.
fn run_helper(helper: &str, server: &str) -> Result<RegistryAuth, AuthError> {
    let output = call_helper(helper, "get", server, server)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        if stdout.contains("credentials not found") {
            return Ok(RegistryAuth::Anonymous);
        }
        return Err(helper_failed(helper, server, helper_said(&output)));
    }
    let reply: HelperReply = serde_json::from_str(&stdout)
        .map_err(|e| helper_failed(helper, server, format!("unreadable reply: {e}")))?;
    Ok(RegistryAuth::Basic(reply.username, reply.secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> (tempfile::TempDir, DockerConfig) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), json).unwrap();
        let config = DockerConfig::load(Some(dir.path())).unwrap();
        (dir, config)
    }

    fn basic(auth: RegistryAuth) -> Option<(String, String)> {
        match auth {
            RegistryAuth::Basic(u, p) => Some((u, p)),
            _ => None,
        }
    }

    #[test]
    fn auths_are_matched_by_hostname_and_decoded() {
        // "alice:s3cret:with:colons" in base64.
        let (_dir, config) = config(
            r#"{"auths":{"https://reg.example:5000/v2/":{"auth":"YWxpY2U6czNjcmV0OndpdGg6Y29sb25z"},
                "https://index.docker.io/v1/":{"auth":"Ym9iOmh1Yg=="}}}"#,
        );
        assert_eq!(
            basic(config.credentials("reg.example:5000").unwrap()),
            Some(("alice".into(), "s3cret:with:colons".into()))
        );
        assert_eq!(
            basic(config.credentials("docker.io").unwrap()),
            Some(("bob".into(), "hub".into()))
        );
        assert!(matches!(
            config.credentials("other.example").unwrap(),
            RegistryAuth::Anonymous
        ));
    }

    #[test]
    fn missing_config_is_anonymous_and_garbage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let config = DockerConfig::load(Some(dir.path())).unwrap();
        assert!(matches!(
            config.credentials("x").unwrap(),
            RegistryAuth::Anonymous
        ));
        std::fs::write(dir.path().join("config.json"), "{nope").unwrap();
        let err = DockerConfig::load(Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.json") && err.contains("malformed JSON"),
            "{err}"
        );
        let (_d, config) = config_with_bad_auth();
        let err = config.credentials("h").unwrap_err().to_string();
        assert!(err.contains("auths entry for h"), "{err}");
    }

    fn config_with_bad_auth() -> (tempfile::TempDir, DockerConfig) {
        config(r#"{"auths":{"h":{"auth":"!!!"}}}"#)
    }

    #[test]
    fn a_missing_helper_is_a_clear_error() {
        let (_dir, config) = config(r#"{"credHelpers":{"reg:1":"berth-no-such-helper"}}"#);
        let err = config.credentials("reg:1").unwrap_err().to_string();
        assert!(
            err.contains("docker-credential-berth-no-such-helper"),
            "{err}"
        );
        assert!(matches!(
            config.credentials("reg:2").unwrap(),
            RegistryAuth::Anonymous
        ));
    }
}
