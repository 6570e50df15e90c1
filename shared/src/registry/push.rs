//! `docker push`: put a stored image (a manifest, or an index with every
//! platform) into a registry byte for byte, so the digest there is the
//! digest here. Blobs the repository has are skipped, blobs another
//! repository of the registry has are mounted, the rest are streamed from
//! the store a few at a time; manifests go last, children before the index.

use super::RegistryError;
use super::auth::DockerConfig;
use super::client::{Session, network_runtime, retry};
use super::tls::RegistryOptions;
use super::upload::{BlobUpload, Uploaded};
use crate::digest::Digest;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::{MediaKind, Store, StoreError, descriptor_digest, tag_of};
use futures_util::{StreamExt, TryStreamExt, stream};
use oci_client::RegistryOperation;
use oci_spec::image::Descriptor;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PushOptions {
    pub registry: RegistryOptions,
    /// With an index: push only this platform's image, under the tag.
    pub platform: Option<Platform>,
    /// Blobs uploaded at once.
    pub parallel: usize,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            registry: RegistryOptions::default(),
            platform: None,
            parallel: 3,
        }
    }
}

/// One layer of an image being pushed, as Docker names it in its output
/// (by its diff ID: the uncompressed content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushLayer {
    pub digest: Digest,
    pub diff_id: Option<Digest>,
    pub size: u64,
}

impl PushLayer {
    /// What Docker shows for the layer: the diff ID's short form.
    pub fn short_id(&self) -> &str {
        self.diff_id.as_ref().unwrap_or(&self.digest).short()
    }
}

/// What happened to one layer, in the order Docker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// Queued behind the uploads already running.
    Waiting,
    /// Its bytes are going up.
    Pushing,
    Retrying {
        attempt: u32,
        reason: String,
    },
    Done(Uploaded),
}

/// Hears about a push as it goes; the library itself never prints.
pub trait PushObserver {
    /// The push to `repository` begins.
    fn start(&mut self, _repository: &Reference) {}
    /// The layers of one image are known (Docker's "Preparing").
    fn layers(&mut self, _layers: &[PushLayer]) {}
    fn layer(&mut self, _layer: &PushLayer, _event: PushEvent) {}
    /// `sent` of the layer's bytes are up.
    fn progress(&mut self, _layer: &PushLayer, _sent: u64) {}
}

impl PushObserver for () {}

/// One pushed image.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// What was pushed: `repo:tag`, or `repo@digest`.
    pub reference: Reference,
    /// The repository pinned to [`Pushed::digest`]: what a pipe passes on.
    pub pinned: Reference,
    /// The digest the registry now serves under the reference (an index's
    /// for a multi-platform image).
    pub digest: Digest,
    /// The size of that manifest or index, as Docker reports it.
    pub size: u64,
    /// Every layer of every image pushed, and how it got there.
    pub layers: Vec<(Digest, Uploaded)>,
}

impl Pushed {
    /// The `--json` line.
    pub fn to_json(&self) -> serde_json::Value {
        let count = |wanted: fn(&Uploaded) -> bool| {
            self.layers.iter().filter(|(_, how)| wanted(how)).count()
        };
        serde_json::json!({
            "reference": self.pinned.to_string(),
            "digest": self.digest,
            "size": self.size,
            "layers": self.layers.iter().map(|(digest, _)| digest).collect::<Vec<_>>(),
            "pushed": count(|how| *how == Uploaded::Pushed),
            "mounted": count(|how| matches!(how, Uploaded::Mounted(_))),
            "existing": count(|how| *how == Uploaded::Exists),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Docker's words.
    #[error("An image does not exist locally with the tag: {0}")]
    NoSuchImage(String),
    #[error(
        "{reference}: the store lacks the {platform} image of its index: pull it (img-pull --platform {platform}) or push one platform with --platform"
    )]
    MissingPlatform { reference: String, platform: String },
    #[error("{reference}: no {platform} image in its index")]
    NoSuchPlatform { reference: String, platform: String },
    #[error("image {0} has no tag to push under: name it with img-tag first")]
    Untagged(String),
    /// Docker's words for a push to Docker Hub without a login.
    #[error("denied: requested access to the resource is denied ({0}: run img-login first)")]
    NotLoggedIn(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start the network runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Pushes images from one store, keeping one session per repository.
pub struct Pusher {
    store: Store,
    options: PushOptions,
    config: DockerConfig,
    runtime: tokio::runtime::Runtime,
    sessions: HashMap<String, Rc<Session>>,
}

/// One manifest to put, with the blobs it needs.
struct Upload {
    digest: Digest,
    media_type: String,
    bytes: Vec<u8>,
    /// An image's config; none for an index.
    config: Option<Descriptor>,
    layers: Vec<PushLayer>,
}

impl Pusher {
    pub fn new(store: &Store, options: PushOptions) -> Result<Pusher, PushError> {
        let config = DockerConfig::load(options.registry.docker_config.as_deref())
            .map_err(RegistryError::from)?;
        let runtime = network_runtime().map_err(PushError::Runtime)?;
        Ok(Pusher {
            store: store.clone(),
            options,
            config,
            runtime,
            sessions: HashMap::new(),
        })
    }

    /// Every tag the store holds in `repository`'s repository, sorted.
    pub fn tags(&self, repository: &Reference) -> Result<Vec<Reference>, PushError> {
        let mut tags: Vec<Reference> = self
            .store
            .read_index()?
            .manifests()
            .iter()
            .filter_map(tag_of)
            .filter(|t| t.repository() == repository.repository() && t.tag().is_some())
            .collect();
        tags.sort_by_key(|t| t.to_string());
        tags.dedup();
        Ok(tags)
    }

    /// The tags of the image `id` (an image ID or a unique prefix, as
    /// `img-build -q` prints): what pushing an image by ID means.
    pub fn tags_of_image(&self, id: &str) -> Result<Vec<Reference>, PushError> {
        let image = self.store.resolve_image(id)?;
        if image.tags.is_empty() {
            return Err(PushError::Untagged(id.to_string()));
        }
        Ok(image.tags)
    }

    /// Pushes what `reference` names in the store to the same name in its
    /// registry.
    pub fn push(
        &mut self,
        reference: &Reference,
        observer: &mut dyn PushObserver,
    ) -> Result<Pushed, PushError> {
        let top = self.find(reference)?;
        self.push_as(reference, top, observer)
    }

    /// Pushes the stored manifest or index `top` under `reference`'s name
    /// (what a build's exported cache is).
    pub fn push_as(
        &mut self,
        reference: &Reference,
        top: Descriptor,
        observer: &mut dyn PushObserver,
    ) -> Result<Pushed, PushError> {
        if reference.domain() == "docker.io" && !self.config.has_credentials(reference.domain()) {
            return Err(PushError::NotLoggedIn(reference.familiar_repository()));
        }
        // The content stays while we read it, whatever img-rm or img-prune
        // do meanwhile; neither waits for the push.
        let pins = {
            let writers = self.store.lease()?;
            self.store
                .content_lease(&writers, [descriptor_digest(&top)])?
        };
        let plan = self.plan(reference, &top)?;
        let session = self.session(reference)?;
        observer.start(reference);
        let observer = RefCell::new(observer);
        let mount_sources = self.mount_sources(reference)?;
        let mut layers = Vec::new();
        let (store, options) = (&self.store, &self.options);
        let target = session.oci_reference(reference, None);
        let destination = Destination {
            store,
            session: &session,
            target: &target,
            mount_sources: &mount_sources,
            parallel: options.parallel.max(1),
        };
        let pushed = self.runtime.block_on(async {
            let (children, top) = plan;
            for upload in children.iter().chain(std::iter::once(&top)) {
                let Some(config) = &upload.config else {
                    continue; // an index: its children's blobs are what it needs
                };
                observer.borrow_mut().layers(&upload.layers);
                let outcomes = push_blobs(&destination, upload, config, &observer).await?;
                layers.extend(outcomes);
            }
            for child in &children {
                put_manifest(&session, &target, child, &child.digest.to_string()).await?;
            }
            let name = match (reference.digest(), reference.tag()) {
                (Some(digest), _) => digest.to_string(),
                (None, tag) => tag.unwrap_or("latest").to_string(),
            };
            put_manifest(&session, &target, &top, &name).await?;
            Ok::<_, PushError>(top)
        })?;
        drop(pins);
        Ok(Pushed {
            reference: reference.clone(),
            pinned: reference.by_digest(pushed.digest.clone()),
            digest: pushed.digest,
            size: pushed.bytes.len() as u64,
            layers,
        })
    }

    /// The descriptor `reference` names in the store: a tag's entry, or a
    /// manifest or index the store holds by digest.
    fn find(&self, reference: &Reference) -> Result<Descriptor, PushError> {
        let missing = || PushError::NoSuchImage(reference.familiar_repository());
        let Some(digest) = reference.digest() else {
            return self
                .store
                .lookup_tag(reference)?
                .ok_or_else(|| PushError::NoSuchImage(reference.familiar()));
        };
        if !self.store.has_blob(digest) {
            return Err(missing());
        }
        let bytes = self.store.read_blob(digest)?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
                path: self.store.blob_path(digest),
                source,
            })?;
        let media_type = match value["mediaType"].as_str() {
            Some(media_type) => media_type.to_string(),
            None if value.get("manifests").is_some() => {
                "application/vnd.oci.image.index.v1+json".to_string()
            }
            None => "application/vnd.oci.image.manifest.v1+json".to_string(),
        };
        let descriptor = Descriptor::new(
            media_type.as_str().into(),
            bytes.len() as u64,
            oci_spec::image::Digest::try_from(digest.to_string()).map_err(|_| missing())?,
        );
        Ok(descriptor)
    }

    /// The manifests to put, children of an index first, then the top one.
    fn plan(
        &self,
        reference: &Reference,
        top: &Descriptor,
    ) -> Result<(Vec<Upload>, Upload), PushError> {
        let digest = descriptor_digest(top);
        if MediaKind::of(top.media_type().as_ref()) != MediaKind::Index {
            return Ok((Vec::new(), self.upload(&digest, top.media_type().as_ref())?));
        }
        let index = self.store.read_image_index(&digest)?;
        let platform_of = |d: &Descriptor| {
            d.platform()
                .as_ref()
                .map(|p| {
                    let mut text = format!("{}/{}", p.os(), p.architecture());
                    if let Some(variant) = p.variant() {
                        text.push('/');
                        text.push_str(variant);
                    }
                    text
                })
                .unwrap_or_else(|| "unknown".to_string())
        };
        if let Some(wanted) = &self.options.platform {
            let chosen = index
                .manifests()
                .iter()
                .find(|d| {
                    d.platform().as_ref().is_some_and(|p| {
                        wanted.matches(
                            &p.os().to_string(),
                            &p.architecture().to_string(),
                            p.variant().as_deref(),
                        )
                    })
                })
                .ok_or_else(|| PushError::NoSuchPlatform {
                    reference: reference.to_string(),
                    platform: wanted.to_string(),
                })?;
            let child = descriptor_digest(chosen);
            if !self.store.has_blob(&child) {
                return Err(PushError::MissingPlatform {
                    reference: reference.to_string(),
                    platform: platform_of(chosen),
                });
            }
            return Ok((
                Vec::new(),
                self.upload(&child, chosen.media_type().as_ref())?,
            ));
        }
        let mut children = Vec::new();
        for child in index.manifests() {
            let child_digest = descriptor_digest(child);
            let present = self.store.has_blob(&child_digest)
                && self.store.read_manifest(&child_digest).is_ok_and(|m| {
                    m.layers()
                        .iter()
                        .chain(std::iter::once(m.config()))
                        .all(|l| self.store.has_blob(&descriptor_digest(l)))
                });
            if !present {
                return Err(PushError::MissingPlatform {
                    reference: reference.to_string(),
                    platform: platform_of(child),
                });
            }
            children.push(self.upload(&child_digest, child.media_type().as_ref())?);
        }
        let bytes = self.store.read_blob(&digest)?;
        let top = Upload {
            digest,
            media_type: top.media_type().to_string(),
            bytes,
            config: None,
            layers: Vec::new(),
        };
        Ok((children, top))
    }

    fn upload(&self, digest: &Digest, media_type: &str) -> Result<Upload, PushError> {
        let bytes = self.store.read_blob(digest)?;
        let manifest = self.store.read_manifest(digest)?;
        let config = manifest.config().clone();
        let diff_ids = self
            .store
            .read_blob(&descriptor_digest(&config))
            .ok()
            .and_then(|c| serde_json::from_slice::<serde_json::Value>(&c).ok())
            .and_then(|c| {
                c["rootfs"]["diff_ids"].as_array().map(|ids| {
                    ids.iter()
                        .filter_map(|id| id.as_str()?.parse::<Digest>().ok())
                        .collect::<Vec<_>>()
                })
            })
            .filter(|ids| ids.len() == manifest.layers().len());
        let layers = manifest
            .layers()
            .iter()
            .enumerate()
            .map(|(i, layer)| PushLayer {
                digest: descriptor_digest(layer),
                diff_id: diff_ids.as_ref().map(|ids| ids[i].clone()),
                size: layer.size(),
            })
            .collect();
        Ok(Upload {
            digest: digest.clone(),
            media_type: media_type.to_string(),
            bytes,
            config: Some(config),
            layers,
        })
    }

    /// For each blob the store knows another repository of the same
    /// registry to hold (a tag there names an image with it): that
    /// repository, to mount from instead of uploading.
    fn mount_sources(&self, reference: &Reference) -> Result<HashMap<Digest, String>, PushError> {
        let mut sources = HashMap::new();
        for image in self.store.images()? {
            let Some(other) = image.tags.iter().find(|t| {
                t.registry_host() == reference.registry_host() && t.path() != reference.path()
            }) else {
                continue;
            };
            for layer in image
                .manifest
                .layers()
                .iter()
                .chain(std::iter::once(image.manifest.config()))
            {
                sources
                    .entry(descriptor_digest(layer))
                    .or_insert_with(|| other.path().to_string());
            }
        }
        Ok(sources)
    }

    fn session(&mut self, reference: &Reference) -> Result<Rc<Session>, PushError> {
        let key = reference.repository();
        if let Some(session) = self.sessions.get(&key) {
            return Ok(session.clone());
        }
        let session = Rc::new(self.runtime.block_on(Session::connect_for(
            reference,
            &self.options.registry,
            &self.config,
            RegistryOperation::Push,
        ))?);
        self.sessions.insert(key, session.clone());
        Ok(session)
    }
}

/// Where blobs go, and what may be mounted there.
struct Destination<'a> {
    store: &'a Store,
    session: &'a Session,
    target: &'a oci_client::Reference,
    mount_sources: &'a HashMap<Digest, String>,
    /// Blobs uploaded at once.
    parallel: usize,
}

/// Puts an image's layers (a few at a time), then its config.
async fn push_blobs(
    to: &Destination<'_>,
    upload: &Upload,
    config: &Descriptor,
    observer: &RefCell<&mut dyn PushObserver>,
) -> Result<Vec<(Digest, Uploaded)>, PushError> {
    let parallel = to.parallel;
    for layer in upload.layers.iter().skip(parallel) {
        observer.borrow_mut().layer(layer, PushEvent::Waiting);
    }
    let in_flight: RefCell<Vec<(PushLayer, Arc<AtomicU64>)>> = RefCell::new(Vec::new());
    let one = |layer: &PushLayer| {
        let layer = layer.clone();
        let in_flight = &in_flight;
        async move {
            let sent = Arc::new(AtomicU64::new(0));
            in_flight.borrow_mut().push((layer.clone(), sent.clone()));
            let outcome = push_blob(to, &layer.digest, layer.size, sent, |event| {
                observer.borrow_mut().layer(&layer, event)
            })
            .await;
            in_flight
                .borrow_mut()
                .retain(|(l, _)| l.digest != layer.digest);
            let outcome = outcome?;
            observer
                .borrow_mut()
                .layer(&layer, PushEvent::Done(outcome.clone()));
            Ok::<_, PushError>((layer.digest.clone(), outcome))
        }
    };
    // Largest first, as a pull fetches: the longest upload must not start
    // last and run alone at the end.
    let mut by_size: Vec<&PushLayer> = upload.layers.iter().collect();
    by_size.sort_by_key(|layer| std::cmp::Reverse(layer.size));
    let uploads = stream::iter(by_size.into_iter().map(one))
        .buffer_unordered(parallel)
        .try_collect::<Vec<_>>();
    // Progress is read from the uploads' counters a few times a second.
    let ticker = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            for (layer, sent) in in_flight.borrow().iter() {
                observer
                    .borrow_mut()
                    .progress(layer, sent.load(Ordering::Relaxed));
            }
        }
    };
    futures_util::pin_mut!(uploads, ticker);
    let mut outcomes = match futures_util::future::select(uploads, ticker).await {
        futures_util::future::Either::Left((outcomes, _)) => outcomes?,
        futures_util::future::Either::Right(_) => unreachable!("the ticker never ends"),
    };
    // Registries check a manifest's config is there: it goes up before it.
    let none_sent = Arc::new(AtomicU64::new(0));
    push_blob(
        to,
        &descriptor_digest(config),
        config.size(),
        none_sent,
        |_| {},
    )
    .await?;
    // Docker's order: as the manifest lists them.
    outcomes.sort_by_key(|(digest, _)| {
        upload
            .layers
            .iter()
            .position(|l| &l.digest == digest)
            .unwrap_or(usize::MAX)
    });
    Ok(outcomes)
}

async fn push_blob(
    to: &Destination<'_>,
    digest: &Digest,
    size: u64,
    sent: Arc<AtomicU64>,
    mut on_event: impl FnMut(PushEvent),
) -> Result<Uploaded, PushError> {
    let upload = BlobUpload {
        session: to.session,
        target: to.target,
        digest,
        size,
        path: to.store.blob_path(digest),
        mount_from: to.mount_sources.get(digest).cloned(),
        sent,
    };
    if !to.store.has_blob(digest) {
        return Err(StoreError::MissingBlob(digest.clone()).into());
    }
    let on_event = RefCell::new(&mut on_event);
    upload
        .run(
            || (on_event.borrow_mut())(PushEvent::Pushing),
            |attempt, error| {
                (on_event.borrow_mut())(PushEvent::Retrying {
                    attempt,
                    reason: super::client::root_cause(error),
                })
            },
        )
        .await
        .map_err(|e| to.session.error(&format!("blob {digest}"), e).into())
}

/// PUTs a manifest or index as stored, under `name` (a tag or a digest),
/// and checks the registry took the same bytes.
async fn put_manifest(
    session: &Session,
    target: &oci_client::Reference,
    upload: &Upload,
    name: &str,
) -> Result<(), PushError> {
    let url = session.url(&format!("/v2/{}/manifests/{name}", target.repository()));
    let what = format!("manifest {}", upload.digest);
    let response = retry(
        || async {
            let response = session
                .send(target, |http| {
                    http.put(&url)
                        .header(reqwest::header::CONTENT_TYPE, &upload.media_type)
                        .body(upload.bytes.clone())
                })
                .await?;
            if response.status().is_success() {
                Ok(response)
            } else {
                Err(Session::refused(response, &url).await)
            }
        },
        |_, _| {},
    )
    .await
    .map_err(|e| session.error(&what, e))?;
    let answered = response
        .headers()
        .get("Docker-Content-Digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Digest>().ok());
    if let Some(answered) = answered
        && answered != upload.digest
    {
        return Err(RegistryError::Failed {
            registry: session.host.clone(),
            what,
            reason: format!("it stored the manifest as {answered}"),
        }
        .into());
    }
    Ok(())
}
