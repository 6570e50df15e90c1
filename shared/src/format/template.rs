//! Docker's `--format` Go templates, on the maintained `gtmpl` engine, with
//! Go's `%v` printing (`[sh -c]`, `map[k:v]`) and Docker's extra functions
//! (`json`, `join`, `split`, `lower`, `upper`, `title`, `truncate`).

use gtmpl::{Context, FuncError, Value};
use std::cell::RefCell;
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template parsing error: {0}")]
    Parse(String),
    #[error("template: {0}")]
    Execute(String),
}

/// A parsed template, ready to render any JSON value.
pub struct Template {
    inner: gtmpl::Template,
    /// Whether it calls `json`, which needs the data's key order.
    prints_json: bool,
}

thread_local! {
    /// The key order of each object in the data being rendered, by its
    /// sorted key set. gtmpl keeps objects in hash maps, but `json` must
    /// print a struct's fields in their order, as Go's encoder does (and a
    /// map's keys sorted, as the store's maps already are).
    static KEY_ORDER: RefCell<HashMap<Vec<String>, Vec<String>>> = RefCell::default();
}

/// The name of the function every printing action is piped through.
const PRINT: &str = "__berth_print";

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut inner = gtmpl::Template::default();
        inner.add_func(PRINT, go_print);
        inner.add_func("json", json);
        inner.add_func("join", join);
        inner.add_func("split", split);
        inner.add_func("lower", |a| map_string(a, "lower", |s| s.to_lowercase()));
        inner.add_func("upper", |a| map_string(a, "upper", |s| s.to_uppercase()));
        inner.add_func("title", |a| map_string(a, "title", title_case));
        inner.add_func("truncate", truncate);
        let prints_json = text.contains("json");
        let text = with_go_printing(text).map_err(TemplateError::Parse)?;
        inner
            .parse(text)
            .map_err(|e| TemplateError::Parse(e.to_string()))?;
        Ok(Template { inner, prints_json })
    }

    /// Renders the template with `data` as dot.
    pub fn render(&self, data: &serde_json::Value) -> Result<String, TemplateError> {
        if self.prints_json {
            KEY_ORDER.with(|orders| {
                let mut orders = orders.borrow_mut();
                orders.clear();
                learn_key_order(data, &mut orders);
            });
        }
        self.inner
            .render(&Context::from(to_value(data)))
            .map_err(|e| TemplateError::Execute(one_line(&e.to_string())))
    }
}

/// An execution error on one line that names what was missing, without
/// the object it was looked for in (gtmpl prints all of it):
/// `no field Nope for {…}` becomes `can't evaluate field Nope`.
fn one_line(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message);
    match first.strip_prefix("no field ") {
        Some(rest) => {
            let field = rest.split(" for ").next().unwrap_or(rest);
            format!("can't evaluate field {field}")
        }
        None => first.chars().take(200).collect(),
    }
}

/// gtmpl prints arrays and maps with Rust's Debug; Docker users expect Go's
/// `%v`. So every action that prints its value gets `| __berth_print`
/// appended; control actions (`if`, `range`, `end`, …) and assignments are
/// left alone.
///
/// Two inputs gtmpl cannot take are refused here, before it sees them (both
/// found by the `template` fuzz target): an action that never closes
/// (`{{index .`), on which its lexer spins forever, and what it panics
/// on (see [`check_action`]).
fn with_go_printing(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after_open = &rest[open + 2..];
        let close = find_action_end(after_open).ok_or("unclosed action")?;
        let action = &after_open[..close];
        check_action(action)?;
        out.push_str("{{");
        out.push_str(&rewrite_action(action));
        out.push_str("}}");
        rest = &after_open[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The offset of the `}}` that closes an action, skipping quoted strings.
fn find_action_end(action: &str) -> Option<usize> {
    let bytes = action.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'`' | b'\'' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'\\' && quote != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Refuses what gtmpl would panic on inside an action: a non-ASCII
/// character outside a string or comment, and in a string (of any quote,
/// since gtmpl unescapes raw strings too) an escape that is not one of
/// Go's complete ones, or an escape beside a non-ASCII character.
fn check_action(action: &str) -> Result<(), String> {
    let trimmed = action.trim_start_matches(['-', ' ', '\t', '\r', '\n']);
    if trimmed.starts_with("/*") {
        return Ok(());
    }
    let mut chars = action.chars();
    while let Some(c) = chars.next() {
        if matches!(c, '"' | '`' | '\'') {
            let mut literal = String::new();
            while let Some(inner) = chars.next() {
                if inner == c {
                    break;
                }
                literal.push(inner);
                if inner == '\\' && c != '`' {
                    literal.extend(chars.next());
                }
            }
            check_literal(&literal)?;
        } else if !c.is_ascii() {
            return Err(format!("unexpected {c:?} in action"));
        }
    }
    Ok(())
}

fn check_literal(literal: &str) -> Result<(), String> {
    if !literal.contains('\\') {
        return Ok(());
    }
    let bad = || Err(format!("unsupported escape in string {literal:?}"));
    if !literal.is_ascii() {
        return bad();
    }
    let bytes = literal.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let digits = match bytes.get(i + 1) {
            Some(b'\\' | b'"' | b'\'' | b'n' | b'r' | b't' | b'b' | b'f') => 0,
            Some(b'x') => 2,
            Some(b'u') => 4,
            Some(b'U') => 8,
            _ => return bad(),
        };
        let hex = bytes.get(i + 2..i + 2 + digits);
        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
            return bad();
        }
        i += 2 + digits;
    }
    Ok(())
}

fn rewrite_action(action: &str) -> String {
    let (lead, body) = match action.strip_prefix('-') {
        Some(b) if b.starts_with(char::is_whitespace) => ("- ", b),
        _ => ("", action),
    };
    let (body, trail) = match body.strip_suffix('-') {
        Some(b) if b.ends_with(char::is_whitespace) => (b, " -"),
        _ => (body, ""),
    };
    let word = body
        .trim_start()
        .split(|c: char| !c.is_alphanumeric())
        .next();
    let control = matches!(
        word,
        Some(
            "if" | "else"
                | "end"
                | "range"
                | "with"
                | "define"
                | "template"
                | "block"
                | "break"
                | "continue"
        )
    );
    let trimmed = body.trim();
    if control || trimmed.is_empty() || trimmed.starts_with("/*") || is_assignment(trimmed) {
        return action.to_string();
    }
    format!("{lead}({trimmed}) | {PRINT}{trail}")
}

fn is_assignment(body: &str) -> bool {
    body.starts_with('$')
        && body
            .split_whitespace()
            .nth(1)
            .is_some_and(|op| op == ":=" || op == "=")
}

/// Converts JSON into gtmpl's value model. Integers stay integers.
fn to_value(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (_, Some(u), _) => Value::from(u),
            (_, _, Some(f)) => Value::from(f),
            _ => Value::Nil,
        },
        serde_json::Value::String(s) => Value::from(s.clone()),
        serde_json::Value::Array(items) => Value::Array(items.iter().map(to_value).collect()),
        serde_json::Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), to_value(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// Records the key order of every object in `data` (see [`KEY_ORDER`]).
fn learn_key_order(data: &serde_json::Value, orders: &mut HashMap<Vec<String>, Vec<String>>) {
    match data {
        serde_json::Value::Object(map) => {
            let order: Vec<String> = map.keys().cloned().collect();
            let mut sorted = order.clone();
            sorted.sort();
            orders.entry(sorted).or_insert(order);
            for value in map.values() {
                learn_key_order(value, orders);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                learn_key_order(item, orders);
            }
        }
        _ => {}
    }
}

/// Back to JSON, for the `json` function: an object's keys in the order
/// the rendered data had them (a struct's field order), else sorted, as
/// Go's encoder sorts map keys.
fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Nil | Value::NoValue | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) => {
            let text = n.to_string();
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        }
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Array(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::Object(map) | Value::Map(map) => {
            let mut keys: Vec<String> = map.keys().cloned().collect();
            keys.sort();
            let keys = KEY_ORDER
                .with(|orders| orders.borrow().get(&keys).cloned())
                .unwrap_or(keys);
            serde_json::Value::Object(
                keys.into_iter()
                    .map(|k| {
                        let value = to_json(&map[&k]);
                        (k, value)
                    })
                    .collect(),
            )
        }
    }
}

/// Go's `%v` for the values JSON can hold.
fn go_format(value: &Value) -> String {
    match value {
        Value::Nil => "<nil>".to_string(),
        Value::NoValue => "<no value>".to_string(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_format).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(map) | Value::Map(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_format(&map[k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        other => other.to_string(),
    }
}

fn go_print(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [value] => Ok(Value::from(go_format(value))),
        _ => Err(FuncError::ExactlyXArgs("print".into(), 1)),
    }
}

fn json(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [value] => Ok(Value::from(to_json(value).to_string())),
        _ => Err(FuncError::ExactlyXArgs("json".into(), 1)),
    }
}

fn string_arg(value: &Value, function: &str) -> Result<String, FuncError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(FuncError::Generic(format!(
            "{function}: expected a string, got {}",
            go_format(other)
        ))),
    }
}

fn join(args: &[Value]) -> Result<Value, FuncError> {
    let [Value::Array(items), separator] = args else {
        return Err(FuncError::Generic(
            "join: expected a list and a separator".into(),
        ));
    };
    let separator = string_arg(separator, "join")?;
    let parts: Vec<String> = items.iter().map(go_format).collect();
    Ok(Value::from(parts.join(&separator)))
}

fn split(args: &[Value]) -> Result<Value, FuncError> {
    let [text, separator] = args else {
        return Err(FuncError::ExactlyXArgs("split".into(), 2));
    };
    let (text, separator) = (string_arg(text, "split")?, string_arg(separator, "split")?);
    Ok(Value::Array(
        text.split(separator.as_str())
            .map(|s| Value::from(s.to_string()))
            .collect(),
    ))
}

fn map_string(args: &[Value], name: &str, f: fn(&str) -> String) -> Result<Value, FuncError> {
    match args {
        [value] => Ok(Value::from(f(&string_arg(value, name)?))),
        _ => Err(FuncError::ExactlyXArgs(name.into(), 1)),
    }
}

fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace();
    }
    out
}

fn truncate(args: &[Value]) -> Result<Value, FuncError> {
    let [text, Value::Number(n)] = args else {
        return Err(FuncError::Generic(
            "truncate: expected a string and a length".into(),
        ));
    };
    let text = string_arg(text, "truncate")?;
    let length = n.as_u64().unwrap_or(0) as usize;
    Ok(Value::from(text.chars().take(length).collect::<String>()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(template: &str, data: serde_json::Value) -> String {
        Template::parse(template).unwrap().render(&data).unwrap()
    }

    #[test]
    fn values_print_the_way_go_prints_them() {
        // A map's keys are sorted in the store, as Go's encoder sorts them.
        let data = json!({"Config": {"Cmd": ["sh", "-c", "x"], "Labels": {"a": "1", "b": "2"},
                          "Entrypoint": null, "N": 3, "On": true}});
        assert_eq!(render("{{.Config.Cmd}}", data.clone()), "[sh -c x]");
        assert_eq!(render("{{.Config.Labels}}", data.clone()), "map[a:1 b:2]");
        assert_eq!(render("{{.Config.Entrypoint}}", data.clone()), "<nil>");
        assert_eq!(
            render("{{.Config.N}} {{.Config.On}}", data.clone()),
            "3 true"
        );
        assert_eq!(render("{{index .Config.Labels \"a\"}}", data.clone()), "1");
        assert_eq!(
            render("{{json .Config.Labels}}", data.clone()),
            r#"{"a":"1","b":"2"}"#
        );
        assert_eq!(
            render("{{range .Config.Cmd}}<{{.}}>{{end}}", data.clone()),
            "<sh><-c><x>"
        );
        assert_eq!(
            render("{{join .Config.Cmd \",\"}}", data.clone()),
            "sh,-c,x"
        );
        assert_eq!(
            render(
                "{{if eq .Config.N 3}}three{{else}}other{{end}}",
                data.clone()
            ),
            "three"
        );
        assert_eq!(render("{{- $x := .Config.N -}} {{$x}}", data.clone()), "3");
        assert_eq!(
            render("{{upper \"ab\"}}:{{lower \"CD\"}}", data.clone()),
            "AB:cd"
        );
        assert_eq!(render("{{.Config.N | printf \"n=%d\"}}", data), "n=3");
    }

    #[test]
    fn json_keeps_a_struct_s_field_order_as_go_does() {
        let data = json!({"HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 0},
                          "LogConfig": {"Type": "json-file", "Config": {}}}});
        assert_eq!(
            render("{{json .HostConfig.RestartPolicy}}", data.clone()),
            r#"{"Name":"always","MaximumRetryCount":0}"#
        );
        assert_eq!(
            render("{{json .HostConfig}}", data),
            r#"{"RestartPolicy":{"Name":"always","MaximumRetryCount":0},"LogConfig":{"Type":"json-file","Config":{}}}"#
        );
    }

    #[test]
    fn a_missing_field_is_named_on_one_line() {
        let data = json!({"State": {"Status": "running", "Pid": 7, "Note": "a\nb"}});
        let error = Template::parse("{{.State.Nope}}")
            .unwrap()
            .render(&data)
            .unwrap_err()
            .to_string();
        assert_eq!(error, "template: can't evaluate field Nope");
    }

    #[test]
    fn braces_inside_strings_do_not_end_an_action() {
        assert_eq!(render("{{\"}}\"}}", json!({})), "}}");
    }

    /// Found by the `template` fuzz target: gtmpl's lexer never returned.
    #[test]
    fn an_unclosed_action_is_a_parse_error_not_a_hang() {
        for text in ["{{index .", "{{index . \"}}", "a {{/* b", "{{if .}}x{{end"] {
            let err = Template::parse(text).err().expect(text);
            assert_eq!(err.to_string(), "template parsing error: unclosed action");
        }
    }

    /// Found by the `template` fuzz target: gtmpl panicked slicing inside
    /// a multi-byte character (`{{ߖ}}`, minimised from the crash).
    #[test]
    fn non_ascii_in_an_action_is_a_parse_error_not_a_panic() {
        for text in ["{{ߖ}}", "{{ é}}", "{{$é := 1}}{{$é}}"] {
            let err = Template::parse(text).err().expect(text);
            assert!(err.to_string().contains("in action"), "{text}: {err}");
        }
        // Outside actions, in strings and in comments it is plain text.
        let data = json!({"A": "x"});
        assert_eq!(render("é{{.A}}ü", data.clone()), "éxü");
        assert_eq!(render("{{\"é\"}}{{`ß`}}{{/* ö */}}", data.clone()), "éß");
        assert_eq!(render("{{printf \"%s-ñ\" .A}}", data), "x-ñ");
    }

    /// Found by the `template` fuzz target: gtmpl unescapes raw strings
    /// too, and sliced past the end of `` `\` `` (minimised from the crash)
    /// or inside a character; an incomplete `\x` never ended.
    #[test]
    fn escapes_gtmpl_cannot_take_are_parse_errors_not_panics() {
        for text in [
            "{{eq `\\` `o1`}}",
            "{{`a\\`}}",
            "{{\"\\é\"}}",
            "{{\"\\x4é\"}}",
            "{{\"\\x\"}}",
            "{{\"\\x4\"}}",
            "{{\"\\u12\"}}",
            "{{'\\q'}}",
        ] {
            let err = Template::parse(text).err().expect(text);
            assert!(err.to_string().contains("escape"), "{text}: {err}");
        }
        let data = json!({});
        assert_eq!(render("{{\"a\\tb\\x41\"}}", data.clone()), "a\tbA");
        assert_eq!(render("{{`é`}}{{\"é\"}}", data), "éé");
    }

    #[test]
    fn errors_say_parse_or_execute() {
        let parse = Template::parse("{{.Config.Cmd").err().unwrap();
        assert!(
            parse.to_string().starts_with("template parsing error"),
            "{parse}"
        );
        let execute = Template::parse("{{.Nope.Deeper}}")
            .unwrap()
            .render(&json!({"Config": {}}))
            .unwrap_err();
        assert!(execute.to_string().contains("Nope"), "{execute}");
    }
}
