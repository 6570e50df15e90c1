//! `img-rm` and `img-prune`: Docker's rules for untagging and deleting
//! images, then a mark-and-sweep of whatever is no longer reachable.

use super::{ImageUser, Summaries, image_users};
use crate::digest::Digest;
use crate::reference::Reference;
use crate::store::{Reclaimed, Store, StoreError};
use std::fmt;
use std::time::{Duration, SystemTime};

#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid filter '{0}'")]
    BadFilter(String),
}

/// One change made, printed by the tools as Docker does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// A familiar reference (`busybox:latest`, `busybox@sha256:…`).
    Untagged(String),
    /// An image ID.
    Deleted(Digest),
}

impl fmt::Display for Removal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Removal::Untagged(r) => write!(f, "Untagged: {r}"),
            Removal::Deleted(id) => write!(f, "Deleted: {id}"),
        }
    }
}

fn familiar(reference: &Reference) -> String {
    let name = reference.familiar_repository();
    match (reference.tag(), reference.digest()) {
        (Some(tag), _) => format!("{name}:{tag}"),
        (None, Some(digest)) => format!("{name}@{digest}"),
        (None, None) => name,
    }
}

/// What `rmi` did to one target: its changes, or why it was refused.
pub type TargetOutcome = Result<Vec<Removal>, RemoveError>;

/// Docker's `rmi` for each target, then one collection. Each target's
/// outcome is reported separately so one failure does not stop the rest.
/// The caller sweeps dead builders' steps first
/// (`container::owner::sweep_orphans`): their processes hold leases.
pub fn remove(
    store: &Store,
    targets: &[String],
    force: bool,
) -> Result<(Vec<TargetOutcome>, Reclaimed), StoreError> {
    let lease = store.exclusive_lease()?;
    let users = image_users(store)?;
    let outcomes = targets
        .iter()
        .map(|target| remove_one(store, target, force, &users))
        .collect();
    let reclaimed = store.collect_garbage(&lease)?;
    Ok((outcomes, reclaimed))
}

fn remove_one(
    store: &Store,
    target: &str,
    force: bool,
    users: &[ImageUser],
) -> Result<Vec<Removal>, RemoveError> {
    let mut guard = store.lock_index()?;
    let images = store.images()?;
    let by_tag = Reference::parse(target)
        .ok()
        .filter(|reference| guard.lookup_tag(reference).is_some());
    let mut done = Vec::new();

    if let Some(reference) = by_tag {
        // Untag one name; delete the image only if that was its last name.
        let image = images.iter().find(|i| i.tags.contains(&reference));
        let last_name = image.is_none_or(|i| i.tags.len() <= 1);
        let user = image.and_then(|i| users.iter().find(|u| u.image_id == i.id().to_string()));
        if let (Some(user), true, false) = (user, last_name, force) {
            let user = match user.creator {
                Some(_) => user.to_string(),
                None => format!("container {}", short(&user.container_id)),
            };
            return Err(RemoveError::Conflict(format!(
                "unable to remove repository reference \"{target}\" (must force) - {user} is using its referenced image {}",
                image
                    .map(|i| i.id().short().to_string())
                    .unwrap_or_default()
            )));
        }
        let descriptor = guard
            .remove_tag(&reference)
            .expect("looked up under the same lock");
        done.push(Removal::Untagged(familiar(&reference)));
        if let (Some(image), true) = (image, last_name) {
            if user.is_some() {
                guard.add_untagged(descriptor);
            } else {
                guard.remove_digest(&image.manifest_digest);
                done.push(Removal::Deleted(image.id()));
            }
        }
        guard.save()?;
        return Ok(done);
    }

    let image = store.resolve_image(target)?;
    let id = image.id().to_string();
    let image_users: Vec<&ImageUser> = users.iter().filter(|u| u.image_id == id).collect();
    if let Some(running) = image_users.iter().find(|u| u.running) {
        return Err(RemoveError::Conflict(format!(
            "unable to delete {} (cannot be forced) - image is being used by {running}",
            image.id().short(),
        )));
    }
    if let (Some(stopped), false) = (image_users.first(), force) {
        return Err(RemoveError::Conflict(format!(
            "unable to delete {} (must be forced) - image is being used by {stopped}",
            image.id().short(),
        )));
    }
    let mut repositories: Vec<String> = image.tags.iter().map(Reference::repository).collect();
    repositories.sort();
    repositories.dedup();
    if repositories.len() > 1 && !force {
        return Err(RemoveError::Conflict(format!(
            "unable to delete {} (must be forced) - image is referenced in multiple repositories",
            image.id().short()
        )));
    }
    done.extend(untag_all(&mut guard, &image.tags));
    if image_users.is_empty() {
        guard.remove_digest(&image.manifest_digest);
        done.push(Removal::Deleted(image.id()));
    } else {
        guard.add_untagged(image.descriptor.clone());
    }
    guard.save()?;
    Ok(done)
}

fn untag_all(guard: &mut crate::store::IndexGuard, tags: &[Reference]) -> Vec<Removal> {
    tags.iter()
        .filter_map(|tag| {
            guard
                .remove_tag(tag)
                .map(|_| Removal::Untagged(familiar(tag)))
        })
        .collect()
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

#[derive(Debug, Default, Clone)]
pub struct PruneOptions {
    /// Every unused image, not only dangling ones.
    pub all: bool,
    /// `until=`, `label=`, `label!=` filters.
    pub filters: Vec<String>,
}

/// One `--filter` of Docker's prune commands (images and containers).
#[derive(Debug, Clone, PartialEq)]
pub enum PruneFilter {
    /// Created before this time.
    Until(SystemTime),
    /// Has the label KEY (with VALUE); `true`: has not (`label!=`).
    Label(String, Option<String>, bool),
}

impl PruneFilter {
    /// `until=TIMESTAMP|UNIX SECONDS|DURATION` (a Go duration before `now`),
    /// `label=KEY[=VALUE]`, `label!=KEY[=VALUE]`.
    pub fn parse(filter: &str, now: SystemTime) -> Result<PruneFilter, RemoveError> {
        parse_prune_filter(filter, now)
    }

    /// Whether a thing created at `created` with `labels` passes.
    pub fn passes(
        &self,
        created: Option<SystemTime>,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> bool {
        match self {
            PruneFilter::Until(t) => created.is_some_and(|c| c < *t),
            PruneFilter::Label(key, value, negate) => {
                let has = match value {
                    Some(v) => labels.get(key) == Some(v),
                    None => labels.contains_key(key),
                };
                has != *negate
            }
        }
    }
}

/// Docker's `image prune`: dangling images (or with `all`, every image no
/// container uses), filtered, removed, then collected.
/// The caller sweeps dead builders' steps first, as for [`remove`].
pub fn prune(
    store: &Store,
    options: &PruneOptions,
) -> Result<(Vec<Removal>, Reclaimed), RemoveError> {
    let now = SystemTime::now();
    let filters = options
        .filters
        .iter()
        .map(|f| parse_prune_filter(f, now))
        .collect::<Result<Vec<_>, _>>()?;
    let lease = store.exclusive_lease()?;
    let users = image_users(store)?;
    let mut guard = store.lock_index()?;
    let mut done = Vec::new();
    let entries = store.image_entries()?;
    let mut summaries = Summaries::load(store);
    for entry in &entries {
        let Some(summary) = summaries.get(store, entry)? else {
            continue;
        };
        let id = summary.id.to_string();
        let unused = !users.iter().any(|u| u.image_id == id);
        // Another platform's image of an index goes with the index.
        let wanted = !entry.index_child && (options.all || entry.tags.is_empty());
        let passes = filters
            .iter()
            .all(|filter| filter.passes(summary.created_time(), &summary.labels));
        if unused && wanted && passes {
            done.extend(untag_all(&mut guard, &entry.tags));
            guard.remove_digest(&entry.manifest_digest);
            done.push(Removal::Deleted(summary.id.clone()));
        }
    }
    guard.save()?;
    let reclaimed = store.collect_garbage(&lease)?;
    Ok((done, reclaimed))
}

fn parse_prune_filter(filter: &str, now: SystemTime) -> Result<PruneFilter, RemoveError> {
    let bad = || RemoveError::BadFilter(filter.to_string());
    if let Some(value) = filter.strip_prefix("label!=") {
        let (k, v) = split_label(value);
        return Ok(PruneFilter::Label(k, v, true));
    }
    let (key, value) = filter.split_once('=').ok_or_else(bad)?;
    match key {
        "until" => {
            let time = crate::format::human::parse_rfc3339(value)
                .or_else(|| {
                    let seconds: u64 = value.parse().ok()?;
                    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
                })
                .or_else(|| now.checked_sub(crate::format::human::parse_go_duration(value)?))
                .ok_or_else(bad)?;
            Ok(PruneFilter::Until(time))
        }
        "label" => {
            let (k, v) = split_label(value);
            Ok(PruneFilter::Label(k, v, false))
        }
        _ => Err(bad()),
    }
}

fn split_label(value: &str) -> (String, Option<String>) {
    match value.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (value.to_string(), None),
    }
}
