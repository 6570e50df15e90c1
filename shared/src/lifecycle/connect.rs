//! net-connect and net-disconnect (`docker network connect`/`disconnect`):
//! a running container gets or loses one network in the namespace it has
//! (netavark for that network alone, `network.json` and the record kept
//! in step, so its teardown undoes exactly what it has); a stopped one has
//! the change recorded for its next start. Docker's refusals in its words.

use super::LifecycleError;
use super::find::find;
use crate::container::Record;
use crate::container::endpoint::{EndpointSettings, NetworkSettings};
use crate::network::networks::{self, Network, Networks};
use crate::network::{self, Endpoint, NetworkError, NetworkMode};
use crate::store::Store;
use std::net::Ipv4Addr;

/// net-connect's `--ip` and `--alias`.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub ip: Option<Ipv4Addr>,
    pub aliases: Vec<String>,
}

/// Puts `container` on `network`, as `docker network connect` does.
pub fn connect(
    store: &Store,
    network: &str,
    container: &str,
    options: &ConnectOptions,
) -> Result<(), LifecycleError> {
    // Docker looks the network up first, then the container; its `host`
    // and `none` exist, and are refused once the container is known.
    let found = match network {
        "host" | "none" => None,
        name => Some(Networks::of(store).find(name)?),
    };
    let record = find(store, container)?;
    let mode: NetworkMode = record.host_config.network_mode.parse()?;
    match mode {
        NetworkMode::Host | NetworkMode::Container(_) => return Err(LifecycleError::SharedNetwork),
        NetworkMode::None => return Err(LifecycleError::NoNetwork),
        NetworkMode::Bridge | NetworkMode::Named(_) => {}
    }
    let Some(network) = found else {
        return Err(match network {
            "host" => LifecycleError::HostNetwork,
            _ => LifecycleError::NoNetwork,
        });
    };
    // Docker's default bridge takes no chosen address and no alias.
    if network.name == networks::DEFAULT {
        if options.ip.is_some() {
            return Err(LifecycleError::UnsupportedIp);
        }
        if !options.aliases.is_empty() {
            return Err(LifecycleError::UnsupportedAlias);
        }
    }
    let key = entry_of(&record, &network).unwrap_or_else(|| network.name.clone());
    let already = record.network_settings.networks.contains_key(&key);
    let name = record.name.trim_start_matches('/');
    if record.state.running {
        let endpoint = Endpoint {
            network: network.name.clone(),
            ip: options.ip,
            aliases: options.aliases.clone(),
            publish: Vec::new(),
        };
        let attached = match network::attach::connect(store, &record.id, name, &endpoint) {
            // A net-connect killed between its set-up and its record left
            // the first without the second: undone and made again, so the
            // two agree and the user's retry is not refused.
            Err(NetworkError::EndpointExists { .. }) if !already => {
                network::attach::disconnect(store, &record.id, &network.name)?;
                network::attach::connect(store, &record.id, name, &endpoint)?
            }
            other => other?,
        };
        crate::testhook::pause(crate::testhook::CONNECTED);
        if let Some(attached) = attached {
            let updated = store.update_container(&record.id, |r| {
                let settings = &mut r.network_settings;
                let mut entry = EndpointSettings::asked(options.ip, &options.aliases);
                entry.network_id = network.id.clone();
                settings.networks.insert(key.clone(), entry);
                settings.attached(&r.id, &key, &attached, None);
            })?;
            refresh_resolvers(store, &updated)?;
            return Ok(());
        }
        // No namespace: it stopped meanwhile; recorded for its next start.
    }
    if already {
        // Docker keeps a stopped container's first request, silently.
        return Ok(());
    }
    store.update_container(&record.id, |r| {
        let mut entry = EndpointSettings::asked(options.ip, &options.aliases);
        entry.network_id = network.id.clone();
        r.network_settings.networks.insert(key.clone(), entry);
    })?;
    Ok(())
}

/// Takes `container` off `network`, as `docker network disconnect` does
/// (`force`: a stopped container's entry goes even if the network does
/// not exist; a container that does not exist is Docker's missing endpoint).
pub fn disconnect(
    store: &Store,
    network: &str,
    container: &str,
    force: bool,
) -> Result<(), LifecycleError> {
    let networks = Networks::of(store);
    let found = networks.find(network);
    let record = match find(store, container) {
        Err(LifecycleError::NoSuchContainer(_)) if force => {
            return Err(LifecycleError::NoEndpoint(container.to_string()));
        }
        other => other?,
    };
    let mode: NetworkMode = record.host_config.network_mode.parse()?;
    if network == "host" && mode == NetworkMode::Host {
        return Err(LifecycleError::HostNetwork);
    }
    let not_connected = |stopped: bool| LifecycleError::NotConnected {
        id: record.id.clone(),
        network: network.to_string(),
        the: if stopped { "the " } else { "" },
    };
    // Docker's predefined `none` and `host` are names in the record only.
    let found = match found {
        Err(NetworkError::NotFound(_)) if ["host", "none"].contains(&network) => {
            if !record.network_settings.networks.contains_key(network) {
                return Err(not_connected(!record.state.running));
            }
            store.update_container(&record.id, |r| {
                r.network_settings.networks.remove(network);
            })?;
            return Ok(());
        }
        other => other,
    };
    if !record.state.running || (found.is_err() && force) {
        let key = match &found {
            Ok(net) => entry_of(&record, net),
            Err(_) => Some(network.to_string()),
        };
        let Some(key) = key.filter(|k| record.network_settings.networks.contains_key(k)) else {
            return Err(not_connected(true));
        };
        store.update_container(&record.id, |r| {
            r.network_settings.networks.remove(&key);
        })?;
        return Ok(());
    }
    let net = found?;
    let Some(key) = entry_of(&record, &net) else {
        return Err(not_connected(false));
    };
    network::attach::disconnect(store, &record.id, &net.name)?;
    let primary = mode.endpoint_name() == Some(key.as_str());
    store.update_container(&record.id, |r| {
        let settings = &mut r.network_settings;
        settings.networks.remove(&key);
        if primary {
            // The top-level fields are the first network's.
            *settings = NetworkSettings {
                networks: std::mem::take(&mut settings.networks),
                sandbox_id: settings.sandbox_id.clone(),
                sandbox_key: settings.sandbox_key.clone(),
                ..NetworkSettings::default()
            };
        }
    })?;
    Ok(())
}

/// The key under which `record` names `network` in its
/// `NetworkSettings.Networks`: its name, or an ID prefix it was given as.
fn entry_of(record: &Record, network: &Network) -> Option<String> {
    let entries = &record.network_settings.networks;
    if entries.contains_key(&network.name) {
        return Some(network.name.clone());
    }
    entries
        .iter()
        .find(|(key, entry)| {
            entry.network_id == network.id
                || (!key.is_empty() && network.id.starts_with(key.as_str()))
        })
        .map(|(key, _)| key.clone())
}

/// A running container that joins a network resolving names asks its
/// resolvers from then on, as Docker's do (unless `--dns` chose them):
/// each such network's resolver is at its gateway, the first network's
/// first.
fn refresh_resolvers(store: &Store, record: &Record) -> Result<(), LifecycleError> {
    if !record.host_config.dns.is_empty() {
        return Ok(());
    }
    let mode: NetworkMode = record.host_config.network_mode.parse()?;
    let primary = mode.endpoint_name().unwrap_or_default();
    let mut entries: Vec<(&String, &EndpointSettings)> =
        record.network_settings.networks.iter().collect();
    entries.sort_by_key(|(key, _)| key.as_str() != primary);
    let resolvers: Vec<String> = entries
        .into_iter()
        .filter(|(key, entry)| key.as_str() != networks::DEFAULT && !entry.gateway.is_empty())
        .map(|(_, entry)| entry.gateway.clone())
        .collect();
    if resolvers.is_empty() {
        return Ok(());
    }
    network::write_resolv_conf(&store.container_dir(&record.id), &resolvers)?;
    Ok(())
}
