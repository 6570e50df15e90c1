//! Reading what a registry sends for a reference: which of the four manifest
//! types it is, and which entry of an index serves the wanted platform.

use super::limits::MAX_MANIFEST_BYTES;
use crate::digest::{Digest, DigestError};
use crate::platform::Platform;
use crate::store::MediaKind;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

/// The manifest types we ask for and accept, OCI's and Docker's.
pub(crate) const ACCEPT: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{what}: malformed manifest: {reason}")]
    Malformed { what: String, reason: String },
    #[error("{what}: unsupported manifest type {media_type}")]
    Unsupported { what: String, media_type: String },
    #[error("{what}: unsupported layer type {media_type}")]
    UnsupportedLayer { what: String, media_type: String },
    #[error("{what}: too large: over the {} MiB limit for manifests and configs", MAX_MANIFEST_BYTES >> 20)]
    TooLarge { what: String },
    #[error("unsupported digest algorithm {algorithm} in {what}: only sha256 is supported")]
    UnsupportedDigest { what: String, algorithm: String },
    #[error("{what}: not an image config: {reason}")]
    BadConfig { what: String, reason: String },
    #[error("{what}: the manifest lists {layers} layers but the config has {diff_ids} diff IDs")]
    LayerCount {
        what: String,
        layers: usize,
        diff_ids: usize,
    },
    #[error(
        "no matching manifest for {platform} in the manifest list entries of {what} (it has: {available})"
    )]
    NoPlatform {
        what: String,
        platform: Platform,
        available: String,
    },
}

/// The media type of a manifest body: its `mediaType` field, or for OCI
/// documents that omit it (the field is optional there), inferred from
/// the shape.
pub(crate) fn media_type(bytes: &[u8], what: &str) -> Result<String, ManifestError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed {
            what: what.to_string(),
            reason: e.to_string(),
        })?;
    if let Some(media_type) = value.get("mediaType").and_then(|m| m.as_str()) {
        return Ok(media_type.to_string());
    }
    if value.get("manifests").is_some() {
        Ok(OCI_INDEX.to_string())
    } else if value.get("layers").is_some() {
        Ok(OCI_MANIFEST.to_string())
    } else {
        Err(ManifestError::Malformed {
            what: what.to_string(),
            reason: "neither an image manifest nor an index".to_string(),
        })
    }
}

pub(crate) fn parse_index(bytes: &[u8], what: &str) -> Result<ImageIndex, ManifestError> {
    serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed {
        what: what.to_string(),
        reason: e.to_string(),
    })
}

/// Parses an image manifest and checks every layer is one we can store and
/// later unpack (tar, gzip or zstd, OCI's or Docker's names for them), and
/// that every blob is addressed by a digest we can verify.
pub(crate) fn parse_image(bytes: &[u8], what: &str) -> Result<ImageManifest, ManifestError> {
    let manifest: ImageManifest =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed {
            what: what.to_string(),
            reason: e.to_string(),
        })?;
    checked_digest(
        manifest.config(),
        &format!("the config descriptor of {what}"),
    )?;
    for (n, layer) in manifest.layers().iter().enumerate() {
        checked_digest(layer, &format!("layer {} of {what}", n + 1))?;
    }
    for layer in manifest.layers() {
        let media_type = layer.media_type().to_string();
        let known = media_type.starts_with("application/vnd.oci.image.layer.")
            || media_type.starts_with("application/vnd.docker.image.rootfs.");
        if !known {
            return Err(ManifestError::UnsupportedLayer {
                what: what.to_string(),
                media_type,
            });
        }
    }
    Ok(manifest)
}

/// The sha256 digest `descriptor` addresses. Any other algorithm is refused
/// by name: hashing it as sha256 could only ever fail, and confusingly.
pub(crate) fn checked_digest(descriptor: &Descriptor, what: &str) -> Result<Digest, ManifestError> {
    let text = descriptor.digest().to_string();
    text.parse().map_err(|e| match e {
        DigestError::Algorithm(algorithm) => ManifestError::UnsupportedDigest {
            what: format!("{what} ({text})"),
            algorithm,
        },
        DigestError::Malformed(_) => ManifestError::Malformed {
            what: what.to_string(),
            reason: e.to_string(),
        },
    })
}

/// Refuses a manifest or config whose descriptor announces more than we
/// accept, before a byte of it is fetched.
pub(crate) fn check_size(descriptor: &Descriptor, what: &str) -> Result<(), ManifestError> {
    if descriptor.size() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge {
            what: what.to_string(),
        });
    }
    Ok(())
}

/// What Docker checks of a config at pull time: it parses as an image
/// config, and it names one diff ID per layer of the manifest. Returns the
/// diff IDs.
pub(crate) fn check_config(
    bytes: &[u8],
    layers: usize,
    what: &str,
) -> Result<Vec<Digest>, ManifestError> {
    let bad = |reason: String| ManifestError::BadConfig {
        what: what.to_string(),
        reason,
    };
    let config: ImageConfiguration =
        serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    let diff_ids = config
        .rootfs()
        .diff_ids()
        .iter()
        .enumerate()
        .map(|(n, id)| {
            id.parse::<Digest>().map_err(|e| match e {
                DigestError::Algorithm(algorithm) => ManifestError::UnsupportedDigest {
                    what: format!("diff ID {} of {what} ({id})", n + 1),
                    algorithm,
                },
                DigestError::Malformed(_) => bad(format!("diff ID {}: {e}", n + 1)),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if diff_ids.len() != layers {
        return Err(ManifestError::LayerCount {
            what: what.to_string(),
            layers,
            diff_ids: diff_ids.len(),
        });
    }
    Ok(diff_ids)
}

/// Whether `media_type` names something `img-pull` can store as an image.
pub(crate) fn check_kind(media_type: &str, what: &str) -> Result<MediaKind, ManifestError> {
    match MediaKind::of(media_type) {
        MediaKind::Other => Err(ManifestError::Unsupported {
            what: what.to_string(),
            media_type: media_type.to_string(),
        }),
        kind => Ok(kind),
    }
}

/// The index entry serving `platform`: an exact variant match first, then
/// an entry that leaves the variant open, as containerd's matcher prefers.
pub(crate) fn select<'a>(
    index: &'a ImageIndex,
    platform: &Platform,
    what: &str,
) -> Result<&'a Descriptor, ManifestError> {
    let images = || {
        index
            .manifests()
            .iter()
            .filter(|d| MediaKind::of(d.media_type().as_ref()) == MediaKind::Manifest)
    };
    let platform_of = |d: &Descriptor| {
        d.platform().as_ref().map(|p| {
            (
                p.os().to_string(),
                p.architecture().to_string(),
                p.variant().clone(),
            )
        })
    };
    let matching = |exact: bool| {
        images().find(|d| {
            platform_of(d).is_some_and(|(os, arch, variant)| {
                platform.matches(&os, &arch, variant.as_deref())
                    && (!exact || variant == platform.variant)
            })
        })
    };
    if let Some(found) = matching(true).or_else(|| matching(false)) {
        return Ok(found);
    }
    let available: Vec<String> = images()
        .filter_map(|d| {
            platform_of(d).map(|(os, arch, variant)| match variant {
                Some(v) => format!("{os}/{arch}/{v}"),
                None => format!("{os}/{arch}"),
            })
        })
        .collect();
    Err(ManifestError::NoPlatform {
        what: what.to_string(),
        platform: platform.clone(),
        available: if available.is_empty() {
            "no platform entries".to_string()
        } else {
            available.join(", ")
        },
    })
}

/// Runs every check `img-pull` makes of untrusted manifest, index and config
/// bytes, in pull's order: the media type, the kind, then for an index the
/// platform's entry and its digest and size, for a manifest its layers and
/// config descriptor; `config` goes through the config check against the
/// manifest's layer count (or, with no manifest, each count up to 3). For
/// the fuzz targets (`fuzz/`), which must reach these without a registry.
#[doc(hidden)]
pub fn check_untrusted(manifest: &[u8], config: &[u8], platform: &Platform) {
    let what = "fuzz";
    let layers = match media_type(manifest, what).and_then(|m| check_kind(&m, what)) {
        Ok(MediaKind::Index) => {
            if let Ok(index) = parse_index(manifest, what)
                && let Ok(entry) = select(&index, platform, what)
            {
                let _ = checked_digest(entry, what);
                let _ = check_size(entry, what);
            }
            None
        }
        _ => parse_image(manifest, what).ok().map(|image| {
            let _ = check_size(image.config(), what);
            image.layers().len()
        }),
    };
    match layers {
        Some(n) => {
            let _ = check_config(config, n, what);
        }
        None => {
            for n in 0..=3 {
                let _ = check_config(config, n, what);
            }
        }
    }
    let _ = Platform::of_config(config);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn index() -> ImageIndex {
        let entry = |arch: &str, variant: Option<&str>, hex: char| {
            let mut platform = json!({"os": "linux", "architecture": arch});
            if let Some(v) = variant {
                platform["variant"] = json!(v);
            }
            json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": format!("sha256:{}", hex.to_string().repeat(64)),
                "size": 100,
                "platform": platform,
            })
        };
        serde_json::from_value(json!({
            "schemaVersion": 2,
            "manifests": [
                entry("amd64", None, 'a'),
                entry("arm", Some("v6"), 'b'),
                entry("arm", Some("v7"), 'c'),
                entry("arm64", None, 'd'),
            ],
        }))
        .unwrap()
    }

    fn chosen(platform: &str) -> String {
        let index = index();
        let platform: Platform = platform.parse().unwrap();
        select(&index, &platform, "x").unwrap().digest().to_string()[7..8].to_string()
    }

    #[test]
    fn variants_are_told_apart() {
        assert_eq!(chosen("linux/amd64"), "a");
        assert_eq!(chosen("linux/arm/v7"), "c");
        assert_eq!(chosen("linux/arm/v6"), "b");
        assert_eq!(chosen("linux/arm64/v8"), "d");
    }

    #[test]
    fn a_missing_platform_lists_what_there_is() {
        let err = select(&index(), &"linux/s390x".parse().unwrap(), "x:1")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("linux/s390x") && err.contains("linux/arm/v7"),
            "{err}"
        );
    }

    #[test]
    fn media_type_is_read_or_inferred() {
        assert_eq!(
            media_type(
                br#"{"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#,
                "x"
            )
            .unwrap(),
            "application/vnd.docker.distribution.manifest.v2+json"
        );
        assert_eq!(media_type(br#"{"manifests":[]}"#, "x").unwrap(), OCI_INDEX);
        assert!(media_type(b"<html>", "x").is_err());
    }
}
