//! The steps that change the image's config (ENV, LABEL, MAINTAINER, USER,
//! STOPSIGNAL, EXPOSE, VOLUME, SHELL, CMD, ENTRYPOINT, HEALTHCHECK,
//! ONBUILD), each cached and recorded as an empty layer; and WORKDIR, which
//! sets the config and makes its directory (a layer only if it was missing).

use super::changes::{expose_ports, healthcheck_json, pairs_text};
use super::context;
use super::copy;
use super::error::BuildError;
use super::state::StageRun;
use super::step::Builder;
use crate::dockerfile::{Command, Healthcheck, Node, Vars, expand_words};
use serde_json::{Value, json};

impl Builder<'_> {
    /// ENV: each pair set in `Env`, replacing one of the same name.
    pub(super) fn env_step(
        &mut self,
        run: &mut StageRun,
        node: &Node,
        pairs: &[(String, String)],
    ) -> Result<(), BuildError> {
        let expanded = self.expand_pairs(node, pairs, &run.vars())?;
        let text = format!("ENV {}", pairs_text(&expanded));
        self.config_step(run, &text, |state| {
            for (k, v) in &expanded {
                state.set_env(k, v);
            }
        })
    }

    /// LABEL: added to the labels the base and earlier steps set.
    pub(super) fn label_step(
        &mut self,
        run: &mut StageRun,
        node: &Node,
        pairs: &[(String, String)],
    ) -> Result<(), BuildError> {
        let expanded = self.expand_pairs(node, pairs, &run.vars())?;
        let text = format!("LABEL {}", pairs_text(&expanded));
        self.config_step(run, &text, |state| state.add_labels(&expanded))
    }

    /// MAINTAINER: the image's `author`, as written (never expanded).
    pub(super) fn maintainer_step(
        &mut self,
        run: &mut StageRun,
        name: &str,
    ) -> Result<(), BuildError> {
        let text = format!("MAINTAINER {name}");
        self.config_step(run, &text, |state| state.config["author"] = json!(name))
    }

    pub(super) fn user_step(
        &mut self,
        run: &mut StageRun,
        node: &Node,
        user: &str,
    ) -> Result<(), BuildError> {
        let user = self.expand(node, user, &run.vars())?;
        let text = format!("USER {user}");
        self.config_step(run, &text, |state| {
            state.container_config().insert("User".into(), json!(user));
        })
    }

    pub(super) fn stop_signal_step(
        &mut self,
        run: &mut StageRun,
        node: &Node,
        signal: &str,
    ) -> Result<(), BuildError> {
        let signal = self.expand(node, signal, &run.vars())?;
        let text = format!("STOPSIGNAL {signal}");
        self.config_step(run, &text, |state| {
            state
                .container_config()
                .insert("StopSignal".into(), json!(signal));
        })
    }

    /// EXPOSE: ports (ranges spelled out) added to `ExposedPorts`.
    pub(super) fn expose_step(
        &mut self,
        run: &mut StageRun,
        node: &Node,
        text: &str,
    ) -> Result<(), BuildError> {
        let words = expand_words(text, &run.vars(), self.dockerfile.escape)
            .map_err(|e| self.at(node, e.to_string()))?;
        let mut ports = Vec::new();
        for word in &words {
            ports.extend(expose_ports(word).map_err(|e| self.at(node, e))?);
        }
        let text = format!("EXPOSE {}", words.join(" "));
        self.config_step(run, &text, |state| state.add_to_set("ExposedPorts", ports))
    }

    /// VOLUME: paths added to `Volumes`.
    pub(super) fn volume_step(
        &mut self,
        run: &mut StageRun,
        node: &Node,
        command: &Command,
    ) -> Result<(), BuildError> {
        let vars = run.vars();
        let paths = match command {
            Command::Exec(list) => list
                .iter()
                .map(|p| self.expand(node, p, &vars))
                .collect::<Result<Vec<_>, _>>()?,
            Command::Shell(text) => expand_words(text, &vars, self.dockerfile.escape)
                .map_err(|e| self.at(node, e.to_string()))?,
        };
        if paths.iter().any(|p| p.trim().is_empty()) {
            return Err(self.at(node, "VOLUME specified can not be an empty string"));
        }
        let text = format!("VOLUME [{}]", paths.join(" "));
        self.config_step(run, &text, |state| state.add_to_set("Volumes", paths))
    }

    /// SHELL: what later shell forms run under.
    pub(super) fn shell_step(
        &mut self,
        run: &mut StageRun,
        shell: &[String],
    ) -> Result<(), BuildError> {
        let text = format!("SHELL {}", json!(shell));
        self.config_step(run, &text, |state| {
            state
                .container_config()
                .insert("Shell".into(), json!(shell));
        })
    }

    pub(super) fn cmd_step(
        &mut self,
        run: &mut StageRun,
        command: &Command,
    ) -> Result<(), BuildError> {
        let argv = command.argv(&run.state.shell());
        let text = format!("CMD {}", json!(argv));
        run.cmd_set = true;
        self.config_step(run, &text, |state| {
            state.container_config().insert("Cmd".into(), json!(argv));
        })
    }

    /// ENTRYPOINT: drops a CMD the base set (as Docker does), not one this
    /// stage set.
    pub(super) fn entrypoint_step(
        &mut self,
        run: &mut StageRun,
        command: &Command,
    ) -> Result<(), BuildError> {
        let argv = command.argv(&run.state.shell());
        let text = format!("ENTRYPOINT {}", json!(argv));
        let keep_cmd = run.cmd_set;
        self.config_step(run, &text, |state| {
            state
                .container_config()
                .insert("Entrypoint".into(), json!(argv));
            // Docker: a new ENTRYPOINT drops a CMD inherited from the base.
            if !keep_cmd {
                state.container_config().insert("Cmd".into(), Value::Null);
            }
        })
    }

    pub(super) fn healthcheck_step(
        &mut self,
        run: &mut StageRun,
        check: &Healthcheck,
    ) -> Result<(), BuildError> {
        let value = healthcheck_json(check);
        let text = format!("HEALTHCHECK {}", json!(check.test));
        self.config_step(run, &text, |state| {
            state.container_config().insert("Healthcheck".into(), value);
        })
    }

    /// ONBUILD: the trigger's text kept for the images built on this one.
    pub(super) fn onbuild_step(
        &mut self,
        run: &mut StageRun,
        trigger: &str,
    ) -> Result<(), BuildError> {
        let text = format!("ONBUILD {trigger}");
        self.config_step(run, &text, |state| {
            let mut list = state
                .get("OnBuild")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            list.push(json!(trigger));
            state
                .container_config()
                .insert("OnBuild".into(), Value::Array(list));
        })
    }

    /// WORKDIR: relative to the one before; made in the root if missing.
    pub(super) fn workdir_step(
        &mut self,
        run: &mut StageRun,
        node: &Node,
        dir: &str,
    ) -> Result<(), BuildError> {
        let dir = self.expand(node, dir, &run.vars())?;
        let path = if dir.starts_with('/') {
            context::clean(&dir)
        } else {
            context::clean(&format!("{}/{dir}", run.state.workdir()))
        };
        let text = format!("WORKDIR {path}");
        // The config changes whatever the cache says; the directory
        // is made (a layer, if it was missing) by the step.
        run.state
            .container_config()
            .insert("WorkingDir".into(), json!(path));
        self.fs_step(run, &text, &text, None, |_, merged| {
            Ok(copy::mkdir_in(merged, &path)?)
        })
    }

    /// ENV's and LABEL's pairs, keys and values expanded.
    fn expand_pairs(
        &self,
        node: &Node,
        pairs: &[(String, String)],
        vars: &Vars,
    ) -> Result<Vec<(String, String)>, BuildError> {
        let mut expanded = Vec::new();
        for (k, v) in pairs {
            expanded.push((self.expand(node, k, vars)?, self.expand(node, v, vars)?));
        }
        Ok(expanded)
    }
}
