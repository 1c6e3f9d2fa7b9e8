//! Reading advisory sources: directories of OSV files and OSV archives
//! (a zip of OSV JSON per ecosystem), and merging several into one list.

use std::path::{Path, PathBuf};

use super::{LoadedAdvisory, OsvError, OsvRecord, load_record, scalar};

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), OsvError> {
    let entries = std::fs::read_dir(dir).map_err(|e| OsvError {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    for entry in entries {
        let path = entry
            .map_err(|e| OsvError {
                path: dir.to_path_buf(),
                message: e.to_string(),
            })?
            .path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// Parse one OSV file's text (JSON or YAML by `json`); `Ok(None)` for a
/// file that is not an OSV record at all.
fn parse_record(label: &Path, text: &str, json: bool) -> Result<Option<OsvRecord>, OsvError> {
    let parsed: Result<OsvRecord, String> = if json {
        serde_json::from_str(text).map_err(|e| e.to_string())
    } else {
        crate::input::yaml_budget::check(text)
            .map_err(|e| e.to_string())
            .and_then(|()| serde_yaml::from_str(text).map_err(|e| e.to_string()))
    };
    match parsed {
        Ok(record) => Ok(Some(record)),
        Err(message) if text.contains("affected") && text.contains("id") => Err(OsvError {
            path: label.to_path_buf(),
            message: format!("invalid OSV record: {message}"),
        }),
        Err(_) => Ok(None),
    }
}

/// Read every OSV file below `dir` (sorted, so the result is deterministic).
/// Files that are not OSV records (no `id`/`affected`) are skipped.
pub fn read_dir(dir: &Path) -> Result<Vec<LoadedAdvisory>, OsvError> {
    Ok(read_source(dir)?.advisories)
}

/// Most bytes one OSV archive may hold (OSV's PyPI archive is tens of MiB).
const MAX_ARCHIVE_BYTES: u64 = 1 << 30;

/// Every `*.json` member of an OSV archive (`PyPI/all.zip` as OSV
/// publishes it per ecosystem), as (member name, text), sorted by name.
fn read_zip(path: &Path) -> Result<Vec<(String, String)>, OsvError> {
    use crate::index::zipmeta;
    let err = |message: String| OsvError {
        path: path.to_path_buf(),
        message,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| err(e.to_string()))?
        .len();
    if size > MAX_ARCHIVE_BYTES {
        return Err(err(format!(
            "larger than {} MiB: not an advisory archive",
            MAX_ARCHIVE_BYTES >> 20
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let window = zipmeta::Window {
        offset: 0,
        bytes,
        total: size,
    };
    let (cd_offset, cd_size) =
        zipmeta::find_central_directory(&window).map_err(|e| err(e.to_string()))?;
    let directory = usize::try_from(cd_offset)
        .ok()
        .zip(usize::try_from(cd_offset.saturating_add(cd_size)).ok())
        .and_then(|(a, b)| window.bytes.get(a..b))
        .ok_or_else(|| err("the central directory lies outside the file".into()))?;
    let mut out = Vec::new();
    for entry in zipmeta::entries(directory).map_err(|e| err(e.to_string()))? {
        if !entry.name.ends_with(".json") {
            continue;
        }
        let member = |m: String| err(format!("{}: {m}", entry.name));
        let header = usize::try_from(entry.local)
            .ok()
            .and_then(|at| window.bytes.get(at..at.checked_add(30)?))
            .ok_or_else(|| member("truncated local header".into()))?;
        let (start, len) = zipmeta::local_data_range(header, entry.local, entry.compressed)
            .map_err(|e| member(e.to_string()))?;
        let data = usize::try_from(start)
            .ok()
            .zip(usize::try_from(start.saturating_add(len)).ok())
            .and_then(|(a, b)| window.bytes.get(a..b))
            .ok_or_else(|| member("data lies outside the file".into()))?;
        let text = zipmeta::decompress(data, entry.method).map_err(|e| member(e.to_string()))?;
        out.push((entry.name, text));
    }
    out.sort();
    Ok(out)
}

/// One advisory source as read.
#[derive(Debug, Default)]
pub struct SourceRead {
    /// The directory's or archive's file name.
    pub label: String,
    /// Advisories (one per record and PyPI package), withdrawn ones left out.
    pub advisories: Vec<LoadedAdvisory>,
    /// OSV records read.
    pub records: usize,
    /// Withdrawn records left out.
    pub withdrawn: usize,
    /// The newest `modified` time of its records.
    pub newest: Option<String>,
}

/// Read an advisory source: a directory of OSV YAML/JSON files (the PyPA
/// advisory database's layout, or an unpacked OSV archive) or a `.zip` of
/// OSV JSON files as OSV publishes per ecosystem.
pub fn read_source(path: &Path) -> Result<SourceRead, OsvError> {
    let label = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let mut texts: Vec<(PathBuf, String, bool)> = Vec::new();
    if path.is_dir() {
        let mut files = Vec::new();
        collect_files(path, &mut files)?;
        files.sort();
        for file in files {
            let text = crate::input::error::read_to_string(&file).map_err(|e| OsvError {
                path: file.clone(),
                message: e.to_string(),
            })?;
            let json = file.extension().is_some_and(|e| e == "json");
            texts.push((file, text, json));
        }
    } else {
        for (name, text) in read_zip(path)? {
            texts.push((path.join(name), text, true));
        }
    }
    let mut out = SourceRead {
        label,
        ..SourceRead::default()
    };
    for (file, text, json) in texts {
        let Some(record) = parse_record(&file, &text, json)? else {
            continue;
        };
        out.records += 1;
        let modified = record.modified.as_ref().and_then(scalar);
        if modified > out.newest {
            out.newest = modified;
        }
        if record.withdrawn.is_some() {
            out.withdrawn += 1;
            continue;
        }
        out.advisories.extend(load_record(&record));
    }
    Ok(out)
}

/// Merge sources in order: an advisory sharing its id or an alias with an
/// earlier one for the same project is the same vulnerability told by
/// another database (a PYSEC record and its GHSA twin). It is folded into
/// the first: its id joins the aliases, and its ranges and versions are
/// added, so a release either database calls affected stays affected.
/// Returns the advisories and how many duplicates were folded.
pub fn merge(sources: Vec<SourceRead>) -> (Vec<LoadedAdvisory>, usize) {
    let mut out: Vec<LoadedAdvisory> = Vec::new();
    // (project, upper-case id or alias) → index in `out`.
    let mut seen: std::collections::HashMap<(String, String), usize> =
        std::collections::HashMap::new();
    let mut folded = 0;
    for advisory in sources.into_iter().flat_map(|s| s.advisories) {
        let project = advisory.advisory.project.clone();
        let keys: Vec<String> = std::iter::once(&advisory.advisory.id)
            .chain(&advisory.advisory.aliases)
            .map(|k| k.to_ascii_uppercase())
            .collect();
        let earlier = keys
            .iter()
            .find_map(|k| seen.get(&(project.clone(), k.clone())).copied());
        let at = match earlier {
            Some(at) => {
                folded += 1;
                let kept = &mut out[at];
                for name in std::iter::once(&advisory.advisory.id).chain(&advisory.advisory.aliases)
                {
                    if *name != kept.advisory.id && !kept.advisory.aliases.contains(name) {
                        kept.advisory.aliases.push(name.clone());
                    }
                }
                kept.ranges.extend(advisory.ranges);
                kept.versions.extend(advisory.versions);
                for f in advisory.advisory.fixed_in {
                    if !kept.advisory.fixed_in.contains(&f) {
                        kept.advisory.fixed_in.push(f);
                    }
                }
                if advisory.modified > kept.modified {
                    kept.modified = advisory.modified;
                }
                at
            }
            None => {
                out.push(advisory);
                out.len() - 1
            }
        };
        for k in keys {
            seen.entry((project.clone(), k)).or_insert(at);
        }
    }
    (out, folded)
}
