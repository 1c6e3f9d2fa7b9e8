//! Reading an existing `Pipfile.lock` (Pipenv's lock format, `pipfile-spec` 6).
//!
//! An existing lock is scored first by `advise` and is the input of
//! `provenance-check`; writing locks lives in the output layer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Source;
use super::error::{InputError, read_to_string};
use crate::python::{self, Version};

/// One pinned package of a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedPackage {
    /// Normalised name.
    pub name: String,
    /// The pinned version (from `==X`).
    pub version: Version,
    /// `sha256:<hex>` entries.
    pub hashes: Vec<String>,
    /// Source name, if given.
    pub index: Option<String>,
    /// Marker text, if given.
    pub markers: Option<String>,
    /// Extras, if given.
    pub extras: Vec<String>,
}

/// A parsed `Pipfile.lock`.
#[derive(Debug, Clone)]
pub struct PipfileLock {
    /// Where it was read from.
    pub path: PathBuf,
    /// `_meta.hash.sha256`.
    pub hash: Option<String>,
    /// `_meta.pipfile-spec`.
    pub pipfile_spec: Option<u64>,
    /// `_meta.requires`.
    pub requires: BTreeMap<String, String>,
    /// `_meta.sources`.
    pub sources: Vec<Source>,
    /// `default`.
    pub default: BTreeMap<String, LockedPackage>,
    /// `develop`.
    pub develop: BTreeMap<String, LockedPackage>,
}

#[derive(Deserialize)]
struct RawLock {
    #[serde(rename = "_meta")]
    meta: RawMeta,
    #[serde(default)]
    default: BTreeMap<String, RawEntry>,
    #[serde(default)]
    develop: BTreeMap<String, RawEntry>,
}

#[derive(Deserialize)]
struct RawMeta {
    #[serde(default)]
    hash: BTreeMap<String, String>,
    #[serde(rename = "pipfile-spec")]
    pipfile_spec: Option<u64>,
    #[serde(default)]
    requires: BTreeMap<String, String>,
    #[serde(default)]
    sources: Vec<RawSource>,
}

#[derive(Deserialize)]
struct RawSource {
    name: String,
    url: String,
    #[serde(default = "yes")]
    verify_ssl: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct RawEntry {
    version: Option<String>,
    hashes: Option<Vec<String>>,
    index: Option<String>,
    markers: Option<String>,
    #[serde(default)]
    extras: Vec<String>,
    git: Option<String>,
    path: Option<String>,
    file: Option<String>,
    editable: Option<bool>,
}

impl PipfileLock {
    /// Read and validate a lock file.
    pub fn from_path(path: &Path) -> Result<Self, InputError> {
        let text = read_to_string(path)?;
        Self::parse(path, &text)
    }

    /// Parse lock text; `path` is used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, InputError> {
        let raw: RawLock = serde_json::from_str(text).map_err(|e| {
            let mut err = InputError::file(path, format!("invalid Pipfile.lock: {e}"));
            if e.line() > 0 {
                err = err.at(Some((e.line(), e.column())));
            }
            err
        })?;
        let sources: Vec<Source> = raw
            .meta
            .sources
            .into_iter()
            .map(|s| Source {
                name: s.name,
                url: s.url,
                verify_ssl: s.verify_ssl,
            })
            .collect();
        let default = convert(path, text, "default", raw.default, &sources)?;
        let develop = convert(path, text, "develop", raw.develop, &sources)?;
        Ok(Self {
            path: path.to_path_buf(),
            hash: raw.meta.hash.get("sha256").cloned(),
            pipfile_spec: raw.meta.pipfile_spec,
            requires: raw.meta.requires,
            sources,
            default,
            develop,
        })
    }
}

/// Line of the first `"name"` key after the section header, for messages.
fn find_line(text: &str, section: &str, name: &str) -> Option<usize> {
    let start = text.find(&format!("\"{section}\""))?;
    let pos = text[start..].find(&format!("\"{name}\""))? + start;
    Some(text[..pos].matches('\n').count() + 1)
}

fn convert(
    path: &Path,
    text: &str,
    section: &str,
    entries: BTreeMap<String, RawEntry>,
    sources: &[Source],
) -> Result<BTreeMap<String, LockedPackage>, InputError> {
    let mut out = BTreeMap::new();
    for (name, entry) in entries {
        let key = format!("{section}.{name}");
        let err = |message: String| {
            let e = InputError::file(path, message).key(&key);
            match find_line(text, section, &name) {
                Some(line) => e.at_line(line),
                None => e,
            }
        };
        if entry.git.is_some()
            || entry.path.is_some()
            || entry.file.is_some()
            || entry.editable == Some(true)
        {
            return Err(err(
                "VCS, path, file and editable entries are not supported".into(),
            ));
        }
        let normalised = python::parse_name(&name)
            .map_err(|e| err(e.message))?
            .to_string();
        let version = entry
            .version
            .ok_or_else(|| err("missing `version` (expected \"==X\")".into()))?;
        let pinned = version.strip_prefix("==").ok_or_else(|| {
            err(format!(
                "version `{version}` is not pinned: expected \"==X\""
            ))
        })?;
        let version = python::parse_version(pinned).map_err(|e| err(e.message))?;
        let hashes = entry.hashes.ok_or_else(|| err("missing `hashes`".into()))?;
        for hash in &hashes {
            let valid = hash
                .strip_prefix("sha256:")
                .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()));
            if !valid {
                return Err(err(format!(
                    "invalid hash `{hash}`: expected sha256:<64 hex digits>"
                )));
            }
        }
        if let Some(index) = &entry.index
            && !sources.iter().any(|s| &s.name == index)
        {
            return Err(err(format!(
                "index `{index}` is not one of `_meta.sources`"
            )));
        }
        if let Some(markers) = &entry.markers {
            python::parse_marker(markers).map_err(|e| err(e.message))?;
        }
        if out.contains_key(&normalised) {
            return Err(err(format!(
                "`{normalised}` appears twice after name normalisation"
            )));
        }
        out.insert(
            normalised.clone(),
            LockedPackage {
                name: normalised,
                version,
                hashes,
                index: entry.index,
                markers: entry.markers,
                extras: entry.extras,
            },
        );
    }
    Ok(out)
}
