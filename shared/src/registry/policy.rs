//! `--pull missing|always|never`: whether a tool that needs an image (ctr-run,
//! img-build's FROM) fetches it first, decided the way `docker run` does.

use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::{Store, StoreError};
use std::str::FromStr;

/// When to pull the image a command names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Only when the store has no image by that name or ID (Docker's default).
    #[default]
    Missing,
    /// Every time, so a moved tag is followed.
    Always,
    /// Never: a missing image is an error.
    Never,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid pull policy {0:?}: expected missing, always or never")]
pub struct BadPolicy(String);

impl FromStr for PullPolicy {
    type Err = BadPolicy;
    fn from_str(value: &str) -> Result<PullPolicy, BadPolicy> {
        match value {
            "missing" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            other => Err(BadPolicy(other.to_string())),
        }
    }
}

/// What the policy asks for, given the store's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullNeed {
    /// Use what the store has.
    Present,
    /// The store has nothing by this name: pull it (Docker first says
    /// "Unable to find image '…' locally").
    Missing(Reference),
    /// The store has it, but the policy says fetch it again.
    Refresh(Reference),
}

impl PullPolicy {
    /// Decides for `target` (a reference, an ID or an ID prefix). IDs never
    /// name anything a registry could serve, so they are only looked up.
    pub fn need(self, store: &Store, target: &str) -> Result<PullNeed, StoreError> {
        self.need_on(store, target, None)
    }

    /// `need` for one platform (`--platform`): an image of another platform
    /// under that name counts as missing.
    pub fn need_on(
        self,
        store: &Store,
        target: &str,
        platform: Option<&Platform>,
    ) -> Result<PullNeed, StoreError> {
        let present = match store.resolve_image_for(target, platform) {
            Ok(_) => true,
            Err(StoreError::NoSuchImage(_)) => false,
            Err(other) => return Err(other),
        };
        // A full ID is not a name (the parser refuses 64 hex digits), and an
        // `sha256:` ID names nothing a registry could serve: look up only.
        let reference = match Reference::parse(target) {
            Ok(reference) if !target.starts_with("sha256:") => reference,
            _ => return Ok(PullNeed::Present),
        };
        Ok(match (self, present) {
            (PullPolicy::Never, _) | (PullPolicy::Missing, true) => PullNeed::Present,
            (PullPolicy::Missing, false) => PullNeed::Missing(reference),
            (PullPolicy::Always, true) => PullNeed::Refresh(reference),
            (PullPolicy::Always, false) => PullNeed::Missing(reference),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_like_dockers_flag() {
        assert_eq!(
            "missing".parse::<PullPolicy>().unwrap(),
            PullPolicy::Missing
        );
        assert_eq!("always".parse::<PullPolicy>().unwrap(), PullPolicy::Always);
        assert_eq!("never".parse::<PullPolicy>().unwrap(), PullPolicy::Never);
        let error = "sometimes".parse::<PullPolicy>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid pull policy \"sometimes\": expected missing, always or never"
        );
    }

    #[test]
    fn the_store_decides_missing_and_ids_are_never_pulled() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let need = PullPolicy::Missing.need(&store, "busybox").unwrap();
        assert_eq!(
            need,
            PullNeed::Missing(Reference::parse("docker.io/library/busybox:latest").unwrap())
        );
        assert_eq!(
            PullPolicy::Never.need(&store, "busybox").unwrap(),
            PullNeed::Present
        );
        let id = "a".repeat(64);
        assert_eq!(
            PullPolicy::Always.need(&store, &id).unwrap(),
            PullNeed::Present
        );
    }
}
