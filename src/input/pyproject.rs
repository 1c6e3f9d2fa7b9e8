//! `pyproject.toml`: `[project]` dependencies, optional dependencies,
//! `requires-python`, and PEP 735 `[dependency-groups]` with `include-group`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::error::{InputError, from_toml_error, line_col, read_to_string};
use super::{DeclaredRequirement, Origin};
use crate::python::{self, VersionSpecifiers};

/// A parsed `pyproject.toml`.
#[derive(Debug, Clone)]
pub struct PyProject {
    /// Where it was read from.
    pub path: PathBuf,
    /// `project.name`, if given.
    pub name: Option<String>,
    /// `project.dependencies`.
    pub dependencies: Vec<DeclaredRequirement>,
    /// `project.optional-dependencies`, keyed by normalised extra name.
    pub optional_dependencies: BTreeMap<String, Vec<DeclaredRequirement>>,
    /// `project.requires-python`.
    pub requires_python: Option<VersionSpecifiers>,
    /// `[dependency-groups]` with includes expanded, keyed by normalised name.
    pub dependency_groups: BTreeMap<String, Vec<DeclaredRequirement>>,
}

#[derive(Deserialize)]
struct Raw {
    project: Option<RawProject>,
    #[serde(rename = "dependency-groups")]
    dependency_groups: Option<BTreeMap<String, Vec<Spanned<GroupItem>>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawProject {
    name: Option<String>,
    #[serde(default)]
    dependencies: Vec<Spanned<String>>,
    #[serde(default)]
    optional_dependencies: BTreeMap<String, Vec<Spanned<String>>>,
    requires_python: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum GroupItem {
    Requirement(String),
    Include {
        #[serde(rename = "include-group")]
        include_group: String,
    },
}

impl PyProject {
    /// Read and validate a `pyproject.toml`.
    pub fn from_path(path: &Path) -> Result<Self, InputError> {
        let text = read_to_string(path)?;
        Self::parse(path, &text)
    }

    /// Parse `pyproject.toml` text; `path` is used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, InputError> {
        let raw: Raw = toml::from_str(text).map_err(|e| from_toml_error(path, text, &e))?;
        if raw.project.is_none() && raw.dependency_groups.is_none() {
            return Err(InputError::file(
                path,
                "no [project] table and no [dependency-groups]: nothing to resolve \
                 (tool-specific tables such as [tool.poetry] are not read)",
            ));
        }
        let parse_list = |items: &[Spanned<String>],
                          key: &str|
         -> Result<Vec<DeclaredRequirement>, InputError> {
            items
                .iter()
                .map(|item| parse_item(path, text, item.get_ref(), item.span().start, key))
                .collect()
        };
        let mut out = Self {
            path: path.to_path_buf(),
            name: None,
            dependencies: Vec::new(),
            optional_dependencies: BTreeMap::new(),
            requires_python: None,
            dependency_groups: BTreeMap::new(),
        };
        if let Some(project) = raw.project {
            out.name = project.name;
            out.dependencies = parse_list(&project.dependencies, "project.dependencies")?;
            for (extra, items) in &project.optional_dependencies {
                let key = format!("project.optional-dependencies.{extra}");
                let normalised = python::parse_extra(extra)
                    .map_err(|e| InputError::file(path, e.message).key(&key))?
                    .to_string();
                out.optional_dependencies
                    .insert(normalised, parse_list(items, &key)?);
            }
            if let Some(rp) = project.requires_python {
                let specifiers = python::parse_specifiers(rp.get_ref()).map_err(|e| {
                    InputError::file(path, e.message)
                        .at(Some(line_col(text, rp.span().start)))
                        .key("project.requires-python")
                })?;
                out.requires_python = Some(specifiers);
            }
        }
        if let Some(groups) = raw.dependency_groups {
            let mut normalised: BTreeMap<String, (&str, &Vec<Spanned<GroupItem>>)> =
                BTreeMap::new();
            for (name, items) in &groups {
                let norm = python::parse_name(name)
                    .map_err(|e| {
                        InputError::file(path, e.message).key(format!("dependency-groups.{name}"))
                    })?
                    .to_string();
                if normalised
                    .insert(norm.clone(), (name.as_str(), items))
                    .is_some()
                {
                    return Err(InputError::file(
                        path,
                        format!("duplicate dependency group `{norm}` after normalisation"),
                    )
                    .key(format!("dependency-groups.{name}")));
                }
            }
            for group in normalised.keys() {
                let mut stack = Vec::new();
                let resolved = expand_group(path, text, group, &normalised, &mut stack)?;
                out.dependency_groups.insert(group.clone(), resolved);
            }
        }
        Ok(out)
    }
}

fn parse_item(
    path: &Path,
    text: &str,
    item: &str,
    offset: usize,
    key: &str,
) -> Result<DeclaredRequirement, InputError> {
    let at = line_col(text, offset);
    let requirement = python::parse_requirement(item)
        .map_err(|e| InputError::file(path, e.message).at(Some(at)).key(key))?;
    Ok(DeclaredRequirement {
        requirement,
        index: None,
        hashes: Vec::new(),
        origin: Origin {
            file: path.to_path_buf(),
            line: at.0,
        },
    })
}

fn expand_group(
    path: &Path,
    text: &str,
    group: &str,
    groups: &BTreeMap<String, (&str, &Vec<Spanned<GroupItem>>)>,
    stack: &mut Vec<String>,
) -> Result<Vec<DeclaredRequirement>, InputError> {
    let (written, items) = groups[group];
    if stack.iter().any(|g| g == group) {
        stack.push(group.to_string());
        return Err(
            InputError::file(path, format!("include-group cycle: {}", stack.join(" -> ")))
                .key(format!("dependency-groups.{written}")),
        );
    }
    stack.push(group.to_string());
    let key = format!("dependency-groups.{written}");
    let mut out = Vec::new();
    for item in items {
        match item.get_ref() {
            GroupItem::Requirement(req) => {
                out.push(parse_item(path, text, req, item.span().start, &key)?)
            }
            GroupItem::Include { include_group } => {
                let target = python::parse_name(include_group)
                    .map_err(|e| InputError::file(path, e.message).key(&key))?
                    .to_string();
                if !groups.contains_key(&target) {
                    return Err(InputError::file(
                        path,
                        format!("include-group `{include_group}` names no dependency group"),
                    )
                    .at(Some(line_col(text, item.span().start)))
                    .key(&key));
                }
                out.extend(expand_group(path, text, &target, groups, stack)?);
            }
        }
    }
    stack.pop();
    Ok(out)
}
