//! Constraints (`--constraints FILE`): pip syntax (`name<spec>[; marker]`, one
//! per line, includes allowed) or Thoth's JSON form
//! `[{"name": …, "version": …, "markers": …}]`. No extras, hashes or
//! duplicate names.

use std::path::Path;

use serde::Deserialize;

use super::error::{InputError, read_to_string};
use super::requirements::RequirementsFile;
use super::{DeclaredRequirement, Origin};
use crate::python::{self, Requirement};

/// Read a constraints file in either syntax.
pub fn read_constraints(path: &Path) -> Result<Vec<DeclaredRequirement>, InputError> {
    let text = read_to_string(path)?;
    if text.trim_start().starts_with('[') {
        return parse_json(path, &text);
    }
    let file = RequirementsFile::from_path(path)?;
    let mut out: Vec<DeclaredRequirement> = Vec::new();
    let mut first_line: std::collections::HashMap<_, usize> = std::collections::HashMap::new();
    for declared in file.requirements.into_iter().chain(file.constraints) {
        let err =
            |m: String| InputError::file(&declared.origin.file, m).at_line(declared.origin.line);
        if !declared.requirement.extras.is_empty() {
            return Err(err(format!(
                "constraint `{}` names extras: constraints may not have extras",
                declared.requirement.name
            )));
        }
        if !declared.hashes.is_empty() {
            return Err(err(format!(
                "constraint `{}` has --hash: constraints may not carry hashes",
                declared.requirement.name
            )));
        }
        if let Some(line) = first_line.get(&declared.requirement.name) {
            return Err(err(format!(
                "duplicate constraint for `{}` (first at line {line})",
                declared.requirement.name
            )));
        }
        first_line.insert(declared.requirement.name.clone(), declared.origin.line);
        out.push(declared);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonConstraint {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    markers: Option<String>,
}

fn parse_json(path: &Path, text: &str) -> Result<Vec<DeclaredRequirement>, InputError> {
    let items: Vec<JsonConstraint> = serde_json::from_str(text).map_err(|e| {
        InputError::file(path, format!("invalid JSON constraints: {e}"))
            .at(Some((e.line(), e.column())))
    })?;
    let mut out: Vec<DeclaredRequirement> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.into_iter().enumerate() {
        let err = |k: &str, m: String| InputError::file(path, m).key(format!("[{i}].{k}"));
        let name = python::parse_name(&item.name).map_err(|e| err("name", e.message))?;
        let specifiers = python::parse_specifiers(item.version.as_deref().unwrap_or("*"))
            .map_err(|e| err("version", e.message))?;
        let marker = item
            .markers
            .as_deref()
            .map(python::parse_marker)
            .transpose()
            .map_err(|e| err("markers", e.message))?;
        if !seen.insert(name.clone()) {
            return Err(err("name", format!("duplicate constraint for `{name}`")));
        }
        out.push(DeclaredRequirement {
            requirement: Requirement {
                name,
                extras: Vec::new(),
                specifiers,
                marker,
            },
            index: None,
            hashes: Vec::new(),
            origin: Origin {
                file: path.to_path_buf(),
                line: 1,
            },
        });
    }
    Ok(out)
}
