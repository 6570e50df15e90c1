//! Docker's `--change` (`ctr-commit -c`, `img-import -c`): each change is
//! read by the Dockerfile parser and applied to an image config the way the
//! config steps apply their instruction (one set of helpers serves both:
//! ports, health checks, the history's `k=v` text). Only Docker's commit
//! set is accepted; anything else is refused before the store is touched.

use super::context;
use super::state::ImageState;
use crate::dockerfile::{self, Command, Healthcheck, Instruction, Vars, expand_word, expand_words};
use serde_json::{Value, json};

/// The instructions Docker lets a change carry (its `validCommitCommands`).
pub const CHANGE_COMMANDS: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// Docker's words, with the instruction in lower case as Docker's parser
    /// keeps it.
    #[error("{0} is not a valid change command")]
    NotAllowed(String),
    #[error("invalid change {change:?}: {why}")]
    Invalid { change: String, why: String },
}

/// Applies `changes` in order to the image config `config` (the whole
/// config blob's JSON; its `config` object is what changes). Nothing is
/// changed when any change is refused.
pub fn apply_changes(config: &mut Value, changes: &[String]) -> Result<(), ChangeError> {
    let mut state = ImageState {
        config: config.clone(),
        layers: Vec::new(),
        id: None,
        manifest: None,
    };
    // Docker: a new ENTRYPOINT drops the CMD unless a change set one.
    let mut cmd_set = false;
    for change in changes {
        let invalid = |why: String| ChangeError::Invalid {
            change: change.clone(),
            why,
        };
        let parsed = dockerfile::parse("--change", change).map_err(|e| invalid(e.message))?;
        for node in &parsed.nodes {
            if !CHANGE_COMMANDS.contains(&node.keyword.as_str()) {
                return Err(ChangeError::NotAllowed(node.keyword.to_lowercase()));
            }
            let instruction =
                dockerfile::parse_instruction(&parsed, node).map_err(|e| invalid(e.message))?;
            apply(&mut state, &instruction, parsed.escape, &mut cmd_set).map_err(invalid)?;
        }
    }
    *config = state.config;
    Ok(())
}

/// One parsed change on `state`; words expand against the config's `Env`.
fn apply(
    state: &mut ImageState,
    instruction: &Instruction,
    escape: char,
    cmd_set: &mut bool,
) -> Result<(), String> {
    let vars: Vars = state
        .env()
        .iter()
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let word = |w: &str| expand_word(w, &vars, escape).map_err(|e| e.to_string());
    let pairs = |pairs: &[(String, String)]| -> Result<Vec<(String, String)>, String> {
        pairs
            .iter()
            .map(|(k, v)| Ok((word(k)?, word(v)?)))
            .collect()
    };
    match instruction {
        Instruction::Env(list) => {
            for (k, v) in pairs(list)? {
                state.set_env(&k, &v);
            }
        }
        Instruction::Label(list) => state.add_labels(&pairs(list)?),
        Instruction::User(user) => {
            let user = word(user)?;
            state.container_config().insert("User".into(), json!(user));
        }
        Instruction::StopSignal(signal) => {
            let signal = word(signal)?;
            state
                .container_config()
                .insert("StopSignal".into(), json!(signal));
        }
        Instruction::Expose(text) => {
            let words = expand_words(text, &vars, escape).map_err(|e| e.to_string())?;
            let mut ports = Vec::new();
            for w in &words {
                ports.extend(expose_ports(w)?);
            }
            state.add_to_set("ExposedPorts", ports);
        }
        Instruction::Volume(command) => {
            let paths = match command {
                Command::Exec(list) => list.iter().map(|p| word(p)).collect::<Result<_, _>>()?,
                Command::Shell(text) => {
                    expand_words(text, &vars, escape).map_err(|e| e.to_string())?
                }
            };
            let paths: Vec<String> = paths;
            if paths.iter().any(|p| p.trim().is_empty()) {
                return Err("VOLUME specified can not be an empty string".into());
            }
            state.add_to_set("Volumes", paths);
        }
        Instruction::Cmd(command) => {
            let argv = command.argv(&state.shell());
            state.container_config().insert("Cmd".into(), json!(argv));
            *cmd_set = true;
        }
        Instruction::Entrypoint(command) => {
            let argv = command.argv(&state.shell());
            state
                .container_config()
                .insert("Entrypoint".into(), json!(argv));
            if !*cmd_set {
                state.container_config().insert("Cmd".into(), Value::Null);
            }
        }
        Instruction::Healthcheck(check) => {
            let value = healthcheck_json(check);
            state.container_config().insert("Healthcheck".into(), value);
        }
        Instruction::Onbuild(trigger, _) => {
            let mut list = state.triggers();
            list.push(trigger.clone());
            state
                .container_config()
                .insert("OnBuild".into(), json!(list));
        }
        Instruction::Workdir(dir) => {
            let dir = word(dir)?;
            let path = if dir.starts_with('/') {
                context::clean(&dir)
            } else {
                context::clean(&format!("{}/{dir}", state.workdir()))
            };
            state
                .container_config()
                .insert("WorkingDir".into(), json!(path));
        }
        other => unreachable!("{other:?} is not in CHANGE_COMMANDS"),
    }
    Ok(())
}

/// Pairs as the history shows them: `k=v k=v`.
pub(super) fn pairs_text(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// EXPOSE's words as `port/proto` keys, ranges spelled out.
pub(super) fn expose_ports(word: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = match word.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (word, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let parse = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("invalid containerPort: {p}"))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(ports)?, parse(ports)?),
    };
    if hi < lo {
        return Err(format!(
            "invalid range specified for containerPort: {ports}"
        ));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// A HEALTHCHECK as the config's `Healthcheck` object.
pub(super) fn healthcheck_json(check: &Healthcheck) -> Value {
    let mut value = json!({"Test": check.test});
    for (key, v) in [
        ("Interval", check.interval),
        ("Timeout", check.timeout),
        ("StartPeriod", check.start_period),
        ("StartInterval", check.start_interval),
        ("Retries", check.retries),
    ] {
        if let Some(v) = v {
            value[key] = json!(v);
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Value {
        json!({"architecture": "amd64", "os": "linux",
            "config": {"Env": ["PATH=/bin", "HOME=/root"], "Cmd": ["sh"], "WorkingDir": "/srv"}})
    }

    fn changed(changes: &[&str]) -> Result<Value, ChangeError> {
        let mut c = config();
        let owned: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_changes(&mut c, &owned).map(|()| c)
    }

    #[test]
    fn each_change_sets_its_field_as_the_build_step_would() {
        let c = changed(&[
            r#"CMD ["cat","/f"]"#,
            "ENV A=1 B=$HOME/x",
            "EXPOSE 80 53/udp",
            "LABEL a=b",
            "USER app",
            "WORKDIR sub",
            "VOLUME /data",
            "STOPSIGNAL SIGINT",
            "ONBUILD RUN true",
            "HEALTHCHECK CMD true",
        ])
        .unwrap();
        let cfg = &c["config"];
        assert_eq!(cfg["Cmd"], json!(["cat", "/f"]));
        assert_eq!(
            cfg["Env"],
            json!(["PATH=/bin", "HOME=/root", "A=1", "B=/root/x"])
        );
        assert_eq!(cfg["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(cfg["Labels"], json!({"a": "b"}));
        assert_eq!(cfg["User"], json!("app"));
        assert_eq!(cfg["WorkingDir"], json!("/srv/sub"));
        assert_eq!(cfg["Volumes"], json!({"/data": {}}));
        assert_eq!(cfg["StopSignal"], json!("SIGINT"));
        assert_eq!(cfg["OnBuild"], json!(["RUN true"]));
        assert_eq!(cfg["Healthcheck"]["Test"], json!(["CMD-SHELL", "true"]));
    }

    #[test]
    fn entrypoint_drops_the_cmd_unless_a_change_set_one() {
        let c = changed(&[r#"ENTRYPOINT ["top"]"#]).unwrap();
        assert_eq!(c["config"]["Cmd"], Value::Null);
        let c = changed(&["CMD -b", r#"ENTRYPOINT ["top"]"#]).unwrap();
        assert_eq!(c["config"]["Cmd"], json!(["/bin/sh", "-c", "-b"]));
    }

    #[test]
    fn other_instructions_and_bad_ones_are_refused_and_nothing_changes() {
        let mut c = config();
        let err = apply_changes(&mut c, &["ENV A=1".into(), "RUN rm -rf /".into()]).unwrap_err();
        assert_eq!(err.to_string(), "run is not a valid change command");
        assert_eq!(c, config());
        let err = changed(&["FROB x"]).unwrap_err();
        assert_eq!(err.to_string(), "frob is not a valid change command");
        let err = changed(&["EXPOSE http"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid change \"EXPOSE http\": invalid containerPort: http"
        );
        assert!(changed(&["ENV"]).is_err());
    }

    #[test]
    fn expose_spells_out_ranges_and_protocols() {
        assert_eq!(expose_ports("80").unwrap(), ["80/tcp"]);
        assert_eq!(expose_ports("53/UDP").unwrap(), ["53/udp"]);
        assert_eq!(
            expose_ports("8000-8002").unwrap(),
            ["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert!(expose_ports("http").is_err());
        assert!(expose_ports("80/icmp").is_err());
    }
}
