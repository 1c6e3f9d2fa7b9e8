//! Pipfile (TOML) as Pipenv defines it, plus Thoth's `[thoth]` section.
//!
//! VCS, path and editable entries are rejected: thoth-rs resolves against a
//! snapshot of an index and cannot see inside a checkout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::error::{InputError, from_toml_error, line_col, read_to_string};
use super::{DeclaredRequirement, Origin, Source};
use crate::python::{self, Marker, Requirement};

/// Marker variables Pipenv accepts as keys of a package table.
const MARKER_KEYS: &[&str] = &[
    "os_name",
    "sys_platform",
    "platform_machine",
    "platform_python_implementation",
    "platform_release",
    "platform_system",
    "platform_version",
    "python_version",
    "python_full_version",
    "implementation_name",
    "implementation_version",
];

/// Keys that describe a checkout or a local path rather than an index release.
const UNSUPPORTED_KEYS: &[&str] = &[
    "git",
    "hg",
    "svn",
    "bzr",
    "path",
    "file",
    "editable",
    "ref",
    "subdirectory",
    "uri",
];

/// `[requires]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requires {
    /// `python_version`, e.g. `3.11`.
    pub python_version: Option<String>,
    /// `python_full_version`, e.g. `3.11.7`.
    pub python_full_version: Option<String>,
}

/// `[thoth]`: thoth-rs specific settings (not part of Pipenv's hash).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThothSection {
    /// Per-package pre-release permission.
    pub allow_prereleases: BTreeMap<String, bool>,
    /// Keep the index of every package as written.
    pub disable_index_adjustment: bool,
}

/// A parsed Pipfile.
#[derive(Debug, Clone)]
pub struct Pipfile {
    /// Where it was read from.
    pub path: PathBuf,
    /// `[[source]]` entries in file order.
    pub sources: Vec<Source>,
    /// `[packages]`, sorted by name.
    pub packages: Vec<DeclaredRequirement>,
    /// `[dev-packages]`, sorted by name.
    pub dev_packages: Vec<DeclaredRequirement>,
    /// Why `[dev-packages]` could not be read (empty `dev_packages` then):
    /// an error only for a run that includes them.
    pub dev_error: Option<InputError>,
    /// `[requires]`.
    pub requires: Requires,
    /// `[pipenv] allow_prereleases`.
    pub allow_prereleases: bool,
    /// `[thoth]`.
    pub thoth: ThothSection,
    /// The document as data, for Pipenv's `_meta.hash`.
    pub raw: toml::Table,
    /// Non-fatal findings (unknown keys and the like).
    pub warnings: Vec<String>,
}

type Entries = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

#[derive(Deserialize)]
struct RawPipfile {
    #[serde(default)]
    source: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    packages: Entries,
    #[serde(default, rename = "dev-packages")]
    dev_packages: Entries,
    #[serde(default)]
    requires: Option<Spanned<toml::Table>>,
    #[serde(default)]
    pipenv: Option<Spanned<toml::Table>>,
    #[serde(default)]
    thoth: Option<Spanned<toml::Table>>,
    #[serde(flatten)]
    other: BTreeMap<String, toml::Value>,
}

impl Pipfile {
    /// Read and validate a Pipfile.
    pub fn from_path(path: &Path) -> Result<Self, InputError> {
        let text = read_to_string(path)?;
        Self::parse(path, &text)
    }

    /// Parse Pipfile text; `path` is used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, InputError> {
        let raw: RawPipfile = toml::from_str(text).map_err(|e| from_toml_error(path, text, &e))?;
        let table: toml::Table =
            toml::from_str(text).map_err(|e| from_toml_error(path, text, &e))?;
        let mut warnings = Vec::new();
        for key in raw.other.keys() {
            warnings.push(format!(
                "{}: unknown section `[{key}]` ignored",
                path.display()
            ));
        }
        let cx = Cx::new(path, text);

        let sources = cx.sources(&raw.source, &mut warnings)?;

        let packages = cx.entries(&raw.packages, "packages", &sources, &mut warnings)?;
        let (dev_packages, dev_error) =
            match cx.entries(&raw.dev_packages, "dev-packages", &sources, &mut warnings) {
                Ok(entries) => (entries, None),
                Err(e) => (Vec::new(), Some(e)),
            };

        let requires = cx.requires(raw.requires.as_ref())?;

        let mut allow_prereleases = false;
        if let Some(section) = &raw.pipenv {
            let at = cx.pos(section.span().start);
            allow_prereleases = cx
                .boolean(section.get_ref(), "allow_prereleases", "pipenv", at)?
                .unwrap_or(false);
        }

        let thoth = cx.thoth_section(raw.thoth.as_ref(), &mut warnings)?;

        Ok(Self {
            path: path.to_path_buf(),
            sources,
            packages,
            dev_packages,
            dev_error,
            requires,
            allow_prereleases,
            thoth,
            raw: table,
            warnings,
        })
    }
}

struct Cx<'a> {
    path: &'a Path,
    text: &'a str,
    /// Byte offset where each line starts (positions in linear time for
    /// files with tens of thousands of entries).
    line_starts: Vec<usize>,
}

impl<'a> Cx<'a> {
    /// The `[[source]]` tables.
    fn sources(
        &self,
        raw: &[Spanned<toml::Table>],
        warnings: &mut Vec<String>,
    ) -> Result<Vec<Source>, InputError> {
        let mut sources: Vec<Source> = Vec::new();
        for (i, source) in raw.iter().enumerate() {
            let at = self.pos(source.span().start);
            let key = format!("source[{i}]");
            let table = source.get_ref();
            let url = self.string(table, "url", &key, at)?.ok_or_else(|| {
                self.err(
                    at,
                    format!("{key}.url"),
                    "missing required key: expected the index URL",
                )
            })?;
            let name = self.string(table, "name", &key, at)?.ok_or_else(|| {
                self.err(
                    at,
                    format!("{key}.name"),
                    "missing required key: expected a source name",
                )
            })?;
            let verify_ssl = match table.get("verify_ssl") {
                None => true,
                Some(toml::Value::Boolean(b)) => *b,
                Some(other) => {
                    return Err(self.err(
                        at,
                        format!("{key}.verify_ssl"),
                        format!("expected true or false, found {}", other.type_str()),
                    ));
                }
            };
            if sources.iter().any(|s| s.name == name) {
                return Err(self.err(
                    at,
                    format!("{key}.name"),
                    format!("duplicate source name `{name}`"),
                ));
            }
            for extra in table.keys() {
                if !matches!(extra.as_str(), "url" | "name" | "verify_ssl") {
                    warnings.push(format!(
                        "{}: unknown key `{key}.{extra}` ignored",
                        self.path.display()
                    ));
                }
            }
            sources.push(Source {
                name,
                url,
                verify_ssl,
            });
        }
        Ok(sources)
    }

    /// The `[requires]` table.
    fn requires(&self, raw: Option<&Spanned<toml::Table>>) -> Result<Requires, InputError> {
        let mut requires = Requires::default();
        if let Some(req) = raw {
            let at = self.pos(req.span().start);
            requires.python_version =
                self.string(req.get_ref(), "python_version", "requires", at)?;
            requires.python_full_version =
                self.string(req.get_ref(), "python_full_version", "requires", at)?;
            if let Some(v) = &requires.python_version {
                python::parse_version(v)
                    .map_err(|e| self.err(at, "requires.python_version", e.message))?;
            }
            if let Some(v) = &requires.python_full_version {
                python::parse_version(v)
                    .map_err(|e| self.err(at, "requires.python_full_version", e.message))?;
            }
        }
        Ok(requires)
    }

    /// The `[thoth]` table.
    fn thoth_section(
        &self,
        raw: Option<&Spanned<toml::Table>>,
        warnings: &mut Vec<String>,
    ) -> Result<ThothSection, InputError> {
        let mut thoth = ThothSection::default();
        if let Some(section) = raw {
            let at = self.pos(section.span().start);
            for (key, value) in section.get_ref() {
                match (key.as_str(), value) {
                    ("allow_prereleases", toml::Value::Table(map)) => {
                        for (name, allowed) in map {
                            let toml::Value::Boolean(allowed) = allowed else {
                                return Err(self.err(
                                    at,
                                    format!("thoth.allow_prereleases.{name}"),
                                    "expected true or false",
                                ));
                            };
                            let name = python::parse_name(name).map_err(|e| {
                                self.err(at, format!("thoth.allow_prereleases.{name}"), e.message)
                            })?;
                            thoth.allow_prereleases.insert(name.to_string(), *allowed);
                        }
                    }
                    ("allow_prereleases", _) => {
                        return Err(self.err(
                            at,
                            "thoth.allow_prereleases",
                            "expected a table of package = true/false",
                        ));
                    }
                    ("disable_index_adjustment", toml::Value::Boolean(b)) => {
                        thoth.disable_index_adjustment = *b
                    }
                    ("disable_index_adjustment", _) => {
                        return Err(self.err(
                            at,
                            "thoth.disable_index_adjustment",
                            "expected true or false",
                        ));
                    }
                    (other, _) => warnings.push(format!(
                        "{}: unknown key `thoth.{other}` ignored",
                        self.path.display()
                    )),
                }
            }
        }
        Ok(thoth)
    }

    fn new(path: &'a Path, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            path,
            text,
            line_starts,
        }
    }

    fn pos(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let within = &self.text[start..];
        let column = line_col(within, offset.saturating_sub(start)).1;
        (line, column)
    }

    fn err(
        &self,
        at: (usize, usize),
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> InputError {
        InputError::file(self.path, message).at(Some(at)).key(key)
    }

    fn string(
        &self,
        table: &toml::Table,
        key: &str,
        parent: &str,
        at: (usize, usize),
    ) -> Result<Option<String>, InputError> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.err(
                at,
                format!("{parent}.{key}"),
                format!("expected a string, found {}", other.type_str()),
            )),
        }
    }

    fn boolean(
        &self,
        table: &toml::Table,
        key: &str,
        parent: &str,
        at: (usize, usize),
    ) -> Result<Option<bool>, InputError> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(self.err(
                at,
                format!("{parent}.{key}"),
                format!("expected true or false, found {}", other.type_str()),
            )),
        }
    }

    fn entries(
        &self,
        entries: &Entries,
        section: &str,
        sources: &[Source],
        warnings: &mut Vec<String>,
    ) -> Result<Vec<DeclaredRequirement>, InputError> {
        let mut out: Vec<DeclaredRequirement> = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (name, value) in entries {
            let at = self.pos(name.span().start);
            let key = format!("{section}.{}", name.get_ref());
            let parsed_name =
                python::parse_name(name.get_ref()).map_err(|e| self.err(at, &key, e.message))?;
            if !names.insert(parsed_name.clone()) {
                return Err(self.err(at, &key, format!("`{parsed_name}` is listed twice (names are compared after PEP 503 normalisation)")));
            }
            let entry = self.entry(value.get_ref(), &key, at, sources, warnings)?;
            out.push(DeclaredRequirement {
                requirement: Requirement {
                    name: parsed_name,
                    extras: entry.extras,
                    specifiers: entry.specifiers,
                    marker: entry.marker,
                },
                index: entry.index,
                hashes: Vec::new(),
                origin: Origin {
                    file: self.path.to_path_buf(),
                    line: at.0,
                },
            });
        }
        out.sort_by(|a, b| a.requirement.name.cmp(&b.requirement.name));
        Ok(out)
    }

    /// `index = "NAME"` of a package: the name of one of `sources`.
    fn source_name(
        &self,
        v: &toml::Value,
        here: String,
        at: (usize, usize),
        sources: &[Source],
    ) -> Result<String, InputError> {
        let toml::Value::String(index) = v else {
            return Err(self.err(at, here, "expected the name of a [[source]]"));
        };
        if !sources.iter().any(|s| &s.name == index) {
            let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
            return Err(self.err(
                at,
                here,
                format!(
                    "index `{index}` is not a [[source]] name (known: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        }
        Ok(index.clone())
    }

    /// `extras = [...]` of a package.
    fn extras(
        &self,
        v: &toml::Value,
        here: &str,
        at: (usize, usize),
    ) -> Result<Vec<python::ExtraName>, InputError> {
        let toml::Value::Array(items) = v else {
            return Err(self.err(at, here, "expected a list of extra names"));
        };
        items
            .iter()
            .map(|item| {
                let toml::Value::String(extra) = item else {
                    return Err(self.err(at, here, "expected a list of extra names"));
                };
                python::parse_extra(extra).map_err(|e| self.err(at, here, e.message))
            })
            .collect()
    }

    fn entry(
        &self,
        value: &toml::Value,
        key: &str,
        at: (usize, usize),
        sources: &[Source],
        warnings: &mut Vec<String>,
    ) -> Result<Entry, InputError> {
        let mut entry = Entry::default();
        match value {
            toml::Value::String(spec) => {
                entry.specifiers =
                    python::parse_specifiers(spec).map_err(|e| self.err(at, key, e.message))?;
            }
            toml::Value::Table(table) => {
                for unsupported in UNSUPPORTED_KEYS {
                    if table.contains_key(*unsupported) {
                        return Err(self.err(
                            at,
                            format!("{key}.{unsupported}"),
                            "VCS, path, file and editable requirements are not supported: \
                             thoth-rs resolves releases from a package index snapshot; \
                             publish the package to an index or pin a released version",
                        ));
                    }
                }
                let mut markers: Vec<String> = Vec::new();
                for (k, v) in table {
                    let here = format!("{key}.{k}");
                    match k.as_str() {
                        "version" => {
                            let toml::Value::String(spec) = v else {
                                return Err(self.err(
                                    at,
                                    here,
                                    format!(
                                        "expected a version specifier string, found {}",
                                        v.type_str()
                                    ),
                                ));
                            };
                            entry.specifiers = python::parse_specifiers(spec)
                                .map_err(|e| self.err(at, &here, e.message))?;
                        }
                        "index" => entry.index = Some(self.source_name(v, here, at, sources)?),
                        "markers" => {
                            let toml::Value::String(m) = v else {
                                return Err(self.err(at, here, "expected a marker string"));
                            };
                            python::parse_marker(m).map_err(|e| self.err(at, &here, e.message))?;
                            markers.push(m.trim().to_string());
                        }
                        "extras" => entry.extras = self.extras(v, &here, at)?,
                        marker_key if MARKER_KEYS.contains(&marker_key) => {
                            let toml::Value::String(cond) = v else {
                                return Err(self.err(
                                    at,
                                    here,
                                    "expected a condition such as \"== 'linux'\"",
                                ));
                            };
                            markers.push(format!("{marker_key} {}", cond.trim()));
                        }
                        other => warnings.push(format!(
                            "{}:{}: unknown key `{key}.{other}` ignored",
                            self.path.display(),
                            at.0
                        )),
                    }
                }
                if !markers.is_empty() {
                    let joined = if markers.len() == 1 {
                        markers.remove(0)
                    } else {
                        markers
                            .iter()
                            .map(|m| format!("({m})"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    };
                    let marker: Marker =
                        python::parse_marker(&joined).map_err(|e| self.err(at, key, e.message))?;
                    entry.marker = Some(marker);
                }
            }
            other => {
                return Err(self.err(at, key, format!("expected a version string such as \"*\" or \">=1.0\", or a table, found {}", other.type_str())));
            }
        }
        Ok(entry)
    }
}

#[derive(Default)]
struct Entry {
    specifiers: python::VersionSpecifiers,
    extras: Vec<python::ExtraName>,
    marker: Option<Marker>,
    index: Option<String>,
}
