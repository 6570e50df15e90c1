//! The build context: a directory (or nothing, for a Dockerfile on stdin)
//! filtered by `.dockerignore` with Docker's pattern rules, and the lookup of
//! COPY/ADD sources in it that never leaves it, not even through a symlink.

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(".dockerignore line {line}: syntax error in pattern {pattern:?}")]
    BadPattern { line: usize, pattern: String },
    #[error("forbidden path outside the build context: {0}")]
    Outside(String),
    #[error("file not found in build context or excluded by .dockerignore: {0}")]
    NotFound(String),
    #[error("no source files were specified")]
    NoMatch(String),
    #[error(
        "no build context: the Dockerfile came from stdin, so there is nothing to copy {0:?} from"
    )]
    NoContext(String),
}

/// One `.dockerignore` token: what the pattern's regular expression
/// (moby/patternmatcher) would have at that point.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `*`: anything but `/`.
    Star,
    /// `?`: one character, not `/`.
    One,
    /// `[...]`: ranges, negated.
    Class(Vec<(char, char)>, bool),
    /// `**/` or `**` inside a pattern: zero or more whole directories.
    Dirs,
    /// `**` at the end: anything at all.
    Rest,
}

/// A compiled `.dockerignore` line.
#[derive(Debug, Clone)]
struct Pattern {
    tokens: Vec<Token>,
    /// `!pattern`: re-includes what earlier lines excluded.
    exclusion: bool,
}

/// The `.dockerignore` rules of a context.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

impl Ignore {
    /// Parses `.dockerignore` text as Docker does: `#` comments, blank lines
    /// skipped, each line trimmed and cleaned, a leading `/` dropped, `!`
    /// marking an exception.
    pub fn parse(text: &str) -> Result<Ignore, ContextError> {
        let mut patterns = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclusion, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = clean(body);
            let cleaned = match cleaned.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => rest.to_string(),
                _ => cleaned,
            };
            let tokens = compile(&cleaned).ok_or_else(|| ContextError::BadPattern {
                line: i + 1,
                pattern: line.to_string(),
            })?;
            patterns.push(Pattern { tokens, exclusion });
        }
        Ok(Ignore { patterns })
    }

    /// Whether `rel` (a cleaned path relative to the context, `/`
    /// separated) is excluded: the last line that matches it, or one of its
    /// parent directories, decides.
    pub fn excludes(&self, rel: &str) -> bool {
        let mut excluded = false;
        let parents: Vec<&str> = rel.split('/').collect();
        for pattern in &self.patterns {
            let mut hit = matches(&pattern.tokens, rel);
            if !hit && parents.len() > 1 {
                for i in 1..parents.len() {
                    if matches(&pattern.tokens, &parents[..i].join("/")) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                excluded = !pattern.exclusion;
            }
        }
        excluded
    }

    /// Whether an excluded directory may still hold re-included files, so
    /// a walk has to look inside it.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|p| *p != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_string(),
        (false, false) => body,
    }
}

/// Turns a pattern into tokens; `None` when it is malformed.
fn compile(pattern: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                tokens.push(if i >= chars.len() {
                    Token::Rest
                } else {
                    Token::Dirs
                });
                continue;
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::One),
            '\\' => {
                i += 1;
                tokens.push(Token::Literal(*chars.get(i)?));
            }
            '[' => {
                i += 1;
                let negated = matches!(chars.get(i), Some('^') | Some('!'));
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let mut lo = *chars.get(i)?;
                    if lo == ']' && !first {
                        break;
                    }
                    first = false;
                    if lo == '\\' {
                        i += 1;
                        lo = *chars.get(i)?;
                    }
                    i += 1;
                    let mut hi = lo;
                    if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
                        hi = chars[i + 1];
                        i += 2;
                        if hi == '\\' {
                            hi = *chars.get(i)?;
                            i += 1;
                        }
                    }
                    ranges.push((lo, hi));
                }
                tokens.push(Token::Class(ranges, negated));
            }
            c => tokens.push(Token::Literal(c)),
        }
        i += 1;
    }
    Some(tokens)
}

/// Whether the whole of `name` matches `tokens` (backtracking; paths and
/// patterns are short).
fn matches(tokens: &[Token], name: &str) -> bool {
    let chars: Vec<char> = name.chars().collect();
    match_from(tokens, &chars)
}

fn match_from(tokens: &[Token], name: &[char]) -> bool {
    let Some((token, rest)) = tokens.split_first() else {
        return name.is_empty();
    };
    match token {
        Token::Literal(c) => name.first() == Some(c) && match_from(rest, &name[1..]),
        Token::One => name.first().is_some_and(|c| *c != '/') && match_from(rest, &name[1..]),
        Token::Class(ranges, negated) => {
            name.first().is_some_and(|c| {
                *c != '/' && ranges.iter().any(|(lo, hi)| lo <= c && c <= hi) != *negated
            }) && match_from(rest, &name[1..])
        }
        Token::Star => {
            for i in 0..=name.len() {
                if match_from(rest, &name[i..]) {
                    return true;
                }
                if name.get(i) == Some(&'/') {
                    break;
                }
            }
            false
        }
        Token::Rest => true,
        Token::Dirs => {
            // `(.*/)?`: nothing, or anything ending in a `/`.
            if match_from(rest, name) {
                return true;
            }
            (0..name.len()).any(|i| name[i] == '/' && match_from(rest, &name[i + 1..]))
        }
    }
}

/// Whether a COPY source uses wildcards (Go's `filepath.Match` syntax).
pub fn has_wildcards(source: &str) -> bool {
    source.contains(['*', '?', '['])
}

/// A build context directory and its ignore rules.
#[derive(Debug, Clone)]
pub struct Context {
    root: Option<PathBuf>,
    ignore: Ignore,
}

/// A source a COPY matched: its cleaned path relative to the context (or
/// stage root), and where it is on disk now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub rel: String,
    pub path: PathBuf,
}

impl Context {
    /// The context at `dir`, with its `.dockerignore` if it has one.
    pub fn open(dir: &Path) -> Result<Context, ContextError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ContextError::Io { path, source }
        };
        let meta = std::fs::metadata(dir).map_err(io_err(dir))?;
        if !meta.is_dir() {
            return Err(ContextError::Io {
                path: dir.to_path_buf(),
                source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        let ignore_path = dir.join(".dockerignore");
        let ignore = match std::fs::read_to_string(&ignore_path) {
            Ok(text) => Ignore::parse(&text)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ignore::default(),
            Err(e) => return Err(io_err(&ignore_path)(e)),
        };
        Ok(Context {
            root: Some(dir.to_path_buf()),
            ignore,
        })
    }

    /// No context at all (`img-build -`): any COPY from it fails.
    pub fn none() -> Context {
        Context {
            root: None,
            ignore: Ignore::default(),
        }
    }

    /// A stage's or image's root filesystem as a source of COPY --from: no
    /// ignore rules apply there.
    pub fn rootfs(dir: &Path) -> Context {
        Context {
            root: Some(dir.to_path_buf()),
            ignore: Ignore::default(),
        }
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    pub fn ignore(&self) -> &Ignore {
        &self.ignore
    }

    /// Whether `rel` is hidden by `.dockerignore`.
    pub fn excluded(&self, rel: &str) -> bool {
        !self.ignore.is_empty() && self.ignore.excludes(rel)
    }

    /// The sources one COPY argument names: a path (followed if it is a
    /// symlink, but only within the context) or a wildcard pattern matched
    /// one path component at a time. Excluded paths do not exist here.
    pub fn resolve(&self, source: &str) -> Result<Vec<Source>, ContextError> {
        let root = self
            .root
            .as_deref()
            .ok_or_else(|| ContextError::NoContext(source.to_string()))?;
        let cleaned = clean(&format!("/{source}"));
        // Lexically: `..` past the root is refused rather than clamped.
        if clean(source).starts_with("..") {
            return Err(ContextError::Outside(source.to_string()));
        }
        let rel = cleaned.trim_start_matches('/').to_string();
        if !has_wildcards(&rel) {
            if rel.is_empty() {
                return Ok(vec![Source {
                    rel: String::new(),
                    path: root.to_path_buf(),
                }]);
            }
            let resolved = self.follow(root, &rel, source)?;
            if self.excluded(&rel) && !self.has_included_children(root, &resolved) {
                return Err(ContextError::NotFound(source.to_string()));
            }
            return Ok(vec![Source {
                path: root.join(&resolved),
                rel: resolved,
            }]);
        }
        let parts: Vec<&str> = rel.split('/').collect();
        let mut found: Vec<String> = vec![String::new()];
        for (depth, part) in parts.iter().enumerate() {
            let last = depth + 1 == parts.len();
            let mut next = Vec::new();
            for prefix in &found {
                let dir = if prefix.is_empty() {
                    root.to_path_buf()
                } else {
                    root.join(prefix)
                };
                let join = |name: &str| {
                    if prefix.is_empty() {
                        name.to_string()
                    } else {
                        format!("{prefix}/{name}")
                    }
                };
                if !has_wildcards(part) {
                    let candidate = join(part);
                    let meta = std::fs::symlink_metadata(root.join(&candidate));
                    if meta.is_ok_and(|m| last || m.is_dir()) {
                        next.push(candidate);
                    }
                    continue;
                }
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(Result::ok)
                    .filter(|e| last || e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                for name in names {
                    let hit = crate::glob::matches(part, &name)
                        .map_err(|_| ContextError::NoMatch(source.to_string()))?;
                    if hit {
                        next.push(join(&name));
                    }
                }
            }
            found = next;
        }
        let sources: Vec<Source> = found
            .into_iter()
            .filter(|rel| !self.excluded(rel) || self.has_included_children(root, rel))
            .map(|rel| Source {
                path: root.join(&rel),
                rel,
            })
            .collect();
        if sources.is_empty() {
            return Err(ContextError::NoMatch(source.to_string()));
        }
        Ok(sources)
    }

    /// Resolves `rel` under `root` following symlinks as if `root` were `/`
    /// would, but refusing any that lead out; returns the resolved relative
    /// path.
    fn follow(&self, root: &Path, rel: &str, source: &str) -> Result<String, ContextError> {
        let root_fd = rustix::fs::open(
            root,
            OFlags::DIRECTORY | OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ContextError::Io {
            path: root.to_path_buf(),
            source: e.into(),
        })?;
        match rustix::fs::openat2(
            &root_fd,
            rel,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(_) => {}
            Err(Errno::XDEV) => return Err(ContextError::Outside(source.to_string())),
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => {
                return Err(ContextError::NotFound(source.to_string()));
            }
            Err(e) => {
                return Err(ContextError::Io {
                    path: root.join(rel),
                    source: e.into(),
                });
            }
        }
        // Lexically resolve the symlinks on the way, now known to stay inside.
        let mut resolved: Vec<String> = Vec::new();
        let mut pending: Vec<String> = rel.split('/').rev().map(str::to_string).collect();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            resolved.push(part);
            let here = root.join(resolved.join("/"));
            if let Ok(target) = std::fs::read_link(&here) {
                hops += 1;
                if hops > 40 {
                    return Err(ContextError::Outside(source.to_string()));
                }
                resolved.pop();
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(target.split('/').rev().map(str::to_string));
            }
        }
        Ok(resolved.join("/"))
    }

    /// Whether an excluded directory holds something an exception brings
    /// back (so COPY of it still finds files).
    fn has_included_children(&self, root: &Path, rel: &str) -> bool {
        if !self.ignore.has_exceptions() {
            return false;
        }
        let dir = root.join(rel);
        if !std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            return false;
        }
        let mut stack = vec![rel.to_string()];
        while let Some(current) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(root.join(&current)) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let child = format!("{current}/{}", entry.file_name().to_string_lossy());
                if !self.ignore.excludes(&child) {
                    return true;
                }
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(child);
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> Ignore {
        Ignore::parse(text).unwrap()
    }

    #[test]
    fn plain_names_exclude_the_path_and_everything_under_it() {
        let i = ignore("node_modules\n");
        assert!(i.excludes("node_modules"));
        assert!(i.excludes("node_modules/a/b.js"));
        assert!(!i.excludes("src/node_modules"));
        assert!(!i.excludes("node_modules2"));
    }

    #[test]
    fn star_and_question_mark_stay_within_one_component() {
        let i = ignore("*.log\ntemp?\n");
        assert!(i.excludes("a.log"));
        assert!(!i.excludes("dir/a.log"));
        assert!(i.excludes("temp1"));
        assert!(!i.excludes("temp12"));
        let i = ignore("*/temp*\n");
        assert!(i.excludes("somedir/temporary.txt"));
        assert!(!i.excludes("a/b/temp"));
    }

    #[test]
    fn double_star_matches_any_number_of_directories() {
        let i = ignore("**/*.go\n");
        assert!(i.excludes("main.go"));
        assert!(i.excludes("a/b/c/main.go"));
        let i = ignore("a/**/z\n");
        assert!(i.excludes("a/z"));
        assert!(i.excludes("a/b/c/z"));
        assert!(!i.excludes("b/z"));
        let i = ignore("logs/**\n");
        assert!(i.excludes("logs/x/y"));
        let i = ignore("**\n!keep\n");
        assert!(i.excludes("anything/at/all"));
        assert!(!i.excludes("keep"));
    }

    #[test]
    fn exceptions_re_include_and_the_last_match_wins() {
        let i = ignore("*.md\n!README*.md\nREADME-secret.md\n");
        assert!(i.excludes("CHANGES.md"));
        assert!(!i.excludes("README.md"));
        assert!(i.excludes("README-secret.md"));
        assert!(i.has_exceptions());
    }

    #[test]
    fn comments_blanks_leading_slash_and_cleaning() {
        let i = ignore("# a comment\n\n  /build/  \n./out/../dist\n");
        assert!(i.excludes("build"));
        assert!(i.excludes("build/x"));
        assert!(i.excludes("dist/app"));
        assert!(!i.excludes("out"));
        assert!(!i.excludes("# a comment"));
    }

    #[test]
    fn character_classes_and_escapes() {
        let i = ignore("file[0-9].txt\n[!a]x\nlit\\*\n");
        assert!(i.excludes("file3.txt"));
        assert!(!i.excludes("filea.txt"));
        assert!(i.excludes("bx"));
        assert!(!i.excludes("ax"));
        assert!(i.excludes("lit*"));
        assert!(!i.excludes("litx"));
        assert!(matches!(
            Ignore::parse("ok\n[a-\n"),
            Err(ContextError::BadPattern { line: 2, .. })
        ));
    }

    #[test]
    fn clean_follows_go() {
        assert_eq!(clean("a/./b/../c/"), "a/c");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean("../a"), "../a");
        assert_eq!(clean(""), ".");
        assert_eq!(clean("/"), "/");
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("src/sub")).unwrap();
        std::fs::write(p.join("src/a.txt"), "a").unwrap();
        std::fs::write(p.join("src/b.txt"), "b").unwrap();
        std::fs::write(p.join("src/c.md"), "c").unwrap();
        std::fs::write(p.join("src/sub/d.txt"), "d").unwrap();
        std::fs::write(p.join("secret"), "s").unwrap();
        std::os::unix::fs::symlink("src/a.txt", p.join("inside")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", p.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../etc/passwd", p.join("src/up")).unwrap();
        std::fs::write(p.join(".dockerignore"), "secret\nsrc/*.md\n").unwrap();
        dir
    }

    fn rels(sources: Vec<Source>) -> Vec<String> {
        sources.into_iter().map(|s| s.rel).collect()
    }

    #[test]
    fn wildcards_match_one_component_and_skip_ignored_files() {
        let dir = tree();
        let ctx = Context::open(dir.path()).unwrap();
        assert_eq!(
            rels(ctx.resolve("src/*").unwrap()),
            ["src/a.txt", "src/b.txt", "src/sub", "src/up"]
        );
        assert_eq!(
            rels(ctx.resolve("/src/*.txt").unwrap()),
            ["src/a.txt", "src/b.txt"]
        );
        assert_eq!(rels(ctx.resolve("*/sub/?.txt").unwrap()), ["src/sub/d.txt"]);
        assert!(matches!(
            ctx.resolve("src/*.md"),
            Err(ContextError::NoMatch(_))
        ));
    }

    #[test]
    fn excluded_and_missing_paths_are_not_found() {
        let dir = tree();
        let ctx = Context::open(dir.path()).unwrap();
        assert!(matches!(
            ctx.resolve("secret"),
            Err(ContextError::NotFound(_))
        ));
        assert!(matches!(
            ctx.resolve("nope"),
            Err(ContextError::NotFound(_))
        ));
        assert_eq!(
            rels(ctx.resolve("./src/../src/a.txt").unwrap()),
            ["src/a.txt"]
        );
        assert_eq!(rels(ctx.resolve(".").unwrap()), [""]);
    }

    #[test]
    fn symlinks_are_followed_only_inside_the_context() {
        let dir = tree();
        let ctx = Context::open(dir.path()).unwrap();
        assert_eq!(rels(ctx.resolve("inside").unwrap()), ["src/a.txt"]);
        assert!(matches!(ctx.resolve("abs"), Err(ContextError::Outside(_))));
        assert!(matches!(
            ctx.resolve("src/up"),
            Err(ContextError::Outside(_))
        ));
        assert!(matches!(
            ctx.resolve("../etc/passwd"),
            Err(ContextError::Outside(_))
        ));
    }

    #[test]
    fn no_context_refuses_every_source() {
        assert!(matches!(
            Context::none().resolve("a"),
            Err(ContextError::NoContext(_))
        ));
    }
}
