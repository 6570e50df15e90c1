//! Docker's `image history`: an image's history entries newest first, the
//! top one named by the image's ID and the rest `<missing>` (berth keeps no
//! intermediate images, as BuildKit's Docker does not), each with its
//! layer's unpacked size; and the row fields Docker's formatter offers
//! (`ID`, `CreatedSince`, `CreatedAt`, `CreatedBy`, `Size`, `Comment`).

use super::layer_size;
use crate::digest::Digest;
use crate::format::human;
use crate::store::{Store, StoreError, descriptor_digest};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// One history entry, as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The image's ID on the top row; `None` (`<missing>`) below it.
    pub id: Option<Digest>,
    pub created: Option<SystemTime>,
    pub created_by: String,
    /// Unpacked bytes of the entry's layer; 0 for an empty layer.
    pub size: u64,
    pub comment: String,
}

/// How rows are shown: `--no-trunc`, and `-H/--human`.
#[derive(Debug, Clone, Copy)]
pub struct HistoryStyle {
    pub trunc: bool,
    pub human: bool,
}

/// Docker's width for a truncated CREATED BY.
const CREATED_BY_WIDTH: usize = 45;

/// The history of the image `target` names, newest first.
pub fn history(store: &Store, target: &str) -> Result<Vec<HistoryRow>, StoreError> {
    let image = store.resolve_image(target)?;
    let id = image.id();
    let bytes = store.read_blob(&id)?;
    let config: Value = serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
        path: store.blob_path(&id),
        source,
    })?;
    let mut layers = image.manifest.layers().iter().map(descriptor_digest);
    let mut rows = Vec::new();
    for entry in config["history"].as_array().into_iter().flatten() {
        let text = |key: &str| entry[key].as_str().unwrap_or("").to_string();
        let empty = entry["empty_layer"].as_bool().unwrap_or(false);
        let layer = if empty { None } else { layers.next() };
        let size = match layer {
            Some(layer) => layer_size(store, &layer)?,
            None => 0,
        };
        rows.push(HistoryRow {
            id: None,
            created: entry["created"].as_str().and_then(human::parse_rfc3339),
            created_by: text("created_by"),
            size,
            comment: text("comment"),
        });
    }
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top.id = Some(id);
    }
    Ok(rows)
}

impl HistoryRow {
    /// The IMAGE column: a short or full ID, or `<missing>`.
    pub fn id_text(&self, style: HistoryStyle) -> String {
        match &self.id {
            None => "<missing>".to_string(),
            Some(id) if style.trunc => id.short().to_string(),
            Some(id) => id.to_string(),
        }
    }

    /// Docker's formatter fields for this row.
    pub fn to_json(&self, style: HistoryStyle, now: SystemTime) -> Value {
        let created_at = self
            .created
            .map(|c| {
                human::format_rfc3339(c)
                    .split('.')
                    .next()
                    .map(|s| format!("{}Z", s.trim_end_matches('Z')))
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        // Docker shows no age for a time before 2000 (reproducible builds).
        let since = match self.created {
            _ if !style.human => created_at.clone(),
            Some(c) if c > UNIX_EPOCH + std::time::Duration::from_secs(946_684_800) => {
                human::ago(c, now)
            }
            _ => "N/A".to_string(),
        };
        let created_by = self.created_by.replace('\t', " ");
        let created_by = if style.trunc {
            ellipsis(&created_by, CREATED_BY_WIDTH)
        } else {
            created_by
        };
        let size = if style.human {
            human::size_with_precision(self.size, 3)
        } else {
            self.size.to_string()
        };
        json!({
            "Comment": self.comment,
            "CreatedAt": created_at,
            "CreatedBy": created_by,
            "CreatedSince": since,
            "ID": self.id_text(style),
            "Size": size,
        })
    }
}

/// `text` cut to `width` characters, the last of them `…`, when longer.
fn ellipsis(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_show_as_dockers_formatter_shows_them() {
        let now = UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let row = HistoryRow {
            id: Some(Digest::of(b"config")),
            created: Some(now - std::time::Duration::from_secs(300)),
            created_by: "/bin/sh -c\techo a very long command that goes past the column".into(),
            size: 4_261_000,
            comment: "hello".into(),
        };
        let style = HistoryStyle {
            trunc: true,
            human: true,
        };
        let j = row.to_json(style, now);
        assert_eq!(j["ID"], json!(Digest::of(b"config").short().to_string()));
        assert_eq!(j["CreatedSince"], json!("5 minutes ago"));
        assert_eq!(
            j["CreatedBy"],
            json!("/bin/sh -c echo a very long command that goe…")
        );
        assert_eq!(j["CreatedBy"].as_str().unwrap().chars().count(), 45);
        assert_eq!(j["Size"], json!("4.26MB"));
        assert_eq!(j["CreatedAt"], json!("2027-01-15T07:55:00Z"));
        let raw = row.to_json(
            HistoryStyle {
                trunc: false,
                human: false,
            },
            now,
        );
        assert_eq!(raw["Size"], json!("4261000"));
        assert_eq!(raw["CreatedSince"], json!("2027-01-15T07:55:00Z"));
        assert_eq!(raw["ID"], json!(Digest::of(b"config").to_string()));
        let missing = HistoryRow {
            id: None,
            created: Some(UNIX_EPOCH),
            ..row
        };
        let j = missing.to_json(style, now);
        assert_eq!(j["ID"], json!("<missing>"));
        assert_eq!(j["CreatedSince"], json!("N/A"));
    }
}
