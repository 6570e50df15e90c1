//! Docker's shell-like word processing for instructions that expand
//! variables: quotes are removed, `$VAR`/`${VAR…}` substituted, and the
//! escape character protects the next character (`\$` stays a `$`).

use std::collections::HashMap;

/// Variables visible to an instruction, by name.
pub type Vars = HashMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexError {
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(char),
    #[error("missing ':' in substitution")]
    BadSubstitution,
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("unsupported modifier ({0}) in substitution")]
    Modifier(char),
}

/// Expands one word: quotes removed, variables substituted.
pub fn expand_word(word: &str, vars: &Vars, escape: char) -> Result<String, LexError> {
    Ok(process(word, vars, escape, false)?.join(""))
}

/// Expands a word and splits the result on unquoted whitespace, as Docker
/// does for the words of instructions like EXPOSE and VOLUME.
pub fn expand_words(text: &str, vars: &Vars, escape: char) -> Result<Vec<String>, LexError> {
    process(text, vars, escape, true)
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    vars: &'a Vars,
    escape: char,
}

fn process(text: &str, vars: &Vars, escape: char, split: bool) -> Result<Vec<String>, LexError> {
    let mut lexer = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        vars,
        escape,
    };
    let mut words = Vec::new();
    let mut current = String::new();
    // Whether `current` holds a word, even an empty quoted one ("").
    let mut started = false;
    while let Some(c) = lexer.peek() {
        if split && c.is_whitespace() {
            lexer.pos += 1;
            if started {
                words.push(std::mem::take(&mut current));
                started = false;
            }
            continue;
        }
        started = true;
        match c {
            '\'' => {
                lexer.pos += 1;
                current.push_str(&lexer.single_quoted()?);
            }
            '"' => {
                lexer.pos += 1;
                current.push_str(&lexer.double_quoted()?);
            }
            '$' => {
                lexer.pos += 1;
                let value = lexer.dollar()?;
                if split {
                    // Unquoted expansion splits into words, as a shell would.
                    let mut parts = value.split_whitespace().peekable();
                    let leading = value.starts_with(char::is_whitespace);
                    if leading && !current.is_empty() {
                        words.push(std::mem::take(&mut current));
                    }
                    while let Some(part) = parts.next() {
                        current.push_str(part);
                        if parts.peek().is_some() {
                            words.push(std::mem::take(&mut current));
                        }
                    }
                    if value.ends_with(char::is_whitespace) && !current.is_empty() {
                        words.push(std::mem::take(&mut current));
                        started = false;
                    }
                } else {
                    current.push_str(&value);
                }
            }
            c if c == escape => {
                lexer.pos += 1;
                // A trailing escape is dropped, as Docker does.
                if let Some(next) = lexer.next() {
                    current.push(next);
                }
            }
            c => {
                lexer.pos += 1;
                current.push(c);
            }
        }
    }
    if started || (!split && words.is_empty()) {
        words.push(current);
    }
    Ok(words)
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// Everything up to the closing `'`, literally.
    fn single_quoted(&mut self) -> Result<String, LexError> {
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err(LexError::Unterminated('\'')),
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    /// Up to the closing `"`: variables expand; the escape character only
    /// protects `"`, `$` and itself, and is kept before anything else.
    fn double_quoted(&mut self) -> Result<String, LexError> {
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err(LexError::Unterminated('"')),
                Some('"') => return Ok(out),
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) if c == self.escape => match self.peek() {
                    None => {}
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.pos += 1;
                        out.push(n);
                    }
                    Some(_) => out.push(c),
                },
                Some(c) => out.push(c),
            }
        }
    }

    /// After a `$`: a name, `${…}`, or a lone literal `$`.
    fn dollar(&mut self) -> Result<String, LexError> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                self.braced()
            }
            Some(c) if is_name_start(c) => {
                let name = self.name();
                Ok(self.vars.get(&name).cloned().unwrap_or_default())
            }
            _ => Ok("$".to_string()),
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if !(c.is_ascii_alphanumeric() || c == '_') {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }

    /// `${NAME}`, `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}`,
    /// `${NAME+word}`, `${NAME:?msg}`, `${NAME?msg}`.
    fn braced(&mut self) -> Result<String, LexError> {
        let name = self.name();
        if name.is_empty() {
            return Err(LexError::BadSubstitution);
        }
        let value = self.vars.get(&name);
        match self.next() {
            None => Err(LexError::Unterminated('}')),
            Some('}') => Ok(value.cloned().unwrap_or_default()),
            Some(c) => {
                let colon = c == ':';
                let modifier = if colon {
                    self.next().ok_or(LexError::Unterminated('}'))?
                } else {
                    c
                };
                if !matches!(modifier, '-' | '+' | '?') {
                    return Err(if colon {
                        LexError::Modifier(modifier)
                    } else {
                        LexError::BadSubstitution
                    });
                }
                let word = self.until_brace()?;
                // With ':', an empty value counts as unset.
                let set = match value {
                    Some(v) => !(colon && v.is_empty()),
                    None => false,
                };
                match modifier {
                    '-' if set => Ok(value.cloned().unwrap_or_default()),
                    '-' => Ok(word),
                    '+' if set => Ok(word),
                    '+' => Ok(String::new()),
                    _ if set => Ok(value.cloned().unwrap_or_default()),
                    _ => Err(LexError::Required {
                        message: if word.is_empty() {
                            "is not allowed to be unset".into()
                        } else {
                            word
                        },
                        name,
                    }),
                }
            }
        }
    }

    /// The word inside `${NAME:-word}` up to the matching `}`, itself expanded.
    fn until_brace(&mut self) -> Result<String, LexError> {
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err(LexError::Unterminated('}')),
                Some('}') => return Ok(out),
                Some('$') => out.push_str(&self.dollar()?),
                Some('\'') => out.push_str(&self.single_quoted()?),
                Some('"') => out.push_str(&self.double_quoted()?),
                Some(c) if c == self.escape => {
                    if let Some(n) = self.next() {
                        out.push(n);
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [("A", "apple"), ("EMPTY", ""), ("SP", "x y")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn word(text: &str) -> String {
        expand_word(text, &vars(), '\\').unwrap()
    }

    #[test]
    fn plain_and_braced_variables() {
        assert_eq!(word("$A"), "apple");
        assert_eq!(word("${A}s"), "apples");
        assert_eq!(word("$As"), "");
        assert_eq!(word("pre-$A-post"), "pre-apple-post");
        assert_eq!(word("$UNSET"), "");
        assert_eq!(word("a$"), "a$");
        assert_eq!(word("$1"), "$1");
    }

    #[test]
    fn colon_default_treats_empty_as_unset() {
        assert_eq!(word("${UNSET:-w}"), "w");
        assert_eq!(word("${EMPTY:-w}"), "w");
        assert_eq!(word("${A:-w}"), "apple");
        assert_eq!(word("${UNSET:-$A}"), "apple");
    }

    #[test]
    fn dash_without_colon_keeps_empty() {
        assert_eq!(word("${EMPTY-w}"), "");
        assert_eq!(word("${UNSET-w}"), "w");
    }

    #[test]
    fn plus_forms() {
        assert_eq!(word("${A:+w}"), "w");
        assert_eq!(word("${EMPTY:+w}"), "");
        assert_eq!(word("${EMPTY+w}"), "w");
        assert_eq!(word("${UNSET+w}"), "");
    }

    #[test]
    fn required_form_errors_with_message() {
        let err = expand_word("${UNSET:?needed}", &vars(), '\\').unwrap_err();
        assert_eq!(err.to_string(), "UNSET: needed");
    }

    #[test]
    fn single_quotes_are_literal_and_removed() {
        assert_eq!(word("'$A'"), "$A");
        assert_eq!(word("'a b'"), "a b");
    }

    #[test]
    fn double_quotes_expand_and_are_removed() {
        assert_eq!(word("\"$A pie\""), "apple pie");
        assert_eq!(word(r#""\$A""#), "$A");
        assert_eq!(word(r#""a\nb""#), r"a\nb");
        assert_eq!(word(r#""say \"hi\"""#), r#"say "hi""#);
    }

    #[test]
    fn escape_protects_dollar_outside_quotes() {
        assert_eq!(word(r"\$A"), "$A");
        assert_eq!(word(r"a\ b"), "a b");
        assert_eq!(expand_word("`$A", &vars(), '`').unwrap(), "$A");
    }

    #[test]
    fn unterminated_quotes_are_errors() {
        assert_eq!(
            expand_word("'abc", &vars(), '\\'),
            Err(LexError::Unterminated('\''))
        );
        assert_eq!(
            expand_word("${A", &vars(), '\\'),
            Err(LexError::Unterminated('}'))
        );
    }

    #[test]
    fn words_split_on_unquoted_whitespace_only() {
        let v = vars();
        assert_eq!(
            expand_words("a \"b c\" $SP", &v, '\\').unwrap(),
            vec!["a", "b c", "x", "y"]
        );
        assert_eq!(expand_words("\"$SP\"", &v, '\\').unwrap(), vec!["x y"]);
        assert_eq!(expand_words("  ", &v, '\\').unwrap(), Vec::<String>::new());
    }
}
