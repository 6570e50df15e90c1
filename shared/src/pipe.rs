//! The pipe contract: targets come from arguments, from `-`, or (with no
//! arguments and a non-terminal stdin) from stdin lines. A line is a plain
//! reference/ID/name, or a JSON object another berth tool printed.

use std::io::BufRead;

/// JSON fields that carry an image target, most specific first.
pub const IMAGE_FIELDS: &[&str] = &["reference", "Reference", "Id", "ID", "id"];
/// JSON fields that carry a volume target (vol-ls --format json, vol-inspect).
pub const VOLUME_FIELDS: &[&str] = &["Name", "name"];
/// JSON fields that carry a container target.
pub const CONTAINER_FIELDS: &[&str] = &["Id", "ID", "id", "Name", "Names", "name"];

#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    #[error("stdin line {line}: {error}")]
    Json {
        line: usize,
        error: serde_json::Error,
    },
    #[error("stdin line {line}: JSON object has none of the fields {}", fields.join(", "))]
    NoField { line: usize, fields: Vec<String> },
    #[error("stdin line {line}: expected a reference, an ID or a JSON object")]
    NotATarget { line: usize },
    #[error("reading stdin: {0}")]
    Io(#[from] std::io::Error),
    #[error("no targets: give them as arguments or on stdin")]
    Empty,
    #[error("expected exactly one target on stdin, got {0}")]
    NotOne(usize),
}

/// Expands `args` into the list of targets. `-` (anywhere, once) stands
/// for every target on stdin; with no arguments at all, stdin is read
/// unless it is a terminal.
pub fn targets(
    args: &[String],
    stdin: impl BufRead,
    stdin_is_terminal: bool,
    fields: &[&str],
) -> Result<Vec<String>, PipeError> {
    let wants_stdin = args.iter().any(|a| a == "-") || (args.is_empty() && !stdin_is_terminal);
    let from_stdin = if wants_stdin {
        read_targets(stdin, fields)?
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    let mut from_stdin = Some(from_stdin);
    for arg in args {
        if arg == "-" {
            out.extend(from_stdin.take().unwrap_or_default());
        } else {
            out.push(arg.clone());
        }
    }
    if args.is_empty() {
        out.extend(from_stdin.unwrap_or_default());
    }
    if out.is_empty() {
        return Err(PipeError::Empty);
    }
    Ok(out)
}

/// Reads targets from the process's stdin per the contract.
pub fn targets_from_process(args: &[String], fields: &[&str]) -> Result<Vec<String>, PipeError> {
    use std::io::IsTerminal;
    let stdin = std::io::stdin();
    let is_terminal = stdin.is_terminal();
    targets(args, stdin.lock(), is_terminal, fields)
}

/// For a tool that takes one target: `arg` itself, or, when it is `-`, the
/// single target on stdin.
pub fn single_target(arg: &str, fields: &[&str]) -> Result<String, PipeError> {
    if arg != "-" {
        return Ok(arg.to_string());
    }
    let mut targets = read_targets(std::io::stdin().lock(), fields)?;
    match targets.len() {
        1 => Ok(targets.remove(0)),
        n => Err(PipeError::NotOne(n)),
    }
}

/// Reads one target per non-blank line.
pub fn read_targets(input: impl BufRead, fields: &[&str]) -> Result<Vec<String>, PipeError> {
    let mut out = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        out.push(parse_line(line, i + 1, fields)?);
    }
    Ok(out)
}

fn parse_line(line: &str, number: usize, fields: &[&str]) -> Result<String, PipeError> {
    if !line.starts_with('{') {
        // A plain target is one token: anything with spaces or control
        // characters is garbage, not a name.
        if line.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(PipeError::NotATarget { line: number });
        }
        return Ok(line.to_string());
    }
    let value: serde_json::Value = serde_json::from_str(line).map_err(|error| PipeError::Json {
        line: number,
        error,
    })?;
    fields
        .iter()
        .find_map(|field| match value.get(*field)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            // Docker's `Names` is a list; its first entry names the container.
            serde_json::Value::Array(list) => list.first()?.as_str().map(str::to_string),
            _ => None,
        })
        .ok_or_else(|| PipeError::NoField {
            line: number,
            fields: fields.iter().map(|f| f.to_string()).collect(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments_alone_ignore_stdin() {
        let got = targets(&args(&["a", "b"]), &b"c\n"[..], false, IMAGE_FIELDS).unwrap();
        assert_eq!(got, ["a", "b"]);
    }

    #[test]
    fn dash_splices_stdin_in_place() {
        let got = targets(
            &args(&["a", "-", "z"]),
            &b"b\n\nc\n"[..],
            true,
            IMAGE_FIELDS,
        )
        .unwrap();
        assert_eq!(got, ["a", "b", "c", "z"]);
    }

    #[test]
    fn no_arguments_read_a_piped_stdin_but_not_a_terminal() {
        let got = targets(&[], &b"x\n"[..], false, IMAGE_FIELDS).unwrap();
        assert_eq!(got, ["x"]);
        assert!(matches!(
            targets(&[], &b"x\n"[..], true, IMAGE_FIELDS),
            Err(PipeError::Empty)
        ));
    }

    #[test]
    fn json_lines_yield_their_target_field() {
        let input = br#"{"reference":"docker.io/library/bb:latest@sha256:00","id":"sha256:11"}
{"Id":"abc","Names":["/x"]}
"#;
        let got = read_targets(&input[..], IMAGE_FIELDS).unwrap();
        assert_eq!(got[0], "docker.io/library/bb:latest@sha256:00");
        assert_eq!(got[1], "abc");
        let got = read_targets(&br#"{"Names":["web"]}"#[..], CONTAINER_FIELDS).unwrap();
        assert_eq!(got, ["web"]);
    }

    #[test]
    fn garbage_names_its_line() {
        let err = read_targets(&b"ok\n{not json\n"[..], IMAGE_FIELDS).unwrap_err();
        assert!(err.to_string().starts_with("stdin line 2:"), "{err}");
        let err = read_targets(&b"{\"x\":1}\n"[..], IMAGE_FIELDS).unwrap_err();
        assert!(err.to_string().contains("none of the fields"), "{err}");
        let err = read_targets(&b"two words\n"[..], IMAGE_FIELDS).unwrap_err();
        assert!(matches!(err, PipeError::NotATarget { line: 1 }));
    }
}
