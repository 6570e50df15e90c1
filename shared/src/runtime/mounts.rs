//! `-v` and `--mount` read as Docker reads them: a host path to bind, a
//! named volume (made on first use), or an anonymous one; the container
//! path absolute, the mode one Docker knows. Nothing is touched here.

use std::fs;
use std::path::PathBuf;

/// Where a `-v` or `--mount` takes its files from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A host path (`-v /srv:/data`, `--mount type=bind`).
    Host(PathBuf),
    /// A named volume, made on first use (`-v data:/data`).
    Named(String),
    /// A new volume with a random name (`-v /data`).
    Anonymous,
}

/// One `-v` or `--mount`, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountFlag {
    pub source: MountSource,
    pub target: String,
    pub read_only: bool,
    /// `nocopy`, `volume-nocopy`: a new volume is not filled from the image.
    pub nocopy: bool,
    /// Docker's `Mode` in `Mounts`: the `-v` mode as written, `z` for a
    /// named volume without one.
    pub mode: String,
    /// The `-v` value, for `HostConfig.Binds` (not an anonymous one's, nor
    /// a `--mount`'s).
    pub bind: Option<String>,
    /// Given as `--mount` (kept in `HostConfig.Mounts`, not in
    /// `Config.Volumes`).
    pub from_mount: bool,
}

impl MountFlag {
    /// A `--mount`'s entry in `HostConfig.Mounts`, in Docker's shape.
    pub fn mount_json(&self) -> serde_json::Value {
        let mut entry = serde_json::Map::new();
        let (kind, source) = match &self.source {
            MountSource::Host(path) => ("bind", Some(path.display().to_string())),
            MountSource::Named(name) => ("volume", Some(name.clone())),
            MountSource::Anonymous => ("volume", None),
        };
        entry.insert("Type".into(), kind.into());
        if let Some(source) = source {
            entry.insert("Source".into(), source.into());
        }
        entry.insert("Target".into(), self.target.clone().into());
        if self.read_only {
            entry.insert("ReadOnly".into(), true.into());
        }
        serde_json::Value::Object(entry)
    }
}

/// Docker's `-v` modes (SELinux's `z`/`Z` are taken and mean nothing here).
fn read_mode(mode: &str) -> Option<(bool, bool)> {
    let (mut read_only, mut nocopy) = (false, false);
    if mode.is_empty() {
        return Some((read_only, nocopy));
    }
    for word in mode.split(',') {
        match word {
            "ro" => read_only = true,
            "rw" | "z" | "Z" => {}
            "nocopy" => nocopy = true,
            _ => return None,
        }
    }
    Some((read_only, nocopy))
}

/// A container path: absolute, as Docker requires.
fn check_target(target: &str) -> Result<(), String> {
    if target.starts_with('/') {
        Ok(())
    } else {
        Err(format!(
            "invalid mount path: '{target}' mount path must be absolute"
        ))
    }
}

/// A volume's name, or the host path it is if absolute.
fn read_source(source: &str) -> Result<MountSource, String> {
    if source.starts_with('/') {
        return Ok(MountSource::Host(PathBuf::from(source)));
    }
    crate::volume::check_name(source).map_err(|e| e.to_string().replacen("create ", "", 1))?;
    Ok(MountSource::Named(source.to_string()))
}

/// `-v [SOURCE:]TARGET[:MODE]`: SOURCE a host path or a volume's name;
/// none makes an anonymous volume (`-v /data`, `-v /data:ro`).
pub fn parse_volume(spec: &str) -> Result<MountFlag, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, ""),
        [t, m] if !m.starts_with('/') && read_mode(m).is_some() && t.starts_with('/') => {
            (None, *t, *m)
        }
        [s, t] => (Some(*s), *t, ""),
        [s, t, m] => (Some(*s), *t, *m),
        _ => return Err("expected [HOST-DIR|VOLUME:]CONTAINER-DIR[:ro]".to_string()),
    };
    if source.is_some_and(str::is_empty) {
        return Err("expected [HOST-DIR|VOLUME:]CONTAINER-DIR[:ro]".to_string());
    }
    check_target(target)?;
    let (read_only, nocopy) = read_mode(mode).ok_or_else(|| format!("invalid mode: {mode}"))?;
    let source = match source {
        None => MountSource::Anonymous,
        Some(s) => read_source(s)?,
    };
    let mode = match (&source, mode) {
        (MountSource::Named(_), "") => "z".to_string(),
        (_, mode) => mode.to_string(),
    };
    Ok(MountFlag {
        bind: (source != MountSource::Anonymous).then(|| spec.to_string()),
        source,
        target: target.to_string(),
        read_only,
        nocopy,
        mode,
        from_mount: false,
    })
}

/// `--mount type=volume|bind,source=…,target=…[,readonly][,volume-nocopy]`.
pub fn parse_mount(spec: &str) -> Result<MountFlag, String> {
    let (mut kind, mut source, mut target) = ("volume", None, None);
    let (mut read_only, mut nocopy) = (false, false);
    let truth = |value: Option<&str>, key: &str| match value {
        None | Some("1" | "true") => Ok(true),
        Some("0" | "false") => Ok(false),
        Some(other) => Err(format!("invalid value for {key}: {other}")),
    };
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field, None),
        };
        match (key.to_ascii_lowercase().as_str(), value) {
            ("type", Some(v)) => kind = v,
            ("source" | "src", Some(v)) => source = Some(v),
            ("target" | "destination" | "dst", Some(v)) => target = Some(v),
            ("readonly" | "ro", v) => read_only = truth(v, key)?,
            ("volume-nocopy", v) => nocopy = truth(v, key)?,
            ("bind-propagation", Some(_)) => {}
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    let target = target.ok_or("target is required")?;
    check_target(target)?;
    let source = match (kind, source) {
        ("volume", None | Some("")) => MountSource::Anonymous,
        ("volume", Some(name)) => match read_source(name)? {
            MountSource::Host(_) => {
                return Err(format!(
                    "invalid mount config for type \"volume\": invalid volume name {name:?}"
                ));
            }
            named => named,
        },
        ("bind", None | Some("")) => {
            return Err(
                "invalid mount config for type \"bind\": field Source must not be empty".into(),
            );
        }
        ("bind", Some(path)) => {
            if !path.starts_with('/') || fs::symlink_metadata(path).is_err() {
                return Err(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {path}"
                ));
            }
            MountSource::Host(PathBuf::from(path))
        }
        (other, _) => {
            return Err(format!(
                "mount type {other:?} is not supported (volume, bind)"
            ));
        }
    };
    Ok(MountFlag {
        source,
        target: target.to_string(),
        read_only,
        nocopy,
        mode: String::new(),
        bind: None,
        from_mount: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_are_read_as_docker_reads_them() {
        let named = parse_volume("data:/x").unwrap();
        assert_eq!(named.source, MountSource::Named("data".into()));
        assert_eq!((named.mode.as_str(), named.read_only), ("z", false));
        assert_eq!(named.bind.as_deref(), Some("data:/x"));
        let anonymous = parse_volume("/x").unwrap();
        assert_eq!(anonymous.source, MountSource::Anonymous);
        assert_eq!(anonymous.bind, None);
        let anonymous_ro = parse_volume("/x:ro").unwrap();
        assert_eq!(anonymous_ro.source, MountSource::Anonymous);
        assert!(anonymous_ro.read_only);
        let nocopy = parse_volume("data:/x:ro,nocopy").unwrap();
        assert!(nocopy.read_only && nocopy.nocopy);
        let mount = parse_mount("type=volume,source=data,target=/x,readonly").unwrap();
        assert_eq!(mount.source, MountSource::Named("data".into()));
        assert!(mount.read_only);
        assert_eq!(mount.bind, None);
        assert_eq!(
            mount.mount_json(),
            serde_json::json!({"Type": "volume", "Source": "data", "Target": "/x", "ReadOnly": true})
        );
        let anonymous = parse_mount("dst=/x").unwrap();
        assert_eq!(anonymous.source, MountSource::Anonymous);
        let bind = parse_mount("type=bind,src=/tmp,dst=/x,ro=false").unwrap();
        assert_eq!(bind.source, MountSource::Host("/tmp".into()));
        assert!(!bind.read_only);
        assert!(parse_mount("type=volume,src=../x,dst=/x").is_err());
        assert!(parse_mount("type=tmpfs,dst=/x").is_err());
    }
}
