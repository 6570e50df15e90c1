//! `img-ls`: one row per tag (one `<none>` row per untagged image), newest
//! first, with Docker's filters and its JSON field names.

use super::{Summaries, Summary};
use crate::digest::Digest;
use crate::format::human;
use crate::glob;
use crate::reference::Reference;
use crate::store::{ImageEntry, Store, StoreError};
use serde_json::json;
use std::time::SystemTime;

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid filter '{0}'")]
    BadFilter(String),
    #[error("invalid filter '{filter}': {source}")]
    BadPattern {
        filter: String,
        #[source]
        source: glob::BadPattern,
    },
}

#[derive(Debug, Default, Clone)]
pub struct ListOptions {
    /// `--filter` values, `key=value`.
    pub filters: Vec<String>,
    /// The optional `REPOSITORY[:TAG]` argument.
    pub repository: Option<String>,
}

/// One line of `img-ls`.
#[derive(Debug, Clone)]
pub struct Row {
    /// Familiar repository name, or `None` for `<none>`.
    pub repository: Option<String>,
    pub tag: Option<String>,
    pub id: Digest,
    /// The repository digest for this row's repository, if known.
    pub digest: Option<Digest>,
    pub created: Option<SystemTime>,
    pub size: u64,
}

impl Row {
    /// Docker's `docker images --format json` object.
    pub fn to_json(&self, now: SystemTime, no_trunc: bool) -> serde_json::Value {
        let none = || "<none>".to_string();
        json!({
            "Containers": "N/A",
            "CreatedAt": self.created.map(human::format_docker_date).unwrap_or_default(),
            "CreatedSince": self.created.map(|c| human::ago(c, now)).unwrap_or_else(|| "N/A".into()),
            "Digest": self.digest.as_ref().map(Digest::to_string).unwrap_or_else(none),
            "ID": if no_trunc { self.id.to_string() } else { self.id.short().to_string() },
            "Repository": self.repository.clone().unwrap_or_else(none),
            "SharedSize": "N/A",
            "Size": human::size(self.size),
            "Tag": self.tag.clone().unwrap_or_else(none),
            "UniqueSize": "N/A",
            "VirtualSize": human::size(self.size),
        })
    }
}

enum Filter {
    Dangling(bool),
    Reference(String),
    Before(SystemTime),
    Since(SystemTime),
    Label(String, Option<String>),
}

pub fn list(store: &Store, options: &ListOptions) -> Result<Vec<Row>, ListError> {
    let entries = store.image_entries()?;
    let mut summaries = Summaries::load(store);
    let mut images = Vec::with_capacity(entries.len());
    for entry in &entries {
        if let Some(summary) = summaries.get(store, entry)? {
            images.push((entry, summary));
        }
    }
    summaries.save(&entries);
    let mut filters = options
        .filters
        .iter()
        .map(|f| parse_filter(f, &images))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(repository) = &options.repository {
        filters.push(Filter::Reference(repository.clone()));
    }
    let mut rows = Vec::new();
    for (entry, summary) in &images {
        // Another platform's image of a tagged index is no row of its own
        // (it would be a `<none>` that no prune can remove).
        if entry.index_child || !image_passes(entry, summary, &filters) {
            continue;
        }
        let row = |repository, tag, digest| Row {
            repository,
            tag,
            id: summary.id.clone(),
            digest,
            created: summary.created_time(),
            size: summary.size,
        };
        if entry.tags.is_empty() {
            rows.push(row(None, None, None));
            continue;
        }
        for tag in &entry.tags {
            if !tag_passes(tag, &filters)? {
                continue;
            }
            // A name by digest only (a pull by digest) is a `<none>` row
            // only when its repository has no tag of this image (Docker).
            let tagged_too = |t: &&crate::reference::Reference| {
                t.tag().is_some() && t.repository() == tag.repository()
            };
            if tag.tag().is_none() && entry.tags.iter().any(|t| tagged_too(&t)) {
                continue;
            }
            let digest = entry
                .repo_digests
                .iter()
                .find(|d| d.repository() == tag.repository())
                .and_then(|d| d.digest().cloned());
            let label = tag.tag().map(str::to_string);
            rows.push(row(Some(tag.familiar_repository()), label, digest));
        }
    }
    rows.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then_with(|| a.repository.cmp(&b.repository))
            .then_with(|| a.tag.cmp(&b.tag))
    });
    Ok(rows)
}

fn parse_filter(filter: &str, images: &[(&ImageEntry, Summary)]) -> Result<Filter, ListError> {
    let bad = || ListError::BadFilter(filter.to_string());
    let (key, value) = filter.split_once('=').ok_or_else(bad)?;
    let created_of = |target: &str| {
        let reference = Reference::parse(target).ok();
        let prefix = target.trim_start_matches("sha256:");
        images
            .iter()
            .find(|(entry, summary)| {
                entry.tags.iter().any(|t| reference.as_ref() == Some(t))
                    || summary.id.hex().starts_with(prefix)
            })
            .and_then(|(_, summary)| summary.created_time())
            .ok_or_else(|| ListError::Store(StoreError::NoSuchImage(target.to_string())))
    };
    Ok(match key {
        "dangling" => match value {
            "true" | "1" => Filter::Dangling(true),
            "false" | "0" => Filter::Dangling(false),
            _ => return Err(bad()),
        },
        "reference" => {
            glob::matches(value, "").map_err(|source| ListError::BadPattern {
                filter: filter.to_string(),
                source,
            })?;
            Filter::Reference(value.to_string())
        }
        "before" => Filter::Before(created_of(value)?),
        "since" => Filter::Since(created_of(value)?),
        "label" => match value.split_once('=') {
            Some((k, v)) => Filter::Label(k.to_string(), Some(v.to_string())),
            None => Filter::Label(value.to_string(), None),
        },
        _ => return Err(bad()),
    })
}

/// Filters on the image as a whole (every tag row shares the outcome).
fn image_passes(entry: &ImageEntry, summary: &Summary, filters: &[Filter]) -> bool {
    let created = summary.created_time();
    filters.iter().all(|filter| match filter {
        Filter::Dangling(want) => entry.tags.is_empty() == *want,
        Filter::Reference(_) => !entry.tags.is_empty(),
        Filter::Before(t) => created.is_some_and(|c| c < *t),
        Filter::Since(t) => created.is_some_and(|c| c > *t),
        Filter::Label(key, None) => summary.labels.contains_key(key),
        Filter::Label(key, Some(value)) => summary.labels.get(key) == Some(value),
    })
}

/// The reference filter, per tag: Docker matches the pattern against the
/// familiar `name:tag` and against the familiar name alone.
fn tag_passes(tag: &Reference, filters: &[Filter]) -> Result<bool, ListError> {
    for filter in filters {
        if let Filter::Reference(pattern) = filter {
            let name = tag.familiar_repository();
            let full = format!("{name}:{}", tag.tag().unwrap_or("latest"));
            let hit = glob::matches(pattern, &full).unwrap_or(false)
                || glob::matches(pattern, &name).unwrap_or(false)
                || glob::matches(pattern, &tag.to_string()).unwrap_or(false);
            if !hit {
                return Ok(false);
            }
        }
    }
    Ok(true)
}
