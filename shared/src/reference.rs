//! Image references and Docker's normalisation of them: `postgres` becomes
//! `docker.io/library/postgres:latest`, `host:5000/x` keeps its registry, and
//! a `@sha256:` digest pins content. The grammar is distribution/reference's.

use crate::digest::{Digest, DigestError};
use std::fmt;
use std::str::FromStr;

/// The registry Docker assumes for names without a domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The host that actually serves `docker.io`'s registry API.
pub const DEFAULT_REGISTRY_HOST: &str = "registry-1.docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

/// A fully normalised reference: domain, repository path, and a tag, a
/// digest, or both.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format: repository name must have at least one component")]
    Empty,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    #[error("invalid reference format: repository name must not be more than 255 characters")]
    TooLong,
    #[error("invalid reference format: {input:?}: {what}")]
    Invalid { input: String, what: String },
    #[error("invalid reference format: {input:?}: {source}")]
    Digest {
        input: String,
        #[source]
        source: DigestError,
    },
}

impl Reference {
    /// Parses `input` the way `docker pull` does, adding `:latest` when neither
    /// a tag nor a digest is given.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let mut reference = Reference::parse_unnormalised(input)?;
        if reference.tag.is_none() && reference.digest.is_none() {
            reference.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(reference)
    }

    /// Parses without adding the default tag: a bare repository name stays
    /// bare (for `--all-tags` and repository filters).
    pub fn parse_unnormalised(input: &str) -> Result<Reference, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if Digest::is_hex64(input) {
            return Err(ReferenceError::HexName(input.to_string()));
        }
        let invalid = |what: &str| ReferenceError::Invalid {
            input: input.to_string(),
            what: what.to_string(),
        };

        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                let digest = digest.parse().map_err(|source| ReferenceError::Digest {
                    input: input.to_string(),
                    source,
                })?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // A tag is the part after the last ':' that follows the last '/', so
        // the ':' of a registry port is never mistaken for one.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(invalid("missing repository name"));
        }
        if let Some(tag) = tag {
            validate_tag(tag).map_err(|what| invalid(&what))?;
        }

        let (domain, path) = split_domain(name);
        if path.to_lowercase() != path {
            return Err(ReferenceError::Uppercase(path));
        }
        validate_domain(&domain).map_err(|what| invalid(&what))?;
        validate_path(&path).map_err(|what| invalid(&what))?;
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::TooLong);
        }
        Ok(Reference {
            domain,
            path,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The registry domain as written in the name (`docker.io`, `localhost:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The host to contact for the registry API: `docker.io` is served by
    /// `registry-1.docker.io`.
    pub fn registry_host(&self) -> &str {
        if self.domain == DEFAULT_DOMAIN {
            DEFAULT_REGISTRY_HOST
        } else {
            &self.domain
        }
    }

    /// The repository path inside the registry (`library/postgres`).
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `domain/path`, the repository without tag or digest.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Docker's familiar repository name: `docker.io/library/x` shows as `x`,
    /// `docker.io/user/x` as `user/x`; other registries keep their domain.
    pub fn familiar_repository(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.repository();
        }
        self.path
            .strip_prefix(OFFICIAL_REPO_PREFIX)
            .filter(|rest| !rest.contains('/'))
            .unwrap_or(&self.path)
            .to_string()
    }

    /// Docker's short form of the whole reference: `busybox:latest`,
    /// `user/app:1`, `host:5000/x:tag`, `busybox@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut name = self.familiar_repository();
        if let Some(digest) = &self.digest {
            name.push('@');
            name.push_str(&digest.to_string());
        } else if let Some(tag) = &self.tag {
            name.push(':');
            name.push_str(tag);
        }
        name
    }

    /// The same repository with `tag` and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository pinned to `digest`, keeping the tag.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same repository pinned to `digest`, without a tag
    /// (Docker's `RepoDigests` form).
    pub fn by_digest(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

/// Docker's rule: the first component is a registry domain only when it
/// contains `.` or `:`, is `localhost`, or has an uppercase letter.
fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !path.contains('/') {
        path = format!("{OFFICIAL_REPO_PREFIX}{path}");
    }
    (domain, path)
}

fn validate_domain(domain: &str) -> Result<(), String> {
    // An IPv6 literal has no host components to check; a name does.
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("registry {domain:?} has an unclosed '['"))?;
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(format!("registry {domain:?} is not a valid IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("registry {domain:?} has junk after ']'"))?,
            ),
        };
        (None, port)
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("registry {domain:?} has an invalid port {port:?}"));
    }
    for component in host.into_iter().flat_map(|h| h.split('.')) {
        let ok = !component.is_empty()
            && component
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !component.starts_with('-')
            && !component.ends_with('-');
        if !ok {
            return Err(format!(
                "registry {domain:?} has an invalid host component {component:?}"
            ));
        }
    }
    Ok(())
}

/// Path components are lowercase alphanumerics joined by `.`, `_`, `__` or
/// runs of `-`.
fn validate_path(path: &str) -> Result<(), String> {
    for component in path.split('/') {
        if component.is_empty() {
            return Err(format!("repository path {path:?} has an empty component"));
        }
        let bytes = component.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let mut i = 0;
        let bad = || {
            format!(
                "repository path component {component:?} must be lowercase letters and digits separated by '.', '_', '__' or '-'"
            )
        };
        if !alnum(bytes[0]) {
            return Err(bad());
        }
        while i < bytes.len() {
            if alnum(bytes[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && !alnum(bytes[i]) {
                i += 1;
            }
            let separator = &component[start..i];
            let separator_ok =
                matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
            if !separator_ok || i == bytes.len() {
                return Err(bad());
            }
        }
    }
    Ok(())
}

fn validate_tag(tag: &str) -> Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    if bytes.is_empty() {
        return Err("empty tag after ':'".to_string());
    }
    if bytes.len() > TAG_LENGTH_MAX {
        return Err(format!("tag is longer than {TAG_LENGTH_MAX} characters"));
    }
    if !word(bytes[0]) || !bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-') {
        return Err(format!(
            "tag {tag:?} must start with a letter, digit or '_' and contain only those, '.' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// Docker's documented normalisation (docker pull / docker tag docs and
    /// distribution/reference's tests): input → canonical reference.
    #[test]
    fn normalisation_table() {
        let cases: &[(&str, &str)] = &[
            ("postgres", "docker.io/library/postgres:latest"),
            ("busybox", "docker.io/library/busybox:latest"),
            ("ubuntu:22.04", "docker.io/library/ubuntu:22.04"),
            ("library/ubuntu", "docker.io/library/ubuntu:latest"),
            ("docker.io/ubuntu", "docker.io/library/ubuntu:latest"),
            (
                "docker.io/library/ubuntu",
                "docker.io/library/ubuntu:latest",
            ),
            ("index.docker.io/ubuntu", "docker.io/library/ubuntu:latest"),
            ("user/app", "docker.io/user/app:latest"),
            ("user/app:v1.2", "docker.io/user/app:v1.2"),
            (
                "docker/welcome-to-docker",
                "docker.io/docker/welcome-to-docker:latest",
            ),
            (
                "myregistry.local:5000/testing/test-image",
                "myregistry.local:5000/testing/test-image:latest",
            ),
            ("localhost:5000/app:dev", "localhost:5000/app:dev"),
            ("localhost/app", "localhost/app:latest"),
            ("127.0.0.1:5000/bb", "127.0.0.1:5000/bb:latest"),
            ("[::1]:5000/bb:x", "[::1]:5000/bb:x"),
            ("ghcr.io/org/team/tool:1", "ghcr.io/org/team/tool:1"),
            ("a/b/c/d", "docker.io/a/b/c/d:latest"),
            ("my_app.v2-x__y", "docker.io/library/my_app.v2-x__y:latest"),
            ("a--b", "docker.io/library/a--b:latest"),
            (
                &format!("ubuntu@{D}"),
                &format!("docker.io/library/ubuntu@{D}"),
            ),
            (
                &format!("ubuntu:22.04@{D}"),
                &format!("docker.io/library/ubuntu:22.04@{D}"),
            ),
            (
                &format!("localhost:5000/x@{D}"),
                &format!("localhost:5000/x@{D}"),
            ),
            (
                "Registry.Example.com/app",
                "Registry.Example.com/app:latest",
            ),
            ("app:_under", "docker.io/library/app:_under"),
        ];
        for (input, want) in cases {
            let got = Reference::parse(input)
                .unwrap_or_else(|e| panic!("{input:?} failed: {e}"))
                .to_string();
            assert_eq!(&got, want, "normalising {input:?}");
        }
    }

    #[test]
    fn invalid_references_name_what_is_wrong() {
        let hex = &D[7..];
        let cases: &[(&str, &str)] = &[
            (
                "",
                "invalid reference format: repository name must have at least one component",
            ),
            (
                "Foo",
                "invalid reference format: repository name (library/Foo) must be lowercase",
            ),
            (
                "user/App:1",
                "invalid reference format: repository name (user/App) must be lowercase",
            ),
            (hex, "cannot specify 64-byte hexadecimal strings"),
            ("foo:", "empty tag after ':'"),
            (":tag", "missing repository name"),
            ("foo:-bad", "tag \"-bad\" must start with"),
            ("foo:a/b", "invalid port \"a\""),
            ("foo@sha256:abc", "invalid digest \"sha256:abc\""),
            ("foo@md5:abcd", "unsupported digest algorithm \"md5\""),
            ("-foo", "repository path component \"-foo\""),
            ("foo_", "repository path component \"foo_\""),
            ("foo//bar", "has an empty component"),
            ("a...b", "repository path component \"a...b\""),
            ("host:port/x", "invalid port \"port\""),
            ("-bad.com/x", "invalid host component \"-bad\""),
            ("[::1/x", "unclosed"),
        ];
        for (input, want) in cases {
            let err = Reference::parse(input).expect_err(input).to_string();
            assert!(
                err.contains(want),
                "{input:?}: {err:?} should contain {want:?}"
            );
        }
        let long = format!("{}/x", "a".repeat(260));
        assert_eq!(Reference::parse(&long), Err(ReferenceError::TooLong));
        let long_tag = format!("x:{}", "t".repeat(129));
        assert!(Reference::parse(&long_tag).is_err());
    }

    #[test]
    fn familiar_names_and_registry_host() {
        let r = Reference::parse("postgres").unwrap();
        assert_eq!(r.familiar_repository(), "postgres");
        assert_eq!(r.registry_host(), "registry-1.docker.io");
        assert_eq!(
            Reference::parse("user/app").unwrap().familiar_repository(),
            "user/app"
        );
        let local = Reference::parse("localhost:5000/app").unwrap();
        assert_eq!(local.familiar_repository(), "localhost:5000/app");
        assert_eq!(local.registry_host(), "localhost:5000");
    }

    #[test]
    fn unnormalised_parse_keeps_bare_names_bare() {
        let r = Reference::parse_unnormalised("busybox").unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.to_string(), "docker.io/library/busybox");
    }
}
