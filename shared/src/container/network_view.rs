//! Networks as `docker network ls` and `docker network inspect` show them:
//! the store's own networks plus Docker's predefined `host` and `none`,
//! each with the running containers that hold an address on it.

use super::Record;
use crate::digest::Digest;
use crate::network::NetworkError;
use crate::network::networks::{Network, Networks};
use crate::store::Store;
use serde_json::{Value, json};

/// One network as listed: its definition, or a predefined one's name and
/// driver (`host`, `null`) with an ID stable for the store.
pub struct Listed {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub network: Option<Network>,
}

/// Every network, by name, the default bridge made if it is not yet.
pub fn list(store: &Store) -> Result<Vec<Listed>, NetworkError> {
    let networks = Networks::of(store);
    networks.default_bridge()?;
    let mut listed: Vec<Listed> = networks
        .list()?
        .into_iter()
        .map(|n| Listed {
            id: n.id.clone(),
            name: n.name.clone(),
            driver: n.driver.clone(),
            network: Some(n),
        })
        .collect();
    for (name, driver) in [("host", "host"), ("none", "null")] {
        let seed = format!("{}:{name}", store.root().display());
        listed.push(Listed {
            id: Digest::of(seed.as_bytes()).hex().to_string(),
            name: name.to_string(),
            driver: driver.to_string(),
            network: None,
        });
    }
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(listed)
}

/// The network `target` names (a name, an ID or a unique ID prefix).
pub fn find(store: &Store, target: &str) -> Result<Listed, NetworkError> {
    let listed = list(store)?;
    if let Some(i) = listed
        .iter()
        .position(|l| l.name == target || l.id == target)
    {
        return Ok(listed.into_iter().nth(i).expect("found above"));
    }
    let mut matching: Vec<Listed> = listed
        .into_iter()
        .filter(|l| !target.is_empty() && l.id.starts_with(target))
        .collect();
    match matching.len() {
        1 => Ok(matching.remove(0)),
        _ => Err(NetworkError::NotFound(target.to_string())),
    }
}

/// Whether `listed` passes `docker network ls --filter`s, given as
/// `KEY=VALUE`: `name=` and `id=` (regular expressions matched anywhere,
/// as Docker's), `driver=`, `type=custom|builtin`, `label=KEY[=VALUE]`.
/// Values of one key are alternatives; keys must all match. An unknown
/// key is `Invalid filter 'KEY'`.
pub fn passes(listed: &Listed, filters: &[String]) -> Result<bool, NetworkError> {
    let mut keys: Vec<&str> = Vec::new();
    for filter in filters {
        let key = filter.split_once('=').map_or(filter.as_str(), |(k, _)| k);
        if !["name", "id", "driver", "type", "label"].contains(&key) {
            return Err(NetworkError::BadFilter(key.to_string()));
        }
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let one = |key: &str, value: &str| -> bool {
        let regex = |text: &str| regex::Regex::new(value).is_ok_and(|r| r.is_match(text));
        match key {
            "name" => regex(&listed.name),
            "id" => regex(&listed.id),
            "driver" => listed.driver == value,
            "type" => match value {
                "builtin" => listed.network.as_ref().is_none_or(|n| {
                    crate::network::networks::PREDEFINED.contains(&n.name.as_str())
                }),
                "custom" => listed.network.as_ref().is_some_and(|n| {
                    !crate::network::networks::PREDEFINED.contains(&n.name.as_str())
                }),
                _ => false,
            },
            _ => {
                let labels = listed.network.as_ref().map(|n| &n.labels);
                let (k, v) = value
                    .split_once('=')
                    .map_or((value, None), |(k, v)| (k, Some(v)));
                labels
                    .and_then(|l| l.get(k))
                    .is_some_and(|got| v.is_none_or(|v| v == got))
            }
        }
    };
    Ok(keys.iter().all(|key| {
        filters
            .iter()
            .filter_map(|f| f.split_once('='))
            .filter(|(k, _)| k == key)
            .any(|(k, v)| one(k, v))
    }))
}

/// `docker network ls`'s row object, for `--format`.
pub fn row(listed: &Listed, no_trunc: bool) -> Value {
    let id = if no_trunc {
        &listed.id
    } else {
        &listed.id[..12]
    };
    json!({
        "ID": id,
        "Name": listed.name,
        "Driver": listed.driver,
        "Scope": "local",
        "IPv6": "false",
        "Internal": listed.network.as_ref().is_some_and(|n| n.internal).to_string(),
        "CreatedAt": listed.network.as_ref().map(|n| n.created.clone()).unwrap_or_default(),
    })
}

/// `docker network inspect`'s object, with the running containers on it.
pub fn inspect(store: &Store, listed: &Listed) -> Value {
    let containers: serde_json::Map<String, Value> = store
        .containers()
        .unwrap_or_default()
        .iter()
        .filter(|r| r.state.running)
        .filter_map(|r| endpoint_of(r, &listed.name).map(|e| (r.id.clone(), e)))
        .collect();
    let (created, ipam, internal, options, labels) = match &listed.network {
        Some(n) => (
            n.created.clone(),
            json!({"Driver": n.ipam.driver, "Options": {}, "Config": n.ipam.config}),
            n.internal,
            json!(n.options),
            json!(n.labels),
        ),
        None => (
            crate::container::ZERO_TIME.to_string(),
            json!({"Driver": "default", "Options": null, "Config": []}),
            false,
            json!({}),
            json!({}),
        ),
    };
    json!({
        "Name": listed.name,
        "Id": listed.id,
        "Created": created,
        "Scope": "local",
        "Driver": listed.driver,
        "EnableIPv6": false,
        "IPAM": ipam,
        "Internal": internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": labels,
    })
}

/// A running container's entry under its network's `Containers`.
fn endpoint_of(record: &Record, network: &str) -> Option<Value> {
    let endpoint = record.network_settings.networks.get(network)?;
    if endpoint.ip_address.is_empty() {
        return None;
    }
    Some(json!({
        "Name": record.name.trim_start_matches('/'),
        "EndpointID": endpoint.endpoint_id,
        "MacAddress": endpoint.mac_address,
        "IPv4Address": format!("{}/{}", endpoint.ip_address, endpoint.ip_prefix_len),
        "IPv6Address": "",
    }))
}
