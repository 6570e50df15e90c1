//! Typed instructions: each node's flags and arguments checked the way
//! BuildKit checks them, with words kept unexpanded until the step runs
//! (expansion depends on the ARG and ENV values in force at that step).

use super::{Dockerfile, Heredoc, Node, ParseError, split_words};
use crate::network::BuildNetwork;

/// A command in exec (JSON) form or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Exec(Vec<String>),
    Shell(String),
}

impl Command {
    /// Docker's rule: a JSON array of strings is the exec form; anything
    /// else, even a malformed array, is a shell command.
    fn parse(args: &str) -> Command {
        let trimmed = args.trim();
        if trimmed.starts_with('[')
            && let Ok(list) = serde_json::from_str::<Vec<String>>(trimmed)
        {
            return Command::Exec(list);
        }
        Command::Shell(args.to_string())
    }

    /// The argv a runtime gets: the shell form wrapped in `shell`.
    pub fn argv(&self, shell: &[String]) -> Vec<String> {
        match self {
            Command::Exec(list) => list.clone(),
            Command::Shell(text) => {
                let mut argv = shell.to_vec();
                argv.push(text.clone());
                argv
            }
        }
    }
}

/// A `RUN --mount=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: String,
    pub target: String,
    pub id: Option<String>,
    pub options: Vec<(String, String)>,
}

/// COPY and ADD share their shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyArgs {
    pub sources: Vec<String>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub checksum: Option<String>,
    /// `--exclude=PATTERN`s, matched like `.dockerignore` lines against
    /// paths relative to each source.
    pub excludes: Vec<String>,
    /// `--parents`: keep each source's parent directories (below a `/./`
    /// pivot, if the source has one).
    pub parents: bool,
    pub heredocs: Vec<Heredoc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", …]` or `["CMD-SHELL", cmd]`, before the shell is
    /// known (CMD-SHELL needs none: Docker runs it with /bin/sh -c).
    pub test: Vec<String>,
    pub interval: Option<u64>,
    pub timeout: Option<u64>,
    pub start_period: Option<u64>,
    pub start_interval: Option<u64>,
    pub retries: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    From {
        image: String,
        name: Option<String>,
        platform: Option<String>,
    },
    Run {
        command: Command,
        heredocs: Vec<Heredoc>,
        mounts: Vec<Mount>,
        network: Option<BuildNetwork>,
    },
    Copy(CopyArgs),
    Add(CopyArgs),
    Cmd(Command),
    Entrypoint(Command),
    /// Unexpanded (key, value) words.
    Env(Vec<(String, String)>),
    Arg(Vec<(String, Option<String>)>),
    Workdir(String),
    User(String),
    Expose(String),
    Volume(Command),
    Label(Vec<(String, String)>),
    Shell(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    /// The trigger's text and its own parsed instruction.
    Onbuild(String, Box<Instruction>),
    Maintainer(String),
}

impl Instruction {
    /// Whether Docker expands variables in this instruction's arguments.
    pub fn expands(&self) -> bool {
        matches!(
            self,
            Instruction::Add(_)
                | Instruction::Copy(_)
                | Instruction::Env(_)
                | Instruction::Expose(_)
                | Instruction::From { .. }
                | Instruction::Label(_)
                | Instruction::StopSignal(_)
                | Instruction::User(_)
                | Instruction::Volume(_)
                | Instruction::Workdir(_)
                | Instruction::Arg(_)
        )
    }
}

/// One `FROM` and the instructions under it.
#[derive(Debug, Clone)]
pub struct Stage {
    pub index: usize,
    pub name: Option<String>,
    /// The FROM node's position.
    pub line: usize,
    pub from: Instruction,
    pub steps: Vec<(Node, Instruction)>,
}

/// Splits a Dockerfile into the global ARGs before the first FROM and its
/// stages, checking every instruction.
#[allow(clippy::type_complexity)]
pub fn stages(
    dockerfile: &Dockerfile,
) -> Result<(Vec<(Node, Instruction)>, Vec<Stage>), ParseError> {
    let mut globals = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &dockerfile.nodes {
        let instruction = parse_instruction(dockerfile, node)?;
        match &instruction {
            Instruction::From { name, .. } => {
                if let Some(name) = name
                    && stages.iter().any(|s| s.name.as_deref() == Some(name))
                {
                    return Err(dockerfile.error(
                        node.line,
                        node.args_column,
                        format!("duplicate stage name \"{name}\""),
                    ));
                }
                stages.push(Stage {
                    index: stages.len(),
                    name: name.clone(),
                    line: node.line,
                    from: instruction.clone(),
                    steps: Vec::new(),
                });
            }
            _ => match stages.last_mut() {
                Some(stage) => stage.steps.push((node.clone(), instruction)),
                None if matches!(instruction, Instruction::Arg(_)) => {
                    globals.push((node.clone(), instruction))
                }
                None => {
                    return Err(dockerfile.error(
                        node.line,
                        node.column,
                        "no build stage in current context",
                    ));
                }
            },
        }
    }
    Ok((globals, stages))
}

/// Flags an instruction accepts, parsed from `--name=value` words.
struct Flags {
    values: Vec<(String, Option<String>)>,
}

impl Flags {
    fn parse(dockerfile: &Dockerfile, node: &Node, allowed: &[&str]) -> Result<Flags, ParseError> {
        let mut values: Vec<(String, Option<String>)> = Vec::new();
        for flag in &node.flags {
            let body = &flag[2..];
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            if !allowed.contains(&name) {
                return Err(dockerfile.error(
                    node.line,
                    node.column,
                    format!("unknown flag: {name}"),
                ));
            }
            // These two may be given many times (BuildKit's string slices).
            let repeatable = matches!(name, "mount" | "exclude");
            if !repeatable && values.iter().any(|(n, _)| n == name) {
                return Err(dockerfile.error(
                    node.line,
                    node.column,
                    format!("duplicate flag specified: {name}"),
                ));
            }
            values.push((name.to_string(), value));
        }
        Ok(Flags { values })
    }

    fn value(&self, name: &str) -> Option<String> {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone().unwrap_or_default())
    }

    fn bool(&self, name: &str) -> bool {
        self.values
            .iter()
            .any(|(n, v)| n == name && v.as_deref().is_none_or(|v| v == "true"))
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, v)| v.clone())
            .collect()
    }
}

/// Checks one node and gives its typed instruction.
pub fn parse_instruction(dockerfile: &Dockerfile, node: &Node) -> Result<Instruction, ParseError> {
    let escape = dockerfile.escape;
    let at = |message: String| dockerfile.error(node.line, node.args_column, message);
    let words = || split_words(&node.args, escape).map_err(|e| at(e.to_string()));
    let no_flags = || Flags::parse(dockerfile, node, &[]);
    let keyword = node.keyword.as_str();
    let require_args = || {
        if node.args.trim().is_empty() {
            Err(at(format!("{keyword} requires at least one argument")))
        } else {
            Ok(())
        }
    };
    Ok(match keyword {
        "FROM" => {
            let flags = Flags::parse(dockerfile, node, &["platform"])?;
            let words = words()?;
            let (image, name) = match words.as_slice() {
                [image] => (image.clone(), None),
                [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    if !valid_stage_name(name) {
                        return Err(at(format!(
                            "invalid name for build stage: \"{name}\", name can't start with a number or contain symbols"
                        )));
                    }
                    (image.clone(), Some(name.to_ascii_lowercase()))
                }
                _ => return Err(at("FROM requires either one or three arguments".into())),
            };
            Instruction::From {
                image,
                name,
                platform: flags.value("platform"),
            }
        }
        "RUN" => {
            let flags = Flags::parse(dockerfile, node, &["mount", "network", "security"])?;
            if node.args.trim().is_empty() && node.heredocs.is_empty() {
                return Err(at("RUN requires at least one argument".into()));
            }
            let mut mounts = Vec::new();
            for spec in flags.all("mount") {
                mounts.push(parse_mount(&spec).map_err(at)?);
            }
            let network = flags
                .value("network")
                .map(|n| {
                    // BuildKit's RUN --network knows default, none and host.
                    n.parse::<BuildNetwork>()
                        .ok()
                        .filter(|n| {
                            use crate::network::NetworkMode::{Host, None};
                            matches!(n, BuildNetwork::Default | BuildNetwork::Mode(None | Host))
                        })
                        .ok_or_else(|| at(format!("unsupported network mode: {n}")))
                })
                .transpose()?;
            Instruction::Run {
                command: Command::parse(&node.args),
                heredocs: node.heredocs.clone(),
                mounts,
                network,
            }
        }
        "COPY" | "ADD" => {
            let allowed: &[&str] = if keyword == "COPY" {
                &["from", "chown", "chmod", "link", "parents", "exclude"]
            } else {
                &[
                    "chown",
                    "chmod",
                    "link",
                    "checksum",
                    "keep-git-dir",
                    "exclude",
                ]
            };
            let flags = Flags::parse(dockerfile, node, allowed)?;
            let mut list = match Command::parse(&node.args) {
                Command::Exec(list) => list,
                Command::Shell(_) => words()?,
            };
            if list.len() < 2 {
                return Err(at(format!(
                    "{keyword} requires at least two arguments, but only one was provided. Destination could not be determined."
                )));
            }
            let dest = list.pop().expect("two or more");
            if let Some(mode) = flags.value("chmod")
                && !mode.contains('$')
                && u32::from_str_radix(&mode, 8).is_err()
            {
                return Err(at(format!("invalid chmod parameter: {mode}")));
            }
            let args = CopyArgs {
                sources: list,
                dest,
                from: flags.value("from"),
                chown: flags.value("chown"),
                chmod: flags.value("chmod"),
                link: flags.bool("link"),
                checksum: flags.value("checksum"),
                excludes: flags.all("exclude"),
                parents: flags.bool("parents"),
                heredocs: node.heredocs.clone(),
            };
            if keyword == "COPY" {
                Instruction::Copy(args)
            } else {
                Instruction::Add(args)
            }
        }
        "CMD" | "ENTRYPOINT" => {
            no_flags()?;
            let command = Command::parse(&node.args);
            if keyword == "CMD" {
                Instruction::Cmd(command)
            } else {
                Instruction::Entrypoint(command)
            }
        }
        "ENV" | "LABEL" => {
            no_flags()?;
            if node.args.trim().is_empty() {
                return Err(at(format!("{keyword} names can not be blank")));
            }
            let pairs = key_values(&node.args, escape, keyword).map_err(at)?;
            if keyword == "ENV" {
                Instruction::Env(pairs)
            } else {
                Instruction::Label(pairs)
            }
        }
        "ARG" => {
            no_flags()?;
            require_args()?;
            let mut args = Vec::new();
            for word in words()? {
                match word.split_once('=') {
                    Some((name, value)) => args.push((name.to_string(), Some(value.to_string()))),
                    None => args.push((word, None)),
                }
            }
            for (name, _) in &args {
                if name.is_empty() {
                    return Err(at("ARG names can not be blank".into()));
                }
            }
            Instruction::Arg(args)
        }
        "WORKDIR" | "USER" | "STOPSIGNAL" | "MAINTAINER" => {
            no_flags()?;
            let text = node.args.trim().to_string();
            if text.is_empty() {
                return Err(at(format!("{keyword} requires exactly one argument")));
            }
            match keyword {
                "WORKDIR" => Instruction::Workdir(text),
                "USER" => Instruction::User(text),
                "STOPSIGNAL" => {
                    if words()?.len() != 1 {
                        return Err(at("STOPSIGNAL requires exactly one argument".into()));
                    }
                    Instruction::StopSignal(text)
                }
                _ => Instruction::Maintainer(text),
            }
        }
        "EXPOSE" => {
            no_flags()?;
            require_args()?;
            Instruction::Expose(node.args.clone())
        }
        "VOLUME" => {
            no_flags()?;
            require_args()?;
            Instruction::Volume(Command::parse(&node.args))
        }
        "SHELL" => {
            no_flags()?;
            match Command::parse(&node.args) {
                Command::Exec(list) if !list.is_empty() => Instruction::Shell(list),
                _ => return Err(at("SHELL requires the arguments to be in JSON form".into())),
            }
        }
        "HEALTHCHECK" => Instruction::Healthcheck(parse_healthcheck(dockerfile, node)?),
        "ONBUILD" => {
            no_flags()?;
            require_args()?;
            let text = node.args.trim().to_string();
            let inner_keyword = text
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            match inner_keyword.as_str() {
                "ONBUILD" => {
                    return Err(at(
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()
                    ));
                }
                "FROM" | "MAINTAINER" => {
                    return Err(at(format!(
                        "{inner_keyword} isn't allowed as an ONBUILD trigger"
                    )));
                }
                _ => {}
            }
            let inner = trigger_node(dockerfile, node, &text)?;
            let instruction = parse_instruction(dockerfile, &inner)?;
            Instruction::Onbuild(text, Box::new(instruction))
        }
        other => {
            return Err(dockerfile.error(
                node.line,
                node.column,
                format!("unknown instruction: {other}"),
            ));
        }
    })
}

/// Parses an ONBUILD trigger's text as its own node, at the same place.
pub fn trigger_node(dockerfile: &Dockerfile, node: &Node, text: &str) -> Result<Node, ParseError> {
    let mut parsed = super::parse(&dockerfile.file, text)
        .map_err(|e| dockerfile.error(node.line, node.args_column, e.message))?;
    let mut inner = parsed.nodes.remove(0);
    inner.line = node.line;
    inner.column = node.args_column;
    inner.args_column += node.args_column - 1;
    Ok(inner)
}

fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `KEY=VALUE …` pairs, or the legacy `KEY VALUE` form (the value is the
/// rest of the line). Values stay unexpanded.
fn key_values(args: &str, escape: char, keyword: &str) -> Result<Vec<(String, String)>, String> {
    let words = split_words(args, escape).map_err(|e| e.to_string())?;
    let first = words
        .first()
        .ok_or(format!("{keyword} names can not be blank"))?;
    if !first.contains('=') {
        let rest = args.trim_start()[first.len()..].trim();
        if rest.is_empty() {
            return Err(format!("{keyword} must have two arguments"));
        }
        return Ok(vec![(first.clone(), rest.to_string())]);
    }
    let mut pairs = Vec::new();
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in \"{word}\". Must be of the form: name=value"
            ));
        };
        if key.is_empty() {
            return Err(format!("{keyword} names can not be blank"));
        }
        pairs.push((key.to_string(), value.to_string()));
    }
    Ok(pairs)
}

fn parse_mount(spec: &str) -> Result<Mount, String> {
    let mut mount = Mount {
        kind: "bind".into(),
        target: String::new(),
        id: None,
        options: Vec::new(),
    };
    for field in spec.split(',') {
        let (key, value) = field.split_once('=').unwrap_or((field, ""));
        match key {
            "type" => mount.kind = value.to_string(),
            "target" | "dst" | "destination" => mount.target = value.to_string(),
            "id" => mount.id = Some(value.to_string()),
            _ => mount.options.push((key.to_string(), value.to_string())),
        }
    }
    if !matches!(
        mount.kind.as_str(),
        "bind" | "cache" | "tmpfs" | "secret" | "ssh"
    ) {
        return Err(format!("unsupported mount type \"{}\"", mount.kind));
    }
    if mount.target.is_empty() && !matches!(mount.kind.as_str(), "secret" | "ssh") {
        return Err("mount target is required".into());
    }
    Ok(mount)
}

fn parse_healthcheck(dockerfile: &Dockerfile, node: &Node) -> Result<Healthcheck, ParseError> {
    let flags = Flags::parse(
        dockerfile,
        node,
        &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
    )?;
    let at = |message: String| dockerfile.error(node.line, node.args_column, message);
    let args = node.args.trim();
    let (kind, rest) = match args.split_once(char::is_whitespace) {
        Some((k, r)) => (k.to_ascii_uppercase(), r.trim()),
        None => (args.to_ascii_uppercase(), ""),
    };
    let mut check = Healthcheck {
        test: Vec::new(),
        interval: None,
        timeout: None,
        start_period: None,
        start_interval: None,
        retries: None,
    };
    match kind.as_str() {
        "NONE" => {
            if !rest.is_empty() || !node.flags.is_empty() {
                return Err(at("HEALTHCHECK NONE takes no arguments".into()));
            }
            check.test = vec!["NONE".into()];
            return Ok(check);
        }
        "CMD" => {
            if rest.is_empty() {
                return Err(at("Missing command after HEALTHCHECK CMD".into()));
            }
            check.test = match Command::parse(rest) {
                Command::Exec(list) => std::iter::once("CMD".to_string()).chain(list).collect(),
                Command::Shell(text) => vec!["CMD-SHELL".into(), text],
            };
        }
        other => {
            return Err(at(format!(
                "Unknown type \"{other}\" in HEALTHCHECK (try CMD)"
            )));
        }
    }
    let duration = |name: &str| -> Result<Option<u64>, ParseError> {
        let Some(text) = flags.value(name) else {
            return Ok(None);
        };
        let nanos = parse_go_duration(&text)
            .ok_or_else(|| at(format!("time: invalid duration \"{text}\"")))?;
        if nanos != 0 && nanos < 1_000_000 {
            return Err(at(format!("Interval \"{name}\" cannot be less than 1ms")));
        }
        Ok(Some(nanos))
    };
    check.interval = duration("interval")?;
    check.timeout = duration("timeout")?;
    check.start_period = duration("start-period")?;
    check.start_interval = duration("start-interval")?;
    if let Some(retries) = flags.value("retries") {
        let n: u64 = retries
            .parse()
            .map_err(|_| at(format!("invalid value for retries: {retries}")))?;
        if n == 0 {
            return Err(at("--retries cannot be 0".into()));
        }
        check.retries = Some(n);
    }
    Ok(check)
}

/// Go's `time.ParseDuration` (`1m30s`, `500ms`, `1.5h`), in nanoseconds.
pub fn parse_go_duration(text: &str) -> Option<u64> {
    crate::format::human::parse_go_duration(text).map(|d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests;
