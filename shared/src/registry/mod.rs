//! Talking to registries: which scheme and CAs a host gets, whose credentials
//! go with it, pulling images from it into the store and pushing them back
//! (our own requests, streamed; oci-client does the token dance and lists
//! tags).
//! The API is blocking; a private tokio runtime lives inside [`Puller`].

mod auth;
mod client;
mod limits;
pub mod login;
mod manifest;
mod policy;
mod pull;
mod push;
pub mod search;
mod tls;
mod upload;

pub use auth::{AuthError, DockerConfig};
pub use limits::{MAX_MANIFEST_BYTES, TIMEOUT_ENV};
pub use manifest::ManifestError;
#[doc(hidden)]
pub use manifest::check_untrusted;
pub use policy::{BadPolicy, PullNeed, PullPolicy};
pub use pull::{LayerEvent, PullError, PullObserver, PullOptions, Pulled, Puller, pull};
pub use push::{PushError, PushEvent, PushLayer, PushObserver, PushOptions, Pushed, Pusher};
pub use tls::RegistryOptions;
pub use upload::Uploaded;

/// Why a conversation with a registry failed, in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach registry {registry}: {reason}")]
    Unreachable { registry: String, reason: String },
    #[error(
        "registry {registry} answered 401 Unauthorized for {what}: authentication required ({credentials})"
    )]
    Unauthorized {
        registry: String,
        what: String,
        credentials: String,
    },
    #[error("registry {registry} refused the credentials for {what}: {reason}")]
    AuthenticationFailed {
        registry: String,
        what: String,
        reason: String,
    },
    #[error("{what} not found: {reason}")]
    NotFound { what: String, reason: String },
    #[error("registry {registry} denied access to {what}: {reason}")]
    Denied {
        registry: String,
        what: String,
        reason: String,
    },
    #[error("registry {registry} failed on {what}: {reason}")]
    Failed {
        registry: String,
        what: String,
        reason: String,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("invalid BERTH_REGISTRY_TIMEOUT={0:?}: expected a number of seconds above 0")]
    BadTimeout(String),
    #[error("{path}: {reason}")]
    Certificate {
        path: std::path::PathBuf,
        reason: String,
    },
}
