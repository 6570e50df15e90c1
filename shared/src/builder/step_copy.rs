//! COPY and ADD: sources expanded and found (in the context, `--from` a
//! stage or image, at a URL for ADD, or in a heredoc), hashed for the cache
//! key and written into the step's root with `--chown`, `--chmod`,
//! `--parents` and `--exclude`; and the check of the context's sources
//! that runs before anything is built.

use super::context::{self, Context, ContextError, Source};
use super::copy::{self, Attributes, Item};
use super::error::BuildError;
use super::fetch;
use super::state::StageRun;
use super::step::Builder;
use crate::dockerfile::{self, CopyArgs, Instruction, Node, Vars, expand_word};
use std::path::Path;

impl Builder<'_> {
    /// Finds missing or escaping COPY sources before anything is built, so
    /// such a Dockerfile leaves the store exactly as it was.
    pub(super) fn precheck(&self, stages: &[dockerfile::Stage]) -> Result<(), BuildError> {
        for stage in stages {
            for (node, instruction) in &stage.steps {
                let (Instruction::Copy(args) | Instruction::Add(args)) = instruction else {
                    continue;
                };
                if args.from.is_some() {
                    continue;
                }
                for source in &args.sources {
                    if source.contains('$') || source.starts_with("<<") || is_url(source) {
                        continue;
                    }
                    self.context
                        .resolve(source)
                        .map_err(|e| self.at(node, copy_failed(&node.keyword, &e)))?;
                }
            }
        }
        Ok(())
    }

    /// COPY, or ADD (`add`: URL sources fetched, local archives unpacked).
    pub(super) fn copy_step(
        &mut self,
        run: &mut StageRun,
        node: &Node,
        args: &CopyArgs,
        add: bool,
    ) -> Result<(), BuildError> {
        let vars = run.vars();
        let keyword = if add { "ADD" } else { "COPY" };
        let mut sources = Vec::new();
        for s in &args.sources {
            sources.push(if s.starts_with("<<") {
                s.clone()
            } else {
                self.expand(node, s, &vars)?
            });
        }
        let dest_word = self.expand(node, &args.dest, &vars)?;
        let chown = args
            .chown
            .as_ref()
            .map(|c| self.expand(node, c, &vars))
            .transpose()?;
        let chmod = match &args.chmod {
            Some(c) => {
                let text = self.expand(node, c, &vars)?;
                Some(
                    u32::from_str_radix(&text, 8)
                        .map_err(|_| self.at(node, format!("invalid chmod parameter: {text}")))?,
                )
            }
            None => None,
        };
        let from = args
            .from
            .as_ref()
            .map(|f| self.expand(node, f, &vars))
            .transpose()?;
        let mut exclude_words = Vec::new();
        for pattern in &args.excludes {
            exclude_words.push(self.expand(node, pattern, &vars)?);
        }
        let excludes = context::Ignore::parse(&exclude_words.join("\n")).map_err(|_| {
            self.at(
                node,
                format!("invalid --exclude pattern in {}", exclude_words.join(" ")),
            )
        })?;
        if !add && let Some(url) = sources.iter().find(|s| is_url(s)) {
            return Err(self.at(node, format!("source can't be a URL for COPY: {url}")));
        }
        // Where sources come from: the context, a stage, or an image.
        let source_root = self.source_root(node, from.as_deref())?;
        let source_ctx = &source_root.context;
        // Heredocs become files named after their delimiter.
        let mut texts: Vec<(String, String)> = Vec::new();
        let mut walked: Vec<(Source, Vec<Item>)> = Vec::new();
        // With --parents: each walked source's directories to keep.
        let mut kept_dirs: Vec<Option<String>> = Vec::new();
        // ADD's URLs: fetched now, copied as they are (never unpacked).
        let mut downloads = Vec::new();
        let mut remote: Vec<(Source, Vec<Item>)> = Vec::new();
        for source in &sources {
            if source.starts_with("<<") {
                let doc = args
                    .heredocs
                    .iter()
                    .find(|d| source.contains(&d.name))
                    .ok_or_else(|| self.at(node, format!("no heredoc for {source}")))?;
                let content = if doc.expand {
                    expand_heredoc(&doc.content, &vars, self.dockerfile.escape)
                } else {
                    doc.content.clone()
                };
                texts.push((doc.name.clone(), content));
                continue;
            }
            if is_url(source) {
                let got = fetch::download(source, args.checksum.as_deref(), self.store)
                    .map_err(|e| self.at(node, format!("{keyword} failed: {e}")))?;
                let s = Source {
                    rel: got.name.clone(),
                    path: got.path.clone(),
                };
                let items = copy::walk(&s, &Context::none(), &excludes)
                    .map_err(|e| self.at(node, e.to_string()))?;
                remote.push((s, items));
                downloads.push(got);
                continue;
            }
            let resolved = source_ctx
                .resolve(source)
                .map_err(|e| self.at(node, copy_failed(keyword, &e)))?;
            let pivot = parents_pivot(source);
            for s in resolved {
                // A wildcard's matches are themselves subject to --exclude,
                // as paths below the wildcard's fixed directory.
                if !excludes.is_empty()
                    && context::has_wildcards(source)
                    && excludes.excludes(below_fixed_dir(source, &s.rel))
                {
                    continue;
                }
                let items = copy::walk(&s, source_ctx, &excludes)
                    .map_err(|e| self.at(node, e.to_string()))?;
                let kept = if args.parents {
                    Some(kept_parents(&s.rel, &pivot, items[0].meta.is_dir()))
                } else {
                    None
                };
                walked.push((s, items));
                kept_dirs.push(kept);
            }
        }
        let count = walked.len() + remote.len() + texts.len();
        let dest_is_dir = args.parents
            || dest_word.ends_with('/')
            || dest_word == "."
            || dest_word.ends_with("/.");
        if count > 1 && !dest_is_dir {
            return Err(self.at(
                node,
                format!("When using {keyword} with more than one source file, the destination must be a directory and end with a /"),
            ));
        }
        let dest = if dest_word.starts_with('/') {
            dest_word.clone()
        } else {
            format!("{}/{dest_word}", run.state.workdir())
        };
        let mut dest_clean = context::clean(&dest);
        if dest_is_dir && !dest_clean.ends_with('/') {
            dest_clean.push('/');
        }
        let digests = self.file_digests_for(from.as_deref());
        let content = copy::hash_sources(walked.iter().chain(remote.iter()), digests)
            .map_err(|e| self.at(node, e.to_string()))?;
        let mut flags = String::new();
        if let Some(f) = &from {
            flags.push_str(&format!("--from={f} "));
        }
        if let Some(c) = &chown {
            flags.push_str(&format!("--chown={c} "));
        }
        if let Some(m) = chmod {
            flags.push_str(&format!("--chmod={m:o} "));
        }
        if args.parents {
            flags.push_str("--parents ");
        }
        for pattern in &exclude_words {
            flags.push_str(&format!("--exclude={pattern} "));
        }
        let created_by = format!(
            "{keyword} {flags}{} {dest_word} # buildkit",
            sources.join(" ")
        );
        // The key also names the stage or image copied from, by ID.
        let mut key_text = created_by.clone();
        for (name, text) in &texts {
            key_text.push_str(&format!("\n<<{name}\n{text}"));
        }
        if let Some(from_id) = &source_root.from_id {
            key_text.push_str(&format!("\nfrom {from_id}"));
        }
        let node = node.clone();
        let epoch = self.options.source_date_epoch;
        self.fs_step(
            run,
            &key_text,
            &created_by,
            Some(&content),
            |builder, merged| {
                let owner = match &chown {
                    Some(spec) => {
                        Some(resolve_chown(merged, spec).map_err(|e| builder.at(&node, e))?)
                    }
                    None => None,
                };
                let attrs = Attributes { owner, chmod };
                if args.parents {
                    for (source, kept) in walked.iter().zip(&kept_dirs) {
                        let dest = format!("{dest_clean}{}", kept.as_deref().unwrap_or(""));
                        copy::copy_into(
                            merged,
                            std::slice::from_ref(source),
                            &dest,
                            true,
                            attrs,
                            add,
                        )
                        .map_err(|e| builder.at(&node, format!("{keyword} failed: {e}")))?;
                    }
                } else {
                    copy::copy_into(merged, &walked, &dest_clean, dest_is_dir, attrs, add)
                        .map_err(|e| builder.at(&node, format!("{keyword} failed: {e}")))?;
                }
                copy::copy_into(merged, &remote, &dest_clean, dest_is_dir, attrs, false)
                    .map_err(|e| builder.at(&node, format!("{keyword} failed: {e}")))?;
                let mtime = rustix::fs::Timespec {
                    tv_sec: epoch.map(|e| e as i64).unwrap_or_else(|| {
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_secs() as i64)
                            .unwrap_or(0)
                    }),
                    tv_nsec: 0,
                };
                for (name, text) in &texts {
                    let target = if dest_is_dir {
                        format!("{dest_clean}{name}")
                    } else {
                        dest_clean.clone()
                    };
                    copy::write_text(merged, &target, text, attrs, mtime)
                        .map_err(|e| builder.at(&node, format!("{keyword} failed: {e}")))?;
                }
                Ok(())
            },
        )
    }
}

/// `COPY --parents`: the part of a source before a `/./` pivot, cleaned
/// (those directories are not kept); empty without a pivot.
fn parents_pivot(source: &str) -> String {
    let source = source.strip_prefix("./").unwrap_or(source);
    match source.find("/./") {
        Some(at) => context::clean(&source[..at])
            .trim_start_matches('/')
            .to_string(),
        None => String::new(),
    }
}

/// `COPY --parents`: where below the destination a source goes: its parent
/// directories below the pivot, and a directory's own name too (its
/// contents go inside it), each ending with `/`.
fn kept_parents(rel: &str, pivot: &str, is_dir: bool) -> String {
    let below = match rel.strip_prefix(pivot) {
        Some(rest) if !pivot.is_empty() => rest.trim_start_matches('/'),
        _ => rel,
    };
    let kept = if is_dir {
        below
    } else {
        below.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("")
    };
    if kept.is_empty() {
        String::new()
    } else {
        format!("{kept}/")
    }
}

/// A wildcard match's path below the source's fixed (wildcard-free)
/// leading directories: what `--exclude` patterns see for it.
fn below_fixed_dir<'a>(source: &str, rel: &'a str) -> &'a str {
    let cleaned = context::clean(source);
    let fixed: Vec<&str> = cleaned
        .trim_start_matches('/')
        .split('/')
        .take_while(|part| !context::has_wildcards(part))
        .collect();
    let mut rest = rel;
    for part in fixed {
        rest = rest
            .strip_prefix(part)
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or(rest);
    }
    rest
}

fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://") || source.starts_with("git@")
}

/// Docker's wording for a COPY whose source is wrong.
fn copy_failed(keyword: &str, error: &ContextError) -> String {
    match error {
        ContextError::NoMatch(source) => {
            format!("{keyword} failed: no source files were specified (no match for {source:?})")
        }
        other => format!("{keyword} failed: {other}"),
    }
}

/// Expands variables in a heredoc body, line by line; a line that does not
/// lex (an odd quote in a script) stays as written.
fn expand_heredoc(content: &str, vars: &Vars, escape: char) -> String {
    let mut out = String::new();
    for line in content.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        // Quotes are content in a heredoc: protect them from the lexer.
        let protected = body.replace('\'', "\u{1}").replace('"', "\u{2}");
        match expand_word(&protected, vars, escape) {
            Ok(v) => out.push_str(&v.replace('\u{1}', "'").replace('\u{2}', "\"")),
            Err(_) => out.push_str(body),
        }
        out.push_str(newline);
    }
    out
}

/// `--chown=user[:group]` through the step root's passwd and group files.
/// Docker: a user without a group uses the same number as the GID.
fn resolve_chown(rootfs: &Path, spec: &str) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = |file: &str, name: &str, what: &str| -> Result<u32, String> {
        if let Ok(n) = name.parse::<u32>() {
            return Ok(n);
        }
        let text = crate::runtime::user::read_in_root(rootfs, file).unwrap_or_default();
        text.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 3 && f[0] == name)
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| {
                format!("unable to convert uid/gid chown string to host mapping: can't find {what} for {what_name} {name}: no such {what_name}: {name}", what_name = if what == "uid" { "user" } else { "group" })
            })
    };
    let uid = lookup("/etc/passwd", user, "uid")?;
    let gid = match group {
        Some(g) => lookup("/etc/group", g, "gid")?,
        None => uid,
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_keep_the_directories_below_the_pivot() {
        assert_eq!(parents_pivot("a/./b/c"), "a");
        assert_eq!(parents_pivot("./x/./y"), "x");
        assert_eq!(parents_pivot("/abs/dir/./x"), "abs/dir");
        assert_eq!(parents_pivot("dir/file"), "");
        assert_eq!(kept_parents("a/b/c.txt", "", false), "a/b/");
        assert_eq!(kept_parents("a/b/c.txt", "a", false), "b/");
        assert_eq!(kept_parents("a/d", "a", true), "d/");
        assert_eq!(kept_parents("f", "", false), "");
    }

    #[test]
    fn excludes_see_a_wildcard_match_below_its_fixed_directories() {
        assert_eq!(below_fixed_dir("src/*.txt", "src/a.txt"), "a.txt");
        assert_eq!(below_fixed_dir("./src/sub*/x", "src/sub1/x"), "sub1/x");
        assert_eq!(below_fixed_dir("*.txt", "a.txt"), "a.txt");
    }

    #[test]
    fn urls_and_copy_errors_read_as_dockers() {
        assert!(is_url("http://example.com/a") && is_url("https://example.com/a"));
        assert!(is_url("git@github.com:o/r.git"));
        assert!(!is_url("file.txt") && !is_url("ftp://example.com/a"));
        assert_eq!(
            copy_failed("COPY", &ContextError::NoMatch("*.go".into())),
            r#"COPY failed: no source files were specified (no match for "*.go")"#
        );
        assert_eq!(
            copy_failed("ADD", &ContextError::Outside("../x".into())),
            "ADD failed: forbidden path outside the build context: ../x"
        );
    }

    #[test]
    fn heredoc_expansion_keeps_quotes() {
        let vars: Vars = [("A".to_string(), "x".to_string())].into_iter().collect();
        assert_eq!(
            expand_heredoc("say '$A' \"${A}\"\n", &vars, '\\'),
            "say 'x' \"x\"\n"
        );
    }

    #[test]
    fn chown_names_resolve_through_the_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "app:x:1000:1000::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(root.path().join("etc/group"), "staff:x:50:\n").unwrap();
        assert_eq!(resolve_chown(root.path(), "app").unwrap(), (1000, 1000));
        assert_eq!(resolve_chown(root.path(), "app:staff").unwrap(), (1000, 50));
        assert_eq!(resolve_chown(root.path(), "7:8").unwrap(), (7, 8));
        assert!(
            resolve_chown(root.path(), "nobody")
                .unwrap_err()
                .contains("can't find uid")
        );
    }
}
