//! Images as one tar file, without a registry: `img-save` writes the format
//! Docker 25+ writes (Docker's `manifest.json` and `repositories`, which
//! `docker load` reads, over an OCI image layout: `oci-layout`,
//! `index.json`, `blobs/sha256/`), and `img-load` reads that, a plain OCI
//! layout tar, and the Docker 1.x-era save format. The names and shapes
//! both sides share live here; `save` writes, `ingest` takes a tar into
//! the store's temp files verifying every entry, `plan` checks the images
//! it holds, `load` stores them.

mod ingest;
mod load;
mod plan;
mod save;

pub use load::{LoadError, Loaded, load};
pub use save::{SaveError, save, save_to_file};

use serde::{Deserialize, Serialize};

/// Docker's own index of a save tar, one item per image.
pub(crate) const MANIFEST_JSON: &str = "manifest.json";
/// The OCI layout's index: one descriptor per tagged image.
pub(crate) const INDEX_JSON: &str = "index.json";
pub(crate) const OCI_LAYOUT: &str = "oci-layout";
/// Docker's pre-1.10 map of repository → tag → top layer ID.
pub(crate) const REPOSITORIES: &str = "repositories";
/// Where an OCI layout keeps its blobs (sha256 is the only algorithm).
pub(crate) const BLOBS_DIR: &str = "blobs/sha256/";

/// containerd's (and Docker 25's) annotation carrying an image's full name
/// in a saved `index.json`; `org.opencontainers.image.ref.name` holds the
/// tag alone there.
pub const IMAGE_NAME_ANNOTATION: &str = "io.containerd.image.name";

/// One image of `manifest.json`, Docker's field names. `RepoTags` is null
/// for an image saved by ID, as Docker writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ManifestItem {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    pub layers: Vec<String>,
}

/// The archive path of the blob with `hex` digits.
pub(crate) fn blob_path(hex: &str) -> String {
    format!("{BLOBS_DIR}{hex}")
}
