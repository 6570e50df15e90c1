//! The Dockerfile frontend: BuildKit's syntax (parser directives, line
//! continuations, comments, heredocs) turned into typed instructions whose
//! errors name the file, line and column. Variables expand later, per step.

pub mod instruction;
pub mod lexer;

pub use instruction::{
    Command, CopyArgs, Healthcheck, Instruction, Mount, Stage, parse_instruction, stages,
};
pub use lexer::{LexError, Vars, expand_word, expand_words};

use std::fmt;

/// A parse error located in the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// A heredoc body attached to an instruction (`<<EOF … EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    pub content: String,
    /// False when the delimiter was quoted (`<<"EOF"`): no expansion.
    pub expand: bool,
}

/// One instruction as written: keyword, leading `--flags`, the rest of its
/// logical line (continuations joined), and its heredocs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Upper-cased keyword (`COPY`).
    pub keyword: String,
    pub flags: Vec<String>,
    pub args: String,
    pub heredocs: Vec<Heredoc>,
    /// The instruction's text after the keyword, as Docker records it.
    pub original: String,
    pub line: usize,
    pub column: usize,
    /// Column where `args` starts on the first line (for argument errors).
    pub args_column: usize,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    pub file: String,
    pub escape: char,
    /// `# syntax=` is accepted and recorded, never acted on.
    pub syntax: Option<String>,
    pub nodes: Vec<Node>,
}

impl Dockerfile {
    /// An error at `line`:`column` of this file.
    pub fn error(&self, line: usize, column: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// Parses `text`, naming `file` in errors.
pub fn parse(file: &str, text: &str) -> Result<Dockerfile, ParseError> {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let err = |line: usize, column: usize, message: String| ParseError {
        file: file.to_string(),
        line,
        column,
        message,
    };
    let mut escape = '\\';
    let mut syntax = None;
    let mut i = 0;
    // Parser directives: only at the very top, before any comment, blank
    // line or instruction; an unknown one is a comment and ends them.
    let mut seen = Vec::new();
    while i < lines.len() {
        let Some((key, value)) = directive(lines[i]) else {
            break;
        };
        match key.as_str() {
            "escape" | "syntax" | "check" => {}
            _ => break,
        }
        if seen.contains(&key) {
            return Err(err(
                i + 1,
                1,
                format!("only one {key} parser directive can be used"),
            ));
        }
        match key.as_str() {
            "escape" => {
                escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(err(
                            i + 1,
                            1,
                            format!("invalid escape token '{value}' does not match ` or \\"),
                        ));
                    }
                }
            }
            "syntax" => syntax = Some(value.clone()),
            _ => {}
        }
        seen.push(key);
        i += 1;
    }

    let mut nodes = Vec::new();
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i;
        let column = line.len() - trimmed.len() + 1;
        let mut logical = String::new();
        let mut current = trimmed.to_string();
        loop {
            match strip_continuation(&current, escape) {
                Some(head) => {
                    logical.push_str(head);
                    i += 1;
                    // Comment and empty lines inside a continuation are skipped.
                    while i < lines.len() {
                        let t = lines[i].trim_start();
                        if t.is_empty() || t.starts_with('#') {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    if i >= lines.len() {
                        break;
                    }
                    current = lines[i].trim_start().to_string();
                }
                None => {
                    logical.push_str(&current);
                    i += 1;
                    break;
                }
            }
        }
        let logical = logical.trim_end().to_string();
        let keyword_len = logical.find(char::is_whitespace).unwrap_or(logical.len());
        let keyword = logical[..keyword_len].to_ascii_uppercase();
        let after = &logical[keyword_len..];
        let original = after.trim_start().to_string();
        let (flags, args) = split_flags(&original);
        let args_column = column
            + keyword_len
            + (after.len() - after.trim_start().len())
            + (original.len() - args.len());
        let mut heredocs = Vec::new();
        if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") {
            for (name, strip_tabs, expand) in heredoc_markers(args) {
                let opened = i;
                let mut content = String::new();
                loop {
                    let Some(body) = lines.get(i) else {
                        return Err(err(
                            opened,
                            args_column,
                            format!("unterminated heredoc {name}: no line \"{name}\" ends it"),
                        ));
                    };
                    i += 1;
                    let body = if strip_tabs {
                        body.trim_start_matches('\t')
                    } else {
                        body
                    };
                    if body == name {
                        break;
                    }
                    content.push_str(body);
                    content.push('\n');
                }
                heredocs.push(Heredoc {
                    name,
                    content,
                    expand,
                });
            }
        }
        nodes.push(Node {
            keyword,
            flags,
            args: args.to_string(),
            heredocs,
            original,
            line: start + 1,
            column,
            args_column,
        });
    }
    if nodes.is_empty() {
        return Err(err(1, 1, "file with no instructions".to_string()));
    }
    Ok(Dockerfile {
        file: file.to_string(),
        escape,
        syntax,
        nodes,
    })
}

/// `# key=value` at the top of the file, key lower-cased.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix('#')?;
    let (key, value) = rest.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((key.to_ascii_lowercase(), value.trim().to_string()))
}

/// The line without its trailing escape character (and the blanks after
/// it), if it continues onto the next line.
fn strip_continuation(line: &str, escape: char) -> Option<&str> {
    let body = line.trim_end_matches([' ', '\t']);
    body.strip_suffix(escape)
}

/// Leading `--name[=value]` words, and the rest.
fn split_flags(text: &str) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut rest = text;
    while rest.starts_with("--") {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        flags.push(rest[..end].to_string());
        rest = rest[end..].trim_start();
    }
    (flags, rest)
}

/// The heredocs an instruction opens: (delimiter, strip tabs, expand).
fn heredoc_markers(args: &str) -> Vec<(String, bool, bool)> {
    let mut found = Vec::new();
    let mut rest = args;
    while let Some(at) = rest.find("<<") {
        let mut after = &rest[at + 2..];
        rest = after;
        let strip_tabs = after.starts_with('-');
        if strip_tabs {
            after = &after[1..];
        }
        let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'');
        if let Some(q) = quote {
            after = &after[1..];
            let Some(end) = after.find(q) else { continue };
            let name = &after[..end];
            if is_heredoc_name(name) {
                found.push((name.to_string(), strip_tabs, false));
            }
            continue;
        }
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..end];
        if is_heredoc_name(name) {
            found.push((name.to_string(), strip_tabs, true));
        }
    }
    found
}

fn is_heredoc_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
}

/// Splits on unquoted, unescaped whitespace, keeping quotes and escapes
/// for the lexer to process.
pub fn split_words(text: &str, escape: char) -> Result<Vec<String>, LexError> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                current.push(c);
            }
            Some(q) if c == escape && q == '"' => {
                current.push(c);
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            Some(_) => current.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                current.push(c);
            }
            None if c == escape => {
                current.push(c);
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            None if c.is_whitespace() => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            None => current.push(c),
        }
    }
    if let Some(q) = quote {
        return Err(LexError::Unterminated(q));
    }
    if !current.is_empty() {
        words.push(current);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(text: &str) -> Vec<Node> {
        parse("Dockerfile", text).unwrap().nodes
    }

    #[test]
    fn keywords_are_case_insensitive_and_located() {
        let n = nodes("\n  from busybox\nRUN echo hi\n");
        assert_eq!(n[0].keyword, "FROM");
        assert_eq!((n[0].line, n[0].column), (2, 3));
        assert_eq!(n[1].args, "echo hi");
        assert_eq!((n[1].line, n[1].args_column), (3, 5));
    }

    #[test]
    fn continuation_joins_lines_and_skips_comments_and_blanks() {
        let n = nodes("FROM x\nRUN echo a \\\n# comment\n\n   && echo b\nCMD c\n");
        assert_eq!(n[1].args, "echo a && echo b");
        assert_eq!(n[1].line, 2);
        assert_eq!(n[2].line, 6);
    }

    #[test]
    fn escape_directive_changes_the_continuation_character() {
        let d = parse("Dockerfile", "# escape=`\nFROM x\nRUN a `\n  b\n").unwrap();
        assert_eq!(d.escape, '`');
        assert_eq!(d.nodes[1].args, "a b");
    }

    #[test]
    fn directives_only_count_at_the_top() {
        let d = parse(
            "Dockerfile",
            "# syntax=docker/dockerfile:1\nFROM x\n# escape=`\nRUN a `\n",
        )
        .unwrap();
        assert_eq!(d.escape, '\\');
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
        // After a comment, `# escape=` is just a comment.
        let d = parse("Dockerfile", "# hello\n# escape=`\nFROM x\n").unwrap();
        assert_eq!(d.escape, '\\');
        // After a blank line, too.
        let d = parse("Dockerfile", "\n# escape=`\nFROM x\n").unwrap();
        assert_eq!(d.escape, '\\');
    }

    #[test]
    fn bad_and_repeated_directives_are_errors() {
        let e = parse("Dockerfile", "# escape=x\nFROM x\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Dockerfile:1:1: invalid escape token 'x' does not match ` or \\"
        );
        let e = parse("Dockerfile", "# escape=`\n# escape=\\\nFROM x\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn empty_file_is_an_error() {
        let e = parse("Dockerfile", "# only a comment\n\n").unwrap_err();
        assert_eq!(e.to_string(), "Dockerfile:1:1: file with no instructions");
    }

    #[test]
    fn flags_are_split_from_arguments() {
        let n = nodes("FROM x\nCOPY --from=a --chown=1:2 src /dst\n");
        assert_eq!(n[1].flags, vec!["--from=a", "--chown=1:2"]);
        assert_eq!(n[1].args, "src /dst");
        assert_eq!(n[1].args_column, 27);
    }

    #[test]
    fn heredocs_collect_bodies_until_the_delimiter() {
        let n = nodes("FROM x\nRUN <<EOF\necho hi\necho there\nEOF\nCMD x\n");
        assert_eq!(n[1].heredocs[0].content, "echo hi\necho there\n");
        assert!(n[1].heredocs[0].expand);
        assert_eq!(n[2].keyword, "CMD");
        assert_eq!(n[2].line, 6);
    }

    #[test]
    fn dash_heredoc_strips_leading_tabs_and_quotes_stop_expansion() {
        let n = nodes("FROM x\nCOPY <<-\"A\" <<B /d/\n\t\tone $X\n\tA\ntwo\nB\n");
        assert_eq!(n[1].heredocs[0].name, "A");
        assert_eq!(n[1].heredocs[0].content, "one $X\n");
        assert!(!n[1].heredocs[0].expand);
        assert_eq!(n[1].heredocs[1].content, "two\n");
    }

    #[test]
    fn unterminated_heredoc_is_an_error() {
        let e = parse("Dockerfile", "FROM x\nRUN <<EOF\necho\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("unterminated heredoc EOF"), "{e}");
    }

    #[test]
    fn heredocs_are_only_for_run_copy_add() {
        let n = nodes("FROM x\nCMD cat <<EOF\nRUN x\n");
        assert!(n[1].heredocs.is_empty());
        assert_eq!(n[2].keyword, "RUN");
    }

    #[test]
    fn crlf_line_endings_are_accepted() {
        let n = nodes("FROM x\r\nRUN a \\\r\n b\r\n");
        assert_eq!(n[1].args, "a b");
    }

    #[test]
    fn split_words_keeps_quotes_for_the_lexer() {
        assert_eq!(
            split_words(r#"a="b c" d\ e 'f g'"#, '\\').unwrap(),
            vec![r#"a="b c""#, r"d\ e", "'f g'"]
        );
        assert!(split_words("a \"b", '\\').is_err());
    }
}
