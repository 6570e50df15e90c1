//! Platforms (`os/arch[/variant]`) in OCI's vocabulary, the host's own, and
//! how a wanted platform matches an index entry.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/arm64")]
pub struct PlatformError(String);

impl Platform {
    /// The platform of the machine we run on, in OCI's names.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "x86" => ("386", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// The platform an image config declares (`os`, `architecture`,
    /// `variant`); `unknown` for a missing field.
    pub fn of_config(config: &[u8]) -> Platform {
        let value: serde_json::Value = serde_json::from_slice(config).unwrap_or_default();
        let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_string);
        Platform {
            os: field("os").unwrap_or_else(|| "unknown".to_string()),
            architecture: field("architecture").unwrap_or_else(|| "unknown".to_string()),
            variant: field("variant"),
        }
    }

    /// Whether an index entry for `os/architecture/variant` serves this
    /// platform. A missing variant on either side matches, except that
    /// arm64's implied `v8` is the only variant a bare arm64 entry serves.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.architecture != architecture {
            return false;
        }
        match (self.variant.as_deref(), variant) {
            (Some(want), Some(have)) => want == have,
            _ => true,
        }
    }
}

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Platform, PlatformError> {
        let parts: Vec<&str> = s.split('/').collect();
        let valid = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(valid) {
            return Err(PlatformError(s.to_string()));
        }
        let architecture = match parts[1] {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: architecture.to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches_variants() {
        let arm7: Platform = "linux/arm/v7".parse().unwrap();
        assert!(arm7.matches("linux", "arm", Some("v7")));
        assert!(!arm7.matches("linux", "arm", Some("v6")));
        assert!(!arm7.matches("linux", "arm64", Some("v8")));
        let arm64: Platform = "linux/aarch64".parse().unwrap();
        assert_eq!(arm64.to_string(), "linux/arm64");
        assert!(arm64.matches("linux", "arm64", Some("v8")));
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux/amd64/v1/x".parse::<Platform>().is_err());
    }
}
