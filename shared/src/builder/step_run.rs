//! RUN: the command (shell or exec form, or a heredoc script) run in a
//! container on the step's root, with its `--mount`s (cache, tmpfs, bind,
//! secret); ARG values go into its environment and cache key, never into
//! the image.

use super::context;
use super::copy::{self, Attributes};
use super::error::BuildError;
use super::options::PROXY_ARGS;
use super::rootfs;
use super::state::{DEFAULT_PATH, StageRun};
use super::step::Builder;
use crate::digest::Digest;
use crate::dockerfile::{self, Command, Node};
use crate::network::{BuildNetwork, NetworkMode};
use crate::runtime::{self, step};
use crate::store::{SCRATCH_BUILD, Scratch};
use std::path::{Path, PathBuf};

impl Builder<'_> {
    /// RUN: the command in a container on the step's root, its `--network`
    /// (or the build's) and its `--mount`s.
    pub(super) fn run_step(
        &mut self,
        run: &mut StageRun,
        node: &Node,
        command: &Command,
        heredocs: &[dockerfile::Heredoc],
        mounts: &[dockerfile::Mount],
        network: Option<BuildNetwork>,
    ) -> Result<(), BuildError> {
        let shell = run.state.shell();
        let RunMounts {
            volumes,
            tmpfs,
            text: mount_flags,
            content,
            held: _held,
        } = self.run_mounts(node, mounts, &run.state.workdir())?;
        let argv = match (command, heredocs) {
            (Command::Shell(text), [doc]) if is_heredoc_marker(text.trim(), &doc.name) => {
                // `RUN <<EOF`: the heredoc is the script.
                let mut argv = shell.clone();
                argv.push(doc.content.clone());
                argv
            }
            (Command::Shell(text), docs) if !docs.is_empty() => {
                // `RUN cmd <<EOF`: the shell reads the heredocs itself.
                let mut script = text.clone();
                for doc in docs {
                    script.push('\n');
                    script.push_str(&doc.content);
                    script.push_str(&doc.name);
                }
                let mut argv = shell.clone();
                argv.push(script);
                argv
            }
            _ => command.argv(&shell),
        };
        // ARG values are in the command's environment (and its cache key),
        // never in the image's config.
        let env_names: Vec<String> = run
            .state
            .env()
            .iter()
            .filter_map(|e| e.split('=').next().map(str::to_string))
            .collect();
        let mut arg_env: Vec<String> = run
            .args
            .iter()
            .filter(|(k, _)| !env_names.contains(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut env = run.state.env();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH.to_string());
        }
        env.extend(arg_env.iter().cloned());
        for proxy in PROXY_ARGS {
            if let Some(Some(v)) = self.build_args.get(*proxy)
                && !env.iter().any(|e| e.starts_with(&format!("{proxy}=")))
            {
                env.push(format!("{proxy}={v}"));
            }
        }
        arg_env.sort();
        let prefix = if arg_env.is_empty() {
            String::new()
        } else {
            format!("|{} {} ", arg_env.len(), arg_env.join(" "))
        };
        let created_by = format!("RUN {mount_flags}{prefix}{} # buildkit", argv.join(" "));
        // A step's own --network, else the build's; a build's default is
        // the default bridge, as Docker's builder runs its steps.
        let build_default = self.options.network.clone().unwrap_or(NetworkMode::Bridge);
        let network = network.unwrap_or_default().or(build_default);
        let workdir = run.state.workdir();
        let user = run.state.user();
        let shown = argv.join(" ");
        let node = node.clone();
        self.fs_step(
            run,
            &created_by,
            &created_by,
            content.as_ref(),
            |builder, merged| {
                let targets: Vec<String> = volumes
                    .iter()
                    .map(|v| v.target.clone())
                    .chain(tmpfs.iter().map(|t| t.target.clone()))
                    .collect();
                let stubs = rootfs::missing_stubs(merged, &targets);
                // Not kept up while the command runs, which may take
                // minutes: the period stays passed a while after the last
                // move, long enough for this step's own start.
                builder.warm = None;
                let code = builder
                    .unlocked(|builder| {
                        step::run_step(
                            builder.store,
                            step::StepOptions {
                                rootfs: merged,
                                args: &argv,
                                env: &env,
                                workdir: &workdir,
                                user: &user,
                                network,
                                volumes: &volumes,
                                tmpfs: &tmpfs,
                                output: builder.observer.run_output(),
                            },
                        )
                    })?
                    .map_err(|e| builder.at(&node, e.to_string()))?;
                if code != 0 {
                    return Err(builder.at(
                        &node,
                        format!("The command '{shown}' returned a non-zero code: {code}"),
                    ));
                }
                // Taken again for the next RUN while this one's layer is
                // written.
                if builder.runs_from(builder.line + 1) {
                    builder.warm = Some(runtime::keep_warm());
                }
                // The container is gone and its root detached: tidy the upper dir.
                let upper = merged.parent().expect("merged has a parent").join("upper");
                rootfs::remove_stubs(&upper, &stubs);
                Ok(())
            },
        )
    }

    /// `RUN --mount`: cache mounts are directories under the store that
    /// outlive the step (and never reach its layer); tmpfs mounts are
    /// fresh each time; bind mounts are a private copy of their source (so
    /// `.dockerignore` holds and `rw` writes are thrown away), whose content
    /// joins the step's cache key; secrets are files only the step sees.
    fn run_mounts(
        &mut self,
        node: &Node,
        mounts: &[dockerfile::Mount],
        workdir: &str,
    ) -> Result<RunMounts, BuildError> {
        let mut out = RunMounts::default();
        let mut bind_hashes = Vec::new();
        for mount in mounts {
            let option = |names: &[&str]| {
                mount
                    .options
                    .iter()
                    .find(|(k, _)| names.contains(&k.as_str()))
                    .map(|(_, v)| v.clone())
            };
            let flag = |names: &[&str]| option(names).is_some_and(|v| v.is_empty() || v == "true");
            let target_word = match (mount.kind.as_str(), mount.target.is_empty()) {
                ("secret", true) => {
                    let id = mount.id.clone().unwrap_or_default();
                    format!("/run/secrets/{id}")
                }
                _ => mount.target.clone(),
            };
            let target = if target_word.starts_with('/') {
                context::clean(&target_word)
            } else {
                context::clean(&format!("{workdir}/{target_word}"))
            };
            match mount.kind.as_str() {
                "cache" => {
                    let id = mount.id.clone().unwrap_or_else(|| target.clone());
                    let dir = self
                        .store
                        .root()
                        .join("cache")
                        .join("mounts")
                        .join(Digest::of(id.as_bytes()).hex());
                    std::fs::create_dir_all(&dir).map_err(|e| {
                        self.at(node, format!("cache mount {}: {e}", dir.display()))
                    })?;
                    out.volumes.push(runtime::Volume {
                        source: dir,
                        target: target.clone(),
                        read_only: false,
                    });
                    out.text
                        .push_str(&format!("--mount=type=cache,target={target} "));
                }
                "tmpfs" => {
                    out.tmpfs.push(runtime::Tmpfs {
                        target: target.clone(),
                        options: Vec::new(),
                    });
                    out.text
                        .push_str(&format!("--mount=type=tmpfs,target={target} "));
                }
                "bind" => {
                    let source = option(&["source", "src"]).unwrap_or_default();
                    let from = option(&["from"]);
                    let writable = flag(&["rw", "readwrite"]);
                    let (held, path, hash) = self.bind_source(node, &source, from.as_deref())?;
                    out.volumes.push(runtime::Volume {
                        source: path,
                        target: target.clone(),
                        read_only: !writable,
                    });
                    out.held.push(held);
                    bind_hashes.push(hash.to_string());
                    let from_text = from.map(|f| format!(",from={f}")).unwrap_or_default();
                    let rw_text = if writable { ",rw" } else { "" };
                    out.text.push_str(&format!(
                        "--mount=type=bind,source={source},target={target}{from_text}{rw_text} "
                    ));
                }
                "secret" => {
                    let id = mount
                        .id
                        .clone()
                        .unwrap_or_else(|| target.rsplit('/').next().unwrap_or("").to_string());
                    let Some(bytes) = self.options.secrets.get(&id) else {
                        if flag(&["required"]) {
                            return Err(self.at(
                                node,
                                format!(
                                    "secret {id} not found: pass it with --secret id={id},src=FILE"
                                ),
                            ));
                        }
                        continue;
                    };
                    // A scratch directory: a killed build's secret is swept.
                    let dir = Scratch::new(self.store, SCRATCH_BUILD)
                        .map_err(|e| self.at(node, format!("secret {id}: {e}")))?;
                    let path = dir.path().join("secret");
                    write_secret(&path, bytes)
                        .map_err(|e| self.at(node, format!("secret {id}: {e}")))?;
                    out.volumes.push(runtime::Volume {
                        source: path,
                        target: target.clone(),
                        read_only: true,
                    });
                    out.held.push(dir);
                    out.text
                        .push_str(&format!("--mount=type=secret,id={id},target={target} "));
                }
                other => {
                    return Err(self.at(
                        node,
                        format!(
                            "RUN --mount=type={other} is not supported (bind, cache, tmpfs and secret are)"
                        ),
                    ));
                }
            }
        }
        if !bind_hashes.is_empty() {
            out.content = Some(Digest::of(bind_hashes.join("\n").as_bytes()));
        }
        Ok(out)
    }

    /// A bind mount's source, from the context or from a stage or image
    /// (`from`), copied into a directory of the store's: returns the
    /// directory (removed when dropped), the path to bind, and the hash of
    /// what it holds.
    fn bind_source(
        &mut self,
        node: &Node,
        source: &str,
        from: Option<&str>,
    ) -> Result<(Scratch, PathBuf, Digest), BuildError> {
        let source_root = self.source_root(node, from)?;
        let source_ctx = &source_root.context;
        let failed = |e: &dyn std::fmt::Display| format!("bind mount source {source:?}: {e}");
        let resolved = source_ctx
            .resolve(source)
            .map_err(|e| self.at(node, failed(&e)))?;
        let [one] = resolved.as_slice() else {
            return Err(self.at(node, failed(&"matches more than one path")));
        };
        let items = copy::walk(one, source_ctx, &context::Ignore::default())
            .map_err(|e| self.at(node, failed(&e)))?;
        let is_dir = items[0].meta.is_dir();
        let walked = [(one.clone(), items)];
        let digests = self.file_digests_for(from);
        let hash =
            copy::hash_sources(walked.iter(), digests).map_err(|e| self.at(node, failed(&e)))?;
        let dir = Scratch::new(self.store, SCRATCH_BUILD).map_err(|e| self.at(node, failed(&e)))?;
        copy::copy_into(dir.path(), &walked, "/", true, Attributes::default(), false)
            .map_err(|e| self.at(node, failed(&e)))?;
        let path = if is_dir {
            dir.path().to_path_buf()
        } else {
            let name = one.rel.rsplit('/').next().unwrap_or(&one.rel);
            dir.path().join(name)
        };
        Ok((dir, path, hash))
    }
}

/// What a RUN step mounts, as `run_mounts` worked it out.
#[derive(Default)]
struct RunMounts {
    volumes: Vec<runtime::Volume>,
    tmpfs: Vec<runtime::Tmpfs>,
    /// The `--mount` flags as the history shows them.
    text: String,
    /// The bind mounts' content, for the cache key.
    content: Option<Digest>,
    /// Private copies and secret files, removed after the step.
    held: Vec<Scratch>,
}

/// A secret as a file only its owner (root) can read.
fn write_secret(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(path)?;
    file.write_all(bytes)
}

/// Whether a shell-form RUN is nothing but its one heredoc (`RUN <<EOF`).
fn is_heredoc_marker(text: &str, name: &str) -> bool {
    let body = text.trim_start_matches("<<").trim_start_matches('-');
    body.trim_matches(|c| c == '"' || c == '\'') == name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heredoc_marker_is_the_whole_command() {
        for text in ["<<EOF", "<<-EOF", "<<\"EOF\"", "<<'EOF'"] {
            assert!(is_heredoc_marker(text, "EOF"), "{text}");
        }
        assert!(!is_heredoc_marker("cat <<EOF", "EOF"));
        assert!(!is_heredoc_marker("<<END", "EOF"));
    }

    #[test]
    fn a_secret_file_is_new_and_owner_read_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_secret(&path, b"s3cret").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"s3cret");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o400);
        assert!(write_secret(&path, b"again").is_err());
    }
}
