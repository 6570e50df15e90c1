//! What `ctr-ps` and `ctr-inspect` show of container records: Docker's
//! ps filters, rows and template fields, and its container-inspect shape.

use super::{Record, Status};
use crate::format::human;
use crate::image::ImageView;
use crate::store::Store;
use serde_json::{Map, Value, json};
use std::path::Path;
use std::time::SystemTime;

#[derive(Debug, thiserror::Error)]
#[error(
    "invalid filter {0:?}: use status=, name=, id=, ancestor=, label=KEY[=VALUE], exited=CODE, health=, before= or since="
)]
pub struct BadFilter(pub String);

/// A `before=`/`since=` filter names a container the store does not have.
#[derive(Debug, thiserror::Error)]
#[error("No such container: {0}")]
pub struct NoSuchContainer(pub String);

/// Docker's `name=` filter: a regular expression, matched against the name
/// with its leading slash (`^/app$`, as Docker stores names) or without it
/// (`^app$`); a plain word matches anywhere in the name.
#[derive(Debug, Clone)]
pub struct NamePattern(regex::Regex);

impl PartialEq for NamePattern {
    fn eq(&self, other: &NamePattern) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// One `--filter KEY=VALUE` of `docker ps`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Status(String),
    Name(NamePattern),
    Id(String),
    Ancestor(String),
    Label(String, Option<String>),
    Exited(i32),
    /// Docker's `health=starting|healthy|unhealthy|none`.
    Health(String),
    /// Created before / after the container named (as given, then bound
    /// to its creation time by [`Filter::bind`]).
    Before(String),
    Since(String),
    CreatedBefore(String),
    CreatedAfter(String),
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, BadFilter> {
        let bad = || BadFilter(text.to_string());
        let (key, value) = text.split_once('=').ok_or_else(bad)?;
        Ok(match key {
            "status" => {
                value.parse::<Status>().map_err(|_| bad())?;
                Filter::Status(value.to_string())
            }
            "name" => Filter::Name(NamePattern(regex::Regex::new(value).map_err(|_| bad())?)),
            "id" => Filter::Id(value.to_string()),
            "ancestor" => Filter::Ancestor(value.to_string()),
            "label" => match value.split_once('=') {
                Some((k, v)) => Filter::Label(k.to_string(), Some(v.to_string())),
                None => Filter::Label(value.to_string(), None),
            },
            "exited" => Filter::Exited(value.parse().map_err(|_| bad())?),
            "health" => match value {
                "starting" | "healthy" | "unhealthy" | "none" => Filter::Health(value.to_string()),
                _ => return Err(bad()),
            },
            "before" => Filter::Before(value.to_string()),
            "since" => Filter::Since(value.to_string()),
            _ => return Err(bad()),
        })
    }

    /// Binds `before=`/`since=` to the creation time of the container
    /// they name among `records` (by name, full ID or ID prefix).
    pub fn bind(self, records: &[Record]) -> Result<Filter, NoSuchContainer> {
        let created = |target: &str| {
            records
                .iter()
                .find(|r| r.name.trim_start_matches('/') == target || r.id == target)
                .or_else(|| records.iter().find(|r| r.id.starts_with(target)))
                .map(|r| r.created.clone())
                .ok_or_else(|| NoSuchContainer(target.to_string()))
        };
        Ok(match self {
            Filter::Before(target) => Filter::CreatedBefore(created(&target)?),
            Filter::Since(target) => Filter::CreatedAfter(created(&target)?),
            other => other,
        })
    }

    /// Whether `record` passes. `ancestor` matches the reference the
    /// container was run from, the image it resolves to in the store, or
    /// an image built on it (its layers begin with that image's).
    pub fn matches(&self, store: &Store, record: &Record) -> bool {
        match self {
            Filter::Status(status) => record.state.status.as_str() == status,
            Filter::Name(pattern) => {
                pattern.0.is_match(&record.name)
                    || pattern.0.is_match(record.name.trim_start_matches('/'))
            }
            Filter::Id(prefix) => record.id.starts_with(prefix.as_str()),
            Filter::Ancestor(image) => {
                record.config.image == *image
                    || store
                        .resolve_image(image)
                        .is_ok_and(|ancestor| descends(store, record, &ancestor))
            }
            // RFC 3339 times in UTC with fixed-width fractions, as the
            // records are written, order as text.
            Filter::CreatedBefore(created) => record.created < *created,
            Filter::CreatedAfter(created) => record.created > *created,
            // Unbound: nothing passes (bind first).
            Filter::Before(_) | Filter::Since(_) => false,
            Filter::Label(key, value) => match (record.config.labels.get(key), value) {
                (Some(_), None) => true,
                (Some(have), Some(want)) => have == want,
                (None, _) => false,
            },
            Filter::Exited(code) => {
                record.state.status == Status::Exited && record.state.exit_code == *code
            }
            Filter::Health(wanted) => health_word(record) == wanted,
        }
    }
}

/// The container's health as Docker's `health=` filter reads it: its
/// status, or `none` without a check.
fn health_word(record: &Record) -> &'static str {
    record
        .state
        .health
        .as_ref()
        .map_or("none", |h| h.status.as_str())
}

/// Whether the container's image is `ancestor` or was built on it: its
/// layers begin with all of `ancestor`'s.
fn descends(store: &Store, record: &Record, ancestor: &crate::store::Image) -> bool {
    if ancestor.id().to_string() == record.image {
        return true;
    }
    let layers = |image: &crate::store::Image| -> Vec<String> {
        image
            .manifest
            .layers()
            .iter()
            .map(|l| l.digest().to_string())
            .collect()
    };
    let base = layers(ancestor);
    !base.is_empty()
        && store
            .resolve_image(&record.image)
            .is_ok_and(|image| layers(&image).starts_with(&base))
}

/// The command as `docker ps` shows it, before quoting and truncation: the
/// engine puts an argument with a space in single quotes.
pub fn command_line(record: &Record) -> String {
    std::iter::once(record.path.clone())
        .chain(record.args.iter().map(|arg| {
            if arg.contains(' ') {
                format!("'{arg}'")
            } else {
                arg.clone()
            }
        }))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Docker's ellipsis: at most `width` characters, the last one "…".
pub fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Bytes of the files a container wrote (its upper dir): Docker's SizeRw.
pub fn size_rw(store: &Store, record: &Record) -> u64 {
    fn walk(path: &Path) -> u64 {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return 0;
        };
        if meta.is_dir() {
            std::fs::read_dir(path)
                .map(|entries| entries.flatten().map(|e| walk(&e.path())).sum())
                .unwrap_or(0)
        } else if meta.is_file() {
            meta.len()
        } else {
            0
        }
    }
    walk(&store.container_dir(&record.id).join("upper"))
}

/// The unpacked size of the container's image, 0 if it is gone.
fn image_size(store: &Store, record: &Record) -> u64 {
    store
        .resolve_image(&record.image)
        .ok()
        .and_then(|image| ImageView::load(store, image).ok())
        .map(|view| view.size)
        .unwrap_or(0)
}

/// One `docker ps` row as the fields its templates and `--format json`
/// use. Sizes are computed only when asked (they walk the upper dir).
pub fn row(store: &Store, record: &Record, now: SystemTime, no_trunc: bool, sizes: bool) -> Value {
    let id = if no_trunc {
        record.id.clone()
    } else {
        record.id[..12.min(record.id.len())].to_string()
    };
    let command = if no_trunc {
        command_line(record)
    } else {
        truncate(&command_line(record), 20)
    };
    let created = human::parse_rfc3339(&record.created);
    let time = |text: &str| human::parse_rfc3339(text).filter(|t| *t > SystemTime::UNIX_EPOCH);
    let mut status = human::container_status(
        record.state.status.as_str(),
        record.state.exit_code as i64,
        time(&record.state.started_at),
        time(&record.state.finished_at),
        now,
    );
    // Docker's `Up 3 seconds (healthy)`, only while it runs unpaused.
    if record.state.status == Status::Running
        && let Some(health) = &record.state.health
    {
        status = format!("{status} ({})", health.ps_text());
    }
    let labels = record
        .config
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    // Docker's MOUNTS: a volume's name, a bind's source.
    let mounts = record
        .mounts
        .iter()
        .map(|m| m.name.clone().unwrap_or_else(|| m.source.clone()))
        .collect::<Vec<_>>()
        .join(",");
    let local_volumes = record
        .mounts
        .iter()
        .filter(|m| m.driver.as_deref() == Some("local"))
        .count();
    let size = if sizes {
        let rw = size_rw(store, record);
        format!(
            "{} (virtual {})",
            human::size(rw),
            human::size(rw + image_size(store, record))
        )
    } else {
        String::new()
    };
    json!({
        "Command": format!("\"{command}\""),
        "CreatedAt": created.map(human::format_docker_date).unwrap_or_default(),
        "ID": id,
        "Image": record.config.image,
        "Labels": labels,
        "LocalVolumes": local_volumes.to_string(),
        "Mounts": mounts,
        "Names": record.name.trim_start_matches('/'),
        "Networks": record.host_config.network_mode,
        "Ports": record.network_settings.shown(record.state.running).ports_text(),
        "RunningFor": created.map(|c| human::ago(c, now)).unwrap_or_default(),
        "Size": size,
        "State": record.state.status,
        "Status": status,
    })
}

/// Docker's container-inspect object: the record plus the fields berth
/// does not track yet with Docker's empty values. With `sizes`,
/// SizeRw/SizeRootFs.
pub fn inspect(store: &Store, record: &Record, sizes: bool) -> Value {
    let mut object: Map<String, Value> = match serde_json::to_value(record) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    // Fields Docker always has, with its values for what berth does not
    // set (a field a record carries is left as it is).
    if let Some(Value::Object(host)) = object.get_mut("HostConfig") {
        host.entry("RestartPolicy")
            .or_insert(json!({"Name": "no", "MaximumRetryCount": 0}));
        host.entry("LogConfig")
            .or_insert(json!({"Type": "json-file", "Config": {}}));
    }
    if let Some(Value::Object(config)) = object.get_mut("Config") {
        config.entry("Healthcheck").or_insert(Value::Null);
        config.entry("ExposedPorts").or_insert(Value::Null);
    }
    let dir = store.container_dir(&record.id);
    object.entry("GraphDriver").or_insert(json!({
        "Name": "overlay2",
        "Data": {
            "MergedDir": dir.join("rootfs"),
            "UpperDir": dir.join("upper"),
            "WorkDir": dir.join("work"),
        },
    }));
    object.entry("RestartCount").or_insert(json!(0));
    object.insert("ExecIDs".into(), Value::Null);
    object.insert(
        "NetworkSettings".into(),
        json!(record.network_settings.shown(record.state.running)),
    );
    if sizes {
        let rw = size_rw(store, record);
        object.insert("SizeRw".into(), json!(rw));
        object.insert("SizeRootFs".into(), json!(rw + image_size(store, record)));
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_refuse_unknown_keys() {
        assert_eq!(
            Filter::parse("status=exited").unwrap(),
            Filter::Status("exited".into())
        );
        assert_eq!(
            Filter::parse("label=a=b").unwrap(),
            Filter::Label("a".into(), Some("b".into()))
        );
        assert_eq!(Filter::parse("exited=137").unwrap(), Filter::Exited(137));
        assert!(Filter::parse("status=sleepy").is_err());
        assert!(Filter::parse("colour=red").is_err());
        assert!(Filter::parse("exited=x").is_err());
        assert!(Filter::parse("name=(unclosed").is_err());
    }

    #[test]
    fn name_filters_are_regular_expressions_as_docker_s() {
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let named = |name: &str| Record {
            name: format!("/{name}"),
            ..Record::default()
        };
        let passes =
            |filter: &str, name: &str| Filter::parse(filter).unwrap().matches(&store, &named(name));
        assert!(passes("name=app", "my-app-1"));
        assert!(passes("name=^/app$", "app"));
        assert!(passes("name=^app$", "app"));
        assert!(!passes("name=^app$", "app2"));
        assert!(!passes("name=^/app$", "webapp"));
        assert!(passes("name=^web.*[0-9]$", "web_7"));
    }

    #[test]
    fn arguments_with_spaces_are_quoted_as_docker_s_engine_does() {
        let record = Record {
            path: "sh".into(),
            args: vec!["-c".into(), "echo a; exit 3".into(), "x".into()],
            ..Record::default()
        };
        assert_eq!(command_line(&record), "sh -c 'echo a; exit 3' x");
    }

    #[test]
    fn before_and_since_bind_to_a_container_s_creation() {
        let at = |name: &str, created: &str| Record {
            id: format!("{name}0000"),
            name: format!("/{name}"),
            created: created.into(),
            ..Record::default()
        };
        let records = [
            at("a", "2026-01-01T00:00:01.000000000Z"),
            at("b", "2026-01-01T00:00:02.000000000Z"),
            at("c", "2026-01-01T00:00:03.000000000Z"),
        ];
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let names = |filter: &str| {
            let filter = Filter::parse(filter).unwrap().bind(&records).unwrap();
            records
                .iter()
                .filter(|r| filter.matches(&store, r))
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(names("before=b"), ["/a"]);
        assert_eq!(names("since=a"), ["/b", "/c"]);
        assert_eq!(names("since=c0000"), Vec::<&str>::new());
        let missing = Filter::parse("before=nope").unwrap().bind(&records);
        assert_eq!(missing.unwrap_err().to_string(), "No such container: nope");
    }

    #[test]
    fn commands_are_truncated_with_an_ellipsis() {
        assert_eq!(truncate("sleep 1000", 20), "sleep 1000");
        assert_eq!(
            truncate("sh -c 'while true; do date; done'", 20),
            "sh -c 'while true; …"
        );
    }
}
