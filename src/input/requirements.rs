//! pip requirements files (`requirements.in`, `requirements.txt`) and pip-syntax
//! constraints files.
//!
//! Supported: comments, `\` continuations, `-r`/`-c` includes relative to the
//! including file (cycles are errors), `-i/--index-url`, `--extra-index-url`,
//! `--no-index`, `--pre`, per-line `--hash`, extras and markers, `${VAR}`
//! expansion. Editable installs, local paths and `name @ url` are rejected.

use std::path::{Path, PathBuf};

use super::error::{InputError, read_to_string};
use super::{DeclaredRequirement, Origin};
use crate::python;

/// A requirements file with its includes followed.
#[derive(Debug, Clone, Default)]
pub struct RequirementsFile {
    /// The top-level file.
    pub path: PathBuf,
    /// Requirements from this file and its `-r` includes, in file order.
    pub requirements: Vec<DeclaredRequirement>,
    /// Constraints from `-c` includes.
    pub constraints: Vec<DeclaredRequirement>,
    /// `--index-url` (the last one wins, as in pip).
    pub index_url: Option<String>,
    /// `--extra-index-url`s in order.
    pub extra_index_urls: Vec<String>,
    /// `--no-index` was given.
    pub no_index: bool,
    /// `--pre` was given.
    pub pre: bool,
    /// Options pip knows that thoth-rs ignores, and similar findings.
    pub warnings: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Requirements,
    Constraints,
}

/// Deepest include chain accepted (pip has no limit; 5,000 nested files
/// would overflow the stack).
pub const MAX_INCLUDE_DEPTH: usize = 64;

/// Most distinct files one project may include.
pub const MAX_INCLUDES: usize = 1_000;

/// Where an include walk stands: the chain being read (for cycles and
/// depth) and the files already read (each is read once, so "diamond"
/// includes cost nothing more).
#[derive(Default)]
struct Walk {
    stack: Vec<PathBuf>,
    seen: std::collections::HashSet<(PathBuf, Target)>,
    /// Index in `constraints` of each constrained name.
    constrained: std::collections::HashMap<String, usize>,
}

impl RequirementsFile {
    /// Read a requirements file, following `-r` and `-c` includes.
    pub fn from_path(path: &Path) -> Result<Self, InputError> {
        let mut out = Self {
            path: path.to_path_buf(),
            ..Self::default()
        };
        let mut walk = Walk::default();
        out.read(path, Target::Requirements, &mut walk, None)?;
        Ok(out)
    }

    /// Parse requirements text as if read from `path` (includes are resolved
    /// relative to `path`'s directory).
    pub fn parse(path: &Path, text: &str) -> Result<Self, InputError> {
        let mut out = Self {
            path: path.to_path_buf(),
            ..Self::default()
        };
        let mut walk = Walk {
            stack: vec![canonical(path)],
            ..Walk::default()
        };
        out.parse_text(path, text, Target::Requirements, &mut walk)?;
        Ok(out)
    }

    fn read(
        &mut self,
        path: &Path,
        target: Target,
        walk: &mut Walk,
        included_from: Option<(&Path, usize)>,
    ) -> Result<(), InputError> {
        let key = canonical(path);
        let (from_file, from_line) = included_from.map_or((path, 1), |(f, l)| (f, l));
        if walk.stack.contains(&key) {
            let mut chain: Vec<String> =
                walk.stack.iter().map(|p| p.display().to_string()).collect();
            chain.push(key.display().to_string());
            let (file, line) = included_from.map_or((path, 1), |(f, l)| (f, l));
            return Err(
                InputError::file(file, format!("include cycle: {}", chain.join(" -> ")))
                    .at_line(line),
            );
        }
        if !walk.seen.insert((key.clone(), target)) {
            return Ok(());
        }
        if walk.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(InputError::file(
                from_file,
                format!("includes nested deeper than {MAX_INCLUDE_DEPTH} files"),
            )
            .at_line(from_line));
        }
        if walk.seen.len() > MAX_INCLUDES {
            return Err(InputError::file(
                from_file,
                format!("more than {MAX_INCLUDES} included files"),
            )
            .at_line(from_line));
        }
        let text = match read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                return Err(match included_from {
                    Some((file, line)) => InputError::file(
                        file,
                        format!(
                            "cannot read included file {}: {}",
                            path.display(),
                            e.message
                        ),
                    )
                    .at_line(line),
                    None => e,
                });
            }
        };
        walk.stack.push(key);
        let result = self.parse_text(path, &text, target, walk);
        walk.stack.pop();
        result
    }

    /// One option line (`-r FILE`, `--index-url URL`, …) of `path`.
    fn option(
        &mut self,
        path: &Path,
        line_no: usize,
        line: &str,
        target: Target,
        walk: &mut Walk,
    ) -> Result<(), InputError> {
        let err = |message: String| InputError::file(path, message).at_line(line_no);
        let (option, value) = split_option(line);
        match option {
            "-r" | "--requirement" | "-c" | "--constraint" => {
                let value = value.ok_or_else(|| err(format!("`{option}` needs a file name")))?;
                let base = path.parent().unwrap_or_else(|| Path::new("."));
                let included = base.join(value);
                let nested = if matches!(option, "-c" | "--constraint") {
                    Target::Constraints
                } else {
                    target
                };
                self.read(&included, nested, walk, Some((path, line_no)))?;
            }
            "-i" | "--index-url" => {
                let value = value.ok_or_else(|| err(format!("`{option}` needs a URL")))?;
                self.index_url = Some(check_url(value).map_err(|e| err(e.to_string()))?);
            }
            "--extra-index-url" => {
                let value = value.ok_or_else(|| err(format!("`{option}` needs a URL")))?;
                self.extra_index_urls
                    .push(check_url(value).map_err(|e| err(e.to_string()))?);
            }
            "--no-index" => self.no_index = true,
            "--pre" => self.pre = true,
            "-e" | "--editable" => {
                return Err(err(
                    "editable requirements (`-e`) are not supported: thoth-rs resolves \
                     released distributions from an index snapshot"
                        .into(),
                ));
            }
            "-f" | "--find-links" | "--trusted-host" | "--prefer-binary" | "--only-binary"
            | "--no-binary" | "--use-feature" | "--require-hashes" | "--config-settings"
            | "--global-option" => {
                self.warnings.push(format!(
                    "{}:{line_no}: option `{option}` has no effect in thoth-rs and was ignored",
                    path.display()
                ));
            }
            _ => return Err(err(format!("unknown option `{option}`"))),
        }
        Ok(())
    }

    fn parse_text(
        &mut self,
        path: &Path,
        text: &str,
        target: Target,
        walk: &mut Walk,
    ) -> Result<(), InputError> {
        for (line_no, line) in logical_lines(text) {
            let err = |message: String| InputError::file(path, message).at_line(line_no);
            let line = expand_env(&strip_comment(&line));
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if line.starts_with('-') {
                self.option(path, line_no, line, target, walk)?;
                continue;
            }
            let (spec, hashes) = split_hashes(line).map_err(|e| err(e.to_string()))?;
            if looks_like_path_or_url(&spec) {
                return Err(err(format!(
                    "`{spec}` is a path or URL, not a named requirement: local paths and URLs are not supported"
                )));
            }
            let requirement = python::parse_requirement(&spec).map_err(|e| {
                let mut out = err(e.message);
                if let Some(offset) = e.offset {
                    out = out.at_column(offset + 1);
                }
                out
            })?;
            if target == Target::Constraints {
                if !requirement.extras.is_empty() {
                    return Err(err(format!(
                        "constraint `{}` has extras: constraints may not name extras",
                        requirement.name
                    )));
                }
                if let Some(prev) = walk
                    .constrained
                    .get(requirement.name.as_ref())
                    .map(|&i| &self.constraints[i])
                {
                    return Err(err(format!(
                        "duplicate constraint for `{}` (first at {}:{})",
                        requirement.name,
                        prev.origin.file.display(),
                        prev.origin.line
                    )));
                }
            }
            let declared = DeclaredRequirement {
                requirement,
                index: None,
                hashes,
                origin: Origin {
                    file: path.to_path_buf(),
                    line: line_no,
                },
            };
            match target {
                Target::Requirements => self.requirements.push(declared),
                Target::Constraints => {
                    walk.constrained.insert(
                        declared.requirement.name.to_string(),
                        self.constraints.len(),
                    );
                    self.constraints.push(declared);
                }
            }
        }
        Ok(())
    }
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Join `\`-continued lines; yields (first physical line number, text).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let (continues, body) = match raw.strip_suffix('\\') {
            Some(body) => (true, body),
            None => (false, raw),
        };
        let entry = current.get_or_insert_with(|| (line_no, String::new()));
        if !entry.1.is_empty() {
            entry.1.push(' ');
        }
        entry.1.push_str(body);
        if !continues {
            out.extend(current.take());
        }
    }
    out.extend(current);
    out
}

/// pip strips `#` comments at the start of a line or after whitespace.
fn strip_comment(line: &str) -> String {
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_space {
            return line[..i].to_string();
        }
        prev_space = c.is_whitespace();
    }
    line.to_string()
}

/// Expand `${NAME}` from the environment (pip's syntax: upper-case, digits, `_`).
fn expand_env(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end)
                if !after[..end].is_empty()
                    && after[..end]
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') =>
            {
                out.push_str(&std::env::var(&after[..end]).unwrap_or_default());
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Split `--opt value`, `--opt=value` and `-rfile` forms.
fn split_option(line: &str) -> (&str, Option<&str>) {
    if let Some(rest) = line.strip_prefix("--") {
        let end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let option = &line[..end + 2];
        let value = rest[end..]
            .trim_start_matches(|c: char| c == '=' || c.is_whitespace())
            .trim();
        return (option, (!value.is_empty()).then_some(value));
    }
    // `-` and the option letter, whatever character that is.
    let end = line.char_indices().nth(2).map_or(line.len(), |(i, _)| i);
    let option = &line[..end];
    let value = line[option.len()..].trim_start_matches('=').trim();
    (option, (!value.is_empty()).then_some(value))
}

/// What is wrong with an option on a requirements line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum LineError {
    #[error("`{0}` is not a URL: expected scheme://host/path")]
    NotUrl(String),
    #[error("`--hash` needs a value such as sha256:<hex>")]
    HashValue,
    #[error("unsupported per-requirement option `{0}` (only --hash is allowed here)")]
    Option(String),
    #[error("invalid hash `{0}`: expected <algorithm>:<hex digest>")]
    HashForm(String),
    #[error("unsupported hash algorithm `{0}`: use sha256, sha384 or sha512")]
    Algorithm(String),
    #[error("invalid hash `{0}`: expected {1} hexadecimal digits")]
    HashLength(String, usize),
}

fn check_url(value: &str) -> Result<String, LineError> {
    if value.contains("://") {
        Ok(value.trim_end_matches('/').to_string() + "/")
    } else {
        Err(LineError::NotUrl(value.to_string()))
    }
}

/// Split per-requirement `--hash` options off a requirement line.
fn split_hashes(line: &str) -> Result<(String, Vec<String>), LineError> {
    let Some(pos) = line.find(" --").or_else(|| line.find("\t--")) else {
        return Ok((line.to_string(), Vec::new()));
    };
    let spec = line[..pos].trim().to_string();
    let mut hashes = Vec::new();
    let mut words = line[pos..].split_whitespace().peekable();
    while let Some(word) = words.next() {
        let value = if let Some(v) = word.strip_prefix("--hash=") {
            v.to_string()
        } else if word == "--hash" {
            words.next().ok_or(LineError::HashValue)?.to_string()
        } else {
            return Err(LineError::Option(word.to_string()));
        };
        let (algo, hex) = value
            .split_once(':')
            .ok_or_else(|| LineError::HashForm(value.clone()))?;
        let expected_len = match algo {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => {
                return Err(LineError::Algorithm(algo.to_string()));
            }
        };
        if hex.len() != expected_len || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(LineError::HashLength(value, expected_len));
        }
        hashes.push(format!("{algo}:{}", hex.to_ascii_lowercase()));
    }
    Ok((spec, hashes))
}

fn looks_like_path_or_url(spec: &str) -> bool {
    let first = spec.split_whitespace().next().unwrap_or("");
    first.starts_with('.')
        || first.starts_with('/')
        || first.starts_with('~')
        || (first.contains("://") && !spec.contains('@'))
        || first.ends_with(".whl")
        || first.ends_with(".tar.gz")
        || first.ends_with(".zip")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_keeps_first_line_number() {
        let lines = logical_lines("a \\\n  >=1\nb\n");
        assert_eq!(
            lines,
            vec![(1, "a    >=1".to_string()), (3, "b".to_string())]
        );
    }

    #[test]
    fn comments_need_whitespace_before_hash() {
        assert_eq!(strip_comment("flask  # web"), "flask  ");
        assert_eq!(strip_comment("# all"), "");
        assert_eq!(strip_comment("x#y"), "x#y");
    }

    #[test]
    fn options_in_all_spellings() {
        assert_eq!(split_option("-r base.txt"), ("-r", Some("base.txt")));
        assert_eq!(split_option("-rbase.txt"), ("-r", Some("base.txt")));
        // A multi-byte option character (found by tests/inputs_fuzz.rs).
        assert_eq!(split_option("-\u{fffd}e r"), ("-\u{fffd}", Some("e r")));
        assert_eq!(
            split_option("--requirement=base.txt"),
            ("--requirement", Some("base.txt"))
        );
        assert_eq!(split_option("--pre"), ("--pre", None));
    }
}
