//! `docker pull`: fetch a reference's manifest (through an index for the
//! wanted platform), stream the missing blobs into the store in parallel,
//! verify every byte, and only then make the image visible under its tag.

use super::RegistryError;
use super::auth::DockerConfig;
use super::client::{
    ATTEMPTS, Session, TIMEOUT_ATTEMPTS, attempts_for, backoff, failure_reason, is_timeout,
    network_runtime, retry, root_cause,
};
use super::limits::Limited;
use super::manifest::{self, ACCEPT, ManifestError};
use super::tls::RegistryOptions;
use crate::digest::Digest;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::descriptor_digest;
use crate::store::{BlobWriter, MediaKind, Store, StoreError, VerifiedBlob, io_error};
use futures_util::{StreamExt, TryStreamExt, stream};
use oci_spec::image::{Descriptor, MediaType};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::rc::Rc;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The platform to pick from an index; `None` is the host's.
    pub platform: Option<Platform>,
    pub registry: RegistryOptions,
    /// Blobs downloaded at once.
    pub parallel: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: None,
            registry: RegistryOptions::default(),
            parallel: 3,
        }
    }
}

/// What happened to one layer, in the order Docker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerEvent {
    /// The store has it already; nothing is fetched.
    Exists,
    /// It will be downloaded.
    Pulling,
    /// The transfer broke and is tried again (resuming where the registry
    /// supports ranges).
    Retrying {
        attempt: u32,
        reason: String,
    },
    /// All bytes are in; the digest is being checked.
    Verifying,
    Downloaded,
    /// Verified and in the store.
    Complete,
}

/// Hears about a pull as it goes; the library itself never prints.
pub trait PullObserver {
    /// `reference` resolved to an image; its blobs come next.
    fn start(&mut self, _reference: &Reference) {}
    /// The layers of the chosen image are known.
    fn layers(&mut self, _layers: &[Descriptor]) {}
    fn layer(&mut self, _layer: &Digest, _event: LayerEvent) {}
    /// `received` of `total` bytes of a layer are in.
    fn progress(&mut self, _layer: &Digest, _received: u64, _total: u64) {}
}

/// An observer that ignores everything.
impl PullObserver for () {}

/// One pulled image.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The name it is stored under: `repo:tag`, or `repo@digest` for a pull
    /// by digest.
    pub reference: Reference,
    /// The same, pinned to [`Pulled::digest`]: what a pipe passes on.
    pub pinned: Reference,
    /// The digest the reference resolved to (an index's, for multi-platform
    /// images; Docker's "Digest:").
    pub digest: Digest,
    /// The platform's image manifest.
    pub manifest_digest: Digest,
    /// The image ID (the config's digest).
    pub id: Digest,
    /// Bytes of the image's blobs: manifest, config and (compressed) layers.
    pub size: u64,
    pub platform: Platform,
    pub layers: Vec<Digest>,
    /// The tag already named this content and every blob was present.
    pub up_to_date: bool,
}

impl Pulled {
    /// The `--json` line: stable field names (reference, digest, id, size,
    /// platform, layers).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "reference": self.pinned.to_string(),
            "digest": self.digest,
            "id": self.id,
            "size": self.size,
            "platform": self.platform.to_string(),
            "layers": self.layers,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{what}: {source}")]
    Blob {
        what: String,
        #[source]
        source: StoreError,
    },
    #[error("{what}: the registry sent more than the {size} bytes its descriptor gives")]
    Oversized { what: String, size: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start the network runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Pulls one reference (a convenience over [`Puller`]).
pub fn pull(
    store: &Store,
    reference: &Reference,
    options: &PullOptions,
    observer: &mut dyn PullObserver,
) -> Result<Pulled, PullError> {
    Puller::new(store, options.clone())?.pull(reference, observer)
}

/// Pulls images into one store, keeping one connection per registry.
pub struct Puller {
    store: Store,
    options: PullOptions,
    config: DockerConfig,
    runtime: tokio::runtime::Runtime,
    sessions: HashMap<String, Rc<Session>>,
}

/// What the network part of a pull produced, ready to be stored.
struct Fetched {
    reference: Reference,
    top_media_type: String,
    top_bytes: Vec<u8>,
    top_digest: Digest,
    manifest_bytes: Vec<u8>,
    manifest_digest: Digest,
    config: Descriptor,
    layers: Vec<Descriptor>,
    /// Verified blobs still in `tmp/`, layers before the config.
    blobs: Vec<VerifiedBlob>,
    up_to_date: bool,
}

impl Puller {
    pub fn new(store: &Store, options: PullOptions) -> Result<Puller, PullError> {
        let config = DockerConfig::load(options.registry.docker_config.as_deref())
            .map_err(RegistryError::from)?;
        let runtime = network_runtime().map_err(PullError::Runtime)?;
        Ok(Puller {
            store: store.clone(),
            options,
            config,
            runtime,
            sessions: HashMap::new(),
        })
    }

    /// Pulls `reference` (`repo:tag` or `repo@digest`).
    pub fn pull(
        &mut self,
        reference: &Reference,
        observer: &mut dyn PullObserver,
    ) -> Result<Pulled, PullError> {
        let session = self.session(reference)?;
        // Held until the tag is written, so a concurrent collection cannot
        // sweep blobs this pull found present or just stored.
        let _lease = self.store.lease()?;
        // Temp files of killed pulls are of no use to this one (it fetches
        // what is missing afresh); live pulls' files are locked and stay.
        // Best effort: a pull does not fail for a leftover it cannot remove.
        let _ = self.store.sweep_temp_files();
        let platform = self.options.platform.clone().unwrap_or_else(Platform::host);
        let observer = RefCell::new(observer);
        let fetched = self
            .runtime
            .block_on(self.fetch(&session, reference, &platform, &observer))?;
        self.commit(fetched, &observer)
    }

    /// The manifest or index `reference` names, exactly as served and
    /// checked against its digest, without storing anything.
    pub fn manifest_bytes(&mut self, reference: &Reference) -> Result<Vec<u8>, PullError> {
        let session = self.session(reference)?;
        let target = session.oci_reference(reference, None);
        let what = format!("manifest for {reference}");
        self.runtime
            .block_on(fetch_manifest(&session, &target, what, reference.digest()))
    }

    /// Every tag of `repository`'s repository, as references (`--all-tags`).
    pub fn tags(&mut self, repository: &Reference) -> Result<Vec<Reference>, PullError> {
        let session = self.session(repository)?;
        let target = session.oci_reference(&repository.with_tag("latest"), None);
        let response = self
            .runtime
            .block_on(async {
                let client = session.client()?;
                retry(
                    || client.list_tags(&target, &session.auth, None, None),
                    |_, _| {},
                )
                .await
            })
            .map_err(|e| session.error(&format!("tags of {}", repository.repository()), e))?;
        // Registries list tags in no promised order; a pipe wants one.
        let mut tags = response.tags;
        tags.sort();
        Ok(tags.iter().map(|tag| repository.with_tag(tag)).collect())
    }

    fn session(&mut self, reference: &Reference) -> Result<Rc<Session>, PullError> {
        let host = reference.registry_host().to_string();
        if let Some(session) = self.sessions.get(&host) {
            return Ok(session.clone());
        }
        let session = Rc::new(self.runtime.block_on(Session::connect(
            reference,
            &self.options.registry,
            &self.config,
        ))?);
        self.sessions.insert(host, session.clone());
        Ok(session)
    }

    /// The network half: manifests, then every missing blob, verified into
    /// temp files. Nothing becomes visible in the store here.
    async fn fetch(
        &self,
        session: &Session,
        reference: &Reference,
        platform: &Platform,
        observer: &RefCell<&mut dyn PullObserver>,
    ) -> Result<Fetched, PullError> {
        let what = reference.to_string();
        let target = session.oci_reference(reference, None);
        let top_bytes = fetch_manifest(
            session,
            &target,
            format!("manifest for {what}"),
            reference.digest(),
        )
        .await?;
        let top_digest = Digest::of(&top_bytes);
        let top_media_type = manifest::media_type(&top_bytes, &what)?;
        let (manifest_bytes, manifest_digest) = match manifest::check_kind(&top_media_type, &what)?
        {
            MediaKind::Index => {
                let index = manifest::parse_index(&top_bytes, &what)?;
                let entry = manifest::select(&index, platform, &what)?;
                let digest = manifest::checked_digest(
                    entry,
                    &format!("the {platform} entry of the index for {what}"),
                )?;
                manifest::check_size(entry, &format!("manifest {digest} of {what}"))?;
                let bytes = if self.store.has_blob(&digest) {
                    self.store.read_blob(&digest)?
                } else {
                    self.fetch_child_manifest(session, reference, entry).await?
                };
                (bytes, digest)
            }
            _ => (top_bytes.clone(), top_digest.clone()),
        };
        let image = manifest::parse_image(&manifest_bytes, &what)?;
        let config = image.config().clone();
        let layers = image.layers().clone();
        let config_digest = descriptor_digest(&config);
        let config_what = format!("config {config_digest} of {what}");
        manifest::check_size(&config, &config_what)?;
        // The config comes first and alone: it is small, and an image whose
        // config cannot describe its layers is refused before any of them
        // is fetched, with one line and no preamble.
        let (config_bytes, config_blob) = if self.store.has_blob(&config_digest) {
            (self.store.read_blob(&config_digest)?, None)
        } else {
            let blob = self
                .fetch_blob(session, reference, &config, false, observer)
                .await?;
            (blob.read()?, Some(blob))
        };
        manifest::check_config(&config_bytes, layers.len(), &config_what)?;
        // Announced only once the name resolved, so a bad name fails with
        // one line and no preamble.
        observer.borrow_mut().start(reference);

        let stored_as = stored_name(reference, &top_digest);
        let previously = self.store.lookup_tag(&stored_as)?;
        let missing: Vec<Descriptor> = {
            let mut seen = HashSet::new();
            layers
                .iter()
                .filter(|d| seen.insert(descriptor_digest(d)))
                .filter(|d| !self.store.has_blob(&descriptor_digest(d)))
                .cloned()
                .collect()
        };
        let up_to_date = missing.is_empty()
            && config_blob.is_none()
            && self.store.has_blob(&manifest_digest)
            && self.store.has_blob(&top_digest)
            && previously.is_some_and(|d| descriptor_digest(&d) == top_digest);
        if !up_to_date {
            observer.borrow_mut().layers(&layers);
            for layer in &layers {
                let digest = descriptor_digest(layer);
                let event = if missing.iter().any(|m| descriptor_digest(m) == digest) {
                    LayerEvent::Pulling
                } else {
                    LayerEvent::Exists
                };
                observer.borrow_mut().layer(&digest, event);
            }
        }
        // A layer is checked against its digest here and against its diff
        // ID where it is decompressed anyway, when it is unpacked (layer.rs,
        // before any container sees it), as containerd does: checking both
        // here would decompress and hash every layer twice, once per pull
        // and again per first run, and a publisher who ships a layer that
        // does not match its own config gains nothing by the delay.
        // Largest first, and unordered: a download that ends starts the
        // next at once. In manifest order a large last layer started last
        // and ran alone at the end, on one core of the hashing; and an
        // ordered stream waited for the oldest download, so a large first
        // layer held the later ones to one stream while it lasted.
        let mut by_size: Vec<&Descriptor> = missing.iter().collect();
        by_size.sort_by_key(|d| std::cmp::Reverse(d.size()));
        let fetched: Vec<VerifiedBlob> = stream::iter(by_size)
            .map(|descriptor| self.fetch_blob(session, reference, descriptor, true, observer))
            .buffer_unordered(self.options.parallel.max(1))
            .try_collect()
            .await?;
        let blobs: Vec<VerifiedBlob> = fetched.into_iter().chain(config_blob).collect();
        Ok(Fetched {
            reference: stored_as,
            top_media_type,
            top_bytes,
            top_digest,
            manifest_bytes,
            manifest_digest,
            config,
            layers,
            blobs,
            up_to_date,
        })
    }

    async fn fetch_child_manifest(
        &self,
        session: &Session,
        reference: &Reference,
        entry: &Descriptor,
    ) -> Result<Vec<u8>, PullError> {
        let digest = descriptor_digest(entry);
        let target = session.oci_reference(reference, Some(&digest));
        let what = format!("manifest {digest} of {reference}");
        fetch_manifest(session, &target, what, Some(&digest)).await
    }

    /// Streams one blob from the socket into a temp file in the store,
    /// hashing as it goes on a task of its own (see [`pump`]), resuming
    /// with a range request when the transfer breaks, and verifying digest
    /// and size.
    async fn fetch_blob(
        &self,
        session: &Session,
        reference: &Reference,
        descriptor: &Descriptor,
        is_layer: bool,
        observer: &RefCell<&mut dyn PullObserver>,
    ) -> Result<VerifiedBlob, PullError> {
        let digest = descriptor_digest(descriptor);
        let size = descriptor.size();
        let what = format!("{} {digest}", if is_layer { "layer" } else { "config" });
        let target = session.oci_reference(reference, None);
        let digest_text = digest.to_string();
        let notify = |event: LayerEvent| {
            if is_layer {
                observer.borrow_mut().layer(&digest, event);
            }
        };
        let report = |received: u64| {
            if is_layer {
                observer.borrow_mut().progress(&digest, received, size);
            }
        };

        let mut writer = self.fresh_writer(&what, None).await?;
        let received = Arc::new(AtomicU64::new(0));
        let mut failures: u32 = 0;
        loop {
            let from = received.load(Ordering::Relaxed);
            let body = match blob_stream(session, &target, &digest_text, from, size).await {
                Ok((ranged, body)) => {
                    if !ranged && from > 0 {
                        // The registry ignored the range: start over.
                        received.store(0, Ordering::Relaxed);
                        writer = self.fresh_writer(&what, Some(writer)).await?;
                    }
                    body
                }
                Err(e) if failures + 1 < attempts_for(&e) => {
                    failures += 1;
                    notify(LayerEvent::Retrying {
                        attempt: failures,
                        reason: root_cause(&e),
                    });
                    tokio::time::sleep(backoff(failures)).await;
                    continue;
                }
                Err(e) => return Err(session.error(&what, e).into()),
            };
            let pumping = Pumping(tokio::spawn(pump(body, writer, received.clone(), size)));
            let (back, pumped) = pumping
                .reporting(|| report(received.load(Ordering::Relaxed)))
                .await?;
            writer = back;
            let error = match pumped {
                Pumped::Done => break,
                Pumped::Oversized => {
                    return Err(PullError::Oversized {
                        what: what.clone(),
                        size,
                    });
                }
                Pumped::WriteFailed(e) => {
                    return Err(PullError::Blob {
                        what: what.clone(),
                        source: io_error(self.store.tmp_dir())(e),
                    });
                }
                Pumped::Broken(_) if received.load(Ordering::Relaxed) == size => break,
                Pumped::Broken(error) => error,
            };
            failures += 1;
            let attempts = if is_timeout(&error) {
                TIMEOUT_ATTEMPTS
            } else {
                ATTEMPTS
            };
            if failures >= attempts {
                return Err(RegistryError::Failed {
                    registry: session.host.clone(),
                    what: what.clone(),
                    reason: format!(
                        "transfer broke {failures} times: {}",
                        failure_reason(&error, session.timeouts)
                    ),
                }
                .into());
            }
            notify(LayerEvent::Retrying {
                attempt: failures,
                reason: root_cause(&error),
            });
            tokio::time::sleep(backoff(failures)).await;
        }
        notify(LayerEvent::Verifying);
        // Flushed to disk here, on this blob's own task, while the other
        // downloads go on, rather than one after another at the commit.
        let verified = tokio::task::spawn_blocking(move || {
            let mut blob = writer.verify(Some(&digest), Some(size))?;
            blob.sync()?;
            Ok(blob)
        })
        .await
        .map_err(|e| PullError::Runtime(std::io::Error::other(e)))?
        .map_err(|source| PullError::Blob {
            what: what.clone(),
            source,
        })?;
        if is_layer {
            observer
                .borrow_mut()
                .layer(verified.digest(), LayerEvent::Downloaded);
        }
        Ok(verified)
    }

    /// A new temp file for blob `what`, made (and `old` discarded, which
    /// waits for its writes) on a blocking thread.
    async fn fresh_writer(
        &self,
        what: &str,
        old: Option<BlobWriter>,
    ) -> Result<BlobWriter, PullError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            drop(old);
            store.incoming_blob_writer()
        })
        .await
        .map_err(|e| PullError::Runtime(std::io::Error::other(e)))?
        .map_err(|source| PullError::Blob {
            what: what.to_string(),
            source,
        })
    }

    /// The store half: persist the verified blobs, then the manifests, and
    /// last the tag, so a reader never finds a tag without its content.
    fn commit(
        &self,
        fetched: Fetched,
        observer: &RefCell<&mut dyn PullObserver>,
    ) -> Result<Pulled, PullError> {
        let layer_digests: Vec<Digest> = fetched.layers.iter().map(descriptor_digest).collect();
        for (digest, _) in VerifiedBlob::persist_all(fetched.blobs)? {
            if layer_digests.contains(&digest) {
                observer.borrow_mut().layer(&digest, LayerEvent::Complete);
            }
        }
        self.store.put_blob(&fetched.manifest_bytes)?;
        if fetched.top_digest != fetched.manifest_digest {
            self.store.put_blob(&fetched.top_bytes)?;
        }
        if !fetched.up_to_date {
            let descriptor = Descriptor::new(
                MediaType::from(fetched.top_media_type.as_str()),
                fetched.top_bytes.len() as u64,
                oci_spec::image::Digest::from_str(&fetched.top_digest.to_string())
                    .expect("a sha256 digest is a valid OCI digest"),
            );
            self.store.tag(&fetched.reference, descriptor)?;
        }
        let id = descriptor_digest(&fetched.config);
        let platform = Platform::of_config(&self.store.read_blob(&id)?);
        let size = fetched.manifest_bytes.len() as u64
            + fetched.config.size()
            + fetched.layers.iter().map(|l| l.size()).sum::<u64>();
        let pinned = fetched.reference.with_digest(fetched.top_digest.clone());
        Ok(Pulled {
            reference: fetched.reference,
            pinned,
            digest: fetched.top_digest,
            manifest_digest: fetched.manifest_digest,
            id,
            size,
            platform,
            layers: layer_digests,
            up_to_date: fetched.up_to_date,
        })
    }
}

/// The name a pull is stored under: its tag, or for a pull by digest alone
/// the digest reference. `repo:tag@digest` (what img-pull prints) keeps
/// its tag, now naming the verified digest, so a pinned line pulls again
/// to the same line.
fn stored_name(reference: &Reference, digest: &Digest) -> Reference {
    match reference.tag() {
        Some(tag) => reference.with_tag(tag),
        None => reference.by_digest(digest.clone()),
    }
}

/// Fetches a manifest's bytes exactly as served (retrying transient
/// failures, reading at most 4 MiB of them) and checks them against
/// `expected` when the digest is known, and against the registry's
/// `Docker-Content-Digest`.
async fn fetch_manifest(
    session: &Session,
    target: &oci_client::Reference,
    what: String,
    expected: Option<&Digest>,
) -> Result<Vec<u8>, PullError> {
    let (body, announced) = retry(|| session.get_manifest(target, ACCEPT), |_, _| {})
        .await
        .map_err(|e| session.error(&what, e))?;
    let bytes = match body {
        Limited::Within(bytes) => bytes,
        Limited::TooLarge => return Err(ManifestError::TooLarge { what }.into()),
    };
    let actual = Digest::of(&bytes);
    // A header in another algorithm is not ours to check; the reference's
    // own digest, when there is one, is.
    let announced = announced.and_then(|d| d.parse::<Digest>().ok());
    if let Some(expected) = expected.or(announced.as_ref())
        && *expected != actual
    {
        return Err(PullError::Blob {
            what,
            source: StoreError::DigestMismatch {
                expected: expected.clone(),
                actual,
            },
        });
    }
    Ok(bytes.to_vec())
}

/// How one response's body went.
enum Pumped {
    /// It ended; every byte it carried is written.
    Done,
    /// It carried more than the descriptor's size.
    Oversized,
    WriteFailed(std::io::Error),
    /// The transfer broke; what came before is written.
    Broken(reqwest::Error),
}

/// Hashes and writes one response's body into `writer`, counting the bytes
/// in `received`. It runs as a task of its own, on the runtime worker whose
/// connection task reads the socket and wakes it: a chunk is hashed where
/// it arrives. Handing each chunk to another thread cost two wake-ups per
/// chunk, more CPU than the hashing, on a pull that is bound by the CPU.
/// The disk writes have their own thread (`BlobFile`): a pump waits on the
/// disk only when it is two windows behind, which is also all a slow disk
/// makes a download hold in memory.
async fn pump(
    body: impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>>,
    mut writer: BlobWriter,
    received: Arc<AtomicU64>,
    size: u64,
) -> (BlobWriter, Pumped) {
    let mut body = std::pin::pin!(body);
    while let Some(item) = body.next().await {
        let bytes = match item {
            Ok(bytes) => bytes,
            Err(e) => return (writer, Pumped::Broken(e)),
        };
        let total = received.load(Ordering::Relaxed) + bytes.len() as u64;
        if total > size {
            return (writer, Pumped::Oversized);
        }
        if let Err(e) = writer.write_all(&bytes) {
            return (writer, Pumped::WriteFailed(e));
        }
        received.store(total, Ordering::Relaxed);
    }
    (writer, Pumped::Done)
}

/// A running [`pump`], aborted if the pull stops waiting for it (another
/// blob failed), so that no download outlives its pull.
struct Pumping(tokio::task::JoinHandle<(BlobWriter, Pumped)>);

/// How often a download's progress is read while it runs.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

impl Pumping {
    /// Waits for the pump, calling `report` every [`PROGRESS_EVERY`] and
    /// once at the end.
    async fn reporting(
        mut self,
        mut report: impl FnMut(),
    ) -> Result<(BlobWriter, Pumped), PullError> {
        loop {
            match tokio::time::timeout(PROGRESS_EVERY, &mut self.0).await {
                Ok(joined) => {
                    report();
                    return joined.map_err(|e| PullError::Runtime(std::io::Error::other(e)));
                }
                Err(_) => report(),
            }
        }
    }
}

impl Drop for Pumping {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// GETs blob `digest` from byte `from` on, with our own client (its
/// connections are the ones the session's other requests warmed; the bytes
/// are hashed once, by the writer). A range is asked for whenever the blob
/// has bytes, even from 0: true when the registry answered with one (206),
/// false when it sent the whole blob (200). Empty blobs cannot be ranged.
async fn blob_stream(
    session: &Session,
    target: &oci_client::Reference,
    digest: &str,
    from: u64,
    size: u64,
) -> Result<
    (
        bool,
        impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + use<>,
    ),
    oci_client::errors::OciDistributionError,
> {
    let url = session.url(&format!("/v2/{}/blobs/{digest}", target.repository()));
    let response = session
        .send(target, |http| {
            let request = http.get(&url);
            match size {
                0 => request,
                _ => request.header(reqwest::header::RANGE, format!("bytes={from}-")),
            }
        })
        .await?;
    match response.status() {
        reqwest::StatusCode::PARTIAL_CONTENT => Ok((true, response.bytes_stream())),
        reqwest::StatusCode::OK => Ok((false, response.bytes_stream())),
        _ => Err(Session::refused(response, &url).await),
    }
}
