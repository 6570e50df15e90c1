//! Volumes as `vol-ls` lists them: its filters (`dangling=`, `name=`,
//! `label=`, `driver=`) and the fields of its rows and templates.

use super::Volume;
use super::usage::dangling;
use crate::container::Record;
use serde_json::{Value, json};

/// One `-f KEY=VALUE` of vol-ls, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Dangling(bool),
    /// A substring of the name, as Docker matches it.
    Name(String),
    Label(String, Option<String>),
    Driver(String),
}

impl std::str::FromStr for Filter {
    type Err = String;
    fn from_str(text: &str) -> Result<Filter, String> {
        let Some((key, value)) = text.split_once('=') else {
            return Err(format!(
                "bad format of filter (expected name=value): {text}"
            ));
        };
        match key {
            "dangling" => match value {
                "true" | "1" => Ok(Filter::Dangling(true)),
                "false" | "0" => Ok(Filter::Dangling(false)),
                _ => Err(format!(
                    "invalid filter 'dangling={value}': value must be 'true' or 'false'"
                )),
            },
            "name" => Ok(Filter::Name(value.to_string())),
            "label" => Ok(match value.split_once('=') {
                Some((k, v)) => Filter::Label(k.to_string(), Some(v.to_string())),
                None => Filter::Label(value.to_string(), None),
            }),
            "driver" => Ok(Filter::Driver(value.to_string())),
            _ => Err(format!("invalid filter '{key}'")),
        }
    }
}

impl Filter {
    /// Whether `volume` passes, given every container's record.
    pub fn keeps(&self, volume: &Volume, records: &[Record]) -> bool {
        match self {
            Filter::Dangling(want) => dangling(records, volume) == *want,
            Filter::Name(part) => volume.name.contains(part.as_str()),
            Filter::Label(key, value) => volume
                .labels
                .as_ref()
                .and_then(|l| l.get(key))
                .is_some_and(|v| value.as_ref().is_none_or(|want| v == want)),
            Filter::Driver(driver) => volume.driver == *driver,
        }
    }
}

/// One vol-ls row as its `--format` templates name the fields.
pub fn row(volume: &Volume) -> Value {
    let labels = volume
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    json!({
        "Driver": volume.driver,
        "Labels": labels,
        "Links": "N/A",
        "Mountpoint": volume.mountpoint,
        "Name": volume.name,
        "Scope": volume.scope,
        "Size": "N/A",
    })
}
